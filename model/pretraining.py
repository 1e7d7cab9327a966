"""Masked-language-model pre-training of a classifier's encoder on unlabeled text.

A classifier trained from scratch on a few tens of thousands of short labeled phrases
overfits within a few epochs. Before it is fitted, its encoder can first learn to predict
masked tokens of the training texts and of any extra unlabeled text (BERT's objective: a
share of the tokens is chosen; 80% of those become <unk>, 10% a random token, 10% stay).
The classifier then starts from the pre-trained embedding, blocks and final norm.

Unlabeled text can be large (IMDB's 50,000 unlabeled reviews are 12M words): texts arrive
one at a time, repeated texts are skipped by a short digest, their pieces are kept in one
int32 array, and a long text is cut into consecutive windows of the model's input length
rather than truncated to its first one. Each epoch is checkpointed in the work folder, so a
pre-training stopped midway resumes from its last epoch when the run is started again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from model.batches import as_tf_dataset
from model.config import ModelConfig, TrainConfig
from model.data import DataError, PaddedBatches
from model.objectives import MaskedAccuracy, MaskedSequenceLoss, TokenCount, transformer_optimizer
from model.reporting import ProgressLog
from model.transformer import MaskedLanguageModel
from tokenizers import EOS_ID, PAD_ID, UNK_ID, SubwordTokenizer

log = logging.getLogger(__name__)

FIRST_WORD_ID = EOS_ID + 1  # ids below are padding and special tokens
PRETRAINED_WEIGHTS = "pretrained.weights.h5"
PRETRAINED_RECORD = "pretrained.json"
PRETRAIN_BACKUP = "pretrain_backup"  # the epoch checkpoint of an unfinished pre-training
ENCODE_CHUNK = 512  # texts tokenized at a time
MIN_TAIL_PIECES = 8  # a long text's last window, when shorter than this, is left out


def mask_tokens(
    ids: np.ndarray, rate: float, rng: np.random.Generator, vocab_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, positions, targets) for a padded id batch. Each row has round(rate * words)
    of its words chosen (at least one; never padding or EOS), at most ceil(rate * length):
    `positions` (rows, that most) holds their indices then zeros, `targets` their tokens then
    PAD, so the model predicts at the chosen positions only."""
    words = (ids != PAD_ID) & (ids != EOS_ID)
    width = max(1, math.ceil(ids.shape[1] * rate))
    counts = np.where(words.any(axis=1), np.maximum(1, np.rint(words.sum(axis=1) * rate)), 0)
    counts = np.minimum(counts.astype(np.int64), width)
    # A random order of each row's words (non-words last); its first `count` are chosen.
    order = np.argsort(np.where(words, rng.random(ids.shape), 2.0), axis=1)[:, :width]
    valid = np.arange(width)[None, :] < counts[:, None]
    positions = np.where(valid, order, 0).astype(np.int32)
    targets = np.where(valid, np.take_along_axis(ids, order, axis=1), PAD_ID).astype(np.int32)
    chosen = np.zeros(ids.shape, bool)
    np.put_along_axis(chosen, order, valid, axis=1)
    draw = rng.random(ids.shape)
    inputs = np.where(chosen & (draw < 0.8), UNK_ID, ids)
    swapped = chosen & (draw >= 0.8) & (draw < 0.9)
    random_ids = rng.integers(FIRST_WORD_ID, vocab_size, ids.shape)
    inputs = np.where(swapped, random_ids, inputs).astype(np.int32)
    return inputs, positions, targets


@dataclass
class Windows:
    """Every piece of the pre-training texts in one array, cut into windows of at most
    `length` pieces (row i is pieces[starts[i]:ends[i]]), and what they were made from."""

    pieces: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    texts: int  # distinct non-empty texts read
    sha256: str  # of those texts, in order

    def rows(self) -> list[tuple[np.ndarray]]:
        return [(self.pieces[a:b],) for a, b in zip(self.starts, self.ends, strict=True)]


def _chunks(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def cut_windows(lengths: Sequence[int], length: int) -> list[tuple[int, int]]:
    """(start, end) offsets into the texts' concatenated pieces: each text in consecutive
    windows of `length`, its last window kept when whole or at least MIN_TAIL_PIECES long."""
    windows = []
    offset = 0
    for size in lengths:
        for start in range(0, size, length):
            end = min(start + length, size)
            if start == 0 or end - start >= MIN_TAIL_PIECES:
                windows.append((offset + start, offset + end))
        offset += size
    return windows


def encode_windows(texts: Iterable[str], tokenizer: SubwordTokenizer, length: int) -> Windows:
    """Tokenizes `texts` (a generator is read once, a chunk at a time) into windows."""
    seen: set[bytes] = set()
    digest = hashlib.sha256()
    parts: list[np.ndarray] = []
    windows: list[tuple[int, int]] = []
    offset = 0
    for chunk in _chunks((t for t in texts if t.strip()), ENCODE_CHUNK):
        fresh = []
        for text in chunk:
            key = hashlib.blake2b(text.encode("utf-8"), digest_size=12).digest()
            if key not in seen:
                seen.add(key)
                fresh.append(text)
                digest.update(text.encode("utf-8") + b"\n")
        encoded = tokenizer.encode_batch(fresh)
        cuts = cut_windows([len(ids) for ids in encoded], length)
        windows += [(a + offset, b + offset) for a, b in cuts]
        flat = np.fromiter((i for ids in encoded for i in ids), np.int32)
        parts.append(flat)
        offset += len(flat)
    pieces = np.concatenate(parts) if parts else np.zeros(0, np.int32)
    bounds = np.array(windows, np.int64).reshape(-1, 2)
    return Windows(pieces, bounds[:, 0], bounds[:, 1], len(seen), digest.hexdigest())


def _as_fit_batch(masked: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Any:
    inputs, positions, targets = masked
    return (inputs, positions), targets


def masked_batches(
    rows: Sequence[tuple[np.ndarray]],
    *,
    rate: float,
    vocab_size: int,
    batch_size: int,
    max_length: int,
    seed: int,
) -> PaddedBatches:
    """Fixed-shape batches whose masking is drawn anew for every batch of every epoch."""
    rng = np.random.default_rng(seed)
    return PaddedBatches(
        [row for row in rows if len(row[0])],
        length_of=lambda row: len(row[0]),
        batch_size_for=lambda bound: batch_size,
        to_batch=lambda ids: _as_fit_batch(mask_tokens(ids, rate, rng, vocab_size)),
        max_length=max_length,
        shuffle=True,
        seed=seed,
    )


def fit_stream(batches: PaddedBatches) -> tuple[Any, int]:
    """What `fit` reads, and the steps of one pass. TensorFlow gets a tf.data stream with
    every dimension free: Keras' own adapter infers the shapes from the first two batches
    it peeks at and refuses any other window length later. Compiled backends take the
    fixed-shape batches as they are."""
    if not len(batches):  # an endless stream of nothing would never end an epoch
        raise DataError(
            "pre-training has too few windows of any one length for a batch; "
            "give more text or a smaller --batch-size"
        )
    if keras.backend.backend() != "tensorflow":
        return batches, len(batches)
    return as_tf_dataset(batches, repeat=True), len(batches)


def pretrain_encoder(
    texts: Iterable[str],
    tokenizer: SubwordTokenizer,
    model_config: ModelConfig,
    train_config: TrainConfig,
    work: Path,
    *,
    replicas: int = 1,
    verbose: int | str = 2,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> tuple[MaskedLanguageModel, dict[str, Any]]:
    """A masked language model trained for `train_config.pretrain_epochs` on `texts`
    (already normalized; read once), and a summary of the run for the manifest.

    Its weights and summary are kept in `work`: a resumed run with the same texts and
    settings reuses them instead of pre-training again, and one whose pre-training was
    stopped resumes it from its last epoch. Batches are a multiple of `replicas` (a
    distribution strategy's) examples.
    """
    window = min(train_config.max_source_length, model_config.max_length)
    windows = encode_windows(texts, tokenizer, window)
    mlm = MaskedLanguageModel(model_config)
    mlm(np.ones((1, 4), np.int32))
    settings = {
        "epochs": train_config.pretrain_epochs,
        "texts": windows.texts,
        "windows": len(windows.starts),
        "window_pieces": window,
        "mask_rate": train_config.mask_rate,
        "texts_sha256": windows.sha256,
    }
    weights, record = work / PRETRAINED_WEIGHTS, work / PRETRAINED_RECORD
    saved = json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
    if saved.get("settings") == settings and saved.get("summary") and weights.exists():
        mlm.load_weights(weights)
        log.info("pre-trained encoder reused from %s", weights)
        return mlm, saved["summary"]
    if saved.get("settings") != settings:
        if saved:
            log.info("pre-training again: the saved encoder had other texts or settings")
        shutil.rmtree(work / PRETRAIN_BACKUP, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"settings": settings, "summary": None}), encoding="utf-8")
    batch_size = max(replicas, train_config.batch_size - train_config.batch_size % replicas)
    batches = masked_batches(
        windows.rows(),
        rate=train_config.mask_rate,
        vocab_size=tokenizer.vocab_size,
        batch_size=batch_size,
        max_length=window,
        seed=train_config.seed,
    )
    optimizer = transformer_optimizer(
        model_config.d_model, train_config.warmup_steps, train_config.learning_rate_scale
    )
    mlm.compile(
        optimizer=optimizer,
        loss=MaskedSequenceLoss(0.0),
        metrics=[MaskedAccuracy(), TokenCount()],
    )
    log.info(
        "pre-training the encoder: %d texts in %d windows of up to %d pieces (%d pieces), "
        "%d epochs, %.0f%% of tokens masked",
        windows.texts,
        len(windows.starts),
        window,
        len(windows.pieces),
        train_config.pretrain_epochs,
        100 * train_config.mask_rate,
    )
    callbacks = [
        ProgressLog(train_config.log_every, unit="masked tokens", what="pre-training epoch"),
        # Kept until the summary is written: a stopped pre-training resumes from its last epoch.
        keras.callbacks.BackupAndRestore(str(work / PRETRAIN_BACKUP), delete_checkpoint=False),
        *callbacks,
    ]
    fit_data, steps = fit_stream(batches)
    history = mlm.fit(
        fit_data,
        epochs=train_config.pretrain_epochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=verbose,
    )
    summary = {
        "epochs": settings["epochs"],
        "texts": settings["texts"],
        "windows": settings["windows"],
        "loss": round(float(history.history["loss"][-1]), 4),
        "masked_token_accuracy": round(float(history.history["accuracy"][-1]), 4),
    }
    mlm.save_weights(weights)
    record.write_text(json.dumps({"settings": settings, "summary": summary}), encoding="utf-8")
    shutil.rmtree(work / PRETRAIN_BACKUP, ignore_errors=True)
    return mlm, summary
