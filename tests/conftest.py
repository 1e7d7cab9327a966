"""Session fixtures: tiny artifacts trained once (seconds each) on synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from tests import synthetic


def tiny_configs(task: str, **train_changes: object):  # type: ignore[no-untyped-def]
    from model.config import preset

    model_config, train_config = preset("tiny", task)  # type: ignore[arg-type]
    return model_config, train_config.replace(**train_changes)


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.write_parallel_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Path:
    """An artifacts root with tiny en-de, sentiment and langid models, trained once."""
    from model import data
    from model.training import Corpus, train

    root = tmp_path_factory.mktemp("artifacts")
    pairs = data.read_parallel(corpus_dir / "train.en.gz", corpus_dir / "train.de.gz")
    val = data.read_parallel(corpus_dir / "val.en.gz", corpus_dir / "val.de.gz")
    model_config, train_config = tiny_configs("translation", epochs=6, vocab_size=120)
    # Two layers, so that layer selection (API and viewer) has something to select.
    model_config = model_config.replace(encoder_layers=2, decoder_layers=2)
    corpus = Corpus("en-de", pairs, val, {"synthetic": True}, "en", "de")
    train(corpus, model_config, train_config, root, verbose=0)

    sst_dir = tmp_path_factory.mktemp("sst")
    train_rows = data.read_classification(synthetic.write_sst(sst_dir / "train.tsv", 300, 1))
    dev_rows = data.read_classification(synthetic.write_sst(sst_dir / "dev.tsv", 40, 2, "content"))
    labels = {"0": "NEGATIVE", "1": "POSITIVE"}
    model_config, train_config = tiny_configs("sentiment", epochs=4, vocab_size=60)
    model_config = model_config.replace(normalizer="sst")
    corpus = Corpus(
        "sst2",
        [(t, labels[lab]) for t, lab in train_rows],
        [(t, labels[lab]) for t, lab in dev_rows],
    )
    train(corpus, model_config, train_config, root, verbose=0)

    lang_dir = synthetic.write_langid_corpus(tmp_path_factory.mktemp("langid"))
    codes = ("en", "de", "fr", "cs")
    model_config, train_config = tiny_configs("langid", epochs=4, vocab_size=60)
    model_config = model_config.replace(labels=codes)
    corpus = Corpus(
        "multi30k",
        data.read_langid(lang_dir, codes, "train"),
        data.read_langid(lang_dir, codes, "val"),
    )
    train(corpus, model_config, train_config, root, verbose=0)
    return root
