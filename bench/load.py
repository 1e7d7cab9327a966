"""`python -m bench.load`: the service under a mix of endpoints, or soaked for minutes.
A benchmark, not a test: it prints a table and JSON.

It starts the service in a subprocess (bench.serve.start_service) on a free local port,
with its default settings except the result cache, which is off unless --cache (so that
every request reaches a model), warms it up, then keeps `--concurrency` clients busy:
each sends one request after another, cycling through a shuffled mix of /translate,
/sentiment, /detect, /attention-map, /languages, /health and /ready. It reports
throughput, p50/p95/p99 latency per endpoint and overall, and every non-200 answer or
transport failure as an error. The resident memory (RSS) of the service process is
sampled after warm-up and at the end; `--soak` runs for `--soak-seconds` instead of
`--seconds` and also samples it every `--sample-every` seconds in between.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from bench.serve import ROOT, latency_ms, start_service
from model.data import read_lines

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "multi30k"
FALLBACK = [
    "A little girl climbs into a wooden playhouse.",
    "Two dogs play in the snow.",
    "A man in a blue shirt is standing on a ladder.",
    "Ein Hund läuft am Strand.",
    "Un homme lit un journal dans un parc.",
]
# Relative weights of the mix: mostly inference, some cheap system endpoints.
MIX = {
    "/translate": 6,
    "/sentiment": 5,
    "/detect": 4,
    "/attention-map": 2,
    "/languages": 1,
    "/health": 1,
    "/ready": 1,
}
PERCENTS = (50, 95, 99)

Request = tuple[str, str, dict[str, Any] | None]  # method, path, JSON body


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, 200 answers only
    errors: Counter[str] = field(default_factory=Counter)  # status code or exception name


def rss_bytes(pid: int) -> int:
    """Resident memory of a process: psutil when installed, /proc otherwise."""
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for process {pid}") from None
    return int(psutil.Process(pid).memory_info().rss)


def load_texts(data_dir: Path) -> dict[str, list[str]]:
    """English sentences (translate, sentiment, attention) and four languages (detect)."""
    by_language = {}
    for code in ("en", "de", "fr", "cs"):
        path = data_dir / f"test_2016_flickr.{code}.gz"
        if path.exists():
            by_language[code] = [line for line in read_lines(path) if line.strip()][:500]
    english = by_language.get("en") or FALLBACK
    mixed = [line for lines in by_language.values() for line in lines] or FALLBACK
    return {"en": english, "any": mixed}


def make_request(path: str, n: int, texts: dict[str, list[str]], pair: tuple[str, str]) -> Request:
    english = texts["en"][n % len(texts["en"])]
    if path == "/translate":
        return "POST", path, {"q": english, "source": pair[0], "target": pair[1]}
    if path == "/sentiment":
        return "POST", path, {"inputs": english}
    if path == "/detect":
        return "POST", path, {"q": texts["any"][n % len(texts["any"])]}
    if path == "/attention-map":
        if n % 2:
            return "POST", path, {"task": "sentiment", "text": english}
        body = {"task": "translation", "text": english, "source": pair[0], "target": pair[1]}
        return "POST", path, body
    return "GET", path, None


async def run_load(
    url: str,
    texts: dict[str, list[str]],
    pair: tuple[str, str],
    concurrency: int,
    seconds: float,
    on_tick: Callable[[], None] | None = None,
    tick_seconds: float = 30.0,
) -> tuple[dict[str, Tally], float]:
    """`concurrency` closed-loop clients for `seconds`; per-endpoint tallies and the time
    taken. `on_tick()` is called every `tick_seconds` while the load runs."""
    schedule = [path for path, weight in MIX.items() for _ in range(weight)]
    random.Random(0).shuffle(schedule)
    tallies = {path: Tally() for path in MIX}
    counter = iter(range(10**9))
    stop_at = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient, index: int) -> None:
        step = index
        while time.perf_counter() < stop_at:
            path = schedule[step % len(schedule)]
            step += 1
            method, _, body = make_request(path, next(counter), texts, pair)
            started = time.perf_counter()
            try:
                response = await http.request(method, path, json=body)
            except httpx.HTTPError as error:
                tallies[path].errors[type(error).__name__] += 1
                continue
            if response.status_code == 200:
                tallies[path].latencies.append(time.perf_counter() - started)
            else:
                tallies[path].errors[str(response.status_code)] += 1

    async def ticker() -> None:
        while on_tick is not None and time.perf_counter() + tick_seconds < stop_at:
            await asyncio.sleep(tick_seconds)
            on_tick()

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        begun = time.perf_counter()
        await asyncio.gather(ticker(), *(client(http, i) for i in range(concurrency)))
        elapsed = time.perf_counter() - begun
    return tallies, elapsed


def figures(tally: Tally, elapsed: float) -> dict[str, Any]:
    return {
        "requests": len(tally.latencies),
        "errors": sum(tally.errors.values()),
        "error_kinds": dict(tally.errors),
        "requests_per_second": round(len(tally.latencies) / elapsed, 2),
        **latency_ms(tally.latencies, PERCENTS),
    }


def summarize(tallies: dict[str, Tally], elapsed: float) -> dict[str, Any]:
    overall = Tally()
    for tally in tallies.values():
        overall.latencies.extend(tally.latencies)
        overall.errors.update(tally.errors)
    return {
        "seconds": round(elapsed, 1),
        "endpoints": {path: figures(tally, elapsed) for path, tally in tallies.items()},
        "overall": figures(overall, elapsed),
    }


def print_table(summary: dict[str, Any]) -> None:
    columns = ("endpoint", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors")
    print(f"{columns[0]:<16}" + "".join(f"{c:>10}" for c in columns[1:]))
    rows = [*summary["endpoints"].items(), ("overall", summary["overall"])]
    for name, row in rows:
        values = [row[k] for k in ("requests", "requests_per_second", "p50_ms", "p95_ms")]
        values += [row["p99_ms"], row["errors"]]
        print(f"{name:<16}" + "".join(f"{v:>10}" for v in values))


def main(
    artifacts: Annotated[Path, typer.Option(help="ARTIFACTS_DIR to serve")] = ROOT / "artifacts",
    data_dir: Annotated[Path, typer.Option(help="Multi30k test files to send")] = DEFAULT_DATA,
    pair: Annotated[str, typer.Option(help="source-target of /translate")] = "en-de",
    concurrency: Annotated[int, typer.Option(help="concurrent clients")] = 64,
    seconds: Annotated[float, typer.Option(help="load duration")] = 60.0,
    soak: Annotated[bool, typer.Option(help="run for --soak-seconds, sampling RSS")] = False,
    soak_seconds: Annotated[float, typer.Option(help="soak duration")] = 600.0,
    sample_every: Annotated[float, typer.Option(help="soak: seconds between RSS samples")] = 60.0,
    warmup_seconds: Annotated[float, typer.Option(help="load before measuring")] = 10.0,
    cache: Annotated[bool, typer.Option(help="keep the in-process result cache on")] = False,
    json_out: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Throughput, p50/p95/p99 per endpoint and errors under a mixed load; memory growth."""
    texts = load_texts(data_dir)
    source, target = pair.split("-")
    settings = {} if cache else {"cache_max_items": "0"}
    process, url = start_service(artifacts, **settings)
    duration = soak_seconds if soak else seconds
    try:
        rss_started = rss_bytes(process.pid)
        asyncio.run(run_load(url, texts, (source, target), concurrency, warmup_seconds))
        began = time.monotonic()
        samples = [(0.0, rss_bytes(process.pid))]

        def sample() -> None:
            samples.append((round(time.monotonic() - began, 1), rss_bytes(process.pid)))

        tallies, elapsed = asyncio.run(
            run_load(
                url,
                texts,
                (source, target),
                concurrency,
                duration,
                on_tick=sample if soak else None,
                tick_seconds=sample_every,
            )
        )
        sample()
        alive = process.poll() is None and httpx.get(f"{url}/health").status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=120)
    summary = summarize(tallies, elapsed)
    first, last = samples[0][1], samples[-1][1]
    summary.update(
        mode="soak" if soak else "load",
        concurrency=concurrency,
        pair=pair,
        cache=cache,
        artifacts=str(artifacts),
        cpu_count=os.cpu_count(),
        service_alive_at_end=alive,
        memory={
            "rss_after_startup_mb": round(rss_started / 2**20, 1),
            "rss_start_mb": round(first / 2**20, 1),
            "rss_end_mb": round(last / 2**20, 1),
            "rss_peak_mb": round(max(rss for _, rss in samples) / 2**20, 1),
            "growth_percent": round(100 * (last - first) / first, 2),
            "samples_mb": [(t, round(rss / 2**20, 1)) for t, rss in samples],
        },
    )
    print_table(summary)
    memory = summary["memory"]
    print(
        f"RSS {memory['rss_start_mb']} MB after warm-up -> {memory['rss_end_mb']} MB at the end "
        f"({memory['growth_percent']:+.2f}%), peak {memory['rss_peak_mb']} MB"
    )
    print(json.dumps(summary, indent=2))
    if json_out:
        json_out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
