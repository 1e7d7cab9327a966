"""A replica that loads or drains sends clients elsewhere: 503 with Retry-After (which a
proxy retries on another replica), never 400, and /ready says not ready."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.registry import ModelRegistry
from tests.app.conftest import make_settings, wait_until_ready
from tests.servers import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
EN_DE = {"q": "a dog runs on the street", "source": "en", "target": "de"}


@pytest.fixture
def held_loading(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Model loading waits until the returned event is set."""
    gate = threading.Event()
    original = ModelRegistry._load

    def held(self: ModelRegistry, ref: object) -> object:
        gate.wait(120)
        return original(self, ref)  # type: ignore[arg-type]

    monkeypatch.setattr(ModelRegistry, "_load", held)
    yield gate
    gate.set()


def test_while_models_load_their_requests_get_503_with_retry_after(
    trained_root: Path, held_loading: threading.Event
) -> None:
    with TestClient(create_app(make_settings(trained_root)), raise_server_exceptions=False) as c:
        ready = c.get("/ready")
        assert ready.status_code == 503
        assert "models are loading" in ready.json()["reasons"]
        for path, body in [
            ("/translate", EN_DE),
            ("/translate", {**EN_DE, "source": "auto"}),  # the language identifier loads
            ("/detect", {"q": "a dog runs"}),
            ("/sentiment", {"inputs": "a great movie"}),
            ("/attention-map", {"task": "translation", "text": "a dog", **EN_DE}),
        ]:
            response = c.post(path, json=body)
            assert response.status_code == 503, (path, response.text)
            assert response.json()["error_type"] == "model_unavailable"
            assert int(response.headers["retry-after"]) > 0
        # A pair no model on disk serves is still the client's mistake.
        response = c.post("/translate", json={**EN_DE, "target": "fr"})
        assert response.status_code == 400
        assert response.json()["error_type"] == "unsupported_language"

        held_loading.set()
        wait_until_ready(c)
        assert c.post("/translate", json=EN_DE).status_code == 200
        assert c.post("/translate", json={**EN_DE, "target": "fr"}).status_code == 400


def test_a_model_whose_every_version_is_refused_is_not_pending(artifacts_copy: Path) -> None:
    weights = next((artifacts_copy / "translation" / "en-de").glob("*/model.weights.h5"))
    weights.write_bytes(weights.read_bytes() + b"tampered")
    with TestClient(create_app(make_settings(artifacts_copy)), raise_server_exceptions=False) as c:
        deadline = time.monotonic() + 120
        while "models are loading" in c.get("/ready").json()["reasons"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert c.get("/ready").status_code == 503  # the refusal is a problem to report
        assert c.post("/translate", json=EN_DE).status_code == 400
        assert c.post("/sentiment", json={"inputs": "a great movie"}).status_code == 200


def test_on_sigterm_ready_turns_503_first_and_in_flight_requests_finish(
    trained_root: Path,
) -> None:
    port = free_port()
    env = dict(
        os.environ,
        ARTIFACTS_DIR=str(trained_root),
        MODEL_POLL_SECONDS="0",
        MAX_BATCH_SIZE="2",
        LOG_LEVEL="WARNING",
    )
    command = [sys.executable, "-m", "app", "--port", str(port), "--drain-seconds", "3"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=180)

        async def scenario() -> tuple[list[int], int, list[str], int]:
            async with httpx.AsyncClient(base_url=url, timeout=60) as http:
                bodies = [{**EN_DE, "q": f"a man {i} sits in the house"} for i in range(12)]
                burst = [asyncio.create_task(http.post("/translate", json=b)) for b in bodies]
                await asyncio.sleep(0.2)  # the burst is inside the server
                process.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.5)
                ready = await http.get("/ready")
                during = await http.post("/translate", json=EN_DE)  # still answered
                statuses = [r.status_code for r in await asyncio.gather(*burst)]
                return statuses, ready.status_code, ready.json()["reasons"], during.status_code

        statuses, ready_status, reasons, during = asyncio.run(scenario())
        assert statuses == [200] * 12
        assert (ready_status, during) == (503, 200)
        assert "shutting down" in reasons
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
        assert b"Traceback" not in process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
