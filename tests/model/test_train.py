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


def test_evaluate_scores_a_recipe_split_as_the_files_it_names(
    cli_version: Path, corpus_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from model import evaluate

    recipe = tmp_path / "recipe.toml"
    recipe.write_text('[[corpus]]\nname = "captions"\ntrain = "train"\nvalidation = "val"\n')
    by_recipe = ["--recipe", recipe, "--data-dir", corpus_dir, "--split", "captions"]
    val = corpus_dir / "val"
    by_files = ["--source-file", f"{val}.en.gz", "--reference-file", f"{val}.de.gz"]

    def run(*args: object) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exit_:
            evaluate.app([str(arg) for arg in ["--artifact", cli_version, *args]])
        captured = capsys.readouterr()
        return int(exit_.value.code or 0), captured.out if exit_.value.code == 0 else captured.err

    def scores(*args: object) -> dict:
        code, out = run(*args)
        assert code == 0, out
        return json.loads(out)

    split = scores(*by_recipe, "--beam-size", 2)
    files = scores(*by_files, "--beam-size", 2)
    assert split["split"] == "captions" and split["sentences"] == files["sentences"] == 40
    assert (split["bleu"], split["chrf"]) == (files["bleu"], files["chrf"])
    assert split["engine"] == "keras" and split["length_penalty"] == 0.6
    served = scores(*by_recipe, "--engine", "ctranslate2", "--limit", 10)
    assert served["engine"] == "ctranslate2/float32" and served["length_penalty"] == 1.0
    assert served["sentences"] == 10
    refused = {
        "no split 'nosuch'": [*by_recipe[:-1], "nosuch"],
        "not both": [*by_recipe, *by_files],
        "--engine 'nosuch'": [*by_files, "--engine", "nosuch"],
    }
    for message, args in refused.items():
        code, err = run(*args)
        assert code != 0 and message in err, err


def test_mixed_precision_is_on_only_where_it_is_native(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model import train

    def cpu(name: str, flags: str) -> Path:
        path = tmp_path / name
        path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\n")
        return path

    avx512, amx, avx2 = cpu("a", "avx512f avx512_bf16"), cpu("b", "amx_bf16"), cpu("c", "avx2")
    monkeypatch.setattr(train, "_gpu", lambda: False)
    for native in (avx512, amx):
        assert [train._resolve_precision(f, native) for f in ("auto", "on", "off")] == [
            True, True, False,
        ]  # fmt: skip
    for emulated in (avx2, tmp_path / "no-cpuinfo"):
        assert not train._resolve_precision("auto", emulated)
        assert not train._resolve_precision("off", emulated)
        with pytest.raises(ValueError, match="no native bfloat16"):
            train._resolve_precision("on", emulated)
    with pytest.raises(ValueError, match="one of auto, on, off"):
        train._resolve_precision("yes", avx512)
    monkeypatch.setattr(train, "_gpu", lambda: True)
    assert train._resolve_precision("auto", avx2) and train._resolve_precision("on", avx2)


def test_init_from_continues_a_published_model(
    cli_version: Path, corpus_dir: Path, tmp_path: Path
) -> None:
    from tests.model.conftest import Run, train_cli

    before = json.loads((cli_version / artifacts.MANIFEST).read_text())
    made = before["selection"]["updates"]
    assert made > 0  # recorded by every run since continued training exists
    common = ["--data-dir", corpus_dir, "--max-train-lines", "100", "--out", tmp_path / "out"]
    result = Run.start(
        train_cli("--init-from", cli_version, "--epochs", "1", "--dropout", "0.1", *common),
        tmp_path / "run",
    ).result()
    assert result.returncode == 0, result.stderr[-3000:]
    # Its batches go on where the artifact's stream left off, not from its beginning again.
    assert f"the stream goes on after update {made}" in result.stderr
    after_path = tmp_path / "out" / "translation" / "en-de" / "1"
    after = artifacts.verify(after_path)
    # Its shape, tokenizer and settings are the artifact's; the flags given replace theirs.
    assert after["model_config"] == {**before["model_config"], "dropout": 0.1}
    assert after["train_config"]["preset"] == "tiny" and after["train_config"]["epochs"] == 1
    assert after["train_config"]["init_from"] == str(cli_version.resolve())
    assert after["train_config"]["initial_step"] == made
    assert after["selection"]["updates"] > made  # the schedule went on from there
    assert (after_path / artifacts.TOKENIZER).read_bytes() == (
        cli_version / artifacts.TOKENIZER
    ).read_bytes()
    # It starts from the trained weights: its first epoch ends below the first run's.
    assert after["history"]["loss"][0] < before["history"]["loss"][0]

    refusals = {
        "the shape is the artifact's; drop --d-model": ["--d-model", "64"],
        "a translation model, not sentiment": [],
    }
    for message, extra in refusals.items():
        command = train_cli("--init-from", cli_version, *extra, *common)
        if not extra:
            sst = tmp_path / "sst.tsv"
            sst.write_text("sentence\tlabel\ngood\t1\nbad\t0\n")
            command[3:] = [
                "sentiment", "--init-from", str(cli_version), "--train", str(sst), "--dev", str(sst)
            ]  # fmt: skip
        refused = Run.start(command, tmp_path / message[:5]).result()
        [error] = error_lines(refused)
        assert message in error, error
