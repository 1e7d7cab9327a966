"""`python -m model.train`: user errors are one-line messages; a tiny run publishes.

The subprocesses run in the background (see conftest.py); these tests read their results.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from model import artifacts

Finished = tuple[subprocess.CompletedProcess[str], Path]


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The `error:` lines; also checks that the command failed without a traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_missing_data_file_exits_with_one_line_error(cli_missing_file_run: Finished) -> None:
    result, folder = cli_missing_file_run
    errors = error_lines(result)
    assert errors == [f"error: {folder / 'missing.tsv'}: no such file"]


def test_mismatched_line_counts_exit_with_both_counts(cli_mismatched_lines_run: Finished) -> None:
    result, folder = cli_mismatched_lines_run
    [error] = error_lines(result)
    assert "3 lines" in error and "has 2" in error
    assert str(folder / "data" / "train.en") in error
    assert str(folder / "data" / "train.de") in error
    assert not (folder / "out").exists()


def test_unknown_preset_exits_with_the_known_presets(cli_unknown_preset_run: Finished) -> None:
    result, folder = cli_unknown_preset_run
    [error] = error_lines(result)
    assert "unknown preset 'huge'" in error
    assert "tiny" in error
    assert not (folder / "out").exists()


@pytest.fixture(scope="module")
def cli_version(cli_translation_run: Finished) -> Path:
    result, folder = cli_translation_run
    assert result.returncode == 0, result.stderr[-3000:]
    version = folder / "out" / "translation" / "en-de" / "1"
    assert result.stdout.strip().splitlines()[-1] == str(version)
    return version


def test_tiny_translation_run_publishes_a_verified_version_1(cli_version: Path) -> None:
    manifest = artifacts.verify(cli_version)
    assert manifest["version"] == 1
    versions = artifacts.list_versions(cli_version.parents[2], "translation", "en-de")
    assert [ref.version for ref in versions] == [1]


def test_manifest_records_configs_and_file_hashes(cli_version: Path) -> None:
    manifest = json.loads((cli_version / artifacts.MANIFEST).read_text())
    assert manifest["model_config"]["task"] == "translation"
    assert manifest["train_config"]["preset"] == "tiny"
    assert manifest["train_config"]["epochs"] == 1
    assert manifest["data"]["train_examples"] == 100  # --max-train-lines
    assert manifest["source_language"] == "en" and manifest["target_language"] == "de"
    for name in (artifacts.WEIGHTS, artifacts.TOKENIZER, artifacts.METRICS, "curves.png"):
        assert manifest["files"][name] == artifacts.sha256_file(cli_version / name)


def test_metrics_report_validation_bleu_chrf_and_signature(cli_version: Path) -> None:
    validation = json.loads((cli_version / artifacts.METRICS).read_text())["validation"]
    assert 0 <= validation["bleu"] <= 100
    assert 0 <= validation["chrf"] <= 100
    assert validation["signature"].startswith("nrefs:1")
    assert validation["sentences"] == 40


def test_curves_are_a_png_image(cli_version: Path) -> None:
    assert (cli_version / "curves.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
