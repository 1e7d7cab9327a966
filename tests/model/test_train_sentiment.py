"""`python -m model.train sentiment`: a recipe's mixture, and the single-corpus path.

The subprocesses run in the background (see conftest.py); these tests read their results.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from model import artifacts

Finished = tuple[subprocess.CompletedProcess[str], Path]
SCORES = {"accuracy", "f1", "ece", "ece_uncalibrated", "examples"}


def _version(run: Finished, name: str) -> Path:
    result, folder = run
    assert result.returncode == 0, result.stderr[-3000:]
    version = folder / "out" / "sentiment" / name / "1"
    assert result.stdout.strip().splitlines()[-1] == str(version)
    return version


@pytest.fixture(scope="module")
def recipe_manifest(cli_sentiment_recipe_run: Finished) -> dict[str, Any]:
    return artifacts.verify(_version(cli_sentiment_recipe_run, "en"))


def test_the_recipe_scores_each_corpus_split_and_their_pool(
    recipe_manifest: dict[str, Any], cli_sentiment_recipe_run: Finished
) -> None:
    metrics = json.loads((_version(cli_sentiment_recipe_run, "en") / artifacts.METRICS).read_text())
    assert metrics == recipe_manifest["metrics"]
    sizes = {"validation:sst2": 20, "validation:imdb": 10, "validation:pros_cons": 12}
    for split, size in sizes.items():
        assert set(metrics[split]) >= SCORES
        assert metrics[split]["examples"] == size
    assert metrics["validation"]["examples"] == sum(sizes.values())
    calibration = metrics["calibration"]
    assert calibration["ece_bins"] == 15 and calibration["fit_on"] == "validation"
    assert calibration["ece"] == metrics["validation"]["ece"]


def test_the_recipe_records_its_mixture_reading_and_temperature(
    recipe_manifest: dict[str, Any],
) -> None:
    config = recipe_manifest["model_config"]
    assert config["normalizer"] == "review"
    assert (config["read_pieces"], config["tail_pieces"]) == (24, 16)
    assert config["temperature"] == recipe_manifest["metrics"]["calibration"]["temperature"]
    data = recipe_manifest["data"]
    assert data["headline"] == "sst2"
    assert data["corpora"]["imdb"]["weight"] == 2.0
    assert data["corpora"]["pros_cons"]["dropped"]["conflicting"] == 2
    assert data["pretrain_text"][0].endswith("unlabeled.txt.gz")
    pretraining = recipe_manifest["selection"]["pretraining"]
    assert pretraining["epochs"] == 1
    assert pretraining["windows"] > pretraining["texts"]  # long reviews span windows


def test_the_train_and_dev_path_still_publishes_sst2(cli_sentiment_dev_run: Finished) -> None:
    manifest = artifacts.verify(_version(cli_sentiment_dev_run, "sst2"))
    assert manifest["model_config"]["normalizer"] == "sst"
    assert manifest["model_config"]["read_pieces"] == 128  # tiny: max_source_length
    assert set(manifest["metrics"]["validation"]) >= SCORES
    assert manifest["metrics"]["validation"]["examples"] == 30
    assert manifest["data"]["dev"].endswith("dev.tsv")


def test_evaluate_scores_a_recipe_split_as_training_carved_it(
    cli_sentiment_recipe_run: Finished, capsys: pytest.CaptureFixture[str]
) -> None:
    from model import evaluate

    version = _version(cli_sentiment_recipe_run, "en")
    data = cli_sentiment_recipe_run[1] / "data"
    metrics = json.loads((version / artifacts.METRICS).read_text())
    common = ["--artifact", version, "--recipe", data / "sentiment-test.toml", "--split", "imdb"]

    def scores(*extra: object) -> dict[str, Any]:
        with pytest.raises(SystemExit) as exit_:
            evaluate.app([str(arg) for arg in [*common, *extra]])
        assert exit_.value.code == 0
        return json.loads(capsys.readouterr().out)

    same = scores()
    assert same["split"] == "imdb" and "read" not in same
    for key in ("examples", "accuracy", "ece"):
        assert same[key] == metrics["validation:imdb"][key]
    head = scores("--read-pieces", 8, "--tail-pieces", 0)
    assert head["read"] == {"read_pieces": 8, "tail_pieces": 0}
    assert head["examples"] == same["examples"]
    refused = {
        "no corpus 'nosuch'": [*common[:-1], "nosuch"],
        "the artifact's value where a flag is not given": [*common, "--read-pieces", 16],
        "not both": [*common, "--tsv", data / "sst2" / "dev.tsv"],
    }
    for message, args in refused.items():
        with pytest.raises(SystemExit) as exit_:
            evaluate.app([str(arg) for arg in args])
        assert exit_.value.code != 0 and message in capsys.readouterr().err
