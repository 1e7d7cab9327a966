"""model.decoding: the cached, compiled greedy and beam search against a naive loop."""

from __future__ import annotations

import functools
import re
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
    attention_maps,
    batch_bucket,
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
        logits = full_pass(model)(src, tf.constant([prefix], dtype=tf.int32))[0, -1]
        log_probs = ops.convert_to_numpy(ops.log_softmax(logits))
        allowed = log_probs.copy()
        allowed[[PAD_ID, BOS_ID]] = -np.inf
        token = EOS_ID if step == limit - 1 else int(np.argmax(allowed))
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


def test_greedy_compiles_once_for_many_batch_shapes(seq2seq: Seq2SeqTransformer) -> None:
    kinds: list[str] = []
    decoder = Decoder(seq2seq, on_compile=kinds.append)
    for size, length in ((1, 3), (3, 9), (7, 17)):
        sources = random_sources([length] * size, seq2seq.model_config.vocab_size, seed=size)
        assert len(decoder.translate(sources, SHORT)) == size
    assert decoder.compilations == 1
    assert kinds == ["greedy"]


def test_batch_results_do_not_depend_on_batch_neighbours(
    decoder: Decoder, tiny_config: ModelConfig
) -> None:
    sources = random_sources([2, 13, 5], tiny_config.vocab_size, seed=2)
    together = decoder.translate(sources, SHORT)
    alone = [decoder.translate([source], SHORT)[0] for source in sources]
    assert [[h.ids for h in n] for n in together] == [[h.ids for h in n] for n in alone]


def test_one_shape_agnostic_graph_serves_every_beam_size(seq2seq: Seq2SeqTransformer) -> None:
    kinds: list[str] = []
    decoder = Decoder(seq2seq, on_compile=kinds.append)
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
    assert kinds == ["beam"]  # traced once, by the first beam size


def test_beam_loop_of_width_one_equals_greedy(decoder: Decoder, tiny_config: ModelConfig) -> None:
    sources = random_sources([4, 7], tiny_config.vocab_size, seed=3)
    greedy = decoder.translate(sources, SHORT)
    shape = decoder.shape_of(sources, SHORT)
    inputs = decoder._prepare(sources, SHORT, len(sources), shape.source_len, shape.loop_len)
    tokens, totals, lengths = decoder._beam_loop(*inputs, beam_size=1)
    beam = Decoder._hypotheses(tokens.numpy(), totals.numpy(), lengths.numpy(), len(sources), SHORT)
    for [g], [b] in zip(greedy, beam, strict=True):
        assert b.ids == g.ids
        assert b.score == pytest.approx(g.score, rel=1e-5)


# XLA: the compiled loops are specialized per bucketed shape.


def test_a_cache_grown_in_segments_decodes_as_the_naive_loop(
    seq2seq: Seq2SeqTransformer,
) -> None:
    growing = Decoder(seq2seq, cache_segments=(2, 5))  # outputs of ~10 tokens cross both
    sources = random_sources([4, 9], seq2seq.model_config.vocab_size, seed=3)
    for source, [hypothesis] in zip(sources, growing.translate(sources, SHORT), strict=True):
        ids, score = naive_greedy(seq2seq, source, SHORT)
        assert len(ids) > 5
        assert hypothesis.ids == ids
        assert hypothesis.score == pytest.approx(score, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("xla", ["off", "on"])
def test_beam_search_is_the_same_whatever_the_cache_segments(
    seq2seq: Seq2SeqTransformer, xla: str
) -> None:
    sources = random_sources([3, 12, 7], seq2seq.model_config.vocab_size, seed=8)
    options = DecodeOptions(beam_size=3, num_return=3, max_length_offset=4)
    whole = Decoder(seq2seq, cache_segments=())  # one cache of the loop's length
    growing = Decoder(seq2seq, xla=xla, cache_segments=(1, 4, 9))  # type: ignore[arg-type]
    expected, got = whole.translate(sources, options), growing.translate(sources, options)
    assert [[h.ids for h in n] for n in got] == [[h.ids for h in n] for n in expected]
    assert [h.score for n in got for h in n] == pytest.approx(
        [h.score for n in expected for h in n], rel=1e-4
    )


@pytest.mark.parametrize("segments", [(16, 8), (0, 8), (8, 8)])
def test_cache_segments_must_be_increasing_positive_sizes(
    seq2seq: Seq2SeqTransformer, segments: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError, match="cache_segments must be increasing positive sizes"):
        Decoder(seq2seq, cache_segments=segments)


@pytest.mark.parametrize("rows, floor", [(1, 16), (64, 0)])
def test_compaction_needs_two_rows_and_a_positive_floor(
    seq2seq: Seq2SeqTransformer, rows: int, floor: int
) -> None:
    with pytest.raises(ValueError, match="compact_rows must be at least 2"):
        Decoder(seq2seq, compact_rows=rows, compact_floor=floor)


@pytest.fixture(scope="module")
def xla_decoder(seq2seq: Seq2SeqTransformer) -> Decoder:
    return Decoder(seq2seq, xla="on")


def ids_and_scores(nbests: list[list[Hypothesis]]) -> tuple[list[list[int]], list[float]]:
    return [n[0].ids for n in nbests], [n[0].score for n in nbests]


@pytest.mark.parametrize("beam_size", [1, 3])
def test_xla_loops_translate_as_the_shape_agnostic_graph(
    decoder: Decoder, xla_decoder: Decoder, tiny_config: ModelConfig, beam_size: int
) -> None:
    sources = random_sources([3, 11, 6], tiny_config.vocab_size, seed=7)
    options = DecodeOptions(beam_size=beam_size, max_length_offset=4)
    ids, scores = ids_and_scores(decoder.translate(sources, options))
    xla_ids, xla_scores = ids_and_scores(xla_decoder.translate(sources, options))
    assert xla_ids == ids
    assert xla_scores == pytest.approx(scores, rel=1e-4)


def test_a_single_sentence_under_xla_decodes_as_the_naive_loop(
    seq2seq: Seq2SeqTransformer, xla_decoder: Decoder
) -> None:
    # A batch of one: XLA's one-row matrix-vector products (see MultiHeadAttention.step_kernels).
    for source in random_sources([1, 4, 9], seq2seq.model_config.vocab_size, seed=12):
        [[hypothesis]] = xla_decoder.translate([source], SHORT)
        ids, score = naive_greedy(seq2seq, source, SHORT)
        assert hypothesis.ids == ids
        assert hypothesis.score == pytest.approx(score, rel=1e-4, abs=1e-5)
        assert xla_decoder.shape_of([source], SHORT).batch == 1


@pytest.mark.parametrize(("sentences", "beam_size"), [(1, 1), (3, 1), (2, 4)])
def test_an_xla_step_keeps_its_matrix_products_out_of_plain_loops(
    xla_decoder: Decoder, sentences: int, beam_size: int
) -> None:
    # XLA's CPU backend emits a matrix product fused into a loop fusion as plain nested
    # loops, several times slower than its matrix-vector routine. A one-row step invites
    # such fusions: of a kernel reshaped inside the loop, of the transposed output matrix.
    sources = [[5, 6, 7]] * sentences
    hlo = xla_decoder.compiler_ir(sources, DecodeOptions(beam_size=beam_size))
    assert " dot(" in hlo  # the decoder's products are in the text the test reads
    bodies = dict(re.findall(r"^(%\S+) \(.*?\{\n(.*?)\n\}", hlo, re.M | re.S))
    fusions = re.findall(r" fusion\(.*?kind=(k\w+), calls=(%[\w.-]+)", hlo)
    assert fusions and all(called in bodies for _, called in fusions)  # the parse found them
    loop_products = [
        called for kind, called in fusions if kind == "kLoop" and " dot(" in bodies[called]
    ]
    assert loop_products == []


def mostly_short_sources(vocab_size: int) -> list[list[int]]:
    """16 sources, 12 of one piece: under SHORT those allow at most 5 tokens (the piece,
    </s>, plus SHORT's 3), so from step 5 on at most 4 rows still decode."""
    return random_sources([1] * 6 + [9, 12] + [1] * 6 + [11, 10], vocab_size, seed=21)


@pytest.fixture
def compacted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sentence counts that compiled loops go on with, in the order they are traced."""
    counts: list[int] = []
    original = Decoder._on_sentences

    def spy(state: tuple[Any, ...], count: int, *rest: Any) -> Any:
        counts.append(count)
        return original(state, count, *rest)

    monkeypatch.setattr(Decoder, "_on_sentences", staticmethod(spy))
    return counts


def test_a_large_batch_finishes_on_half_its_rows_as_the_naive_loop(
    seq2seq: Seq2SeqTransformer, compacted: list[int]
) -> None:
    # The rest runs on 8 rows, in a cache that grew past its first segment of 6 positions.
    sources = mostly_short_sources(seq2seq.model_config.vocab_size)
    xla = Decoder(seq2seq, xla="on", cache_segments=(6,), compact_rows=16)
    hypotheses = xla.translate(sources, SHORT)
    assert compacted == [8]  # traced into the compiled loop with half of the 16 rows
    for source, [hypothesis] in zip(sources, hypotheses, strict=True):
        ids, score = naive_greedy(seq2seq, source, SHORT)
        assert hypothesis.ids == ids
        assert hypothesis.score == pytest.approx(score, rel=1e-4, abs=1e-5)
    graph = Decoder(seq2seq, cache_segments=(6,))
    assert ids_and_scores(graph.translate(sources, SHORT))[0] == ids_and_scores(hypotheses)[0]
    Decoder(seq2seq, xla="on", cache_segments=(6,)).translate(sources, SHORT)
    assert compacted == [8]  # 16 rows: below the default COMPACT_ROWS, no half-size copy


def test_a_compacted_loop_halves_again_down_to_its_floor(
    seq2seq: Seq2SeqTransformer, compacted: list[int]
) -> None:
    # 16 rows, 4 of them long with limits of 13 to 16 tokens: 16 -> 8 -> 4 (at once: 4
    # decode) -> 2; a loop of 2 rows would halve to 1, below the floor of 2.
    sources = mostly_short_sources(seq2seq.model_config.vocab_size)
    decoder = Decoder(seq2seq, xla="on", cache_segments=(6,), compact_rows=16, compact_floor=2)
    hypotheses = decoder.translate(sources, SHORT)
    assert compacted == [8, 4, 2]
    for source, [hypothesis] in zip(sources, hypotheses, strict=True):
        ids, score = naive_greedy(seq2seq, source, SHORT)
        assert hypothesis.ids == ids
        assert hypothesis.score == pytest.approx(score, rel=1e-4, abs=1e-5)
    beams = DecodeOptions(beam_size=2, num_return=2, max_length_ratio=1.0, max_length_offset=3)
    compacted.clear()
    nbests = decoder.translate(sources, beams)
    assert compacted == [8, 4, 2, 1]  # 32 rows of 2 beams: down to 1 sentence, 2 rows
    graph = Decoder(seq2seq, cache_segments=(6,)).translate(sources, beams)
    for xla_nbest, graph_nbest in zip(nbests, graph, strict=True):
        assert [h.ids for h in xla_nbest] == [h.ids for h in graph_nbest]
        assert [h.score for h in xla_nbest] == pytest.approx(
            [h.score for h in graph_nbest], rel=1e-4
        )


def test_compaction_starts_once_at_most_half_the_rows_decode(
    seq2seq: Seq2SeqTransformer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The greedy loop run eagerly (its batch is static there too), to see the step at which
    # the half-size loop takes over and how many rows were still decoding then.
    sources = mostly_short_sources(seq2seq.model_config.vocab_size)
    seen = []
    original = Decoder._on_sentences

    def spy(state: tuple[Any, ...], *rest: Any) -> Any:
        seen.append((int(state[0]), int(tf.reduce_sum(tf.cast(~state[3], tf.int32)))))
        return original(state, *rest)

    monkeypatch.setattr(Decoder, "_on_sentences", staticmethod(spy))
    decoder = Decoder(seq2seq, cache_segments=(6,), compact_rows=16)
    shape = decoder.shape_of(sources, SHORT)
    inputs = decoder._prepare(sources, SHORT, shape.batch, shape.source_len, shape.loop_len)
    _, _, lengths = decoder._greedy_loop(*inputs)
    [(step, decoding)] = seen
    assert 1 <= decoding <= 8 and step <= 5  # the short rows' limit of 5 tokens
    assert int(tf.reduce_max(lengths)) > step  # the long rows went on on 8 rows


def test_beam_search_finishes_on_half_its_sentences_as_without_compaction(
    seq2seq: Seq2SeqTransformer, compacted: list[int]
) -> None:
    # 8 sentences of 2 beams: 16 rows. 6 sources allow at most 5 tokens, so from step 5 on
    # at most 2 sentences still decode, and the rest runs on 4.
    vocab_size = seq2seq.model_config.vocab_size
    sources = random_sources([1, 1, 1, 12, 1, 1, 1, 9], vocab_size, seed=22)
    options = DecodeOptions(beam_size=2, num_return=2, max_length_ratio=1.0, max_length_offset=3)
    xla = Decoder(seq2seq, xla="on", compact_rows=16).translate(sources, options)
    assert compacted == [4]
    graph = Decoder(seq2seq).translate(sources, options)
    for xla_nbest, graph_nbest in zip(xla, graph, strict=True):
        assert [h.ids for h in xla_nbest] == [h.ids for h in graph_nbest]
        assert [h.score for h in xla_nbest] == pytest.approx(
            [h.score for h in graph_nbest], rel=1e-4
        )


def test_xla_shapes_ignore_a_requests_max_length_and_pad_the_batch(
    xla_decoder: Decoder, tiny_config: ModelConfig
) -> None:
    sources = random_sources([2, 6, 12], tiny_config.vocab_size, seed=6)
    shapes = {xla_decoder.shape_of(sources, DecodeOptions(max_length=n)) for n in (3, 9, 50)}
    [shape] = shapes  # one compiled loop for every cap: the cap is a per-row limit
    assert (shape.batch, shape.source_len) == (4, 16)
    for [best] in xla_decoder.translate(sources, DecodeOptions(max_length=3)):
        assert len(best.ids) <= 2  # plus </s>


def test_background_xla_serves_a_new_shape_uncompiled_then_compiled(
    seq2seq: Seq2SeqTransformer, decoder: Decoder, tiny_config: ModelConfig
) -> None:
    kinds: list[str] = []
    background = Decoder(seq2seq, xla="background", on_compile=kinds.append)
    sources = random_sources([4, 9], tiny_config.vocab_size, seed=8)
    expected = ids_and_scores(decoder.translate(sources, SHORT))
    first = ids_and_scores(background.translate(sources, SHORT))  # no wait for XLA
    background.wait_for_compilations()
    assert kinds == ["greedy", "greedy"]  # the shape-agnostic graph, then the XLA loop
    assert background._loops[1].experimental_get_tracing_count() == 1  # it served `first`
    second = ids_and_scores(background.translate(sources, SHORT))
    assert background.compilations == 2  # the compiled loop served it: nothing new traced
    assert background._loops[1].experimental_get_tracing_count() == 1
    for result in (first, second):
        assert result[0] == expected[0]
        assert result[1] == pytest.approx(expected[1], rel=1e-4)
    background.close()


def penalized(hypothesis: Hypothesis, alpha: float) -> float:
    length = len(hypothesis.ids) + 1  # </s> counts
    return hypothesis.score * length / ((5 + length) / 6) ** alpha


# Beam tests share one width: each width is its own XLA loop.


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


def test_batch_buckets_are_powers_of_two_and_one_and_a_half_times_them() -> None:
    buckets = sorted({batch_bucket(n) for n in range(1, 200)})
    assert buckets == [1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256]


def test_batch_buckets_hold_the_batch_and_pad_at_most_half_of_it_past_32() -> None:
    for size in range(1, 2000):
        assert size <= batch_bucket(size) <= max(32, 1.5 * size)


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
