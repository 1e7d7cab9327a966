"""Dynamic server-side batching: one asyncio micro-batcher per model.

Items from concurrent requests (each item of a list counts) wait at most `max_wait`
after the oldest of them arrived, or until `max_batch_size` compatible items are there.
A batch holds only items of one `group` (same decoding options), and when more are
waiting than fit, the ones closest in length to the oldest are taken, so that padding
stays small while the oldest item is always served first. The model runs in a
dedicated thread, never on the event loop. The queue is bounded: a request that does
not fit is refused at once (QueueFull), never left waiting without end. Items whose
caller gave up (deadline, disconnect) are dropped before they reach the model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from app import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class QueueFull(Exception):
    """The batcher's queue cannot take the request's items now."""


class BatcherClosed(Exception):
    """The batcher is shutting down (its model is being replaced or the service stops)."""


@dataclass
class _Item(Generic[T, R]):
    payload: T
    length: int
    group: Hashable
    future: asyncio.Future[R]
    enqueued: float = field(default_factory=time.perf_counter)


class Batcher(Generic[T, R]):
    def __init__(
        self,
        name: str,
        run: Callable[[list[T]], Sequence[R]],
        *,
        max_batch_size: int,
        max_wait_seconds: float,
        max_queue_size: int,
        concurrency: int = 1,
    ) -> None:
        self.name = name
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_seconds
        self.max_queue_size = max_queue_size
        self._pending: list[_Item[T, R]] = []
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        # Batches run off the event loop, `concurrency` at a time (an engine with several
        # inter-op threads decodes that many batches at once; one for the Keras models).
        self._executor = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix=f"model-{name}"
        )
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task[None]] = set()

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"batcher-{self.name}")

    async def submit_many(
        self, payloads: Sequence[T], lengths: Sequence[int], group: Hashable
    ) -> list[R]:
        """Queues all items or none; returns their results in order."""
        if self._closing:
            raise BatcherClosed(self.name)
        if len(self._pending) + len(payloads) > self.max_queue_size:
            metrics.REJECTED.labels(self.name, "queue_full").inc(len(payloads))
            raise QueueFull(self.name)
        loop = asyncio.get_running_loop()
        items = [
            _Item(payload, length, group, loop.create_future())
            for payload, length in zip(payloads, lengths, strict=True)
        ]
        self._pending.extend(items)
        metrics.QUEUE_DEPTH.labels(self.name).set(len(self._pending))
        self._wakeup.set()
        try:
            return list(await asyncio.gather(*(item.future for item in items)))
        except BaseException:
            for item in items:  # the caller gave up: drop what has not run yet
                if not item.future.done():
                    item.future.cancel()
            raise

    async def run_exclusive(self, func: Callable[[], R]) -> R:
        """Runs a one-off model call (e.g. an attention map) on the model's thread."""
        if self._closing:
            raise BatcherClosed(self.name)
        return await asyncio.get_running_loop().run_in_executor(self._executor, func)

    async def close(self) -> None:
        """Stops taking items, finishes every queued one, then stops."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._running:
            await asyncio.gather(*self._running)
        self._executor.shutdown(wait=True)

    async def _loop(self) -> None:
        while True:
            try:
                if await self._step():
                    return
            except Exception as error:  # never leave callers waiting on a dead loop
                log.exception("batcher %s failed; failing its queued items", self.name)
                for item in self._pending:
                    if not item.future.done():
                        item.future.set_exception(error)
                self._pending = []

    async def _step(self) -> bool:
        """Forms and runs one batch; True when the batcher is closed and empty."""
        while True:
            self._drop_abandoned()
            if self._pending:
                break
            if self._closing:
                return True
            self._wakeup.clear()
            await self._wakeup.wait()
        await self._gather_more()
        await self._slots.acquire()  # a free model thread, else wait (items keep queueing)
        batch = self._take_batch()
        if not batch:
            self._slots.release()
            return False
        task = asyncio.create_task(self._execute(batch))
        self._running.add(task)
        task.add_done_callback(self._finished)
        return False

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slots.release()

    async def _gather_more(self) -> None:
        """Waits until the oldest item has waited max_wait, or a batch is full."""
        oldest = self._pending[0]
        deadline = oldest.enqueued + self.max_wait
        while not self._closing:
            ready = sum(1 for item in self._pending if item.group == oldest.group)
            remaining = deadline - time.perf_counter()
            if ready >= self.max_batch_size or remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    def _drop_abandoned(self) -> None:
        """Forgets (and counts) the items whose caller gave up while they waited."""
        live = [item for item in self._pending if not item.future.done()]
        dropped = len(self._pending) - len(live)
        if dropped:
            metrics.REJECTED.labels(self.name, "abandoned").inc(dropped)
            self._pending = live
            metrics.QUEUE_DEPTH.labels(self.name).set(len(live))

    def _take_batch(self) -> list[_Item[T, R]]:
        self._drop_abandoned()
        live = self._pending
        if not live:
            return []
        oldest = live[0]
        same = [item for item in live if item.group == oldest.group]
        if len(same) > self.max_batch_size:
            same.sort(key=lambda item: (abs(item.length - oldest.length), item.enqueued))
            same = same[: self.max_batch_size]
        chosen = {id(item) for item in same}
        self._pending = [item for item in live if id(item) not in chosen]
        metrics.QUEUE_DEPTH.labels(self.name).set(len(self._pending))
        return sorted(same, key=lambda item: item.length)

    async def _execute(self, batch: list[_Item[T, R]]) -> None:
        started = time.perf_counter()
        for item in batch:
            metrics.QUEUE_WAIT.labels(self.name).observe(started - item.enqueued)
        metrics.BATCH_SIZE.labels(self.name).observe(len(batch))
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(
                self._executor, self._run, [item.payload for item in batch]
            )
        except Exception as error:  # reported to every waiting caller, not swallowed
            log.exception("batch of %d failed on %s", len(batch), self.name)
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        finally:
            metrics.INFERENCE_DURATION.labels(self.name).observe(time.perf_counter() - started)
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)
