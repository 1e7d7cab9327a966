"""Masked-language-model pre-training of a classifier's encoder, and token dropout."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from model import data
from model.config import ModelConfig
from model.layers import TokenDropout
from model.objectives import MaskedSequenceLoss
from model.pretraining import (
    PRETRAIN_BACKUP,
    PRETRAINED_WEIGHTS,
    cut_windows,
    encode_windows,
    fit_stream,
    mask_tokens,
    masked_batches,
    pretrain_encoder,
)
from model.training import Corpus, fit
from model.transformer import MaskedLanguageModel, build_model
from tests import synthetic
from tests.conftest import tiny_configs
from tokenizers import EOS_ID, PAD_ID, UNK_ID, train_tokenizer

VOCAB = 50


def _padded_batch(rows: int = 400, length: int = 30, seed: int = 0) -> np.ndarray:
    """Rows of 5..length-1 word ids (>= 4) ending in </s>, then padding."""
    rng = np.random.default_rng(seed)
    ids = np.full((rows, length), PAD_ID, np.int32)
    for row, size in enumerate(rng.integers(5, length, rows)):
        ids[row, : size - 1] = rng.integers(4, VOCAB, size - 1)
        ids[row, size - 1] = EOS_ID
    return ids


def test_masking_chooses_a_share_of_the_words_and_never_padding_or_eos() -> None:
    ids = _padded_batch()
    inputs, positions, targets = mask_tokens(ids, 0.15, np.random.default_rng(1), VOCAB)
    assert positions.shape == targets.shape == (len(ids), math.ceil(0.15 * ids.shape[1]))
    words = (ids != PAD_ID) & (ids != EOS_ID)
    valid = targets != PAD_ID
    chosen = np.zeros(ids.shape, bool)
    for row in range(len(ids)):
        picked = positions[row][valid[row]]
        assert len(set(picked.tolist())) == len(picked)  # distinct positions
        assert len(picked) == max(1, round(0.15 * words[row].sum()))
        chosen[row, picked] = True
        np.testing.assert_array_equal(targets[row][valid[row]], ids[row, picked])
        assert not np.any(positions[row][~valid[row]])  # padded with position 0
    assert not np.any(chosen & ~words)
    assert abs(chosen.sum() / words.sum() - 0.15) < 0.01
    np.testing.assert_array_equal(inputs[~chosen], ids[~chosen])  # the rest is untouched


def test_chosen_tokens_are_mostly_masked_some_replaced_some_kept() -> None:
    ids = _padded_batch()
    inputs, positions, targets = mask_tokens(ids, 0.5, np.random.default_rng(2), VOCAB)
    rows = np.arange(len(ids))[:, None]
    valid = targets != PAD_ID
    given, original = inputs[rows, positions][valid], ids[rows, positions][valid]
    masked = np.mean(given == UNK_ID)
    kept = np.mean(given == original)
    assert 0.77 < masked < 0.83
    assert 0.09 < kept < 0.16  # 10% kept, plus random draws that hit the same id
    assert np.all(given >= UNK_ID) and np.all(given < VOCAB)
    assert np.all((given == UNK_ID) | (given > EOS_ID))


def test_the_masked_model_predicts_at_the_chosen_positions_only() -> None:
    config = ModelConfig(task="sentiment", vocab_size=VOCAB, d_model=16, num_heads=2, d_ff=32,
                         encoder_layers=1, labels=("NEGATIVE", "POSITIVE"))  # fmt: skip
    mlm = MaskedLanguageModel(config)
    inputs, positions, _ = mask_tokens(_padded_batch(rows=4), 0.15, np.random.default_rng(3), VOCAB)
    every = np.asarray(mlm(inputs))
    gathered = np.asarray(mlm((inputs, positions)))
    assert gathered.shape == (*positions.shape, VOCAB)
    np.testing.assert_allclose(gathered, every[np.arange(4)[:, None], positions], atol=1e-5)


def test_token_dropout_acts_in_training_only_and_spares_padding_and_eos() -> None:
    ids = _padded_batch()
    layer = TokenDropout(0.3, seed=3)
    np.testing.assert_array_equal(np.asarray(layer(ids, training=False)), ids)
    dropped = np.asarray(layer(ids, training=True))
    words = (ids != PAD_ID) & (ids != EOS_ID)
    changed = dropped != ids
    assert not np.any(changed & ~words)
    assert np.all(dropped[changed] == UNK_ID)
    assert abs(changed.sum() / words.sum() - 0.3) < 0.02


def test_a_classifier_without_token_dropout_keeps_its_weight_layout(tmp_path: Path) -> None:
    config = ModelConfig(task="sentiment", vocab_size=VOCAB, d_model=16, num_heads=2, d_ff=32,
                         encoder_layers=1, labels=("NEGATIVE", "POSITIVE"))  # fmt: skip
    plain, with_dropout = build_model(config), build_model(config.replace(token_dropout=0.2))
    assert plain.token_dropout is None and with_dropout.token_dropout is not None
    ids = _padded_batch(rows=4)
    # Weights saved either way load into the other: the layer adds no saved weights.
    plain.save_weights(tmp_path / "plain.weights.h5")
    with_dropout.load_weights(tmp_path / "plain.weights.h5")
    np.testing.assert_allclose(np.asarray(with_dropout(ids)), np.asarray(plain(ids)), atol=1e-6)
    reloaded = build_model(config)
    with_dropout.save_weights(tmp_path / "dropout.weights.h5")
    reloaded.load_weights(tmp_path / "dropout.weights.h5")
    np.testing.assert_allclose(np.asarray(reloaded(ids)), np.asarray(plain(ids)), atol=1e-6)


def test_the_pretrained_encoder_is_copied_into_the_classifier() -> None:
    config = ModelConfig(task="sentiment", vocab_size=VOCAB, d_model=16, num_heads=2, d_ff=32,
                         encoder_layers=2, labels=("NEGATIVE", "POSITIVE"))  # fmt: skip
    mlm = MaskedLanguageModel(config)
    ids = _padded_batch(rows=4)
    assert tuple(mlm(ids).shape) == (*ids.shape, VOCAB)
    classifier = build_model(config)
    mlm.copy_encoder_to(classifier)
    np.testing.assert_allclose(
        np.asarray(classifier.encode(ids)[0]), np.asarray(mlm.encode(ids)[0]), atol=1e-6
    )


def _sentiment_corpus() -> tuple[Corpus, list[str]]:
    rows = [(text, "POSITIVE" if label else "NEGATIVE")
            for label, text in synthetic.sentiment_rows(160, seed=4)]  # fmt: skip
    unlabeled = synthetic.english_sentences(80, seed=5)
    return Corpus("sst2", rows[:140], rows[140:], unlabeled=unlabeled), unlabeled


def test_pretraining_lowers_the_masked_token_loss(tmp_path: Path) -> None:
    keras.utils.set_random_seed(11)  # the same initial weights whatever ran before
    corpus, unlabeled = _sentiment_corpus()
    texts = [text for text, _ in corpus.train] + unlabeled
    tokenizer = train_tokenizer(texts, vocab_size=60)
    model_config, train_config = tiny_configs("sentiment", pretrain_epochs=12, warmup_steps=20)
    model_config = model_config.replace(vocab_size=tokenizer.vocab_size)
    ids = np.array([(tokenizer.encode(t) + [PAD_ID] * 16)[:16] for t in texts], np.int32)
    masked = mask_tokens(ids, 0.3, np.random.default_rng(6), tokenizer.vocab_size)
    inputs, targets = masked[:2], masked[2]
    loss = MaskedSequenceLoss()

    untrained = MaskedLanguageModel(model_config)
    before = float(loss(targets, untrained(inputs)))
    mlm, summary = pretrain_encoder(texts, tokenizer, model_config, train_config, tmp_path)
    after = float(loss(targets, mlm(inputs)))
    assert after < 0.85 * before
    assert summary["texts"] == len(set(texts)) and summary["epochs"] == 12
    assert (tmp_path / PRETRAINED_WEIGHTS).is_file()

    # A resumed run reuses the saved encoder and its summary instead of pre-training again...
    again, reused = pretrain_encoder(texts, tokenizer, model_config, train_config, tmp_path)
    assert reused == summary
    np.testing.assert_allclose(np.asarray(again(inputs)), np.asarray(mlm(inputs)), atol=1e-5)
    # ...unless its settings changed.
    other = train_config.replace(pretrain_epochs=1, mask_rate=0.3)
    _, redone = pretrain_encoder(texts, tokenizer, model_config, other, tmp_path)
    assert redone["epochs"] == 1 and redone["loss"] != summary["loss"]


def test_a_pretrained_classifier_starts_from_the_encoder_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copied_into = []
    copy = MaskedLanguageModel.copy_encoder_to

    def recording_copy(self: MaskedLanguageModel, model: Any) -> None:
        copied_into.append(model)
        copy(self, model)

    monkeypatch.setattr(MaskedLanguageModel, "copy_encoder_to", recording_copy)
    corpus, unlabeled = _sentiment_corpus()
    model_config, train_config = tiny_configs(
        "sentiment", epochs=2, pretrain_epochs=1, vocab_size=60
    )
    model_config = model_config.replace(token_dropout=0.1)
    fitted = fit(corpus, model_config, train_config, tmp_path / "work", verbose=0)
    pretraining = fitted.selection["pretraining"]
    assert pretraining["epochs"] == 1
    assert pretraining["texts"] == len({text for text, _ in corpus.train} | set(unlabeled))
    assert fitted.model.token_dropout is not None
    assert copied_into == [fitted.model]
    assert max(fitted.history["val_accuracy"]) > 0.5


def test_translation_refuses_encoder_pretraining(tmp_path: Path) -> None:
    model_config, train_config = tiny_configs("translation", pretrain_epochs=1)
    corpus = Corpus("en-de", [("a", "b")], [("a", "b")])
    with pytest.raises(ValueError, match="pre-training is for classifiers"):
        fit(corpus, model_config, train_config, tmp_path, verbose=0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ModelConfig(token_dropout=1.0), "token_dropout 1.0 is not in"),
        (lambda: ModelConfig(token_dropout=-0.1), "token_dropout -0.1 is not in"),
        (lambda: ModelConfig(token_dropout=0.1), "token_dropout is for classifiers"),
        (lambda: tiny_configs("sentiment", mask_rate=0.0), "mask_rate 0.0 is not in"),
        (lambda: tiny_configs("sentiment", pretrain_epochs=-1), "pretrain_epochs -1 is negative"),
    ],
)
def test_out_of_range_settings_are_refused(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_long_texts_are_cut_into_windows_not_truncated() -> None:
    # Texts of 28, 3 and 21 pieces, windows of 10: 10+10+8, 3 (a short text is whole),
    # 10+10 (a last window of 1 piece is left out: too short to learn from).
    assert cut_windows([28, 3, 21], 10) == [
        (0, 10), (10, 20), (20, 28), (28, 31), (31, 41), (41, 51),
    ]  # fmt: skip


def test_encode_windows_reads_a_stream_once_skipping_repeats() -> None:
    sentences = synthetic.english_sentences(60, seed=8)
    tokenizer = train_tokenizer(sentences, vocab_size=60)
    review = " ".join(sentences)  # one long text of many windows
    consumed = []

    def stream() -> Iterator[str]:
        for text in [review, "", sentences[0], review, sentences[0]]:
            consumed.append(text)
            yield text

    windows = encode_windows(stream(), tokenizer, 16)
    assert len(consumed) == 5 and windows.texts == 2  # the review and one sentence
    review_ids, sentence_ids = tokenizer.encode(review), tokenizer.encode(sentences[0])
    assert len(review_ids) > 10 * 16
    expected = [review_ids[a:b] for a, b in cut_windows([len(review_ids)], 16)]
    expected += [sentence_ids[a:b] for a, b in cut_windows([len(sentence_ids)], 16)]
    assert [row.tolist() for (row,) in windows.rows()] == expected
    read = sum(map(len, expected[: len(review_ids) // 16]))
    assert len(review_ids) - read < 16  # the review is read past its first window
    assert windows.pieces.dtype == np.int32


class _StopAfter(keras.callbacks.Callback):
    """Interrupts fitting at the end of an epoch, as a killed job would."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt


class _Epochs(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.begun: list[int] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.begun.append(epoch)


def test_a_stopped_pretraining_resumes_from_its_last_epoch_and_logs_progress(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    texts = synthetic.english_sentences(120, seed=9)
    tokenizer = train_tokenizer(texts, vocab_size=60)
    model_config, train_config = tiny_configs("sentiment", pretrain_epochs=3, log_every=1e-9)
    model_config = model_config.replace(vocab_size=tokenizer.vocab_size)
    with pytest.raises(KeyboardInterrupt):
        pretrain_encoder(
            texts, tokenizer, model_config, train_config, tmp_path, callbacks=[_StopAfter(1)]
        )
    assert (tmp_path / PRETRAIN_BACKUP).is_dir()
    assert not (tmp_path / PRETRAINED_WEIGHTS).exists()
    epochs = _Epochs()
    with caplog.at_level(logging.INFO, logger="model.reporting"):
        _, summary = pretrain_encoder(
            texts, tokenizer, model_config, train_config, tmp_path, callbacks=[epochs]
        )
    assert epochs.begun == [2]  # epochs 0 and 1 were done before the stop
    assert summary["epochs"] == 3 and summary["windows"] == len(set(texts))
    assert (tmp_path / PRETRAINED_WEIGHTS).is_file()
    assert not (tmp_path / PRETRAIN_BACKUP).exists()
    assert any(
        "pre-training epoch 3 step" in r.getMessage() and "masked tokens/s" in r.getMessage()
        for r in caplog.records
    )


def test_pretraining_reads_unlabeled_files_a_line_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, _ = _sentiment_corpus()
    reviews = [" ".join(synthetic.english_sentences(30, seed=s)) for s in range(3)]
    path = synthetic.write_lines(tmp_path / "unlabeled.txt.gz", reviews)
    corpus.unlabeled, corpus.unlabeled_files = [], [path]
    monkeypatch.setattr(data, "read_lines", None)  # never read whole
    model_config, train_config = tiny_configs(
        "sentiment", epochs=1, pretrain_epochs=1, vocab_size=60, max_source_length=32
    )
    fitted = fit(corpus, model_config, train_config, tmp_path / "work", verbose=0)
    pretraining = fitted.selection["pretraining"]
    assert pretraining["texts"] == len({t for t, _ in corpus.train}) + 3
    assert pretraining["windows"] > pretraining["texts"]  # the reviews span many windows


def test_pretraining_reads_windows_of_any_length_whatever_comes_first() -> None:
    # Keras' own adapter fixes the shapes of the first batches it peeks at: two full
    # windows first, then a shorter one, would be refused.
    rows = [(np.arange(4, 36, dtype=np.int32),)] * 2 + [(np.arange(4, 10, dtype=np.int32),)]
    batches = masked_batches(rows, rate=0.15, vocab_size=VOCAB, batch_size=1, max_length=32, seed=0)
    stream, steps = fit_stream(batches)
    assert steps == 3
    if keras.backend.backend() == "tensorflow":
        assert all(spec.shape.as_list() == [None, None] for spec in tf_specs(stream))
    lengths = sorted(
        (np.shape(inputs)[1], np.shape(positions)[1]) for (inputs, positions), _ in take(stream, 3)
    )
    assert lengths == [(16, 3), (32, 5), (32, 5)]


def test_pretraining_without_one_whole_batch_is_refused_not_endless() -> None:
    rows = [(np.arange(4, 12, dtype=np.int32),)] * 3  # a bucket of 3, batches of 4
    batches = masked_batches(rows, rate=0.15, vocab_size=VOCAB, batch_size=4, max_length=32, seed=0)
    with pytest.raises(data.DataError, match="too few windows"):
        fit_stream(batches)


def tf_specs(stream: Any) -> list[Any]:
    import tensorflow as tf

    return tf.nest.flatten(stream.element_spec)


def take(stream: Any, count: int) -> list[Any]:
    if hasattr(stream, "take"):
        return list(stream.take(count).as_numpy_iterator())
    return [stream[i] for i in range(count)]
