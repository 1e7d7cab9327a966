"""model.publishing: a fitted model saved on one worker publishes elsewhere as it would have
at once; a model fitted under JAX publishes under TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model import artifacts, data
from model.publishing import load_fitted, publish_fitted, save_fitted
from model.training import Corpus, fit
from tests.conftest import tiny_configs
from tests.model.conftest import ROOT, Finished

PUBLISH_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def fitted_folder(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Path:
    pairs = data.read_parallel(corpus_dir / "train.en.gz", corpus_dir / "train.de.gz")[:120]
    val = data.read_parallel(corpus_dir / "val.en.gz", corpus_dir / "val.de.gz")[:20]
    model_config, train_config = tiny_configs("translation", epochs=1, vocab_size=100)
    corpus = Corpus("en-de", pairs, val, {"synthetic": True}, "en", "de", test=val[:5])
    folder = tmp_path_factory.mktemp("fitted")
    fitted = fit(corpus, model_config, train_config, folder / "work", verbose=0)
    save_fitted(fitted, corpus, folder / "saved")
    ids = np.array([[5, 6, 7, 3]], np.int32)
    expected = fitted.model((ids, ids[:, :3]), training=False)
    np.save(folder / "expected.npy", np.asarray(expected))
    return folder


def test_a_saved_fitted_model_reloads_with_identical_outputs(fitted_folder: Path) -> None:
    fitted, corpus = load_fitted(fitted_folder / "saved")
    ids = np.array([[5, 6, 7, 3]], np.int32)
    outputs = np.asarray(fitted.model((ids, ids[:, :3]), training=False))
    np.testing.assert_array_equal(outputs, np.load(fitted_folder / "expected.npy"))
    assert corpus.train == [] and corpus.train_size == 120
    assert len(corpus.validation) == 20 and corpus.test is not None and len(corpus.test) == 5
    assert (corpus.source_language, corpus.target_language) == ("en", "de")
    assert fitted.history["val_loss"] and fitted.selection["monitor"] == "val_loss"


def test_publishing_a_reloaded_model_scores_it_and_records_the_training(
    fitted_folder: Path, tmp_path: Path
) -> None:
    fitted, corpus = load_fitted(fitted_folder / "saved")
    path = publish_fitted(fitted, corpus, tmp_path, beam_size=2)
    manifest = artifacts.verify(path)
    assert manifest["data"]["train_examples"] == 120
    assert manifest["train_config"]["beam_size"] == 2
    assert manifest["metrics"]["validation"]["sentences"] == 20
    assert manifest["metrics"]["test"]["sentences"] == 5
    assert manifest["history"] == fitted.history


def test_a_folder_without_a_fitted_record_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a saved fitted model"):
        load_fitted(tmp_path)


def test_a_model_fitted_under_jax_publishes_under_tensorflow(jax_training_run: Finished) -> None:
    result, folder = jax_training_run
    assert result.returncode == 0, result.stderr[-3000:]
    fitted = folder / "out" / ".fitted" / "translation" / "en-de"
    assert result.stdout.strip().splitlines()[-1] == str(fitted)
    record = json.loads((fitted / "fitted.json").read_text())
    assert len(record["history"]["val_loss"]) == 2
    published = subprocess.run(
        [sys.executable, "-m", "model.train", "publish", str(fitted), "--out", str(folder / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PUBLISH_TIMEOUT_S,
    )
    assert published.returncode == 0, published.stderr[-3000:]
    version = folder / "out" / "translation" / "en-de" / "1"
    assert published.stdout.strip().splitlines()[-1] == str(version)
    manifest = artifacts.verify(version)
    assert manifest["history"]["val_loss"] == record["history"]["val_loss"]
    assert manifest["metrics"]["validation"]["bleu"] >= 0


def test_publish_cli_names_a_folder_that_is_not_a_fitted_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "model.train", "publish", str(tmp_path), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PUBLISH_TIMEOUT_S,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"error: {tmp_path}: no fitted.json; not a saved fitted model" in result.stderr


def test_a_model_trained_in_mixed_precision_publishes_checked_in_float32(
    tmp_path: Path, corpus_dir: Path
) -> None:
    import keras

    pairs = data.read_parallel(corpus_dir / "train.en.gz", corpus_dir / "train.de.gz")[:120]
    val = data.read_parallel(corpus_dir / "val.en.gz", corpus_dir / "val.de.gz")[:20]
    model_config, train_config = tiny_configs("translation", epochs=1, vocab_size=100)
    corpus = Corpus("en-de", pairs, val, {"synthetic": True}, "en", "de")
    try:
        fitted = fit(corpus, model_config, train_config.replace(mixed_precision=True),
                     tmp_path / "work", verbose=0)  # fmt: skip
        assert fitted.model.dtype_policy.name == "mixed_bfloat16"  # a CPU: bfloat16
        version = publish_fitted(fitted, corpus, tmp_path / "out")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    engine = json.loads((version / artifacts.MANIFEST).read_text())["engine"]
    # The float32 export is checked against a float32 reference: every greedy output equal.
    assert engine["identical_greedy"] == engine["sentences"] == len(val)
