"""Compiling graphs off the request path: shapes are compiled once, in a background thread.

A caller asks `ready(key)` before it uses a compiled graph; when the answer is no, it
serves the request another way (the decoder's shape-agnostic graph) and queues the key,
which a worker thread compiles meanwhile.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)


class CompileQueue:
    """Compiles keys with `compile_key(key)` in a worker thread, each key at most once.

    The worker runs while keys wait and exits when none do. It is not a daemon: a process
    that exits mid-compilation waits for that compilation instead of killing the thread
    inside native code. `close()` drops the waiting keys, so that wait is one key at most.
    """

    def __init__(self, compile_key: Callable[[Hashable], None], name: str = "compile") -> None:
        self._compile_key = compile_key
        self._name = name
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._waiting: deque[Hashable] = deque()
        self._queued: set[Hashable] = set()  # waiting or being compiled
        self._ready: set[Hashable] = set()
        self._failed: set[Hashable] = set()
        self._thread: threading.Thread | None = None
        self._closed = False

    def ready(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._ready

    def mark_ready(self, key: Hashable) -> None:
        """For keys compiled on the request path (the first call compiles them)."""
        with self._lock:
            self._ready.add(key)

    def request(self, key: Hashable) -> None:
        """Queues `key` unless it is compiled, queued, failed before, or the queue is closed."""
        with self._lock:
            if self._closed or key in self._ready or key in self._queued or key in self._failed:
                return
            self._queued.add(key)
            self._waiting.append(key)
            if self._thread is None:
                # Explicitly not a daemon: a thread inherits that from its creator, here
                # often a request-handling worker that is one.
                self._thread = threading.Thread(target=self._work, name=self._name, daemon=False)
                self._thread.start()

    def join(self) -> None:
        """Blocks until no key is waiting or being compiled."""
        with self._idle:
            while self._thread is not None:
                self._idle.wait()

    def close(self) -> None:
        """Drops the waiting keys; a compilation under way finishes."""
        with self._lock:
            self._closed = True

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queued)

    def _work(self) -> None:
        _lower_priority()
        while True:
            with self._lock:
                if self._closed or not self._waiting:
                    self._waiting.clear()
                    self._queued.clear()
                    self._thread = None
                    self._idle.notify_all()
                    return
                key = self._waiting.popleft()
            self._compile(key)

    def _compile(self, key: Hashable) -> None:
        try:
            self._compile_key(key)
        except Exception:  # the caller keeps serving this key its other way
            log.exception("background compilation of %s failed", key)
            outcome = self._failed
        else:
            outcome = self._ready
        with self._lock:
            outcome.add(key)
            self._queued.discard(key)


def _lower_priority(niceness: int = 10) -> None:
    """Lets the requests' threads go first: on Linux a thread has its own nice value."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):  # not Linux, or not permitted: compile at equal priority
        log.debug("could not lower the compiling thread's priority")
