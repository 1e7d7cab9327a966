"""The result cache against a real Redis: hits, misses, Redis going down and coming back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.cache import MemoryBackend, ResultCache, cache_key
from app.main import create_app
from tests.app.conftest import make_settings, wait_until_ready
from tests.servers import RedisServer


def cache_count(result: str) -> float:
    return REGISTRY.get_sample_value("nlp_cache_requests_total", {"result": result}) or 0.0


def test_keys_change_with_version_parameters_and_text() -> None:
    base = cache_key("translation", "en-de", 1, {"beam_size": 4}, "a dog")
    assert base == cache_key("translation", "en-de", 1, {"beam_size": 4}, "a dog")
    assert base != cache_key("translation", "en-de", 2, {"beam_size": 4}, "a dog")
    assert base != cache_key("translation", "en-de", 1, {"beam_size": 1}, "a dog")
    assert base != cache_key("translation", "en-de", 1, {"beam_size": 4}, "a cat")
    assert base != cache_key("sentiment", "en-de", 1, {"beam_size": 4}, "a dog")
    assert "a dog" not in base


async def test_memory_backend_is_a_bounded_lru_with_expiry() -> None:
    cache = ResultCache(MemoryBackend(max_items=2), ttl=60, retry_seconds=0, name="memory")
    await cache.set_many({"a": [1], "b": [2]})
    assert await cache.get_many(["a"]) == [[1]]  # "a" is now the most recent
    await cache.set_many({"c": [3]})
    assert await cache.get_many(["a", "b", "c"]) == [[1], None, [3]]
    expiring = ResultCache(MemoryBackend(max_items=2), ttl=0, retry_seconds=0, name="memory")
    await expiring.set_many({"a": [1]})
    assert await expiring.get_many(["a"]) == [None]


@pytest.fixture
def redis_client(trained_root: Path, tmp_path: Path) -> Iterator[tuple[TestClient, RedisServer]]:
    """An app on its own Redis server, which the test may stop and start."""
    redis = RedisServer(tmp_path)
    redis.start()
    settings = make_settings(
        trained_root, redis_url=redis.url, redis_retry_seconds=0.2, redis_timeout_seconds=0.2
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        wait_until_ready(client)
        yield client, redis
    redis.stop()


def sentiment(client: TestClient, text: str) -> list[dict[str, object]]:
    response = client.post("/sentiment", json={"inputs": [text]})
    assert response.status_code == 200, response.text
    return response.json()[0]  # type: ignore[no-any-return]


def test_redis_hit_is_identical_to_the_computed_answer(
    redis_client: tuple[TestClient, RedisServer],
) -> None:
    client, _ = redis_client
    body = {"q": "A woman sits on the street.", "source": "en", "target": "de"}
    misses, hits = cache_count("miss"), cache_count("hit")
    first = client.post("/translate", json=body).json()
    second = client.post("/translate", json=body).json()
    assert first["cached"] is False and second["cached"] is True
    assert {k: v for k, v in first.items() if k != "cached"} == {
        k: v for k, v in second.items() if k != "cached"
    }
    assert cache_count("miss") == misses + 1
    assert cache_count("hit") == hits + 1


def test_redis_down_means_misses_not_failures_and_hits_resume(
    redis_client: tuple[TestClient, RedisServer],
) -> None:
    client, redis = redis_client
    sentiment(client, "the film is funny .")
    errors = cache_count("error")
    redis.stop()
    for i in range(5):  # every request still succeeds
        sentiment(client, f"the story is dull . {i}")
    assert cache_count("error") >= errors + 5
    redis.start()  # an empty Redis again, on the same port
    time.sleep(0.3)  # past redis_retry_seconds
    sentiment(client, "the cast is moving .")  # fills the cache
    hits = cache_count("hit")
    sentiment(client, "the cast is moving .")
    assert cache_count("hit") == hits + 1
