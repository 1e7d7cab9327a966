"""The benchmark's own arithmetic: what it divides by must be right for its figures to be."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from bench import measure
from bench.naive import NaiveGreedy
from model.config import ModelConfig
from model.decoding import DecodeOptions, Decoder
from model.transformer import Seq2SeqTransformer, build_model
from tokenizers import EOS_ID

SHORT = DecodeOptions(max_length_ratio=1.0, max_length_offset=3)


def _tiny_model(vocab_size: int, decoder_layers: int, seed: int) -> Seq2SeqTransformer:
    config = ModelConfig(
        vocab_size=vocab_size, d_model=16, num_heads=2, d_ff=24, encoder_layers=1,
        decoder_layers=decoder_layers, dropout=0.0, max_length=32,
    )  # fmt: skip
    keras.utils.set_random_seed(seed)
    model = build_model(config)
    assert isinstance(model, Seq2SeqTransformer)
    return model


def test_weight_bytes_per_step_counts_what_a_cached_step_reads() -> None:
    model = _tiny_model(vocab_size=50, decoder_layers=2, seed=3)
    config = model.model_config
    d, f, v = config.d_model, config.d_ff, config.vocab_size
    per_layer = (
        4 * (d * d + d)  # self-attention query, key, value and output, with biases
        + 2 * (d * d + d)  # cross-attention query and output (its keys/values: once a batch)
        + (d * f + f)
        + (f * d + d)  # feed-forward
        + 3 * 2 * d  # three layer norms
    )
    expected = 4 * (config.decoder_layers * per_layer + 2 * d + v * d)  # + final norm, output
    assert measure.weight_bytes_per_step(model) == expected


def _tiny_decoder() -> tuple[Decoder, NaiveGreedy, list[list[int]]]:
    model = _tiny_model(vocab_size=40, decoder_layers=1, seed=5)
    rng = np.random.default_rng(5)
    sources = [rng.integers(EOS_ID + 1, 40, size=n).tolist() for n in (3, 9, 5)]
    return Decoder(model), NaiveGreedy(model, SHORT), sources


def test_paired_timing_runs_naive_and_cached_on_each_sentence_in_turns() -> None:
    decoder, naive, sources = _tiny_decoder()
    calls: list[tuple[str, tuple[int, ...]]] = []
    naive_translate, cached_translate = naive.translate, decoder.translate

    def spy_naive(source: list[int]) -> list[int]:
        calls.append(("naive", tuple(source)))
        return naive_translate(source)

    def spy_cached(batch: list[list[int]], options: DecodeOptions) -> Any:
        calls.append(("cached", tuple(batch[0])))
        return cached_translate(batch, options)

    naive.translate = spy_naive  # type: ignore[method-assign]
    decoder.translate = spy_cached  # type: ignore[method-assign]
    paired = measure.time_paired(naive, decoder, sources, SHORT, rounds=2)

    timed = calls[-2 * 2 * len(sources) :]  # after the warm-up calls
    first = [timed[i][0] for i in range(0, len(timed), 2)]
    # Sentence by sentence, both sides back to back; which goes first alternates, and the
    # second round starts where the first did not.
    assert first == ["naive", "cached", "naive", "cached", "naive", "cached"]
    assert [timed[i][1] for i in range(0, len(timed), 2)] == [tuple(s) for s in sources] * 2
    assert all(timed[i][1] == timed[i + 1][1] for i in range(0, len(timed), 2))

    assert paired.naive.outputs == paired.cached.outputs  # the same greedy output
    assert paired.naive.tokens == paired.cached.tokens
    assert len(paired.speedups) == len(sources) and all(s > 0 for s in paired.speedups)
    assert paired.tokens_per_s_ratio == pytest.approx(
        paired.naive.wall_s / paired.cached.wall_s
    )  # same tokens on both sides: the ratio of the summed times
    summary = paired.summary()
    assert summary["outputs_that_differ"] == 0 and summary["rounds"] == 2
    assert summary["per_sentence_speedup_p10"] <= summary["per_sentence_speedup_median"]
    assert summary["per_sentence_speedup_median"] <= summary["per_sentence_speedup_p90"]


def test_paired_timing_traces_the_graph_before_it_times() -> None:
    model = _tiny_model(vocab_size=40, decoder_layers=1, seed=6)
    decoder = Decoder(model)
    rng = np.random.default_rng(6)
    sources = [rng.integers(EOS_ID + 1, 40, size=n).tolist() for n in (3, 9, 4)]
    paired = measure.time_paired(NaiveGreedy(model, SHORT), decoder, sources, SHORT)
    assert paired.cached.traces_warmup == 1  # one graph for every shape
    assert paired.cached.traces_timed == 0
    assert paired.naive.traces_timed == 0  # one graph for every prefix length
    assert paired.naive.outputs == paired.cached.outputs


def test_paired_timing_needs_a_round_and_a_sentence() -> None:
    decoder, naive, sources = _tiny_decoder()
    with pytest.raises(ValueError, match="rounds must be positive"):
        measure.time_paired(naive, decoder, sources, SHORT, rounds=0)
    with pytest.raises(ValueError, match="no sentences"):
        measure.time_paired(naive, decoder, [], SHORT)


def test_a_setting_timed_in_several_rounds_reports_their_mean() -> None:
    runs = [
        measure.Run("cached greedy", 8, [[5, 6], [7]], wall, 1.0, traced, 0)
        for wall, traced in ((2.0, 3), (4.0, 0), (3.0, 0))
    ]
    run = measure.averaged(runs)
    assert run.wall_s == pytest.approx(3.0)
    assert (run.name, run.batch, run.outputs) == ("cached greedy", 8, [[5, 6], [7]])
    assert run.warmup_s == pytest.approx(3.0) and run.traces_warmup == 3
    assert run.tokens_per_s == pytest.approx(5 / 3.0)  # </s> counts: 3 + 2 tokens
