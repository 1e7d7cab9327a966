"""Process-wide settings of the C allocator, applied before the service starts threads.

glibc gives each thread that contends for the heap an arena of its own, up to 8 per core,
and a freed block goes back to the arena it came from: under load the service's request,
batcher, TensorFlow and CTranslate2 threads spread their allocations over many arenas whose
free space no other thread reuses, and the resident memory climbs for minutes
(docs/performance.md, the soak). Capping the arenas keeps it flat.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int) -> bool:
    """Caps glibc's malloc arenas for threads started from now on; 0 leaves the default.
    Returns whether the cap was set (False on a C library other than glibc)."""
    if arenas <= 0:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        log.info("no glibc mallopt: MALLOC_ARENA_MAX not applied")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(M_ARENA_MAX, arenas) != 1:
        log.warning("mallopt(M_ARENA_MAX, %d) was refused", arenas)
        return False
    return True
