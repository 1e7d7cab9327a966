"""`python -m bench.chaos`: what clients see when replicas die, drain, roll out a new model
version, or lose the shared Redis, under load. A benchmark, not a test (tests/bench runs
the kill scenario on tiny models).

A local cluster (bench.cluster: N replicas, Redis, nginx with the failover policy) on a
private copy of the artifacts, and `--concurrency` closed-loop clients (httpx, loopback
only) sending /translate, /sentiment and /detect through nginx for `--seconds`, while one
scenario's events happen at fixed fractions of the run (at 20, 30 and 40 s of 60):

- `kill`: SIGKILL a replica at 1/3 and start it again at 2/3 (its models load again);
- `redis`: restart the shared Redis at 1/2;
- `rollout`: publish version N+1 of the translation model (a copy of version N, renamed
  into place) at 1/6 and a corrupt version N+2 at 1/2; every answer names its version, and
  no replica may serve N+2;
- `sigterm`: SIGTERM a replica at 1/3 (it drains and exits), start it again at 2/3;
- `steady`: nothing happens (the baseline).

Every answer other than 200, and every transport error, counts as a failure. It reports
failures, throughput, and p50/p99 latency per phase (between events) and per
`--bucket-seconds`; `--single` adds a one-replica steady run for the throughput ratio.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from bench.cluster import ROOT, Cluster, prefer_oom_victim
from bench.load import DEFAULT_DATA, load_texts
from bench.serve import latency_ms

log = logging.getLogger(__name__)

MIX = ("/translate", "/translate", "/translate", "/sentiment", "/sentiment", "/detect")
SCENARIOS = ("steady", "kill", "redis", "rollout", "sigterm")
WIDTHS = (6, 6, 9, 5, 7, 7, 7)  # columns of the per-bucket table


@dataclass(frozen=True)
class Answer:
    started: float  # seconds since the load began
    seconds: float
    path: str
    status: str  # "200", "503", or the exception's name
    version: int | None = None  # /translate: the version that produced the answer
    cached: bool | None = None


@dataclass
class Events:
    """What the scenario did and when (seconds since the load began)."""

    done: list[tuple[float, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def body_for(path: str, n: int, texts: dict[str, list[str]], pair: tuple[str, str]) -> Any:
    english = texts["en"][n % len(texts["en"])]
    if path == "/translate":
        return {"q": english, "source": pair[0], "target": pair[1]}
    if path == "/sentiment":
        return {"inputs": english}
    return {"q": texts["any"][n % len(texts["any"])]}


async def closed_loop(
    url: str,
    texts: dict[str, list[str]],
    pair: tuple[str, str],
    concurrency: int,
    seconds: float,
    max_requests: int = 1_000_000,
    timeout: float = 60.0,
    stop: threading.Event | None = None,
) -> list[Answer]:
    """`concurrency` clients, each sending one request after the other, for `seconds` (and
    at most `max_requests` in all, and until `stop` is set)."""
    answers: list[Answer] = []
    counter = iter(range(max_requests))
    began = time.perf_counter()

    async def client(http: httpx.AsyncClient, index: int) -> None:
        for n in counter:
            if time.perf_counter() - began >= seconds or (stop is not None and stop.is_set()):
                return
            path = MIX[(n + index) % len(MIX)]
            started = time.perf_counter()
            version = cached = None
            try:
                response = await http.post(path, json=body_for(path, n, texts, pair))
                status = str(response.status_code)
                if path == "/translate" and response.status_code == 200:
                    payload = response.json()
                    version, cached = payload["version"], payload["cached"]
            except httpx.HTTPError as error:
                status = type(error).__name__
            now = time.perf_counter()
            answers.append(Answer(started - began, now - started, path, status, version, cached))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as http:
        await asyncio.gather(*(client(http, i) for i in range(concurrency)))
    return answers


def publish_copy(artifacts: Path, task: str, name: str, corrupt: bool = False) -> int:
    """Copies the newest version of a model to the next number, written aside and renamed
    into place (what model.artifacts does); `corrupt` alters its weights first."""
    folder = artifacts / task / name
    newest = max(int(p.name) for p in folder.iterdir() if p.name.isdigit())
    staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=folder))
    shutil.copytree(folder / str(newest), staging, dirs_exist_ok=True)
    if corrupt:
        weights = staging / "model.weights.h5"
        weights.write_bytes(weights.read_bytes() + b"corrupt")  # its sha256 no longer matches
    staging.chmod(0o755)
    os.rename(staging, folder / str(newest + 1))
    return newest + 1


def scenario_events(
    name: str, cluster: Cluster, artifacts: Path, seconds: float
) -> list[tuple[float, str, Callable[[], None]]]:
    """(when, what, action) of a scenario; the victim is replica 0 (kill) or 1 (sigterm)."""
    if name == "kill":
        return [
            (seconds / 3, "SIGKILL replica 0", lambda: cluster.kill(0)),
            (seconds * 2 / 3, "start replica 0", lambda: cluster.start_replica(0, wait=False)),
        ]
    if name == "redis":
        return [(seconds / 2, "restart Redis", cluster.restart_redis)]
    if name == "rollout":
        return [
            (seconds / 6, "publish a copy as the next version", lambda: _publish(artifacts)),
            (
                seconds / 2,
                "publish a corrupt next version",
                lambda: _publish(artifacts, corrupt=True),
            ),
        ]
    if name == "sigterm":
        victim = 1 if len(cluster.replicas) > 1 else 0
        return [
            (seconds / 3, f"SIGTERM replica {victim}", lambda: _terminate(cluster, victim)),
            (
                seconds * 2 / 3,
                f"start replica {victim}",
                lambda: cluster.start_replica(victim, wait=False),
            ),
        ]
    if name == "steady":
        return []
    raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")


def _publish(artifacts: Path, corrupt: bool = False) -> None:
    version = publish_copy(artifacts, "translation", "en-de", corrupt=corrupt)
    log.info("published translation/en-de version %d%s", version, " (corrupt)" * corrupt)


def _terminate(cluster: Cluster, index: int) -> None:
    process = cluster.terminate(index)
    if process is not None:
        process.wait(cluster.graceful_seconds + 10)  # drained and gone before it restarts


def run_events(
    events: list[tuple[float, str, Callable[[], None]]], began: float, record: Events
) -> None:
    for when, what, action in events:
        time.sleep(max(0.0, began + when - time.perf_counter()))
        try:
            action()
            record.done.append((round(time.perf_counter() - began, 2), what))
            log.info("%.1f s: %s", record.done[-1][0], what)
        except Exception as error:  # reported with the figures, never silently
            log.exception("%s failed", what)
            record.errors.append(f"{what}: {error}")


def run_scenario(
    name: str,
    cluster: Cluster,
    artifacts: Path,
    texts: dict[str, list[str]],
    *,
    concurrency: int,
    seconds: float,
    pair: tuple[str, str] = ("en", "de"),
    events: list[tuple[float, str, Callable[[], None]]] | None = None,
    stop: threading.Event | None = None,
) -> tuple[list[Answer], Events]:
    """The load for `seconds` (or until `stop` is set) while the scenario's events (or
    `events`) happen in a thread."""
    record = Events()
    if events is None:
        events = scenario_events(name, cluster, artifacts, seconds)
    began = time.perf_counter()
    worker = threading.Thread(target=run_events, args=(events, began, record), daemon=True)
    worker.start()
    load = closed_loop(cluster.url, texts, pair, concurrency, seconds, stop=stop)
    answers = asyncio.run(load)
    worker.join(timeout=cluster.graceful_seconds + 30)
    return answers, record


def failures(answers: list[Answer]) -> Counter[str]:
    return Counter(f"{a.path} {a.status}" for a in answers if a.status != "200")


def window(answers: list[Answer], start: float, end: float) -> dict[str, Any]:
    inside = [a for a in answers if start <= a.started < end]
    ok = [a.seconds for a in inside if a.status == "200"]
    span = max(end - start, 1e-9)
    figures = latency_ms(ok, (50, 99)) if ok else {"p50_ms": None, "p99_ms": None}
    return {
        "from_s": round(start, 1),
        "to_s": round(end, 1),
        "requests": len(inside),
        "failures": len(inside) - len(ok),
        "requests_per_second": round(len(ok) / span, 2),
        **figures,
    }


def summarize(
    name: str, answers: list[Answer], record: Events, seconds: float, bucket: float
) -> dict[str, Any]:
    cuts = [0.0, *(when for when, _ in record.done), seconds]
    phases = [window(answers, a, b) for a, b in itertools.pairwise(cuts) if b > a]
    edges = [i * bucket for i in range(int(seconds / bucket) + 1)]
    buckets = [window(answers, a, a + bucket) for a in edges if a < seconds]
    translations = [a for a in answers if a.version is not None]
    versions: dict[str, Counter[int]] = {}
    for answer in translations:
        second = str(int(answer.started // bucket * bucket))
        versions.setdefault(second, Counter())[answer.version] += 1  # type: ignore[index]
    return {
        "scenario": name,
        "events": record.done,
        "event_errors": record.errors,
        "overall": window(answers, 0.0, seconds),
        "failures": dict(failures(answers)),
        "phases": phases,
        "buckets": buckets,
        "translation_versions_per_bucket": {k: dict(v) for k, v in versions.items()},
        "versions_seen": sorted({a.version for a in translations}),  # type: ignore[type-var]
        "cached_share": round(sum(bool(a.cached) for a in translations) / len(translations), 3)
        if translations
        else None,
    }


def served_versions(cluster: Cluster) -> dict[int, dict[str, int]]:
    """The loaded versions of each replica that answers, asked directly (not via nginx)."""
    found = {}
    for replica in cluster.replicas:
        try:
            models = httpx.get(f"{replica.url}/models", timeout=10).json()
        except httpx.HTTPError:  # stopped, or started again and not listening yet
            continue
        found[replica.index] = {f"{m['task']}/{m['name']}": m["version"] for m in models}
    return found


def rollout_check(
    cluster: Cluster, artifacts: Path, summary: dict[str, Any], wait: float = 300.0
) -> dict[str, Any]:
    """Waits (up to `wait` seconds) until every replica serves the good new version; the
    corrupt one (the newest on disk) must never answer nor be loaded."""
    folder = artifacts / "translation" / "en-de"
    corrupt = max(int(p.name) for p in folder.iterdir() if p.name.isdigit())
    waited = time.monotonic()
    while True:
        served = served_versions(cluster)
        loaded = {v.get("translation/en-de") for v in served.values()}
        if loaded == {corrupt - 1} or time.monotonic() - waited > wait:
            break
        time.sleep(1.0)
    return {
        "corrupt_version": corrupt,
        "corrupt_version_served": corrupt in summary["versions_seen"] or corrupt in loaded,
        "versions_loaded_after_the_load": sorted(v for v in loaded if v is not None),
        "seconds_after_the_load_until_all_swapped": round(time.monotonic() - waited, 1),
    }


def print_summary(summary: dict[str, Any]) -> None:
    overall = summary["overall"]
    print(
        f"\n== {summary['scenario']}: {overall['requests']} requests, "
        f"{overall['failures']} failures {summary['failures'] or ''}, "
        f"{overall['requests_per_second']} req/s, p50 {overall['p50_ms']} ms, "
        f"p99 {overall['p99_ms']} ms"
    )
    for when, what in summary["events"]:
        print(f"   at {when:6.1f} s: {what}")
    for error in summary["event_errors"]:
        print(f"   event failed: {error}")
    header = ("from", "to", "requests", "fail", "req/s", "p50", "p99")
    print("   " + " ".join(f"{h:>{w}}" for h, w in zip(header, WIDTHS, strict=True)))
    for row in summary["buckets"]:
        values = [row[k] for k in ("from_s", "to_s", "requests", "failures")]
        values += [row["requests_per_second"], row["p50_ms"], row["p99_ms"]]
        print("   " + " ".join(f"{v!s:>{w}}" for v, w in zip(values, WIDTHS, strict=True)))
    if summary["versions_seen"]:
        print(f"   translation versions answered: {summary['versions_seen']}")
    if "corrupt_version" in summary:
        print(
            f"   corrupt version {summary['corrupt_version']} served: "
            f"{summary['corrupt_version_served']}; loaded "
            f"{summary['seconds_after_the_load_until_all_swapped']} s after the load: "
            f"{summary['versions_loaded_after_the_load']}"
        )


def main(
    artifacts: Annotated[Path, typer.Option(help="models to copy and serve")] = ROOT / "artifacts",
    data_dir: Annotated[Path, typer.Option(help="Multi30k test files to send")] = DEFAULT_DATA,
    scenarios: Annotated[str, typer.Option(help=f"comma-separated: {', '.join(SCENARIOS)}")] = (
        "steady,kill,redis,sigterm,rollout"
    ),
    replicas: Annotated[int, typer.Option(min=1)] = 3,
    concurrency: Annotated[int, typer.Option(min=1, help="closed-loop clients")] = 32,
    seconds: Annotated[float, typer.Option(help="load per scenario")] = 60.0,
    bucket_seconds: Annotated[float, typer.Option(help="latency table granularity")] = 5.0,
    single: Annotated[bool, typer.Option(help="also a 1-replica steady run")] = True,
    engine: Annotated[str, typer.Option(help="TRANSLATION_ENGINE of the replicas")] = "ctranslate2",
    poll_seconds: Annotated[float, typer.Option(help="MODEL_POLL_SECONDS")] = 2.0,
    json_out: Annotated[Path | None, typer.Option()] = None,
) -> None:
    """Failures and latency seen by clients while replicas die, drain, roll out or lose Redis."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    prefer_oom_victim()
    texts = load_texts(data_dir)
    env = {"MODEL_POLL_SECONDS": str(poll_seconds), "TRANSLATION_ENGINE": engine}
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="chaos-artifacts-") as tmp:
        served = Path(shutil.copytree(artifacts, Path(tmp) / "artifacts"))
        with Cluster(served, replicas, env=env) as cluster:
            for name in scenarios.split(","):
                for replica in cluster.replicas:  # every scenario starts whole and ready
                    if not replica.running():
                        cluster.start_replica(replica.index, wait=False)
                for replica in cluster.replicas:
                    cluster.wait_ready(replica.index)
                answers, record = run_scenario(
                    name, cluster, served, texts, concurrency=concurrency, seconds=seconds
                )
                summary = summarize(name, answers, record, seconds, bucket_seconds)
                summary["replicas"] = replicas
                summary["served_at_end"] = served_versions(cluster)
                if name == "rollout":
                    summary.update(rollout_check(cluster, served, summary))
                print_summary(summary)
                results.append(summary)
        if single:
            with Cluster(served, 1, env=env) as cluster:
                answers, record = run_scenario(
                    "steady", cluster, served, texts, concurrency=concurrency, seconds=seconds
                )
                summary = summarize("steady, 1 replica", answers, record, seconds, bucket_seconds)
                summary["replicas"] = 1
                print_summary(summary)
                results.append(summary)
    report = {
        "replicas": replicas,
        "concurrency": concurrency,
        "seconds": seconds,
        "engine": engine,
        "cpu_count": os.cpu_count(),
        "scenarios": results,
    }
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    typer.run(main)
