"""Batched greedy and beam search over a key/value cache, each one compiled loop.

The encoder runs once per batch; the decoder runs one position per step, appending its
self-attention keys/values to a preallocated cache, which starts short and grows in a few
segments (`CACHE_SEGMENTS`), while the cross-attention keys/values are computed once (and
shared by a sentence's beams). Greedy and beam search share
`Seq2SeqTransformer.decode_step`. Each loop exists twice: one graph for every shape (and,
for beam search, every beam size), and XLA-compiled loops specialized to a few padded
shapes (batch and source-length buckets), which run 1.5-4x faster on the CPU once
compiled; `Decoder.compilations` counts the traces so that a recompilation storm shows.
A batch decodes until its longest sentence ends, so in the XLA loops a batch of
`COMPACT_ROWS` rows or more goes on with half its sentences once at most half of them
still decode, and halves them again the same way down to `COMPACT_FLOOR` rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import tensorflow as tf

from model.compilation import CompileQueue
from model.transformer import Seq2SeqTransformer
from tokenizers import BOS_ID, EOS_ID, PAD_ID

log = logging.getLogger(__name__)

MAX_BEAM_SIZE = 8
_NEG_INF = -1e9
# The self-attention cache starts with room for this many positions and grows to the next
# size when the loop gets there, then to the loop's length: every step reads the whole
# cache (and beam search reorders it), while most sentences end long before the loop's
# length allows.
CACHE_SEGMENTS = (16, 32)
# XLA loops of at least this many rows (sentences x beams) finish their decoding on half the
# sentences once at most half still decode. Each such loop compiles a half-size copy of the
# decoder step: more compile time and memory, so only the largest batches do.
COMPACT_ROWS = 64
# A compacted loop halves its sentences again, the same way, while the half still has at
# least this many rows: 64 rows go on with 32, then with 16 (three copies of the step; beam
# 4 at batch 32 has four, from 128 rows).
COMPACT_FLOOR = 16


@dataclass(frozen=True)
class DecodeOptions:
    beam_size: int = 1
    num_return: int = 1  # n-best hypotheses per source (<= beam_size)
    length_penalty: float = 0.6  # GNMT's alpha: ((5 + len) / 6) ** alpha
    max_length_ratio: float = 1.5  # output may be this much longer than the source...
    max_length_offset: int = 10  # ...plus this many tokens,
    max_length: int = 200  # and never longer than this hard cap.

    def __post_init__(self) -> None:
        if not 1 <= self.beam_size <= MAX_BEAM_SIZE:
            raise ValueError(f"beam_size must be between 1 and {MAX_BEAM_SIZE}")
        if not 1 <= self.num_return <= self.beam_size:
            raise ValueError("num_return must be between 1 and beam_size")
        if self.max_length < 1:
            raise ValueError("max_length must be positive")


@dataclass(frozen=True)
class Hypothesis:
    ids: list[int]  # without <s> and </s>
    score: float  # mean log-probability per generated token (</s> included)
    ranking_score: float  # total log-probability / length penalty; beams are sorted by it


def _round_up(value: int, multiple: int) -> int:
    return max(multiple, -(-value // multiple) * multiple)


def batch_bucket(size: int) -> int:
    """1, 2, 4, 8, 16, 32, 48, 64, 96, 128, ...: at most 1.5x the real batch."""
    bucket = 1
    while bucket < size:
        if bucket < 32:
            bucket *= 2
        else:  # a power of two grows by half, a power of two and a half to the next power
            bucket = bucket * 4 // 3 if bucket & (bucket - 1) else bucket * 3 // 2
    return bucket


XlaMode = Literal["off", "on", "background"]


@dataclass(frozen=True)
class _Shape:
    """What an XLA-compiled loop is specialized to: one compiled graph per value."""

    beam_size: int
    batch: int  # batch_bucket(sentences)
    source_len: int  # bucketed source length, </s> included
    loop_len: int  # steps the loop may run; each sentence's own limit is a tensor


class Decoder:
    """Translates batches of token-id sequences with a trained Seq2SeqTransformer.

    xla: "off" runs one shape-agnostic graph for every batch. "on" runs XLA-compiled loops,
    one per bucketed shape, compiled by the first batch of that shape. "background" serves
    a shape from the XLA loop once it is compiled and from the shape-agnostic graph until
    then, compiling it in a background thread: no request waits for a compilation.
    Thread-safe for concurrent callers; a service runs one batch at a time per model anyway.
    """

    def __init__(
        self,
        model: Seq2SeqTransformer,
        *,
        xla: XlaMode = "off",
        length_bucket: int = 8,
        cache_segments: Sequence[int] = CACHE_SEGMENTS,
        compact_rows: int = COMPACT_ROWS,
        compact_floor: int = COMPACT_FLOOR,
        on_compile: Callable[[str], None] | None = None,
    ) -> None:
        if xla not in ("off", "on", "background"):
            raise ValueError(f"xla must be off, on or background, not {xla!r}")
        sizes = list(cache_segments)
        if sizes != sorted(set(sizes)) or any(size < 1 for size in sizes):
            raise ValueError(f"cache_segments must be increasing positive sizes: {cache_segments}")
        if compact_rows < 2 or compact_floor < 1:
            raise ValueError("compact_rows must be at least 2 and compact_floor at least 1")
        self.model = model
        self.xla = xla
        self.length_bucket = length_bucket
        self.cache_segments = tuple(cache_segments)
        self.compact_rows = compact_rows
        self.compact_floor = compact_floor
        self.compilations = 0
        self._on_compile = on_compile
        self._lock = threading.Lock()
        # Made once, here, rather than in every loop call (self-attention's concatenated
        # projections alone cost ~4 ms a call at the `base` width); the loops capture them.
        self._step_kernels = model.step_kernels()
        # One graph serves every shape (dimensions left unknown) and one graph every beam
        # size (a tensor there), so that a new shape or beam size traces nothing...
        dynamic = [
            tf.TensorSpec([None, None], tf.int32),  # source ids
            tf.TensorSpec([None], tf.int32),  # per-sentence length limits
            tf.TensorSpec([], tf.int32),  # loop length
            tf.TensorSpec([], tf.float32),  # length penalty
        ]
        beam = tf.function(self._beam_loop, input_signature=[*dynamic, tf.TensorSpec([], tf.int32)])
        self._loops = {
            1: tf.function(self._greedy_loop, input_signature=dynamic),
            **{k: _beam_loop_of(beam, tf.constant(k)) for k in range(2, MAX_BEAM_SIZE + 1)},
        }
        # ...while XLA needs static shapes: it traces once per bucketed shape and beam size.
        self._xla_loops = self._compile_xla_loops() if xla != "off" else {}
        self._compiled = CompileQueue(self._compile_shape, name="decoder-xla")

    def _compile_xla_loops(self) -> dict[int, Callable[..., Any]]:
        loops = {1: tf.function(self._greedy_loop, jit_compile=True)}
        for k in range(2, MAX_BEAM_SIZE + 1):
            loops[k] = tf.function(_beam_loop_of(self._beam_loop, k), jit_compile=True)
        return loops

    @property
    def model_max_length(self) -> int:
        return self.model.model_config.max_length

    @property
    def jit_compile(self) -> bool:
        return self.xla != "off"

    def translate(
        self, sources: Sequence[Sequence[int]], options: DecodeOptions = DecodeOptions()
    ) -> list[list[Hypothesis]]:
        """sources: subword ids without specials -> n-best hypotheses per source."""
        if not sources:
            return []
        shape = self.shape_of(sources, options)
        use_xla = self.xla == "on" or (self.xla == "background" and self._compiled.ready(shape))
        if use_xla:
            inputs = self._prepare(sources, options, shape.batch, shape.source_len, shape.loop_len)
            tokens, totals, lengths = self._xla_loops[options.beam_size](*inputs)
            self._compiled.mark_ready(shape)
        else:
            if self.xla == "background":
                self._compiled.request(shape)
            loop_len = min(self._cap(options), self._loop_len(shape.source_len, options))
            inputs = self._prepare(sources, options, len(sources), shape.source_len, loop_len)
            tokens, totals, lengths = self._loops[options.beam_size](*inputs)
        return self._hypotheses(
            tokens.numpy(), totals.numpy(), lengths.numpy(), len(sources), options
        )

    def shape_of(self, sources: Sequence[Sequence[int]], options: DecodeOptions) -> _Shape:
        """The bucketed shape a batch runs at under XLA."""
        # Leave room for </s> inside the positional table.
        longest = min(max(len(s) for s in sources) + 1, self.model_max_length)
        source_len = min(_round_up(longest, self.length_bucket), self.model_max_length)
        # The loop length depends on the bucket, not on a request's max_length (each row's
        # own limit is enforced inside the loop), so shapes stay few.
        loop_len = min(self.model_max_length - 1, self._loop_len(source_len, options))
        return _Shape(options.beam_size, batch_bucket(len(sources)), source_len, loop_len)

    def compiler_ir(
        self, sources: Sequence[Sequence[int]], options: DecodeOptions = DecodeOptions()
    ) -> str:
        """The optimized HLO of the XLA loop that decodes this batch, as text: what XLA
        made of the step (its fusions and which matrix products stay library calls)."""
        if self.xla == "off":
            raise ValueError("this decoder runs no XLA loops (xla='off')")
        shape = self.shape_of(sources, options)
        inputs = self._prepare(sources, options, shape.batch, shape.source_len, shape.loop_len)
        loop = self._xla_loops[options.beam_size]
        return str(loop.experimental_get_compiler_ir(*inputs)(stage="optimized_hlo"))

    def wait_for_compilations(self) -> None:
        """Blocks until every shape queued for background compilation is compiled."""
        self._compiled.join()

    def close(self) -> None:
        """Stops background compilation (a replaced model's decoder)."""
        self._compiled.close()

    def _compile_shape(self, shape: Hashable) -> None:
        """Runs a batch of empty sentences at `shape`: each stops at once, after compiling."""
        assert isinstance(shape, _Shape)
        sources = np.full((shape.batch, shape.source_len), PAD_ID, dtype=np.int32)
        sources[:, 0] = EOS_ID
        self._xla_loops[shape.beam_size](
            tf.constant(sources),
            tf.ones((shape.batch,), tf.int32),  # a limit of one token: </s> at step 0
            tf.constant(shape.loop_len, tf.int32),
            tf.constant(0.0, tf.float32),
        )[0].numpy()

    @staticmethod
    def _loop_len(source_len: int, options: DecodeOptions) -> int:
        return int(source_len * options.max_length_ratio) + options.max_length_offset

    def _cap(self, options: DecodeOptions) -> int:
        return min(options.max_length, self.model_max_length - 1)

    def _prepare(
        self,
        sources: Sequence[Sequence[int]],
        options: DecodeOptions,
        batch: int,
        source_len: int,
        loop_len: int,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """Padded source ids, each row's output limit, the loop length, the length penalty.

        Padding rows have a limit of 0: they emit </s> at the first step and stop.
        """
        source_ids = np.full((batch, source_len), PAD_ID, dtype=np.int32)
        limits = np.zeros((batch,), dtype=np.int32)
        cap = min(self._cap(options), loop_len)
        for row, ids in enumerate(sources):
            ids = [*list(ids)[: source_len - 1], EOS_ID]
            source_ids[row, : len(ids)] = ids
            limits[row] = min(cap, self._loop_len(len(ids), options))
        return (
            tf.constant(source_ids),
            tf.constant(limits),
            tf.constant(loop_len, tf.int32),
            tf.constant(options.length_penalty, tf.float32),
        )

    def _count_compilation(self, kind: str) -> None:
        # Runs only while tracing: a Python side effect inside a tf.function.
        with self._lock:
            self.compilations += 1
        log.info("compiling %s decoder graph (#%d)", kind, self.compilations)
        if self._on_compile is not None:
            self._on_compile(kind)

    def _cache_lengths(self, max_len: tf.Tensor) -> list[tf.Tensor]:
        """The cache's length in each segment of the loop, the last one the loop's length."""
        return [tf.minimum(size, max_len) for size in self.cache_segments] + [max_len]

    @staticmethod
    def _run_in_segments(
        cond: Callable[..., tf.Tensor],
        body: Callable[..., Any],
        state: tuple[Any, ...],
        lengths: list[tf.Tensor],
    ) -> tuple[Any, ...]:
        """`tf.while_loop(cond, body, state)`, run as one loop per cache length in turn.

        state[0] is the step, state[2] the cache; each loop stops where its cache is full,
        and the next one pads the cache with empty positions and goes on.
        """
        for number, length in enumerate(lengths):
            if number:
                state = (*state[:2], _grown(state[2], length), *state[3:])
            state = tf.while_loop(
                lambda *s, length=length: tf.logical_and(cond(*s), s[0] < length), body, state
            )
        return state

    def _greedy_loop(
        self,
        source_ids: tf.Tensor,
        limits: tf.Tensor,
        max_len: tf.Tensor,
        length_penalty: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Returns tokens (batch, 1, steps), totals and lengths (batch, 1): a 1-best list."""
        del length_penalty  # one greedy hypothesis: nothing to rank
        self._count_compilation("greedy")
        model = self.model
        memory, memory_mask, _ = model.encode(source_ids)
        cache_lengths = self._cache_lengths(max_len)
        rows = tf.shape(memory)[0]
        state = (
            tf.constant(0),  # step
            tf.fill([rows], BOS_ID),  # last tokens
            model.init_cache(memory, cache_lengths[0], kernels=self._step_kernels),
            tf.zeros([rows], tf.bool),  # finished
            tf.zeros([rows], tf.float32),  # total log-probabilities
            tf.zeros([rows], tf.int32),  # lengths
            tf.zeros([rows, max_len], tf.int32),  # tokens
            limits,
            memory_mask,
        )
        # Only where the batch is static (XLA) and large enough to repay a second compiled
        # copy of the later segments.
        compact = memory.shape[0] is not None and memory.shape[0] >= self.compact_rows
        tokens, totals, lengths = self._greedy_segments(state, cache_lengths, max_len, compact)
        return tokens[:, None], totals[:, None], lengths[:, None]

    def _greedy_segments(
        self,
        state: tuple[Any, ...],
        cache_lengths: list[tf.Tensor],
        max_len: tf.Tensor,
        compact: bool,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Runs greedy steps segment by segment (see `_run_in_segments`) -> tokens, totals
        and lengths per row.

        With `compact`, once at most half the rows still decode, the rest runs on half the
        rows (and halves again, see `COMPACT_FLOOR`): a batch decodes until its longest
        sentence ends, and by then most rows have long finished.
        """
        model = self.model

        def body(i, ids, cache, finished, totals, lengths, tokens, limits, memory_mask):  # type: ignore[no-untyped-def]
            log_probs, cache, _ = model.decode_step(ids, i, cache, memory_mask)
            log_probs = _constrain(log_probs, i >= limits - 1)
            next_ids = tf.argmax(log_probs, axis=-1, output_type=tf.int32)  # (rows,)
            picked = tf.gather(log_probs, next_ids, batch_dims=1)
            next_ids = tf.where(finished, PAD_ID, next_ids)
            totals += tf.where(finished, 0.0, picked)
            lengths += tf.cast(~finished, tf.int32)
            finished |= next_ids == EOS_ID
            tokens += tf.one_hot(i, max_len, dtype=tf.int32)[None, :] * next_ids[:, None]
            return i + 1, next_ids, cache, finished, totals, lengths, tokens, limits, memory_mask

        def cond(i, ids, cache, finished, *_):  # type: ignore[no-untyped-def]
            return tf.logical_and(i < max_len, ~tf.reduce_all(finished))

        if compact:
            return self._run_compacted(
                cond,
                body,
                state,
                cache_lengths,
                1,
                lambda small, lengths: self._greedy_segments(
                    small, lengths, max_len, self._compacts_again(small[3])
                ),
            )
        state = self._run_in_segments(cond, body, state, cache_lengths)
        return state[6], state[4], state[5]

    def _beam_loop(
        self,
        source_ids: tf.Tensor,
        limits: tf.Tensor,
        max_len: tf.Tensor,
        length_penalty: tf.Tensor,
        beam_size: int | tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """beam_size: a Python int in the XLA loops (static shapes), a scalar tensor in the
        shape-agnostic graph (one graph for every beam size)."""
        static = not tf.is_tensor(beam_size)
        self._count_compilation(f"beam{beam_size}" if static else "beam")
        model, k = self.model, beam_size
        batch = tf.shape(source_ids)[0]
        memory, memory_mask, _ = model.encode(source_ids)
        cache_lengths = self._cache_lengths(max_len)
        state = (
            tf.constant(0),  # step
            tf.fill([batch * k], BOS_ID),  # last tokens
            # The memory stays one per sentence.
            model.init_cache(memory, cache_lengths[0], beams=k, kernels=self._step_kernels),
            tf.zeros([batch, k], tf.bool),  # finished
            # Only beam 0 is live at first, so the k beams do not start as copies.
            tf.tile(tf.where(tf.range(k) == 0, 0.0, _NEG_INF)[None], [batch, 1]),
            tf.zeros([batch, k], tf.int32),  # lengths
            tf.zeros([batch * k, max_len], tf.int32),  # tokens
            tf.repeat(limits, k),
            memory_mask,
        )
        sentences = source_ids.shape[0]
        compact = static and sentences is not None and sentences >= 2
        compact = compact and sentences * k >= self.compact_rows
        tokens, totals, lengths = self._beam_segments(state, cache_lengths, max_len, k, compact)
        # Rank each sentence's beams by length-normalized score (GNMT's penalty).
        penalty = tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, length_penalty)
        order = tf.argsort(totals / penalty, axis=-1, direction="DESCENDING")
        tokens = tf.gather(tf.reshape(tokens, [batch, k, -1]), order, batch_dims=1)
        return (
            tokens,
            tf.gather(totals, order, batch_dims=1),
            tf.gather(lengths, order, batch_dims=1),
        )

    def _beam_segments(
        self,
        state: tuple[Any, ...],
        cache_lengths: list[tf.Tensor],
        max_len: tf.Tensor,
        k: int | tf.Tensor,
        compact: bool,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Runs beam search steps segment by segment -> tokens (sentences * k, steps), totals
        and lengths (sentences, k); with `compact`, once at most half the sentences still
        have a live beam, the rest runs on half the sentences (as `_greedy_segments`)."""
        model = self.model
        vocab = model.model_config.vocab_size
        pad_only = tf.one_hot(PAD_ID, vocab, on_value=0.0, off_value=_NEG_INF)

        def body(i, ids, cache, finished, totals, lengths, tokens, limits, memory_mask):  # type: ignore[no-untyped-def]
            batch = tf.shape(finished)[0]
            log_probs, cache, _ = model.decode_step(ids, i, cache, memory_mask)
            log_probs = _constrain(log_probs, i >= limits - 1)
            # A finished beam continues with padding at no cost, keeping its score.
            log_probs = tf.where(tf.reshape(finished, [-1, 1]), pad_only, log_probs)
            # A survivor is among its own beam's k best tokens, so the top k of the k * k
            # (beam, token) pairs equals the top k of all k * vocab, for far less sorting.
            best, best_ids = tf.math.top_k(log_probs, k=k)  # (batch * k, k)
            candidates = tf.reshape(tf.reshape(totals, [-1, 1]) + best, [batch, k * k])
            totals, flat = tf.math.top_k(candidates, k=k)  # (batch, k)
            origin = flat // k  # (batch, k): the beam each survivor extends
            next_ids = tf.gather(tf.reshape(best_ids, [batch, k * k]), flat, batch_dims=1)

            def reorder(rows: tf.Tensor) -> tf.Tensor:  # (batch * k, ...) in survivor order
                shape = tf.shape(rows)
                grouped = tf.reshape(rows, tf.concat([[batch, k], shape[1:]], axis=0))
                return tf.reshape(tf.gather(grouped, origin, batch_dims=1), shape)

            cache = {**cache, "self": [(reorder(a), reorder(b)) for a, b in cache["self"]]}
            was_finished = tf.gather(finished, origin, batch_dims=1)
            lengths = tf.gather(lengths, origin, batch_dims=1) + tf.cast(~was_finished, tf.int32)
            tokens = reorder(tokens)
            tokens = tokens + tf.one_hot(i, max_len, dtype=tf.int32) * tf.reshape(next_ids, [-1, 1])
            finished = was_finished | (next_ids == EOS_ID)
            ids = tf.reshape(next_ids, [-1])
            return i + 1, ids, cache, finished, totals, lengths, tokens, limits, memory_mask

        def cond(i, ids, cache, finished, *_):  # type: ignore[no-untyped-def]
            return tf.logical_and(i < max_len, ~tf.reduce_all(finished))

        if compact:
            return self._run_compacted(
                cond,
                body,
                state,
                cache_lengths,
                k,
                lambda small, lengths: self._beam_segments(
                    small, lengths, max_len, k, self._compacts_again(small[3])
                ),
            )
        state = self._run_in_segments(cond, body, state, cache_lengths)
        return state[6], state[4], state[5]

    def _compacts_again(self, finished: tf.Tensor) -> bool:
        """Whether a loop already on half its sentences halves them again: `finished` is
        (sentences[, k]), of static shape in the XLA loops that compact."""
        sentences, rows = finished.shape[0], finished.shape.num_elements()
        return sentences >= 2 and sentences // 2 * (rows // sentences) >= self.compact_floor

    def _run_compacted(
        self,
        cond: Callable[..., tf.Tensor],
        body: Callable[..., Any],
        state: tuple[Any, ...],
        cache_lengths: list[tf.Tensor],
        k: int,
        rest: Callable[..., tuple[tf.Tensor, tf.Tensor, tf.Tensor]],
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """`_run_in_segments` that stops once at most half the sentences still decode; the
        loops after that one only grow the cache to the loop's length, and `rest(state,
        cache_lengths)` finishes on half the sentences (`_on_sentences`)."""
        half = state[3].shape[0] // 2

        def more_than_half(*s):  # type: ignore[no-untyped-def]
            decoding = tf.reduce_sum(tf.cast(_live(s[3]), tf.int32))
            return tf.logical_and(cond(*s), decoding > half)

        state = self._run_in_segments(more_than_half, body, state, cache_lengths)
        return self._on_sentences(state, half, k, lambda small: rest(small, cache_lengths[-1:]))

    @staticmethod
    def _on_sentences(
        state: tuple[Any, ...],
        count: int,
        k: int,
        rest: Callable[..., tuple[tf.Tensor, tf.Tensor, tf.Tensor]],
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Decodes the rest on `count` sentences of k rows each, the unfinished ones among
        them, and puts their tokens, totals and lengths back among the finished ones'.

        Per sentence: finished, totals, lengths (sentences[, k]), the cross cache and the
        memory mask; per row (sentence-major): ids, the self cache, tokens and limits. The
        cache's other entries (the step kernels) are weights, shared and never gathered.
        """
        step, ids, cache, finished, totals, lengths, tokens, limits, memory_mask = state
        sentences = tf.math.top_k(tf.cast(_live(finished), tf.float32), k=count).indices
        rows = tf.reshape(sentences[:, None] * k + tf.range(k)[None, :], [-1])  # (count * k,)
        small = (
            step,
            tf.gather(ids, rows),
            {
                **cache,
                "self": [(tf.gather(a, rows), tf.gather(b, rows)) for a, b in cache["self"]],
                "cross": [
                    (tf.gather(a, sentences), tf.gather(b, sentences)) for a, b in cache["cross"]
                ],
            },
            *(tf.gather(t, sentences) for t in (finished, totals, lengths)),
            tf.gather(tokens, rows),
            tf.gather(limits, rows),
            tf.gather(memory_mask, sentences),
        )
        small_tokens, small_totals, small_lengths = rest(small)
        return (
            tf.tensor_scatter_nd_update(tokens, rows[:, None], small_tokens),
            tf.tensor_scatter_nd_update(totals, sentences[:, None], small_totals),
            tf.tensor_scatter_nd_update(lengths, sentences[:, None], small_lengths),
        )

    @staticmethod
    def _hypotheses(
        tokens: np.ndarray,
        totals: np.ndarray,
        lengths: np.ndarray,
        count: int,
        options: DecodeOptions,
    ) -> list[list[Hypothesis]]:
        results = []
        for row in range(count):
            nbest = []
            for beam in range(options.num_return):
                ids = [int(t) for t in tokens[row, beam]]
                ids = ids[: ids.index(EOS_ID)] if EOS_ID in ids else ids
                ids = [t for t in ids if t != PAD_ID]
                length = max(int(lengths[row, beam]), 1)
                total = float(totals[row, beam])
                penalty = ((5.0 + length) / 6.0) ** options.length_penalty
                nbest.append(Hypothesis(ids, total / length, total / penalty))
            if options.beam_size == 1:
                nbest = nbest[:1]
            results.append(nbest)
        return results


def _beam_loop_of(
    beam_loop: Callable[..., tuple[tf.Tensor, tf.Tensor, tf.Tensor]], k: int | tf.Tensor
) -> Callable[..., tuple[tf.Tensor, tf.Tensor, tf.Tensor]]:
    """`beam_loop` for k beams, taking only the four tensors every loop takes."""

    def loop(
        source_ids: tf.Tensor, limits: tf.Tensor, max_len: tf.Tensor, length_penalty: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return beam_loop(source_ids, limits, max_len, length_penalty, k)

    return loop


def _grown(cache: dict[str, Any], length: tf.Tensor) -> dict[str, Any]:
    """The cache with its self-attention keys (rows, heads, head_dim, positions) and values
    (rows, heads, positions, head_dim) padded with empty positions to `length`."""
    grown = []
    for keys, values in cache["self"]:
        extra = length - tf.shape(values)[2]
        grown.append(
            (
                tf.pad(keys, [[0, 0], [0, 0], [0, 0], [0, extra]]),
                tf.pad(values, [[0, 0], [0, 0], [0, extra], [0, 0]]),
            )
        )
    return {**cache, "self": grown}


def _live(finished: tf.Tensor) -> tf.Tensor:
    """Per sentence, whether any of its rows still decodes: finished is (sentences[, beams])."""
    return ~tf.reduce_all(tf.reshape(finished, [finished.shape[0], -1]), axis=1)


def _constrain(log_probs: tf.Tensor, at_limit: tf.Tensor) -> tf.Tensor:
    """Never emit <pad> or <s>; rows at their length limit may only emit </s>."""
    vocab = tf.shape(log_probs)[-1]
    never = tf.one_hot([PAD_ID, BOS_ID], vocab, on_value=_NEG_INF, off_value=0.0)
    log_probs = log_probs + tf.reduce_sum(never, axis=0)[None, :]
    # A forced </s> keeps its log-probability: scores and beam ranking count it.
    eos_only = tf.one_hot(EOS_ID, vocab, on_value=0.0, off_value=_NEG_INF)
    return tf.where(at_limit[:, None], log_probs + eos_only[None, :], log_probs)


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
