"""Versions: latest or pinned, swapped without a restart, tampered ones refused."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from model.artifacts import MANIFEST, WEIGHTS
from tests.app.conftest import make_settings, wait_until_ready
from tests.servers import LiveServer

MODEL = Path("translation") / "en-de"


def add_version(root: Path, version: int, tamper: bool = False) -> Path:
    """Copies version 1 as `version` (what the training job would publish)."""
    target = root / MODEL / str(version)
    shutil.copytree(root / MODEL / "1", root / MODEL / f".staging-{version}")
    staging = root / MODEL / f".staging-{version}"
    manifest = json.loads((staging / MANIFEST).read_text())
    manifest["version"] = version
    (staging / MANIFEST).write_text(json.dumps(manifest))
    if tamper:
        weights = bytearray((staging / WEIGHTS).read_bytes())
        weights[len(weights) // 2] ^= 0xFF
        (staging / WEIGHTS).write_bytes(bytes(weights))
    staging.rename(target)
    return target


def served_version(client: TestClient) -> int:
    models = {m["task"]: m for m in client.get("/models").json()}
    return int(models["translation"]["version"])


def refresh(client: TestClient) -> None:
    registry = client.app.state.registry  # type: ignore[attr-defined]
    client.portal.call(registry.refresh)  # type: ignore[union-attr]


def test_the_latest_version_is_served_and_a_new_one_is_swapped_in(artifacts_copy: Path) -> None:
    with TestClient(create_app(make_settings(artifacts_copy))) as client:
        wait_until_ready(client)
        assert served_version(client) == 1
        add_version(artifacts_copy, 2)
        refresh(client)
        assert served_version(client) == 2
        response = client.post("/translate", json={"q": "A dog.", "source": "en", "target": "de"})
        assert response.json()["version"] == 2


def test_a_tampered_version_is_refused_and_the_previous_keeps_serving(
    artifacts_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(create_app(make_settings(artifacts_copy))) as client:
        wait_until_ready(client)
        add_version(artifacts_copy, 2, tamper=True)
        refresh(client)
        assert served_version(client) == 1
        assert client.get("/ready").status_code == 200
        metrics = client.get("/metrics").text
        assert 'nlp_model_load_failures_total{model="translation/en-de"}' in metrics
        assert "model.weights.h5: sha256 does not match" in caplog.text


def test_a_tampered_latest_version_falls_back_at_startup(artifacts_copy: Path) -> None:
    add_version(artifacts_copy, 2, tamper=True)
    with TestClient(create_app(make_settings(artifacts_copy))) as client:
        wait_until_ready(client)
        assert served_version(client) == 1


def test_a_pinned_version_is_served_even_when_newer_exist(artifacts_copy: Path) -> None:
    add_version(artifacts_copy, 2)
    settings = make_settings(artifacts_copy, model_versions="translation/en-de=1")
    with TestClient(create_app(settings)) as client:
        wait_until_ready(client)
        assert served_version(client) == 1


def test_a_swap_under_load_drops_no_request(artifacts_copy: Path) -> None:
    server = LiveServer(create_app(make_settings(artifacts_copy, default_beam_size=1)))
    server.start()
    registry = server.server.config.app.state.registry
    try:

        async def load_and_swap() -> tuple[list[int], set[int]]:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:

                async def one(i: int) -> httpx.Response:
                    body = {"q": f"The cat sits {i}.", "source": "en", "target": "de"}
                    return await http.post("/translate", json=body)

                first = [asyncio.create_task(one(i)) for i in range(20)]
                await asyncio.sleep(0.05)
                add_version(artifacts_copy, 2)
                swap = asyncio.to_thread(server.call, registry.refresh())
                second = [asyncio.create_task(one(i)) for i in range(20, 40)]
                await swap
                third = [asyncio.create_task(one(i)) for i in range(40, 45)]
                responses = await asyncio.gather(*first, *second, *third)
            return [r.status_code for r in responses], {r.json()["version"] for r in responses}

        statuses, versions = asyncio.run(load_and_swap())
        assert statuses == [200] * 45
        assert versions == {1, 2}
    finally:
        server.stop()
