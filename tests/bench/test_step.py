"""bench.step: the per-step cost report of an untrained model of a preset's shape."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from bench.step import app
from model.decoding import DecodeOptions


def test_reports_each_batch_with_steps_that_add_up() -> None:
    args = ["--preset", "tiny", "--batches", "1,3", "--rounds", "1", "--xla", "off"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert [row["batch"] for row in report["batches"]] == [1, 3]
    limit = int(16 * DecodeOptions().max_length_ratio) + DecodeOptions().max_length_offset
    for row in report["batches"]:
        # An untrained model runs on past its first step, and never past the length limit
        # of a 15-piece source (16 with </s>): so there is a time per step to report.
        assert 1 < row["steps"] <= limit
        assert row["ms_per_step"] is not None
        assert row["ms_per_call"] > 0 and row["ms_setup"] > 0 and row["tokens_per_s"] > 0
    assert report["batch1_weight_gb_per_s"] > 0
    assert report["preset"] == "tiny"
    assert "batch 1 reads" in result.output


def test_a_bad_batch_list_is_a_clear_error() -> None:
    for batches in ("1,0", "8,x", ""):
        result = CliRunner().invoke(app, ["--preset", "tiny", "--batches", batches])
        assert result.exit_code == 2
        assert "batch sizes must be positive integers" in result.output
