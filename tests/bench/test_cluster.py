"""Replicas behind nginx (bench.cluster) under load: a replica killed and started again
costs clients nothing, because nginx sends a request that fails on one replica (refused,
reset, or 503 while the restarted one loads its models) to another."""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from bench.chaos import failures, run_scenario
from bench.cluster import Cluster, find_nginx, nginx_config, wait_until
from tests import synthetic
from tests.servers import metric_value

pytestmark = pytest.mark.skipif(
    find_nginx() is None or shutil.which("redis-server") is None,
    reason="needs nginx and redis-server (apt-get install nginx redis-server)",
)


def test_the_generated_proxy_config_uses_the_shared_failover_policy(tmp_path: Path) -> None:
    config = nginx_config(tmp_path, 8080, [9001, 9002], fail_timeout=2)
    assert "server 127.0.0.1:9001 max_fails=1 fail_timeout=2s;" in config
    assert "server 127.0.0.1:9002" in config
    docker = (Path(__file__).resolve().parents[2] / "docker" / "nginx.conf").read_text()
    assert "include nginx-failover.conf;" in docker
    assert "docker/nginx-failover.conf;" in config


def test_a_replica_killed_and_restarted_under_load_costs_no_client_a_failure(
    trained_root: Path,
) -> None:
    english = synthetic.english_sentences(60, seed=5)
    texts = {"en": english, "any": english + [synthetic.to_german(s) for s in english]}
    env = {"MODEL_POLL_SECONDS": "0", "DEFAULT_BEAM_SIZE": "1"}
    cluster = Cluster(trained_root, replicas=2, env=env, graceful_seconds=5, fail_timeout=1)
    with cluster:
        stop = threading.Event()
        replica = cluster.replicas[0]

        def restart() -> None:
            cluster.start_replica(0, wait=False)

        def stop_once_it_refused_one() -> None:
            # Its port opens while its models still load: nginx tries it again every second
            # (fail_timeout), gets 503 and sends the request to the other replica.
            wait_until(lambda: httpx.get(f"{replica.url}/health").status_code == 200, 120, "")
            deadline = time.monotonic() + 15
            while refused_while_loading(replica.url) == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)
            stop.set()

        events = [(2.0, "SIGKILL replica 0", lambda: cluster.kill(0))]
        events += [(3.0, "start replica 0", restart), (3.1, "load it", stop_once_it_refused_one)]
        answers, record = run_scenario(
            "kill",
            cluster,
            trained_root,
            texts,
            concurrency=4,
            seconds=120,
            events=events,
            stop=stop,
        )
        loading = refused_while_loading(replica.url)
    assert record.errors == []
    assert [what for _, what in record.done] == [what for _, what, _ in events]
    assert failures(answers) == Counter()
    assert sum(a.started > record.done[0][0] for a in answers) >= 20  # load went on after it
    assert {a.path for a in answers} == {"/translate", "/sentiment", "/detect"}
    assert loading > 0  # the restarted replica refused while it loaded; nginx went elsewhere


def refused_while_loading(url: str) -> float:
    exposition = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        metric_value(exposition, "nlp_requests_total", endpoint=path, status="503")
        for path in ("/translate", "/sentiment", "/detect")
    )
