"""Losses, metrics and the learning-rate schedule used in training."""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from tokenizers import PAD_ID


def _smoothed_nll(labels: Any, logits: Any, smoothing: float) -> Any:
    """Per-position cross-entropy against a label-smoothed target distribution."""
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    labels = ops.cast(labels, "int32")
    nll = -ops.squeeze(ops.take_along_axis(log_probs, ops.expand_dims(labels, -1), axis=-1), -1)
    uniform = -ops.mean(log_probs, axis=-1)
    return (1.0 - smoothing) * nll + smoothing * uniform


@keras.saving.register_keras_serializable(package="nlp")
class MaskedSequenceLoss(keras.losses.Loss):
    """Label-smoothed cross-entropy averaged over the non-padding target tokens."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "masked_loss", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true: Any, y_pred: Any) -> Any:
        mask = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        loss = _smoothed_nll(y_true, y_pred, self.label_smoothing)
        return ops.sum(loss * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="nlp")
class SmoothedClassLoss(keras.losses.Loss):
    """Label-smoothed cross-entropy for one label per example (logits in)."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "class_loss", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true: Any, y_pred: Any) -> Any:
        return _smoothed_nll(y_true, y_pred, self.label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="nlp")
class MaskedAccuracy(keras.metrics.Metric):
    """Token accuracy over non-padding positions, exact across batches."""

    def __init__(self, name: str = "accuracy", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        mask = ops.cast(ops.not_equal(y_true, PAD_ID), "float32")
        hits = ops.cast(
            ops.equal(ops.argmax(y_pred, axis=-1), ops.cast(y_true, "int64")), "float32"
        )
        self.correct.assign_add(ops.sum(hits * mask))
        self.total.assign_add(ops.sum(mask))

    def result(self) -> Any:
        return self.correct / ops.maximum(self.total, 1.0)


@keras.saving.register_keras_serializable(package="nlp")
class TokenCount(keras.metrics.Metric):
    """Target tokens seen this epoch; the progress callback turns it into tokens/s."""

    def __init__(self, name: str = "tokens", **kwargs: Any):
        super().__init__(name=name, **kwargs)
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        self.count.assign_add(ops.sum(ops.cast(ops.not_equal(y_true, PAD_ID), "float32")))

    def result(self) -> Any:
        return ops.convert_to_tensor(self.count)  # a tensor, not the variable (JAX traces it)


@keras.saving.register_keras_serializable(package="nlp")
class TransformerSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """scale * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5), as in the paper."""

    def __init__(self, d_model: int, warmup_steps: int, scale: float = 1.0):
        self.d_model = d_model
        self.warmup_steps = warmup_steps
        self.scale = scale

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32") + 1.0
        warmup = float(self.warmup_steps) ** -1.5
        return self.scale * self.d_model**-0.5 * ops.minimum(ops.rsqrt(step), step * warmup)

    def get_config(self) -> dict[str, Any]:
        return {"d_model": self.d_model, "warmup_steps": self.warmup_steps, "scale": self.scale}


def transformer_optimizer(d_model: int, warmup_steps: int, scale: float) -> keras.Optimizer:
    schedule = TransformerSchedule(d_model, warmup_steps, scale)
    return keras.optimizers.Adam(schedule, beta_1=0.9, beta_2=0.98, epsilon=1e-9, clipnorm=1.0)
