"""API keys (header or LibreTranslate's api_key field) and per-client rate limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import make_settings, wait_until_ready
from tests.servers import RedisServer

BODY = {"q": "A dog runs.", "source": "en", "target": "de", "beam_size": 1}


@pytest.fixture(scope="module")
def keyed(trained_root: Path) -> Iterator[TestClient]:
    settings = make_settings(trained_root, api_keys="alpha-key, beta-key")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        wait_until_ready(client)
        yield client


def test_without_a_key_inference_is_403(keyed: TestClient) -> None:
    response = keyed.post("/translate", json=BODY)
    assert response.status_code == 403
    assert response.json()["error_type"] == "forbidden"
    assert keyed.post("/sentiment", json={"inputs": "fine"}).status_code == 403
    assert keyed.post("/attention-map", json={"task": "sentiment", "text": "x"}).status_code == 403


def test_a_wrong_key_is_403_and_never_echoed(keyed: TestClient) -> None:
    response = keyed.post("/translate", json={**BODY, "api_key": "guess-123"})
    assert response.status_code == 403
    assert "guess-123" not in response.text


def test_a_key_with_a_lone_surrogate_is_403_not_500(keyed: TestClient) -> None:
    raw = b'{"q": "A dog runs.", "source": "en", "target": "de", "api_key": "alpha\\ud800"}'
    response = keyed.post("/translate", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 403, response.text


def test_a_key_works_as_bearer_header_json_field_or_form_field(keyed: TestClient) -> None:
    bearer = keyed.post("/translate", json=BODY, headers={"Authorization": "Bearer beta-key"})
    assert bearer.status_code == 200, bearer.text
    assert keyed.post("/translate", json={**BODY, "api_key": "alpha-key"}).status_code == 200
    form = {k: str(v) for k, v in {**BODY, "api_key": "alpha-key"}.items()}
    assert keyed.post("/translate", data=form).status_code == 200


def test_file_translation_takes_the_key_as_a_form_field(keyed: TestClient) -> None:
    upload = {"file": ("a.txt", b"A dog runs.")}
    fields = {"source": "en", "target": "de"}
    assert keyed.post("/translate_file", files=upload, data=fields).status_code == 403
    keyed_fields = {**fields, "api_key": "beta-key"}
    response = keyed.post("/translate_file", files=upload, data=keyed_fields)
    assert response.status_code == 200, response.text
    assert keyed.get(response.json()["translatedFileUrl"]).status_code == 200  # a secret link


def test_health_metrics_and_languages_stay_open(keyed: TestClient) -> None:
    for path in ("/health", "/ready", "/metrics", "/languages", "/models"):
        assert keyed.get(path).status_code == 200, path


def test_keys_never_reach_logs_or_metrics(
    keyed: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    keyed.post("/translate", json={**BODY, "api_key": "alpha-key"})
    keyed.post("/translate", json=BODY, headers={"Authorization": "Bearer wrong-secret"})
    assert "alpha-key" not in caplog.text and "wrong-secret" not in caplog.text
    metrics = keyed.get("/metrics").text
    assert "alpha-key" not in metrics and "wrong-secret" not in metrics


def _limited_client(root: Path, **changes: object) -> TestClient:
    settings = make_settings(root, rate_limit_per_minute=3, **changes)
    return TestClient(create_app(settings), raise_server_exceptions=False)


def test_rate_limit_answers_429_with_retry_after(trained_root: Path) -> None:
    with _limited_client(trained_root) as client:
        wait_until_ready(client)
        codes = [
            client.post("/sentiment", json={"inputs": f"ok {i}"}).status_code for i in range(5)
        ]
        assert codes == [200, 200, 200, 429, 429]
        limited = client.post("/sentiment", json={"inputs": "again"})
        assert limited.json()["error_type"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60


def test_rate_limits_are_per_key(trained_root: Path) -> None:
    with _limited_client(trained_root, api_keys="k1,k2") as client:
        wait_until_ready(client)
        for _ in range(3):
            client.post("/sentiment", json={"inputs": "x"}, headers={"Authorization": "Bearer k1"})
        k1 = client.post("/sentiment", json={"inputs": "x"}, headers={"Authorization": "Bearer k1"})
        k2 = client.post("/sentiment", json={"inputs": "x"}, headers={"Authorization": "Bearer k2"})
        assert (k1.status_code, k2.status_code) == (429, 200)


def test_replicas_share_rate_limits_through_redis(trained_root: Path, tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        first = _limited_client(trained_root, redis_url=redis.url)
        second = _limited_client(trained_root, redis_url=redis.url)
        with first, second:
            wait_until_ready(first)
            wait_until_ready(second)
            codes = [
                c.post("/sentiment", json={"inputs": "shared"}).status_code
                for c in (first, second, first, second)
            ]
        assert codes == [200, 200, 200, 429]
    finally:
        redis.stop()


def test_cors_is_closed_by_default_and_opens_when_configured(trained_root: Path) -> None:
    preflight = {"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
    with TestClient(create_app(make_settings(trained_root))) as closed:
        response = closed.options("/translate", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    settings = make_settings(trained_root, cors_origins="https://example.org")
    with TestClient(create_app(settings)) as opened:
        response = opened.options("/translate", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://example.org"
