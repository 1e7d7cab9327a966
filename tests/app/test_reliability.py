"""Overload and shutdown: excess load is refused fast, admitted work always finishes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from app.main import create_app
from tests.app.conftest import make_settings
from tests.servers import LiveServer, free_port, metric_value, wait_ready

ROOT = Path(__file__).resolve().parents[2]


async def _burst(url: str, count: int, prefix: str) -> list[tuple[int, float, httpx.Headers]]:
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:

        async def one(i: int) -> tuple[int, float, httpx.Headers]:
            started = time.perf_counter()
            body = {
                "q": f"{prefix} {i} a dog runs on the street",
                "source": "en",
                "target": "de",
                "beam_size": 2,
            }
            response = await http.post("/translate", json=body)
            return response.status_code, time.perf_counter() - started, response.headers

        return await asyncio.gather(*(one(i) for i in range(count)))


def test_overload_is_refused_fast_and_admitted_requests_succeed(trained_root: Path) -> None:
    settings = make_settings(
        trained_root,
        max_queue_size=4,
        max_batch_size=2,
        max_batch_wait_ms=20,
        request_timeout_seconds=60,
    )
    with LiveServer(create_app(settings)) as server:
        results = asyncio.run(_burst(server.url, 60, "overload"))
    statuses = [status for status, _, _ in results]
    assert set(statuses) <= {200, 503}
    refused = [(seconds, headers) for status, seconds, headers in results if status == 503]
    assert refused, "a queue of 4 took 60 concurrent requests: nothing was refused"
    assert statuses.count(200) >= 4
    assert all(headers["retry-after"] == "1" for _, headers in refused)
    # Refusals do not wait for the queue: far below the 60 s request deadline.
    assert max(seconds for seconds, _ in refused) < 10


def _metric(url: str, name: str, labels: dict[str, str]) -> float:
    return metric_value(httpx.get(f"{url}/metrics").text, name, **labels)


def test_past_the_deadline_the_client_gets_504_and_the_work_is_dropped(
    trained_root: Path,
) -> None:
    settings = make_settings(
        trained_root,
        request_timeout_seconds=1.0,
        max_batch_size=1,
        max_batch_wait_ms=0,
        default_beam_size=1,
    )
    app = create_app(settings)
    server = LiveServer(app)
    server.start()
    model = {"model": "translation/en-de"}
    abandoned_key = {**model, "reason": "abandoned"}
    held, gate = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        gate.wait(60)

    try:
        batcher = app.state.registry.models["translation/en-de"].batcher
        assert server.loop is not None
        # The model's thread is busy (held here): the next batch waits for it, the rest queue.
        blocker = asyncio.run_coroutine_threadsafe(batcher.run_exclusive(hold), server.loop)
        assert held.wait(10)
        batches = _metric(server.url, "nlp_batch_size_count", model)
        abandoned = _metric(server.url, "nlp_rejected_total", abandoned_key)
        results = asyncio.run(_burst(server.url, 3, "deadline"))
        assert [status for status, _, _ in results] == [504] * 3
        assert max(seconds for _, seconds, _ in results) < 10  # the 1 s deadline, not 60 s
        gate.set()
        blocker.result(timeout=10)
        # Once the held batch is done, the two queued items are dropped, never run.
        deadline = time.monotonic() + 30
        while _metric(server.url, "nlp_rejected_total", abandoned_key) < abandoned + 2:
            assert time.monotonic() < deadline, "the abandoned items were not dropped"
            time.sleep(0.05)
        assert _metric(server.url, "nlp_rejected_total", abandoned_key) == abandoned + 2
        assert _metric(server.url, "nlp_batch_size_count", model) == batches + 1
        assert httpx.get(f"{server.url}/ready").status_code == 200
    finally:
        gate.set()
        server.stop()


def test_sigterm_lets_50_in_flight_requests_finish(trained_root: Path) -> None:
    port = free_port()
    env = dict(
        os.environ,
        ARTIFACTS_DIR=str(trained_root),
        DATA_DIR=str(trained_root.parent / "service-data"),  # not the repository's data/
        MODEL_POLL_SECONDS="0",
        MAX_BATCH_SIZE="4",
        MAX_BATCH_WAIT_MS="5",
        LOG_LEVEL="WARNING",
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--graceful-seconds",
            "60",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=180)

        async def burst_then_terminate() -> list[tuple[int, float, httpx.Headers]]:
            task = asyncio.create_task(_burst(url, 50, "shutdown"))
            deadline = time.monotonic() + 30
            async with httpx.AsyncClient(base_url=url, timeout=10) as http:
                while time.monotonic() < deadline:  # until all 50 are inside the server
                    metrics = (await http.get("/metrics")).text
                    inflight = next(
                        float(line.split()[-1])
                        for line in metrics.splitlines()
                        if line.startswith("nlp_inflight_requests ")
                    )
                    if inflight >= 51:  # the 50 plus this /metrics request
                        break
                    await asyncio.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            return await task

        results = asyncio.run(burst_then_terminate())
        assert [status for status, _, _ in results] == [200] * 50
        # uvicorn re-raises the signal once it has shut down gracefully.
        assert process.wait(timeout=90) in (0, -signal.SIGTERM)
        assert b"Traceback" not in process.stderr.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
