"""model.objectives: padding-masked losses and metrics, and the warmup schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from keras import ops

from model.objectives import (
    MaskedAccuracy,
    MaskedSequenceLoss,
    SmoothedClassLoss,
    TokenCount,
    TransformerSchedule,
)
from tokenizers import PAD_ID

LABELS = np.array([[4, 5, PAD_ID], [6, PAD_ID, PAD_ID]], dtype=np.int32)


def logits(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((2, 3, 8)).astype("float32")


def log_softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def test_sequence_loss_averages_over_real_tokens_only() -> None:
    x = logits()
    expected = -np.mean([log_softmax(x)[0, 0, 4], log_softmax(x)[0, 1, 5], log_softmax(x)[1, 0, 6]])
    loss = float(MaskedSequenceLoss()(LABELS, x))
    assert loss == pytest.approx(expected, rel=1e-5)


def test_sequence_loss_ignores_the_logits_at_padding() -> None:
    x, changed = logits(), logits()
    changed[0, 2] += 100.0
    changed[1, 1:] = -changed[1, 1:]
    assert float(MaskedSequenceLoss(0.1)(LABELS, x)) == pytest.approx(
        float(MaskedSequenceLoss(0.1)(LABELS, changed)), rel=1e-6
    )


def test_label_smoothing_mixes_in_the_uniform_cross_entropy() -> None:
    x = logits()[:, 0]  # (batch, vocab): one label per example
    labels = np.array([4, 6])
    nll = -log_softmax(x)[[0, 1], labels]
    uniform = -log_softmax(x).mean(-1)
    expected = np.mean(0.9 * nll + 0.1 * uniform)
    assert float(SmoothedClassLoss(0.1)(labels, x)) == pytest.approx(expected, rel=1e-5)


def test_masked_accuracy_and_token_count_skip_padding() -> None:
    x = np.full((2, 3, 8), -5.0, dtype="float32")
    x[0, 0, 4] = x[0, 1, 0] = x[1, 0, 6] = 5.0  # right, wrong, right
    x[0, 2, 1] = x[1, 1, 1] = x[1, 2, 1] = 5.0  # padding positions: never counted
    accuracy, count = MaskedAccuracy(), TokenCount()
    accuracy.update_state(LABELS, x)
    count.update_state(LABELS, x)
    assert float(accuracy.result()) == pytest.approx(2 / 3)
    assert float(count.result()) == 3


def test_schedule_warms_up_linearly_then_decays_as_inverse_square_root() -> None:
    schedule = TransformerSchedule(d_model=64, warmup_steps=100, scale=2.0)
    rate = [float(ops.convert_to_numpy(schedule(step))) for step in (0, 49, 99, 399)]
    peak = 2.0 * 64**-0.5 * 100**-0.5
    assert rate[2] == pytest.approx(peak, rel=1e-5)
    assert rate[1] == pytest.approx(peak / 2, rel=1e-5)
    assert rate[3] == pytest.approx(peak / 2, rel=1e-5)
    assert rate[0] < rate[1] < rate[2] > rate[3]
    assert TransformerSchedule.from_config(schedule.get_config()).get_config() == {
        "d_model": 64, "warmup_steps": 100, "scale": 2.0,
    }  # fmt: skip
    assert math.isfinite(rate[0])
