"""`python -m bench.serve`: /translate throughput and latency under concurrent clients,
with dynamic batching on and off. A benchmark, not a test: it prints figures.

For each MAX_BATCH_SIZE given, it starts the service in a subprocess on a free local
port (cache disabled, so every request reaches the model), warms it up, then keeps
`--concurrency` clients busy for `--seconds`, each sending one sentence per request.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from model.data import read_lines

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCES = ROOT.parent / "shared" / "data" / "multi30k" / "test_2016_flickr.en.gz"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(artifacts: Path, **settings: str) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m app` on a free local port with these settings (env names in lower case),
    no Redis, no polling; returns once /ready answers 200."""
    port = _free_port()
    env = dict(
        os.environ,
        ARTIFACTS_DIR=str(artifacts),
        REDIS_URL="",
        MODEL_POLL_SECONDS="0",
        LOG_LEVEL="WARNING",
        **{name.upper(): value for name, value in settings.items()},
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError("the service exited during start-up")
        time.sleep(0.5)
    process.kill()
    raise RuntimeError("the service was not ready within 300 s")


def _start_service(artifacts: Path, batch_size: int, beam: int, wait_ms: float) -> tuple[Any, str]:
    return start_service(
        artifacts,
        max_batch_size=str(batch_size),
        max_batch_wait_ms=str(wait_ms),
        default_beam_size=str(beam),
        cache_max_items="0",
        max_queue_size="100000",
    )


def latency_ms(latencies: list[float], percents: tuple[int, ...] = (50, 99)) -> dict[str, float]:
    """{"p50_ms": ..., "p99_ms": ...} of latencies in seconds."""
    if len(latencies) > 1:
        cuts = statistics.quantiles(latencies, n=100)
    else:  # one latency (or none) is every percentile
        cuts = (latencies or [0.0]) * 99
    return {f"p{p}_ms": round(cuts[p - 1] * 1000, 1) for p in percents}


async def _load(
    url: str, sentences: list[str], pair: tuple[str, str], concurrency: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(10**9))
    stop_at = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            text = sentences[next(counter) % len(sentences)]
            started = time.perf_counter()
            response = await http.post(
                "/translate", json={"q": text, "source": pair[0], "target": pair[1]}
            )
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
        begun = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - begun
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(latencies) / elapsed, 2),
        **latency_ms(latencies),
    }


def _batch_sizes(metrics_text: str, model: str) -> float:
    total = count = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(f'nlp_batch_size_sum{{model="{model}"}}'):
            total = float(line.split()[-1])
        if line.startswith(f'nlp_batch_size_count{{model="{model}"}}'):
            count = float(line.split()[-1])
    return round(total / count, 2) if count else 0.0


def main(
    artifacts: Annotated[Path, typer.Option(help="ARTIFACTS_DIR to serve")] = ROOT / "artifacts",
    source_file: Annotated[Path, typer.Option(help="sentences to send")] = DEFAULT_SOURCES,
    pair: Annotated[str, typer.Option(help="source-target")] = "en-de",
    concurrency: Annotated[int, typer.Option()] = 32,
    seconds: Annotated[float, typer.Option(help="load duration per setting")] = 30.0,
    batch_sizes: Annotated[str, typer.Option(help="MAX_BATCH_SIZE values")] = "32,1",
    beam: Annotated[int, typer.Option(help="DEFAULT_BEAM_SIZE of the service")] = 1,
    wait_ms: Annotated[float, typer.Option(help="MAX_BATCH_WAIT_MS")] = 5.0,
    warm_seconds: Annotated[float, typer.Option(help="untimed load first")] = 3.0,
    json_out: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Requests per second and p50/p99 latency of /translate, batching on and off."""
    sentences = [line for line in read_lines(source_file) if line.strip()][:1000]
    source, target = pair.split("-")
    results = []
    for size in [int(s) for s in batch_sizes.split(",")]:
        process, url = _start_service(artifacts, size, beam, wait_ms)
        try:
            asyncio.run(_load(url, sentences, (source, target), concurrency, warm_seconds))
            figures = asyncio.run(_load(url, sentences, (source, target), concurrency, seconds))
            metrics_text = httpx.get(f"{url}/metrics").text
            figures.update(
                max_batch_size=size,
                concurrency=concurrency,
                beam_size=beam,
                mean_batch=_batch_sizes(metrics_text, f"translation/{pair}"),
            )
            results.append(figures)
        finally:
            process.terminate()
            process.wait(timeout=60)
    columns = ("MAX_BATCH_SIZE", "req/s", "p50 ms", "p99 ms", "mean batch", "errors")
    print(" ".join(f"{c:>14}" for c in columns))
    for r in results:
        print(
            f"{r['max_batch_size']:>14} {r['requests_per_second']:>8} {r['p50_ms']:>8} "
            f"{r['p99_ms']:>8} {r['mean_batch']:>10} {r['errors']:>6}"
        )
    summary = {"results": results, "cpu_count": os.cpu_count()}
    if len(results) >= 2 and results[-1]["requests_per_second"]:
        summary["throughput_ratio"] = round(
            results[0]["requests_per_second"] / results[-1]["requests_per_second"], 2
        )
    print(json.dumps(summary, indent=2))
    if json_out:
        json_out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
