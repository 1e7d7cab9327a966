"""app.memory: the malloc arena cap holds in a process whose threads allocate at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Eight threads allocate while all are alive; glibc's malloc_info then lists its arenas.
PROBE = """
import ctypes, sys, threading
from app.memory import limit_malloc_arenas
print(limit_malloc_arenas(int(sys.argv[1])))
barrier, kept = threading.Barrier(8), []
def work():
    barrier.wait()
    kept.append([bytearray(50_000) for _ in range(20)])
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fclose.argtypes = [ctypes.c_void_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
stream = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, stream)
libc.fclose(stream)
"""


def _arenas(cap: int, tmp_path: Path) -> tuple[str, int]:
    report = tmp_path / f"malloc-{cap}.xml"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(cap), str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip(), report.read_text().count("<heap nr=")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_cap_keeps_threads_in_few_arenas(tmp_path: Path) -> None:
    applied, capped = _arenas(2, tmp_path)
    assert applied == "True"
    assert capped <= 2
    default_applied, uncapped = _arenas(0, tmp_path)
    assert default_applied == "False"  # 0 leaves glibc's default
    assert uncapped > 2  # without the cap the same threads spread over more arenas


def test_periodic_trim_runs_until_stopped() -> None:
    from app.memory import PeriodicTrim

    trim = PeriodicTrim(0.01).start()
    deadline = time.monotonic() + 10
    while trim.trims < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    trim.stop()
    assert trim.trims >= 3
    stopped_at = trim.trims
    time.sleep(0.05)
    assert trim.trims == stopped_at  # the thread is gone
    assert PeriodicTrim(0).start().trims == 0  # 0: never
