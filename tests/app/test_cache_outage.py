"""Redis dies in the middle of a burst of concurrent requests: nobody notices but the cache
error counter. Redis comes back: hits resume, without restarting the service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from tests.app.conftest import make_settings
from tests.servers import LiveServer, RedisServer, metric_value

CLIENTS = 16
REQUESTS_PER_CLIENT = 10
STOP_AFTER = 40  # responses received before Redis is stopped


def cache_count(metrics_text: str, result: str) -> float:
    return metric_value(metrics_text, "nlp_cache_requests_total", result=result)


@pytest.fixture
def service(trained_root: Path, tmp_path: Path) -> Iterator[tuple[LiveServer, RedisServer]]:
    """The app under uvicorn with its own Redis, which the test stops and starts."""
    redis = RedisServer(tmp_path)
    redis.start()
    settings = make_settings(
        trained_root, redis_url=redis.url, redis_retry_seconds=0.2, redis_timeout_seconds=0.2
    )
    try:
        with LiveServer(create_app(settings)) as server:
            yield server, redis
    finally:
        redis.stop()


def request_for(client: int, n: int) -> tuple[str, dict[str, object]]:
    """Distinct texts, so that every item looks Redis up and then writes to it."""
    text = f"the film number {client} {n} is a warm and funny story ."
    if n % 2:
        return "/sentiment", {"inputs": [text]}
    return "/translate", {"q": text, "source": "en", "target": "de", "beam_size": 1}


async def burst_with_outage(
    url: str, redis: RedisServer
) -> tuple[list[tuple[int, float]], float, float]:
    """(status, finished_at) per request, when Redis was stopped, and the cache error
    count just before."""
    done: list[tuple[int, float]] = []
    enough = asyncio.Event()

    async def client(http: httpx.AsyncClient, index: int) -> None:
        for n in range(REQUESTS_PER_CLIENT):
            path, body = request_for(index, n)
            response = await http.post(path, json=body)
            done.append((response.status_code, time.monotonic()))
            if len(done) >= STOP_AFTER:
                enough.set()

    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        burst = asyncio.gather(*(client(http, i) for i in range(CLIENTS)))
        await enough.wait()
        errors_at_stop = cache_count((await http.get("/metrics")).text, "error")
        await asyncio.to_thread(redis.stop)
        stopped_at = time.monotonic()
        await burst
    return done, stopped_at, errors_at_stop


def test_redis_stopped_mid_burst_fails_no_request_and_hits_resume_after_restart(
    service: tuple[LiveServer, RedisServer],
) -> None:
    server, redis = service
    errors_before = cache_count(httpx.get(f"{server.url}/metrics").text, "error")

    done, stopped_at, errors_at_stop = asyncio.run(burst_with_outage(server.url, redis))

    assert len(done) == CLIENTS * REQUESTS_PER_CLIENT
    assert [status for status, _ in done] == [200] * len(done)
    after_stop = [finished for _, finished in done if finished > stopped_at]
    assert len(after_stop) >= CLIENTS  # the outage really was in the middle of the burst
    assert errors_at_stop == errors_before  # Redis answered until it was stopped
    metrics_text = httpx.get(f"{server.url}/metrics").text
    assert cache_count(metrics_text, "error") > errors_at_stop
    assert httpx.get(f"{server.url}/ready").status_code == 200

    redis.start()  # an empty Redis on the same port; the service is not restarted
    body = {"q": "a dog runs after a red ball .", "source": "en", "target": "de"}
    deadline = time.monotonic() + 20
    while True:  # the first write may land while the cache still waits out its pause
        first = httpx.post(f"{server.url}/translate", json=body, timeout=60)
        hits = cache_count(httpx.get(f"{server.url}/metrics").text, "hit")
        second = httpx.post(f"{server.url}/translate", json=body, timeout=60)
        assert first.status_code == second.status_code == 200
        if second.json()["cached"]:
            break
        assert time.monotonic() < deadline, "no cache hit within 20 s of Redis coming back"
        time.sleep(0.1)
    assert cache_count(httpx.get(f"{server.url}/metrics").text, "hit") == hits + 1
    assert second.json()["translatedText"] == first.json()["translatedText"]
