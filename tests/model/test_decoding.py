"""model.decoding: the cached greedy and beam search against a naive loop."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from model.config import ModelConfig
from model.decoding import (
    MAX_BEAM_SIZE,
    DecodeOptions,
    Decoder,
    Hypothesis,
    _hypotheses,
    attention_maps,
)
from model.transformer import Seq2SeqTransformer
from tokenizers import BOS_ID, EOS_ID, PAD_ID

SHORT_LIMITS = {"max_length_ratio": 1.0, "max_length_offset": 3}
SHORT = DecodeOptions(**SHORT_LIMITS)  # keeps the naive loop short


def random_sources(lengths: list[int], vocab_size: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(EOS_ID + 1, vocab_size, size=n).tolist() for n in lengths]


def length_limit(model: Seq2SeqTransformer, source: list[int], options: DecodeOptions) -> int:
    """Output tokens allowed, </s> included (the Decoder's documented caps)."""
    by_source = int((len(source) + 1) * options.max_length_ratio) + options.max_length_offset
    return min(options.max_length, model.model_config.max_length - 1, by_source)


@functools.cache
def full_pass(model: Seq2SeqTransformer) -> Any:
    """The teacher-forced model as one graph for every shape (eager calls are slow)."""
    spec = tf.TensorSpec([1, None], tf.int32)
    return tf.function(lambda src, tgt: model((src, tgt)), input_signature=[spec, spec])


def naive_greedy(
    model: Seq2SeqTransformer, source: list[int], options: DecodeOptions
) -> tuple[list[int], float]:
    """A full forward pass over the whole prefix per step; returns ids and mean log-prob."""
    limit = length_limit(model, source, options)
    src = tf.constant([[*source, EOS_ID]], dtype=tf.int32)
    prefix, total = [BOS_ID], 0.0
    for step in range(limit):
        logits = ops.convert_to_numpy(
            full_pass(model)(src, tf.constant([prefix], dtype=tf.int32))[0, -1]
        ).astype("float64")
        logits[[PAD_ID, BOS_ID]] = -np.inf  # never emitted: a distribution over the rest
        log_probs = logits - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
        token = EOS_ID if step == limit - 1 else int(np.argmax(log_probs))
        total += float(log_probs[token])
        prefix.append(token)
        if token == EOS_ID:
            break
    generated = prefix[1:]
    return [t for t in generated if t != EOS_ID], total / len(generated)


@pytest.fixture(scope="module")
def decoder(seq2seq: Seq2SeqTransformer) -> Decoder:
    return Decoder(seq2seq)


def test_cached_greedy_equals_a_naive_loop_over_the_full_prefix(
    seq2seq: Seq2SeqTransformer, decoder: Decoder
) -> None:
    sources = random_sources([1, 5, 11], seq2seq.model_config.vocab_size)
    hypotheses = decoder.translate(sources, SHORT)
    for source, [hypothesis] in zip(sources, hypotheses, strict=True):
        ids, score = naive_greedy(seq2seq, source, SHORT)
        assert hypothesis.ids == ids
        assert hypothesis.score == pytest.approx(score, rel=1e-4, abs=1e-5)


def test_greedy_never_emits_padding_or_bos(decoder: Decoder, tiny_config: ModelConfig) -> None:
    sources = random_sources([3, 8, 2, 6], tiny_config.vocab_size, seed=1)
    for [hypothesis] in decoder.translate(sources):
        assert hypothesis.ids
        assert not {PAD_ID, BOS_ID, EOS_ID} & set(hypothesis.ids)


def test_greedy_traces_once_for_many_batch_shapes(seq2seq: Seq2SeqTransformer) -> None:
    decoder = Decoder(seq2seq)
    for size, length in ((1, 3), (3, 9), (7, 17)):
        sources = random_sources([length] * size, seq2seq.model_config.vocab_size, seed=size)
        assert len(decoder.translate(sources, SHORT)) == size
    assert decoder.traces == 1


def test_batch_results_do_not_depend_on_batch_neighbours(
    decoder: Decoder, tiny_config: ModelConfig
) -> None:
    sources = random_sources([2, 13, 5], tiny_config.vocab_size, seed=2)
    together = decoder.translate(sources, SHORT)
    alone = [decoder.translate([source], SHORT)[0] for source in sources]
    assert [[h.ids for h in n] for n in together] == [[h.ids for h in n] for n in alone]


def test_one_shape_agnostic_graph_serves_every_beam_size(seq2seq: Seq2SeqTransformer) -> None:
    decoder = Decoder(seq2seq)
    sources = random_sources([3, 7], seq2seq.model_config.vocab_size, seed=4)
    for k in (2, 3, MAX_BEAM_SIZE):
        nbests = decoder.translate(
            sources, DecodeOptions(beam_size=k, num_return=k, **SHORT_LIMITS)
        )
        assert [len(nbest) for nbest in nbests] == [k, k]
        for nbest in nbests:
            scores = [h.score for h in nbest]
            assert len({tuple(h.ids) for h in nbest}) == k  # k distinct hypotheses
            assert all(np.isfinite(scores))
    assert decoder.traces == 1  # traced once, by the first beam size


def test_beam_loop_of_width_one_equals_greedy(
    decoder: Decoder, tiny_config: ModelConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = random_sources([4, 7], tiny_config.vocab_size, seed=3)
    calls: list[tuple[Any, ...]] = []
    greedy_graph = decoder._greedy
    monkeypatch.setattr(decoder, "_greedy", lambda *args: calls.append(args) or greedy_graph(*args))
    greedy = decoder.translate(sources, SHORT)
    [inputs] = calls  # source ids, limits, loop length
    tokens, totals, lengths = decoder._beam(*inputs, tf.constant(0.6), tf.constant(1))
    beam = _hypotheses(tokens.numpy(), totals.numpy(), lengths.numpy(), SHORT)
    for [g], [b] in zip(greedy, beam, strict=True):
        assert b.ids == g.ids
        assert b.score == pytest.approx(g.score, rel=1e-5)


def penalized(hypothesis: Hypothesis, alpha: float) -> float:
    length = len(hypothesis.ids) + 1  # </s> counts
    return hypothesis.score * length / ((5 + length) / 6) ** alpha


def test_n_best_returns_num_return_hypotheses_sorted_by_ranking_score(
    decoder: Decoder, tiny_config: ModelConfig
) -> None:
    options = DecodeOptions(beam_size=3, num_return=3, max_length_offset=4)
    sources = random_sources([3, 9], tiny_config.vocab_size, seed=4)
    for nbest in decoder.translate(sources, options):
        assert len(nbest) == 3
        ranking = [h.ranking_score for h in nbest]
        assert ranking == sorted(ranking, reverse=True)
        assert len({tuple(h.ids) for h in nbest}) == 3  # distinct hypotheses
        for hypothesis in nbest:
            assert not {PAD_ID, BOS_ID, EOS_ID} & set(hypothesis.ids)
            assert hypothesis.ranking_score == pytest.approx(
                penalized(hypothesis, options.length_penalty), rel=1e-4
            )


def test_beam_search_returns_one_hypothesis_unless_asked_for_more(
    decoder: Decoder, tiny_config: ModelConfig
) -> None:
    sources = random_sources([5], tiny_config.vocab_size, seed=5)
    [nbest] = decoder.translate(sources, DecodeOptions(beam_size=3, max_length_offset=2))
    assert len(nbest) == 1 and nbest[0].ids


@pytest.mark.parametrize("beam_size", [1, 3])
def test_max_length_caps_the_output(decoder: Decoder, tiny_config: ModelConfig, beam_size: int):
    sources = random_sources([2, 6, 12], tiny_config.vocab_size, seed=6)
    hard_cap = DecodeOptions(beam_size=beam_size, max_length=3)
    for [best] in (n[:1] for n in decoder.translate(sources, hard_cap)):
        assert len(best.ids) <= 2  # plus </s>
    by_source = DecodeOptions(beam_size=beam_size, max_length_ratio=1.0, max_length_offset=0)
    lengths = [len(n[0].ids) for n in decoder.translate(sources, by_source)]
    assert all(n <= len(s) for n, s in zip(lengths, sources, strict=True))
    assert lengths[-1] == len(sources[-1])  # an untrained model runs to the cap


def test_sources_longer_than_the_model_are_truncated_and_capped(
    decoder: Decoder, tiny_config: ModelConfig
) -> None:
    [long_source] = random_sources([3 * tiny_config.max_length], tiny_config.vocab_size)
    [[hypothesis]] = decoder.translate([long_source])
    assert 0 < len(hypothesis.ids) <= tiny_config.max_length - 2  # position table, </s>


def test_no_sources_give_no_hypotheses(decoder: Decoder) -> None:
    assert decoder.translate([]) == []


@pytest.mark.parametrize("beam_size", [0, MAX_BEAM_SIZE + 1])
def test_decode_options_reject_beam_sizes_out_of_range(beam_size: int) -> None:
    with pytest.raises(ValueError, match="beam_size"):
        DecodeOptions(beam_size=beam_size)


def test_decode_options_reject_more_returns_than_beams() -> None:
    with pytest.raises(ValueError, match="num_return"):
        DecodeOptions(beam_size=2, num_return=3)


def test_decode_options_reject_non_positive_max_length() -> None:
    with pytest.raises(ValueError, match="max_length"):
        DecodeOptions(max_length=0)


def test_attention_maps_are_layer_head_query_key_distributions(
    seq2seq: Seq2SeqTransformer, tiny_config: ModelConfig
) -> None:
    maps = attention_maps(seq2seq, [5, 6, 7], [8, 9])
    layers, heads = tiny_config.encoder_layers, tiny_config.num_heads
    assert maps["encoder"].shape == (layers, heads, 4, 4)  # pieces + </s>
    assert maps["decoder"].shape == (tiny_config.decoder_layers, heads, 3, 3)  # <s> + pieces
    assert maps["cross"].shape == (tiny_config.decoder_layers, heads, 3, 4)
    for weights in maps.values():
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)
    assert np.all(np.triu(maps["decoder"], k=1) < 1e-6)  # causal
