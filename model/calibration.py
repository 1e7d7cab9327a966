"""Calibration of a classifier's probabilities: expected calibration error and temperature.

A classifier trained with cross-entropy on one corpus is often over-confident on another;
dividing its logits by one temperature, fit on validation data, fixes most of it without
changing any prediction (Guo et al., 2017, "On Calibration of Modern Neural Networks").
"""

from __future__ import annotations

import math

import numpy as np

ECE_BINS = 15
# Temperatures searched: e^-3 (sharper) to e^3 (flatter); the fit stays inside the range.
LOG_T_RANGE = (-3.0, 3.0)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, in float64."""
    scaled = np.asarray(logits, np.float64) / temperature
    exp = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def expected_calibration_error(
    probabilities: np.ndarray, truth: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Mean gap between confidence and accuracy over equal-width confidence bins, each
    weighted by its share of the examples (bins are (lo, hi], the first [0, hi])."""
    probabilities, truth = np.asarray(probabilities), np.asarray(truth)
    if not len(truth):
        return 0.0
    confidence = probabilities.max(axis=-1)
    correct = probabilities.argmax(axis=-1) == truth
    slot = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = slot == b
        if members.any():
            gap = abs(float(correct[members].mean()) - float(confidence[members].mean()))
            total += members.mean() * gap
    return float(total)


def negative_log_likelihood(logits: np.ndarray, truth: np.ndarray, temperature: float) -> float:
    probabilities = softmax(logits, temperature)
    picked = probabilities[np.arange(len(truth)), np.asarray(truth)]
    return float(-np.mean(np.log(np.maximum(picked, 1e-300))))


def fit_temperature(logits: np.ndarray, truth: np.ndarray, steps: int = 60) -> float:
    """The temperature of least negative log-likelihood: a grid over log T, then a
    golden-section search between the best grid point's neighbours."""
    if not len(truth):
        return 1.0

    def loss(log_t: float) -> float:
        return negative_log_likelihood(logits, truth, math.exp(log_t))

    low, high = LOG_T_RANGE
    grid = np.linspace(low, high, 61)
    best = int(np.argmin([loss(x) for x in grid]))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(steps):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if loss(c) < loss(d):
            b = d
        else:
            a = c
    return round(math.exp((a + b) / 2), 4)
