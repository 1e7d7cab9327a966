"""model.reporting: throughput in the training history counts training batches only."""

from __future__ import annotations

import pytest

from model import reporting
from model.reporting import TokensPerSecond


def test_epoch_throughput_is_the_training_count_over_the_training_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = iter([0.0, 0.0, 10.0, 20.0, 50.0])  # begin, two batches, epoch end after val
    monkeypatch.setattr(reporting.time, "perf_counter", lambda: next(clock))
    callback = TokensPerSecond()
    callback.on_epoch_begin(0)
    first = {"loss": 3.0, "tokens": 1000.0}
    callback.on_train_batch_end(0, first)
    assert first == {"loss": 3.0, "tokens_per_sec": 100.0}
    callback.on_train_batch_end(1, {"tokens": 4000.0})
    # Keras' epoch-end logs may carry the validation pass's count under `tokens`.
    end = {"loss": 2.0, "tokens": 207_000.0, "val_tokens": 207_000.0, "val_loss": 2.5}
    callback.on_epoch_end(0, end)
    assert end == {"loss": 2.0, "val_loss": 2.5, "epoch_seconds": 50.0, "tokens_per_sec": 200.0}


@pytest.mark.parametrize(
    ("logs", "expected"),
    [
        ({"loss": 2.0, "tokens": 6000.0}, "loss 2.0000, 200 target tokens/s, epoch ends"),
        # A classifier counts no tokens: no rate rather than a false "0 target tokens/s".
        ({"loss": 0.5}, "loss 0.5000, epoch ends"),
    ],
)
def test_progress_line_shows_a_rate_only_when_tokens_are_counted(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, logs: dict, expected: str
) -> None:
    clock = iter([0.0, 0.0, 30.0])  # made, epoch begin, the batch 30 s later
    monkeypatch.setattr(reporting.time, "perf_counter", lambda: next(clock))
    progress = reporting.ProgressLog(10.0)
    progress.set_params({"steps": 100})
    progress.on_epoch_begin(0)
    with caplog.at_level("INFO", logger=reporting.log.name):
        progress.on_train_batch_end(49, logs)
    assert caplog.messages == [f"epoch 1 step 50/100: {expected} in ~0.5 min"]
