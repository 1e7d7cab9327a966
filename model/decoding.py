"""Batched greedy and beam search over a key/value cache: the Keras reference decoder.

The encoder runs once per batch; the decoder runs one position per step
(`Seq2SeqTransformer.decode_step`), writing its self-attention keys/values into a cache of
the loop's length, while the cross-attention keys/values are computed once (and shared by
a sentence's beams). Each search is one `tf.function` whose shapes are left unknown, so
one graph serves every batch, source length and (for beam search) beam width. The service
decodes with CTranslate2 (model.engine); this decoder is the reference it is checked
against, and what serves versions without an engine export.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

# Re-exported: callers of the reference decoder import its options from here too.
from model.decode_options import MAX_BEAM_SIZE as MAX_BEAM_SIZE
from model.decode_options import DecodeOptions as DecodeOptions
from model.decode_options import Hypothesis as Hypothesis
from model.transformer import Seq2SeqTransformer
from tokenizers import BOS_ID, EOS_ID, PAD_ID

log = logging.getLogger(__name__)

_NEG_INF = -1e9


_SIGNATURE = [
    tf.TensorSpec([None, None], tf.int32),  # source ids
    tf.TensorSpec([None], tf.int32),  # per-sentence length limits
    tf.TensorSpec([], tf.int32),  # loop length
]


class Decoder:
    """Translates batches of token-id sequences with a trained Seq2SeqTransformer.

    `traces` counts the graphs traced (one per search, whatever the shapes).
    """

    def __init__(self, model: Seq2SeqTransformer) -> None:
        self.model = model
        self.traces = 0
        self._greedy = tf.function(self._greedy_loop, input_signature=_SIGNATURE)
        self._beam = tf.function(
            self._beam_loop,
            input_signature=[
                *_SIGNATURE,
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int32),
            ],
        )

    @property
    def model_max_length(self) -> int:
        return self.model.model_config.max_length

    def close(self) -> None:
        """Nothing to release (the CTranslate2 engine's counterpart has)."""

    def translate(
        self, sources: Sequence[Sequence[int]], options: DecodeOptions = DecodeOptions()
    ) -> list[list[Hypothesis]]:
        """sources: subword ids without specials -> n-best hypotheses per source."""
        if not sources:
            return []
        # Leave room for </s> inside the positional table.
        source_len = min(max(len(s) for s in sources) + 1, self.model_max_length)
        cap = min(options.max_length, self.model_max_length - 1)
        source_ids = np.full((len(sources), source_len), PAD_ID, dtype=np.int32)
        limits = np.zeros((len(sources),), dtype=np.int32)
        for row, ids in enumerate(sources):
            ids = [*list(ids)[: source_len - 1], EOS_ID]
            source_ids[row, : len(ids)] = ids
            limits[row] = min(cap, _length_limit(len(ids), options))
        inputs = (
            tf.constant(source_ids),
            tf.constant(limits),
            tf.constant(max(1, int(limits.max()))),
        )
        if options.beam_size == 1:
            tokens, totals, lengths = self._greedy(*inputs)
        else:
            penalty = tf.constant(options.length_penalty, tf.float32)
            tokens, totals, lengths = self._beam(*inputs, penalty, tf.constant(options.beam_size))
        return _hypotheses(tokens.numpy(), totals.numpy(), lengths.numpy(), options)

    def _traced(self, kind: str) -> None:
        # Runs only while tracing: a Python side effect inside a tf.function.
        self.traces += 1
        log.info("tracing the %s search graph", kind)

    def _greedy_loop(
        self, source_ids: tf.Tensor, limits: tf.Tensor, max_len: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Returns tokens (batch, 1, steps), totals and lengths (batch, 1): a 1-best list."""
        self._traced("greedy")
        model = self.model
        memory, memory_mask, _ = model.encode(source_ids)
        rows = tf.shape(memory)[0]

        def body(i, ids, cache, finished, totals, lengths, tokens):  # type: ignore[no-untyped-def]
            log_probs, cache, _ = model.decode_step(ids, i, cache, memory_mask)
            log_probs = _constrain(log_probs, i >= limits - 1)
            next_ids = tf.argmax(log_probs, axis=-1, output_type=tf.int32)  # (rows,)
            picked = tf.gather(log_probs, next_ids, batch_dims=1)
            next_ids = tf.where(finished, PAD_ID, next_ids)
            totals += tf.where(finished, 0.0, picked)
            lengths += tf.cast(~finished, tf.int32)
            finished |= next_ids == EOS_ID
            tokens = tokens.write(i, next_ids)
            return i + 1, next_ids, cache, finished, totals, lengths, tokens

        state = (
            tf.constant(0),  # step
            tf.fill([rows], BOS_ID),  # last tokens
            model.init_cache(memory, max_len),
            tf.zeros([rows], tf.bool),  # finished
            tf.zeros([rows], tf.float32),  # total log-probabilities
            tf.zeros([rows], tf.int32),  # lengths
            tf.TensorArray(tf.int32, size=0, dynamic_size=True),  # tokens, step by step
        )
        *_, totals, lengths, tokens = tf.while_loop(_searching(max_len), body, state)
        tokens = tf.transpose(tokens.stack())  # (rows, steps)
        return tokens[:, None], totals[:, None], lengths[:, None]

    def _beam_loop(
        self,
        source_ids: tf.Tensor,
        limits: tf.Tensor,
        max_len: tf.Tensor,
        length_penalty: tf.Tensor,
        k: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """k beams per sentence -> tokens (batch, k, steps), totals and lengths (batch, k),
        each sentence's beams best first."""
        self._traced("beam")
        model = self.model
        batch = tf.shape(source_ids)[0]
        memory, memory_mask, _ = model.encode(source_ids)
        vocab = model.model_config.vocab_size
        pad_only = tf.one_hot(PAD_ID, vocab, on_value=0.0, off_value=_NEG_INF)
        row_limits = tf.repeat(limits, k)

        def reorder(rows: tf.Tensor, origin: tf.Tensor) -> tf.Tensor:
            """(batch * k, ...) rows in the order of the beams they survive as."""
            shape = tf.shape(rows)
            grouped = tf.reshape(rows, tf.concat([[batch, k], shape[1:]], axis=0))
            return tf.reshape(tf.gather(grouped, origin, batch_dims=1), shape)

        def body(i, ids, cache, finished, totals, lengths, tokens):  # type: ignore[no-untyped-def]
            log_probs, cache, _ = model.decode_step(ids, i, cache, memory_mask)
            log_probs = _constrain(log_probs, i >= row_limits - 1)
            # A finished beam continues with padding at no cost, keeping its score.
            log_probs = tf.where(tf.reshape(finished, [-1, 1]), pad_only, log_probs)
            # A survivor is among its own beam's k best tokens, so the top k of the k * k
            # (beam, token) pairs equals the top k of all k * vocab, for far less sorting.
            best, best_ids = tf.math.top_k(log_probs, k=k)  # (batch * k, k)
            candidates = tf.reshape(tf.reshape(totals, [-1, 1]) + best, [batch, k * k])
            totals, flat = tf.math.top_k(candidates, k=k)  # (batch, k)
            origin = flat // k  # (batch, k): the beam each survivor extends
            next_ids = tf.gather(tf.reshape(best_ids, [batch, k * k]), flat, batch_dims=1)
            cache = {
                **cache,
                "self": [(reorder(a, origin), reorder(b, origin)) for a, b in cache["self"]],
            }
            was_finished = tf.gather(finished, origin, batch_dims=1)
            lengths = tf.gather(lengths, origin, batch_dims=1) + tf.cast(~was_finished, tf.int32)
            tokens = reorder(tokens, origin)
            tokens = tokens + tf.one_hot(i, max_len, dtype=tf.int32) * tf.reshape(next_ids, [-1, 1])
            finished = was_finished | (next_ids == EOS_ID)
            return i + 1, tf.reshape(next_ids, [-1]), cache, finished, totals, lengths, tokens

        state = (
            tf.constant(0),  # step
            tf.fill([batch * k], BOS_ID),  # last tokens
            # The memory stays one per sentence.
            model.init_cache(memory, max_len, beams=k),
            tf.zeros([batch, k], tf.bool),  # finished
            # Only beam 0 is live at first, so the k beams do not start as copies.
            tf.tile(tf.where(tf.range(k) == 0, 0.0, _NEG_INF)[None], [batch, 1]),
            tf.zeros([batch, k], tf.int32),  # lengths
            tf.zeros([batch * k, max_len], tf.int32),  # tokens
        )
        *_, totals, lengths, tokens = tf.while_loop(_searching(max_len), body, state)
        # Rank each sentence's beams by length-normalized score (GNMT's penalty).
        penalty = tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, length_penalty)
        order = tf.argsort(totals / penalty, axis=-1, direction="DESCENDING")
        return (
            tf.gather(tf.reshape(tokens, [batch, k, -1]), order, batch_dims=1),
            tf.gather(totals, order, batch_dims=1),
            tf.gather(lengths, order, batch_dims=1),
        )


def _length_limit(source_len: int, options: DecodeOptions) -> int:
    """The most tokens (</s> included) an output of a source of this length may have."""
    return int(source_len * options.max_length_ratio) + options.max_length_offset


def _searching(max_len: tf.Tensor):  # type: ignore[no-untyped-def]
    """The loops' condition: steps left and a row still decoding."""

    def cond(i, ids, cache, finished, *_):  # type: ignore[no-untyped-def]
        return tf.logical_and(i < max_len, ~tf.reduce_all(finished))

    return cond


def _constrain(log_probs: tf.Tensor, at_limit: tf.Tensor) -> tf.Tensor:
    """Never emit <pad> or <s>, renormalizing over the other tokens (as CTranslate2 does:
    the engine's scores must equal these); rows at their length limit may only emit </s>."""
    vocab = tf.shape(log_probs)[-1]
    never = tf.one_hot([PAD_ID, BOS_ID], vocab, on_value=_NEG_INF, off_value=0.0)
    log_probs = log_probs + tf.reduce_sum(never, axis=0)[None, :]
    log_probs = log_probs - tf.reduce_logsumexp(log_probs, axis=-1, keepdims=True)
    # A forced </s> keeps its log-probability: scores and beam ranking count it.
    eos_only = tf.one_hot(EOS_ID, vocab, on_value=0.0, off_value=_NEG_INF)
    return tf.where(at_limit[:, None], log_probs + eos_only[None, :], log_probs)


def _hypotheses(
    tokens: np.ndarray, totals: np.ndarray, lengths: np.ndarray, options: DecodeOptions
) -> list[list[Hypothesis]]:
    results = []
    for row in range(tokens.shape[0]):
        nbest = []
        for beam in range(options.num_return):
            ids = [int(t) for t in tokens[row, beam]]
            ids = ids[: ids.index(EOS_ID)] if EOS_ID in ids else ids
            ids = [t for t in ids if t != PAD_ID]
            length = max(int(lengths[row, beam]), 1)
            total = float(totals[row, beam])
            penalty = ((5.0 + length) / 6.0) ** options.length_penalty
            nbest.append(Hypothesis(ids, total / length, total / penalty))
        results.append(nbest)
    return results


def attention_maps(
    model: Seq2SeqTransformer, source_ids: Sequence[int], target_ids: Sequence[int]
) -> dict[str, np.ndarray]:
    """All attention for one (source, output) pair: one teacher-forced pass.

    The causal decoder sees exactly what it saw step by step while decoding, so the weights
    equal those of the cached loop. Arrays are [layer][head][query][key].
    Source rows are the pieces plus </s>; target rows are <s> plus the pieces (the query
    at position t predicts token t).
    """
    src = np.array([[*source_ids, EOS_ID]], dtype=np.int32)
    tgt = np.array([[BOS_ID, *target_ids]], dtype=np.int32)
    _, attention = model((src, tgt), return_attention=True)
    return {name: np.stack([a[0].numpy() for a in layers]) for name, layers in attention.items()}


def flops_per_token(model: Seq2SeqTransformer, source_len: int, context_len: int) -> float:
    """Multiply-adds x2 of one cached decoding step, for throughput-to-peak ratios."""
    c = model.model_config
    d, f = c.d_model, c.d_ff
    per_layer = 2 * (
        4 * d * d  # self-attention projections (q, k, v, out) for one position
        + 2 * d * d  # cross-attention q and output projections
        + 2 * d * f  # feed-forward
        + 2 * d * context_len  # self-attention scores and context
        + 2 * d * source_len  # cross-attention scores and context
    )
    return c.decoder_layers * per_layer + 2 * d * c.vocab_size
