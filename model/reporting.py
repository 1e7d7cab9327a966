"""Training callbacks and the curves plot written into every artifact."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

log = logging.getLogger(__name__)


class TokensPerSecond(keras.callbacks.Callback):
    """Replaces the `tokens` count metric by throughput in the progress bar and history.

    The epoch's figure is the training batches' own count over the training time: at the
    epoch's end the `tokens` entry Keras hands over may be the validation pass's count, and
    the epoch's time includes that pass."""

    def __init__(self) -> None:
        super().__init__()
        self._start = time.perf_counter()
        self._tokens, self._seconds = 0.0, 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()
        self._tokens, self._seconds = 0.0, 0.0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if logs and "tokens" in logs:
            self._seconds = max(time.perf_counter() - self._start, 1e-6)
            self._tokens = float(logs.pop("tokens"))
            logs["tokens_per_sec"] = self._tokens / self._seconds

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        logs.pop("val_tokens", None)
        logs.pop("tokens", None)
        logs["epoch_seconds"] = time.perf_counter() - self._start
        if self._seconds:
            logs["tokens_per_sec"] = self._tokens / self._seconds


class ProgressLog(keras.callbacks.Callback):
    """Every `seconds`, one log line: epoch, step, loss, target tokens/s (when counted) and
    when the epoch should end. Keras' own progress bar shows only on a terminal; this goes to
    the log file.

    The epoch's share done comes from the step count when Keras knows it, else from the
    target tokens seen against `epoch_tokens` (tf.data pipelines of unknown length).
    Place it before TokensPerSecond, which replaces the `tokens` count it reads.
    """

    def __init__(
        self,
        seconds: float,
        epoch_tokens: int | None = None,
        *,
        unit: str = "target tokens",
        what: str = "epoch",
    ) -> None:
        super().__init__()
        self.seconds = seconds
        self.epoch_tokens = epoch_tokens
        self.unit = unit  # what the `tokens` metric counts
        self.what = what  # what the line calls an epoch (training, pre-training)
        self._start = self._last = time.perf_counter()
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = self._last = time.perf_counter()
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        if self.seconds <= 0 or now - self._last < self.seconds:
            return
        self._last = now
        logs = logs or {}
        elapsed = now - self._start
        tokens = float(logs.get("tokens", 0.0))
        # Classifiers count no tokens: their line has no rate rather than a false zero.
        rate = f", {tokens / elapsed:.0f} {self.unit}/s" if "tokens" in logs else ""
        steps = (self.params or {}).get("steps")
        done = (
            (batch + 1) / steps if steps else tokens / self.epoch_tokens if self.epoch_tokens else 0
        )
        remaining = f", epoch ends in ~{elapsed * (1 - done) / done / 60:.1f} min" if done else ""
        log.info(
            "%s %d step %d%s: loss %.4f%s%s",
            self.what,
            self._epoch,
            batch + 1,
            f"/{steps}" if steps else "",
            float(logs.get("loss", float("nan"))),
            rate,
            remaining,
        )


class TimeBudget(keras.callbacks.Callback):
    """Stops training after the first epoch that ends past the wall-clock budget."""

    def __init__(self, minutes: float) -> None:
        super().__init__()
        self.seconds = minutes * 60
        self._start = time.perf_counter()
        self.stopped_early = False

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if time.perf_counter() - self._start > self.seconds:
            log.info(
                "time budget of %.0f minutes reached after epoch %d", self.seconds / 60, epoch + 1
            )
            self.model.stop_training = True
            self.stopped_early = epoch + 1 < self.params.get("epochs", epoch + 2)


class EpochWeights(keras.callbacks.Callback):
    """Keeps every epoch's weights and its validation score, for selection and averaging.

    `monitor` is a Keras log name (val_loss for translation, val_accuracy for classifiers,
    whose goal is accuracy); `higher_is_better` says which way it improves.
    """

    def __init__(self, folder: Path, monitor: str = "val_loss", higher_is_better: bool = False):
        super().__init__()
        self.folder = folder
        self.monitor = monitor
        self.higher_is_better = higher_is_better
        folder.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.model.save_weights(self.folder / f"epoch_{epoch + 1:03d}.weights.h5")
        logs = logs or {}
        record = {key: float(value) for key, value in logs.items()}
        record.update(epoch=epoch + 1, score=float(logs.get(self.monitor, "nan")))
        with (self.folder / "epochs.jsonl").open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def best(self, count: int) -> list[Path]:
        """Weight files of the `count` epochs with the best monitored validation score."""
        path = self.folder / "epochs.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        # A resumed run rewrites epochs; logs of older runs recorded val_loss only.
        latest = {r["epoch"]: r.get("score", r.get("val_loss")) for r in map(json.loads, lines)}
        sign = -1.0 if self.higher_is_better else 1.0
        ranked = sorted(latest.items(), key=lambda item: sign * item[1])[:count]
        return [self.folder / f"epoch_{epoch:03d}.weights.h5" for epoch, _ in ranked]


def average_weights(model: keras.Model, files: list[Path]) -> None:
    """Sets the model's weights to the mean of the given checkpoints."""
    total = None
    for file in files:
        model.load_weights(file)
        weights = [w.astype("float64") for w in model.get_weights()]
        total = weights if total is None else [a + b for a, b in zip(total, weights, strict=True)]
    assert total is not None
    model.set_weights([(w / len(files)).astype("float32") for w in total])


def plot_curves(history: dict[str, list[float]], path: Path, title: str) -> None:
    """Training and validation loss and accuracy per epoch. Series may differ in length
    (a resumed run may know only the validation loss of its earlier epochs): each series
    is drawn against its last epochs."""
    panels = [n for n in ("loss", "accuracy") if n in history or f"val_{n}" in history]
    epochs = max((len(v) for v in history.values()), default=0)
    figure, axes = plt.subplots(
        1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 3.6), squeeze=False
    )
    for axis, name in zip(axes[0], panels, strict=False):
        for key, label in ((name, "training"), (f"val_{name}", "validation")):
            values = history.get(key, [])
            if values:
                first = epochs - len(values) + 1
                axis.plot(range(first, epochs + 1), values, marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
