"""Observability as deployed: a real Prometheus scrapes the running service, and the
Grafana dashboard asks only for metrics that the service exports, in queries Prometheus
accepts."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.conftest import DOCKER
from tests.servers import LiveServer, free_port

METRIC_NAME = re.compile(r"\bnlp_[a-z_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Counted only when something goes wrong (a full queue, a refused version): after normal
# requests these have their HELP and TYPE lines but no sample yet.
FAILURE_ONLY = {"nlp_rejected_total", "nlp_model_load_failures_total"}
# Grafana's interval variables, replaced as Grafana would with a 1 s scrape interval.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}
SCRAPE_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: nlp-api
    metrics_path: /metrics
    static_configs:
      - targets: ["{target}"]
"""


def dashboard_queries(node: Any) -> list[str]:
    """Every `expr` anywhere in the dashboard (panels, rows, nested panels)."""
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [q for value in node.values() for q in dashboard_queries(value)]
    if isinstance(node, list):
        return [q for item in node for q in dashboard_queries(item)]
    return []


def exported_metrics(exposition: str) -> dict[str, tuple[str, bool]]:
    """Name -> (family type, has samples), for family and sample names alike."""
    exported: dict[str, tuple[str, bool]] = {}
    for family in text_string_to_metric_families(exposition):
        names = {family.name} | {sample.name for sample in family.samples}
        if family.type == "counter":
            names.add(f"{family.name}_total")
        for name in names:
            exported[name] = (family.type, bool(family.samples))
    return exported


def query(prometheus: str, expr: str) -> dict[str, Any]:
    """Prometheus' instant query API; the whole answer, errors included."""
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body: dict[str, Any] = response.json()
    return body


def wait_for(
    prometheus: str, expr: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 60
) -> list[dict[str, Any]]:
    """Polls a query until `done(result)`; Prometheus may still be starting."""
    deadline = time.monotonic() + timeout
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            body = query(prometheus, expr)
        except httpx.HTTPError:
            body = {}
        if body.get("status") == "success":
            result = body["data"]["result"]
            if done(result):
                return result
        time.sleep(0.5)
    raise TimeoutError(f"{expr}: no satisfying answer within {timeout}s (last: {result})")


@pytest.fixture(scope="module")
def prometheus(live_app: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus server scraping the live app every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (apt-get install prometheus; CI installs it)")
    folder = tmp_path_factory.mktemp("prometheus")
    config = folder / "prometheus.yml"
    config.write_text(SCRAPE_CONFIG.format(target=f"127.0.0.1:{live_app.port}"))
    port = free_port()
    log_path = folder / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        time.sleep(0.5)
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n{log_path.read_text()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_prometheus_scrapes_the_request_counter_from_the_service(prometheus: str) -> None:
    series = wait_for(prometheus, 'nlp_requests_total{endpoint="/translate",status="200"}', bool)
    assert len(series) == 1
    assert series[0]["metric"]["job"] == "nlp-api"
    assert float(series[0]["value"][1]) >= 2  # the live_app fixture translated twice
    up = query(prometheus, 'up{job="nlp-api"}')["data"]["result"]
    assert [float(s["value"][1]) for s in up] == [1.0]


def test_every_dashboard_query_runs_on_prometheus(
    prometheus: str, dashboard: dict[str, Any], live_app: LiveServer
) -> None:
    # rate() needs two samples of a series inside its window.
    wait_for(prometheus, "sum by (endpoint) (rate(nlp_requests_total[1m]))", bool)
    failures = []
    for expr in dashboard_queries(dashboard):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        body = query(prometheus, expr)
        if body.get("status") != "success":
            failures.append(f"{expr}: {body.get('error')}")
    assert not failures, "\n".join(failures)
    loaded = {f"{m['task']}/{m['name']}" for m in httpx.get(f"{live_app.url}/models").json()}
    versions = query(prometheus, "count by (model, version) (nlp_model_info)")
    assert {s["metric"]["model"] for s in versions["data"]["result"]} == loaded


def test_every_metric_in_the_dashboard_is_exported_by_the_service(
    live_app: LiveServer, dashboard: dict[str, Any]
) -> None:
    exported = exported_metrics(httpx.get(f"{live_app.url}/metrics").text)
    used = {name for expr in dashboard_queries(dashboard) for name in METRIC_NAME.findall(expr)}
    assert len(used) >= 10, used
    missing, empty = [], []
    for name in sorted(used):
        base = name
        for suffix in HISTOGRAM_SUFFIXES:
            stem = name.removesuffix(suffix)
            if stem != name and exported.get(stem, ("", False))[0] == "histogram":
                base = stem
        if base not in exported:
            missing.append(name)
        elif not exported[base][1] and base not in FAILURE_ONLY:
            empty.append(name)
    assert not missing, f"not in /metrics: {missing}"
    assert not empty, f"in /metrics without a series after a request to each endpoint: {empty}"


def test_the_dashboard_uses_the_provisioned_prometheus_datasource(
    dashboard: dict[str, Any],
) -> None:
    provisioning = DOCKER / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (prometheus_source,) = [d for d in datasources["datasources"] if d["type"] == "prometheus"]
    providers = yaml.safe_load((provisioning / "dashboards" / "nlp.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        sources = [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]
        assert all(s == {"type": "prometheus", "uid": prometheus_source["uid"]} for s in sources)
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
    refs = [[t["refId"] for t in p["targets"]] for p in panels]
    assert all(len(r) == len(set(r)) for r in refs)


def test_the_dashboard_file_is_where_the_compose_file_mounts_it() -> None:
    compose = yaml.safe_load((DOCKER.parent / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert "./docker/grafana/dashboards:/var/lib/grafana/dashboards:ro" in mounts
    assert Path(DOCKER / "grafana" / "dashboards" / "nlp.json").is_file()
