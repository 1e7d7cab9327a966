"""model.calibration: expected calibration error and the temperature fit."""

from __future__ import annotations

import numpy as np
import pytest

from model.calibration import (
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    softmax,
)


def test_ece_on_a_hand_made_example() -> None:
    # Confidences 0.9, 0.9, 0.6, 0.6 (two bins of 15: (0.8667, 0.9333] and (0.5333, 0.6]).
    probabilities = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.4, 0.6]])
    truth = np.array([0, 1, 1, 1])
    # Bin 0.9: both right, gap |1.0 - 0.9| = 0.1; bin 0.6: one of two right, |0.5 - 0.6| = 0.1.
    assert expected_calibration_error(probabilities, truth) == pytest.approx(0.1)
    # Two of three right at 0.9 and one wrong at 0.6: 0.75 * |2/3 - 0.9| + 0.25 * |0 - 0.6|.
    probabilities = np.array([[0.9, 0.1], [0.1, 0.9], [0.1, 0.9], [0.6, 0.4]])
    truth = np.array([0, 1, 0, 1])
    assert expected_calibration_error(probabilities, truth) == pytest.approx(0.325)


def test_ece_is_zero_when_confidence_matches_accuracy_and_for_no_examples() -> None:
    probabilities = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(probabilities, np.array([0, 0, 0, 1])) == pytest.approx(0)
    assert expected_calibration_error(np.zeros((0, 2)), np.zeros(0, int)) == 0.0


def test_a_confidence_on_a_bin_edge_goes_to_the_lower_bin() -> None:
    # 0.6 = 9/15 is the upper edge of bin 9 (0.5333, 0.6]; one wrong, one right there.
    probabilities = np.array([[0.6, 0.4], [0.6, 0.4]])
    assert expected_calibration_error(probabilities, np.array([0, 1])) == pytest.approx(0.1)


def test_the_temperature_of_overconfident_logits_is_above_one_and_lowers_nll_and_ece() -> None:
    rng = np.random.default_rng(0)
    # Probabilities calibrated at temperature 1 are p = sigmoid(z); logits scaled by 3 are
    # over-confident, so the best temperature is near 3.
    z = rng.normal(0, 2, 4000)
    truth = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(int)
    logits = np.stack([np.zeros_like(z), 3 * z], axis=1)
    temperature = fit_temperature(logits, truth)
    assert temperature == pytest.approx(3.0, rel=0.1)
    assert negative_log_likelihood(logits, truth, temperature) < negative_log_likelihood(
        logits, truth, 1.0
    )
    before = expected_calibration_error(softmax(logits), truth)
    after = expected_calibration_error(softmax(logits, temperature), truth)
    assert after < before / 3
    # No prediction changes.
    np.testing.assert_array_equal(softmax(logits, temperature).argmax(1), logits.argmax(1))


def test_softmax_with_a_temperature_flattens_and_sums_to_one() -> None:
    logits = np.array([[2.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(softmax(logits, 2.0)[0], softmax(logits / 2)[0])
    np.testing.assert_allclose(softmax(logits, 2.0).sum(1), 1.0)
    assert softmax(logits, 2.0)[0, 0] < softmax(logits)[0, 0]
