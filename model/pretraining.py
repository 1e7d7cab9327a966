"""Masked-language-model pre-training of a classifier's encoder on unlabeled text.

A classifier trained from scratch on a few tens of thousands of short labeled phrases
overfits within a few epochs. Before it is fitted, its encoder can first learn to predict
masked tokens of the training texts and of any extra unlabeled text (BERT's objective: a
share of the tokens is chosen; 80% of those become <unk>, 10% a random token, 10% stay).
The classifier then starts from the pre-trained embedding, blocks and final norm.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model.config import ModelConfig, TrainConfig
from model.data import PaddedBatches
from model.objectives import MaskedAccuracy, MaskedSequenceLoss, transformer_optimizer
from model.transformer import MaskedLanguageModel
from tokenizers import EOS_ID, PAD_ID, UNK_ID, SubwordTokenizer

log = logging.getLogger(__name__)

FIRST_WORD_ID = EOS_ID + 1  # ids below are padding and special tokens
PRETRAINED_WEIGHTS = "pretrained.weights.h5"
PRETRAINED_RECORD = "pretrained.json"


def mask_tokens(
    ids: np.ndarray, rate: float, rng: np.random.Generator, vocab_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) for a padded id batch: targets hold the chosen tokens, PAD elsewhere."""
    words = (ids != PAD_ID) & (ids != EOS_ID)
    chosen = words & (rng.random(ids.shape) < rate)
    targets = np.where(chosen, ids, PAD_ID).astype(np.int32)
    draw = rng.random(ids.shape)
    inputs = np.where(chosen & (draw < 0.8), UNK_ID, ids)
    swapped = chosen & (draw >= 0.8) & (draw < 0.9)
    random_ids = rng.integers(FIRST_WORD_ID, vocab_size, ids.shape)
    inputs = np.where(swapped, random_ids, inputs).astype(np.int32)
    return inputs, targets


def masked_batches(
    texts_ids: Sequence[list[int]],
    *,
    rate: float,
    vocab_size: int,
    batch_size: int,
    max_length: int,
    seed: int,
) -> PaddedBatches:
    """Fixed-shape batches whose masking is drawn anew for every batch of every epoch."""
    rng = np.random.default_rng(seed)
    rows = [(np.array(ids[:max_length], np.int32),) for ids in texts_ids if ids]
    return PaddedBatches(
        rows,
        length_of=lambda row: len(row[0]),
        batch_size_for=lambda bound: batch_size,
        to_batch=lambda ids: mask_tokens(ids, rate, rng, vocab_size),
        max_length=max_length,
        shuffle=True,
        seed=seed,
    )


def pretrain_encoder(
    texts: Sequence[str],
    tokenizer: SubwordTokenizer,
    model_config: ModelConfig,
    train_config: TrainConfig,
    work: Path,
    *,
    replicas: int = 1,
    verbose: int | str = 2,
) -> tuple[MaskedLanguageModel, dict[str, Any]]:
    """A masked language model trained for `train_config.pretrain_epochs` on `texts`
    (already normalized), and a summary of the run for the manifest.

    Its weights and summary are kept in `work`: a resumed run with the same texts and
    settings reuses them instead of pre-training again. An interrupted pre-training starts
    over. Batches are a multiple of `replicas` (a distribution strategy's) examples.
    """
    unique = list(dict.fromkeys(t for t in texts if t.strip()))
    mlm = MaskedLanguageModel(model_config)
    mlm(np.ones((1, 4), np.int32))
    settings = {
        "epochs": train_config.pretrain_epochs,
        "texts": len(unique),
        "mask_rate": train_config.mask_rate,
        "texts_sha256": hashlib.sha256("\n".join(unique).encode("utf-8")).hexdigest(),
    }
    weights, record = work / PRETRAINED_WEIGHTS, work / PRETRAINED_RECORD
    if weights.exists() and record.exists():
        saved = json.loads(record.read_text(encoding="utf-8"))
        if saved.get("settings") == settings:
            mlm.load_weights(weights)
            log.info("pre-trained encoder reused from %s", weights)
            return mlm, saved["summary"]
        log.info("pre-training again: the saved encoder had other texts or settings")
    batch_size = max(replicas, train_config.batch_size - train_config.batch_size % replicas)
    batches = masked_batches(
        tokenizer.encode_batch(unique),
        rate=train_config.mask_rate,
        vocab_size=tokenizer.vocab_size,
        batch_size=batch_size,
        max_length=min(train_config.max_source_length, model_config.max_length),
        seed=train_config.seed,
    )
    optimizer = transformer_optimizer(
        model_config.d_model, train_config.warmup_steps, train_config.learning_rate_scale
    )
    mlm.compile(optimizer=optimizer, loss=MaskedSequenceLoss(0.0), metrics=[MaskedAccuracy()])
    log.info(
        "pre-training the encoder: %d texts, %d epochs, %.0f%% of tokens masked",
        len(unique),
        train_config.pretrain_epochs,
        100 * train_config.mask_rate,
    )
    history = mlm.fit(batches, epochs=train_config.pretrain_epochs, verbose=verbose)
    summary = {
        "epochs": settings["epochs"],
        "texts": settings["texts"],
        "loss": round(float(history.history["loss"][-1]), 4),
        "masked_token_accuracy": round(float(history.history["accuracy"][-1]), 4),
    }
    mlm.save_weights(weights)
    record.write_text(json.dumps({"settings": settings, "summary": summary}), encoding="utf-8")
    return mlm, summary
