"""model.training: distribution strategies (the training runs themselves are subprocesses)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from model import artifacts
from model.training import strategy_for

Finished = tuple[subprocess.CompletedProcess[str], Path]


def test_mirrored_training_on_two_cpu_devices_publishes_an_artifact(
    mirrored_training_run: Finished,
) -> None:
    result, folder = mirrored_training_run
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == [2]
    assert report["path"] == str(folder / "out" / "sentiment" / "sst2" / "1")
    manifest = artifacts.verify(report["path"])
    assert manifest["train_config"]["strategy"] == "mirrored"
    assert manifest["metrics"]["validation"]["examples"] == 15


def test_default_strategy_has_one_replica() -> None:
    assert strategy_for("default").num_replicas_in_sync == 1


def test_unknown_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown strategy 'tpu'"):
        strategy_for("tpu")
