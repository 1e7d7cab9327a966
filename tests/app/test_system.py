"""Health, readiness, models, metrics and the OpenAPI document."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from starlette.types import Message, Receive, Scope, Send

from app.main import create_app
from app.middleware import RequestLogMiddleware
from tests.app.conftest import make_settings


def test_health_and_ready_when_models_are_loaded(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["ready"] is True
    assert ready["models"] == ["langid/multi30k", "sentiment/sst2", "translation/en-de"]


def test_models_lists_versions_and_manifest_metrics(client: TestClient) -> None:
    models = {m["task"]: m for m in client.get("/models").json()}
    assert set(models) == {"translation", "sentiment", "langid"}
    assert models["translation"]["version"] == 1
    assert "bleu" in models["translation"]["metrics"]["validation"]
    assert "accuracy" in models["sentiment"]["metrics"]["validation"]
    assert models["sentiment"]["load_seconds"] > 0


def test_metrics_expose_the_documented_series(client: TestClient) -> None:
    client.post("/translate", json={"q": "A cat runs.", "source": "en", "target": "de"})
    text = client.get("/metrics").text
    for name in (
        "nlp_requests_total",
        "nlp_request_duration_seconds_bucket",
        "nlp_inflight_requests",
        "nlp_batch_size_bucket",
        "nlp_queue_wait_seconds_bucket",
        "nlp_inference_duration_seconds_bucket",
        "nlp_generated_tokens_total",
        "nlp_cache_requests_total",
        "nlp_model_info",
    ):
        assert name in text, name
    assert 'nlp_requests_total{endpoint="/translate",status="200"}' in text
    assert 'nlp_model_info{model="translation/en-de",version="1"} 1.0' in text


def test_metric_labels_never_carry_text_or_raw_paths(client: TestClient) -> None:
    client.post("/translate", json={"q": "secret words", "source": "en", "target": "de"})
    client.get("/no/such/path/with-a-token-abc123")
    text = client.get("/metrics").text
    assert "secret" not in text and "abc123" not in text


def test_every_response_has_a_request_id(client: TestClient) -> None:
    assert len(client.get("/health").headers["x-request-id"]) == 32
    given = client.get("/health", headers={"X-Request-ID": "req-42"})
    assert given.headers["x-request-id"] == "req-42"


async def test_a_request_id_comes_back_byte_for_byte() -> None:
    """Header bytes are latin-1 in ASGI; a non-ASCII id must not come back re-encoded."""
    sent: list[Message] = []

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "headers": [(b"x-request-id", b"caf\xe9-1")]}
    await RequestLogMiddleware(endpoint)(scope, receive, send)
    assert (b"x-request-id", b"caf\xe9-1") in sent[0]["headers"]


async def test_a_client_that_leaves_mid_body_is_a_499_not_a_500(client: TestClient) -> None:
    sent: list[Message] = []
    arriving: list[Message] = [
        {"type": "http.request", "body": b'{"q": "a dog', "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> Message:
        return arriving.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/translate",
        "raw_path": b"/translate",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    before = {status: translate_requests(status) for status in ("499", "500")}
    await client.app(scope, receive, send)  # type: ignore[arg-type]
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [499]
    assert translate_requests("499") == before["499"] + 1
    assert translate_requests("500") == before["500"]


def translate_requests(status: str) -> float:
    """nlp_requests_total of /translate with this status (0 before the first one)."""
    labels = {"endpoint": "/translate", "status": status}
    return REGISTRY.get_sample_value("nlp_requests_total", labels) or 0.0


def test_openapi_documents_every_endpoint_with_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/translate",
        "/detect",
        "/languages",
        "/sentiment",
        "/attention-map",
        "/health",
        "/ready",
        "/metrics",
        "/models",
    ):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert "examples" in schemas["TranslateRequest"]
    form = spec["paths"]["/translate"]["post"]["requestBody"]["content"]
    assert "application/x-www-form-urlencoded" in form
    assert client.get("/docs").status_code == 200


def test_empty_artifacts_dir_is_not_ready_but_alive(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    with TestClient(app) as client:
        for _ in range(600):
            ready = client.get("/ready")
            if "loading" not in str(ready.json()["reasons"]):
                break
            time.sleep(0.05)
        assert ready.status_code == 503
        assert "no models found" in ready.json()["reasons"][0]
        assert client.get("/health").status_code == 200
        response = client.post("/sentiment", json={"inputs": "fine"})
        assert response.status_code == 503
        assert response.json()["error_type"] == "model_unavailable"
