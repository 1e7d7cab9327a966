"""Process-wide settings of the C allocator, applied before the service starts threads.

glibc gives each thread that contends for the heap an arena of its own, up to 8 per core,
and a freed block goes back to the arena it came from: under load the service's request,
batcher, TensorFlow and CTranslate2 threads spread their allocations over many arenas whose
free space no other thread reuses, and the resident memory climbs for minutes
(docs/performance.md, the soak). Capping the arenas, and handing the free pages inside
them back to the kernel now and then (`malloc_trim`), cut that growth (figures in
docs/performance.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's malloc.h


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError, TypeError):
        return None
    return libc


def limit_malloc_arenas(arenas: int) -> bool:
    """Caps glibc's malloc arenas for threads started from now on; 0 leaves the default.
    Returns whether the cap was set (False on a C library other than glibc)."""
    if arenas <= 0:
        return False
    libc = _glibc()
    if libc is None:
        log.info("no glibc: MALLOC_ARENA_MAX not applied")
        return False
    if libc.mallopt(M_ARENA_MAX, arenas) != 1:
        log.warning("mallopt(M_ARENA_MAX, %d) was refused", arenas)
        return False
    return True


class PeriodicTrim:
    """A daemon thread that calls glibc's `malloc_trim(0)` every `seconds`: free pages in the
    middle of every arena go back to the kernel."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.trims = 0
        self._libc = _glibc() if seconds > 0 else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)

    def start(self) -> PeriodicTrim:
        if self._libc is not None:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        assert self._libc is not None
        while not self._stop.wait(self.seconds):
            self._libc.malloc_trim(0)
            self.trims += 1
