"""Deployment fixtures: the repository's deployment files, the app served for real."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.app.conftest import make_settings
from tests.servers import LiveServer

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "nlp.json"

# One request to every endpoint, so that every labelled series exists in /metrics.
REQUESTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/translate", {"q": "a dog runs .", "source": "en", "target": "de"}),
    ("POST", "/sentiment", {"inputs": ["a gorgeous , witty movie .", "a mess ."]}),
    ("POST", "/detect", {"q": "a dog runs ."}),
    ("POST", "/attention-map", {"task": "sentiment", "text": "a witty movie ."}),
    ("GET", "/languages", None),
    ("GET", "/models", None),
    ("GET", "/health", None),
    ("GET", "/ready", None),
    ("GET", "/metrics", None),
]


@pytest.fixture(scope="package")
def live_app(trained_root: Path) -> Iterator[LiveServer]:
    """The app on the tiny artifacts under uvicorn, after one request to each endpoint
    (the second /translate is a cache hit)."""
    server = LiveServer(create_app(make_settings(trained_root)))
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for method, path, body in [*REQUESTS, REQUESTS[0]]:
                response = client.request(method, path, json=body)
                assert response.status_code == 200, (path, response.text)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))
