"""App fixtures: the tiny trained artifacts served by a real app, a real Redis."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.servers import POSTGRES_URL, PostgresDatabase, RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throw-away database on the PostgreSQL server of TEST_POSTGRES_URL. Skipped when no
    server answers, except in CI (CI set), where .ci/run starts one and a skip would hide
    a failure."""
    database = PostgresDatabase(os.environ.get("TEST_POSTGRES_URL", POSTGRES_URL))
    if not database.answers():
        if os.environ.get("CI"):
            pytest.fail("no PostgreSQL server answers at TEST_POSTGRES_URL")
        pytest.skip("no PostgreSQL server answers at TEST_POSTGRES_URL")
    database.create()
    yield database.url
    database.drop()


def make_settings(root: Path, **changes: object) -> Settings:
    values: dict[str, object] = dict(
        artifacts_dir=root,
        # The reference decoder, one batch at a time: tests that hold the model thread rely
        # on it. tests/app/test_engine_serving.py serves through the engine, as the default.
        translation_engine="keras",
        model_poll_seconds=0,
        default_beam_size=2,
        max_batch_wait_ms=2,
        max_text_chars=500,
        max_items_per_request=8,
        max_body_bytes=64_000,
        data_dir=root.parent / "service-data",  # the suggestions' SQLite, never the worktree
    )
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def wait_until_ready(client: TestClient, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/ready").status_code == 200:
            return
        time.sleep(0.05)
    raise TimeoutError(client.get("/ready").json())


@pytest.fixture
def artifacts_copy(trained_root: Path, tmp_path: Path) -> Path:
    """A private copy of the trained artifacts that a test may change."""
    return Path(shutil.copytree(trained_root, tmp_path / "artifacts"))


@pytest.fixture(scope="module")
def client(trained_root: Path) -> Iterator[TestClient]:
    """The app on the shared tiny artifacts, in-process cache, ready."""
    app = create_app(make_settings(trained_root))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        wait_until_ready(test_client)
        yield test_client
