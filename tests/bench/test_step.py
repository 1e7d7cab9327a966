"""bench.step: the per-step cost report of an untrained model of a preset's shape."""

from __future__ import annotations

import json

import pytest
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


def test_the_naive_loop_and_batch_1_decode_the_same_sentences_to_the_same_length() -> None:
    args = ["--preset", "tiny", "--batches", "1,2", "--rounds", "1", "--xla", "off"]
    naive_args = ["--naive-sentences", "3", "--naive-rounds", "2"]
    result = CliRunner().invoke(app, [*args, "--output-tokens", "4", *naive_args])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["output_tokens"] == 4
    assert all(row["steps"] <= 5 for row in report["batches"])  # 4 pieces, then </s>
    naive = report["naive"]
    assert naive["sentences"] == 3 and 3 <= naive["tokens"] <= 3 * 5
    assert naive["outputs_that_differ"] == 0 and naive["rounds"] == 2
    assert naive["cached_b1_vs_naive"] == pytest.approx(
        naive["cached_b1_tokens_per_s"] / naive["naive_tokens_per_s"], abs=0.01
    )
    assert "naive loop, batch 1, 3 sentences" in result.output


def test_a_non_positive_output_length_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["--preset", "tiny", "--output-tokens", "0"])
    assert result.exit_code == 2
    assert "--output-tokens must be positive" in result.output
