"""model.compilation: the background queue that compiles each decoder shape once."""

from __future__ import annotations

import threading
from collections.abc import Hashable

from model.compilation import CompileQueue


def test_each_key_is_compiled_once_and_then_ready() -> None:
    compiled: list[Hashable] = []
    queue = CompileQueue(compiled.append)
    assert not queue.ready("a")
    for key in ("a", "b", "a", "a", "b"):
        queue.request(key)
    queue.join()
    assert sorted(compiled) == ["a", "b"]
    assert queue.ready("a") and queue.ready("b") and queue.pending == 0
    queue.request("a")
    queue.join()
    assert len(compiled) == 2


def test_a_failed_key_is_not_ready_and_not_retried() -> None:
    calls: list[Hashable] = []

    def compile_key(key: Hashable) -> None:
        calls.append(key)
        raise RuntimeError("no kernel")

    queue = CompileQueue(compile_key)
    queue.request("bad")
    queue.join()
    queue.request("bad")
    queue.join()
    assert calls == ["bad"] and not queue.ready("bad") and queue.pending == 0


def test_keys_compiled_by_their_first_run_are_marked_ready_without_the_worker() -> None:
    queue = CompileQueue(lambda key: None)
    queue.mark_ready("shape")
    assert queue.ready("shape")


def test_close_drops_the_queued_keys_and_ignores_new_ones() -> None:
    started, release = threading.Event(), threading.Event()
    compiled: list[Hashable] = []

    def compile_key(key: Hashable) -> None:
        started.set()
        assert release.wait(10)
        compiled.append(key)

    queue = CompileQueue(compile_key)
    queue.request("running")
    assert started.wait(10)
    queue.request("queued")
    queue.close()
    queue.request("after close")
    release.set()
    queue.join()
    assert compiled == ["running"] and queue.pending == 0
    assert not queue.ready("queued") and not queue.ready("after close")


def test_the_worker_is_no_daemon_even_when_a_daemon_thread_starts_it() -> None:
    """A daemon thread killed at exit inside native compilation aborts the process."""
    daemon_flags: list[bool] = []
    queue = CompileQueue(lambda key: daemon_flags.append(threading.current_thread().daemon))
    starter = threading.Thread(target=queue.request, args=("shape",), daemon=True)
    starter.start()
    starter.join()
    queue.join()
    assert daemon_flags == [False]
