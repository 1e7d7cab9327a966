"""Kubernetes manifests and the compose file hang together: names, ports, probes and
timeouts that the schema validators (kubernetes-validate, docker-compose config) cannot
cross-check."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DOCKER, REPO

K8S = DOCKER / "k8s"


def kustomize_files(folder: Path) -> list[Path]:
    """The manifest files a kustomization pulls in, bases followed recursively."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    files: list[Path] = []
    for entry in spec["resources"]:
        path = (folder / entry).resolve()
        assert path.exists(), f"{folder}/kustomization.yaml: {entry} does not exist"
        files += kustomize_files(path) if path.is_dir() else [path]
    return files


def objects(folder: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in kustomize_files(folder):
        for document in yaml.safe_load_all(path.read_text()):
            found[f"{document['kind']}/{document['metadata']['name']}"] = document
    return found


def dockerfile_instructions(path: Path) -> dict[str, str]:
    """The last of each instruction of the final stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    found = {}
    for line in text.splitlines():
        keyword, _, rest = line.strip().partition(" ")
        if keyword.isupper():
            found[keyword] = rest
    return found


def graceful_seconds(args: list[str]) -> int:
    return int(args[args.index("--graceful-seconds") + 1])


def test_every_manifest_is_part_of_both_variants() -> None:
    manifests = {p.resolve() for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
    cpu, gpu = set(kustomize_files(K8S / "cpu")), set(kustomize_files(K8S / "gpu"))
    assert cpu | gpu == manifests
    assert cpu - gpu == {(K8S / "cpu" / "api.yaml").resolve()}
    assert gpu - cpu == {(K8S / "gpu" / "api.yaml").resolve()}


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_the_api_deployment_is_wired_to_its_service_config_and_autoscaler(variant: str) -> None:
    found = objects(K8S / variant)
    deployment = found["Deployment/nlp-api"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = found["Service/nlp-api"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    hpa = found["HorizontalPodAutoscaler/nlp-api"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "cpu" in container["resources"]["requests"]  # utilization is relative to it
    config_name = container["envFrom"][0]["configMapRef"]["name"]
    config = found[f"ConfigMap/{config_name}"]["data"]
    redis_host = config["REDIS_URL"].removeprefix("redis://").split(":")[0]
    assert f"Service/{redis_host}" in found

    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    pause = 5  # preStop sleep
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    assert grace > graceful_seconds(container["args"]) + pause
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    gpus = container["resources"]["limits"].get("nvidia.com/gpu")
    assert gpus == (1 if variant == "gpu" else None)


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_a_replica_leaves_the_service_before_it_drains_and_disruptions_spare_one(
    variant: str,
) -> None:
    found = objects(K8S / variant)
    deployment = found["Deployment/nlp-api"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    # Endpoints drop a terminating pod while preStop pauses; SIGTERM comes after it.
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert "time.sleep(5)" in command[-1]
    probe = container["readinessProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] <= 10
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    if variant == "cpu":  # a new pod joins (ready) before an old one leaves
        assert (rolling["maxUnavailable"], rolling["maxSurge"]) == (0, 1)
    else:  # no spare GPU: one pod at a time, the others keep answering
        assert (rolling["maxUnavailable"], rolling["maxSurge"]) == (1, 0)
    budget = found["PodDisruptionBudget/nlp-api"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    minimum = found["HorizontalPodAutoscaler/nlp-api"]["spec"]["minReplicas"]
    assert budget["maxUnavailable"] < minimum


def test_compose_api_and_trainer_share_the_models_volume_where_the_image_keeps_them() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    instructions = dockerfile_instructions(REPO / "Dockerfile")
    artifacts = services["api"]["environment"]["ARTIFACTS_DIR"]
    assert f"ARTIFACTS_DIR={artifacts}" in instructions["ENV"].split()
    for name in ("api", "trainer"):
        assert f"models:{artifacts}" in services[name]["volumes"], name
    assert "ports" not in services["api"]  # `--scale api=N` needs no fixed host port
    assert services["trainer"]["profiles"] == ["train"]
    stop = int(services["api"]["stop_grace_period"].removesuffix("s"))
    assert stop > graceful_seconds(json.loads(instructions["CMD"]))


def test_the_gpu_override_reserves_a_gpu_for_api_and_trainer() -> None:
    override = yaml.safe_load((REPO / "docker-compose.gpu.yml").read_text())
    for name in ("api", "trainer"):
        service = override["services"][name]
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        assert service["build"]["dockerfile"] == "docker/gpu.Dockerfile"
