"""bench.decode: the naive loop, cached greedy and beam search side by side on an artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench import measure
from bench.decode import GREEDY_BATCHES, TARGETS, app
from model.decoding import DecodeOptions


@pytest.mark.slow
def test_reports_every_setting_and_the_targets_from_one_run(
    trained_root: Path, corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    timed: list[tuple[int, int]] = []
    time_cached = measure.time_cached

    def spy(decoder: Any, sources: Any, batch: int, options: DecodeOptions, name: str) -> Any:
        timed.append((batch, options.beam_size))
        return time_cached(decoder, sources, batch, options, name)

    monkeypatch.setattr(measure, "time_cached", spy)
    args = [
        "--artifact", str(trained_root / "translation" / "en-de"),
        "--source-file", str(corpus_dir / "val.en.gz"),
        "--reference-file", str(corpus_dir / "val.de.gz"),
        "--naive-sentences", "4", "--rounds", "2", "--matmul-size", "64",
        "--json-out", str(tmp_path / "decode.json"),
    ]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    # Two rounds, each setting once per round, in rotation.
    one_round = [*((batch, 1) for batch in GREEDY_BATCHES), (32, 4)]
    assert timed == one_round * 2
    report = json.loads((tmp_path / "decode.json").read_text())
    assert report["rounds"] == 2 and report["sentences"] == 40
    settings = [(run["setting"], run["batch"]) for run in report["runs"]]
    assert settings == [
        ("naive greedy", 1),
        ("cached greedy (paired)", 1),
        *(("cached greedy", batch) for batch in GREEDY_BATCHES),
        ("beam 4", 32),
    ]
    naive, paired, *rest = report["runs"]
    assert naive["sentences"] == paired["sentences"] == 4
    assert all(run["sentences"] == 40 for run in rest)
    assert all(run["traces_timed"] == 0 for run in report["runs"])

    subset = report["naive_subset"]
    # Greedy is greedy: the naive loop and the cached decoder agree on every sentence.
    assert subset["outputs_that_differ"] == 0
    assert subset["naive_bleu"] == subset["cached_greedy_b1_bleu"]
    # The batch-1 target is read on the naive loop's own sentences, timed in turns.
    ratios = report["ratios"]
    assert ratios["greedy_b1_vs_naive_tokens_per_s"] == subset["cached_b1_vs_naive"]
    assert subset["cached_b1_vs_naive"] == pytest.approx(
        paired["tokens_per_s"] / naive["tokens_per_s"], abs=0.02
    )
    greedy = {run["batch"]: run for run in rest if run["setting"] == "cached greedy"}
    assert ratios["greedy_b64_vs_b1_tokens_per_s"] == pytest.approx(
        greedy[64]["tokens_per_s"] / greedy[1]["tokens_per_s"], abs=0.02
    )
    for name, op, bound in TARGETS:
        target = report["targets"][name]
        assert target["target"] == f"{op} {bound:g}"
        assert target["met"] == (
            target["value"] >= bound if op == ">=" else target["value"] <= bound
        )
    assert "timed in turns, mean of 2" in result.output
