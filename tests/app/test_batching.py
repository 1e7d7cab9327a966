"""The micro-batcher on its own (a fake model: fast and deterministic), and under real
concurrent HTTP load (the batch-size metric shows that requests share batches)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY

from app.batching import Batcher, BatcherClosed, QueueFull
from app.main import create_app
from tests.app.conftest import make_settings
from tests.servers import LiveServer


class FakeModel:
    """Upper-cases texts; records every batch it was given; can be slowed or blocked."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[str]] = []
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, texts: Sequence[str]) -> list[str]:
        self.gate.wait(timeout=10)
        time.sleep(self.delay)
        self.batches.append(list(texts))
        return [t.upper() for t in texts]


def make_batcher(model: FakeModel, **changes: float) -> Batcher[str, str]:
    options = dict(max_batch_size=4, max_wait_seconds=0.05, max_queue_size=16)
    options.update(changes)
    return Batcher("fake", model, **options)  # type: ignore[arg-type]


async def submit(batcher: Batcher[str, str], text: str, group: str = "g") -> str:
    return (await batcher.submit_many([text], [len(text)], group))[0]


async def test_concurrent_items_share_a_batch_and_keep_their_results() -> None:
    model = FakeModel()
    batcher = make_batcher(model)
    batcher.start()
    results = await asyncio.gather(*(submit(batcher, t) for t in ["a", "bb", "ccc", "dddd"]))
    await batcher.close()
    assert results == ["A", "BB", "CCC", "DDDD"]
    assert len(model.batches) == 1 and sorted(model.batches[0]) == ["a", "bb", "ccc", "dddd"]


async def test_a_batch_never_exceeds_the_maximum_size() -> None:
    model = FakeModel()
    batcher = make_batcher(model, max_batch_size=3)
    batcher.start()
    await asyncio.gather(*(submit(batcher, str(i)) for i in range(10)))
    await batcher.close()
    assert max(len(b) for b in model.batches) == 3
    assert sum(len(b) for b in model.batches) == 10


async def test_groups_with_different_options_never_mix() -> None:
    model = FakeModel()
    batcher = make_batcher(model)
    batcher.start()
    await asyncio.gather(
        submit(batcher, "a", "greedy"), submit(batcher, "b", "beam"), submit(batcher, "c", "greedy")
    )
    await batcher.close()
    assert sorted(sorted(b) for b in model.batches) == [["a", "c"], ["b"]]


async def test_when_more_wait_than_fit_similar_lengths_go_together() -> None:
    model = FakeModel()
    model.gate.clear()  # hold the model so that everything queues up
    batcher = make_batcher(model, max_batch_size=2, max_wait_seconds=0.0)
    batcher.start()
    first = asyncio.create_task(submit(batcher, "x"))
    await asyncio.sleep(0.05)  # "x" runs alone and blocks; the rest queue behind it
    texts = ["aaaaaaaa", "b", "cccccccc", "d"]
    rest = [asyncio.create_task(submit(batcher, t)) for t in texts]
    await asyncio.sleep(0.05)
    model.gate.set()
    await asyncio.gather(first, *rest)
    await batcher.close()
    assert sorted(sorted(b) for b in model.batches[1:]) == [["aaaaaaaa", "cccccccc"], ["b", "d"]]


async def test_a_full_queue_refuses_at_once() -> None:
    model = FakeModel()
    model.gate.clear()
    batcher = make_batcher(model, max_batch_size=1, max_queue_size=3, max_wait_seconds=0.0)
    batcher.start()
    running = asyncio.create_task(submit(batcher, "running"))
    await asyncio.sleep(0.05)
    queued = [asyncio.create_task(submit(batcher, str(i))) for i in range(3)]
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    with pytest.raises(QueueFull):
        await submit(batcher, "one too many")
    assert time.perf_counter() - started < 0.5  # refused, not queued
    with pytest.raises(QueueFull):  # all or nothing for a multi-item request
        await batcher.submit_many(["p", "q"], [1, 1], "g")
    model.gate.set()
    assert await asyncio.gather(running, *queued) == ["RUNNING", "0", "1", "2"]
    await batcher.close()


async def test_items_whose_caller_gave_up_never_reach_the_model() -> None:
    model = FakeModel()
    model.gate.clear()
    batcher = make_batcher(model, max_batch_size=1, max_wait_seconds=0.0)
    batcher.start()
    running = asyncio.create_task(submit(batcher, "running"))
    await asyncio.sleep(0.05)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(submit(batcher, "abandoned"), 0.05)
    model.gate.set()
    await running
    await batcher.close()
    assert ["abandoned"] not in model.batches


async def test_close_finishes_queued_items_then_refuses_new_ones() -> None:
    model = FakeModel(delay=0.01)
    batcher = make_batcher(model, max_batch_size=2)
    batcher.start()
    pending = [asyncio.create_task(submit(batcher, str(i))) for i in range(6)]
    await asyncio.sleep(0)
    await batcher.close()
    assert await asyncio.gather(*pending) == [str(i) for i in range(6)]
    with pytest.raises(BatcherClosed):
        await submit(batcher, "late")


async def test_a_model_error_reaches_every_caller_of_the_batch() -> None:
    def broken(texts: Sequence[str]) -> list[str]:
        raise RuntimeError("model exploded")

    batcher: Batcher[str, str] = Batcher(
        "broken", broken, max_batch_size=4, max_wait_seconds=0.01, max_queue_size=8
    )
    batcher.start()
    results = await asyncio.gather(
        submit(batcher, "a"), submit(batcher, "b"), return_exceptions=True
    )
    await batcher.close()
    assert all(isinstance(r, RuntimeError) for r in results)


def _batch_totals(model: str) -> tuple[float, float]:
    total = REGISTRY.get_sample_value("nlp_batch_size_sum", {"model": model}) or 0.0
    count = REGISTRY.get_sample_value("nlp_batch_size_count", {"model": model}) or 0.0
    return total, count


def test_concurrent_http_requests_share_batches(trained_root: Path) -> None:
    settings = make_settings(
        trained_root, max_batch_size=32, max_batch_wait_ms=50, default_beam_size=1
    )
    server = LiveServer(create_app(settings))
    server.start()
    try:
        before = _batch_totals("translation/en-de")

        async def burst() -> list[int]:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
                responses = await asyncio.gather(
                    *(
                        http.post(
                            "/translate",
                            json={"q": f"A dog runs {i} times.", "source": "en", "target": "de"},
                        )
                        for i in range(24)
                    )
                )
            return [r.status_code for r in responses]

        assert asyncio.run(burst()) == [200] * 24
        total, count = (
            a - b for a, b in zip(_batch_totals("translation/en-de"), before, strict=True)
        )
        assert total == 24
        assert count < 12, f"24 items ran in {count} batches: requests did not share batches"
    finally:
        server.stop()
