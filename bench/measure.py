"""Timing pieces of bench.decode: one decoding setting, the naive loop and
cached batch 1 paired sentence by sentence, the matmul peak, FLOPs per token."""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import tensorflow as tf

from bench.naive import NaiveGreedy
from model.decoding import DecodeOptions, Decoder, flops_per_token
from model.transformer import Seq2SeqTransformer
from tokenizers import EOS_ID


@dataclass(frozen=True)
class Run:
    """One timed setting over a list of sentences."""

    name: str
    batch: int
    outputs: list[list[int]]  # generated ids per sentence, in input order, </s> excluded
    wall_s: float
    warmup_s: float  # tracing and first runs, excluded from wall_s
    traces_warmup: int
    traces_timed: int  # graphs traced while timing: 0, one graph serves every shape

    @property
    def sentences(self) -> int:
        return len(self.outputs)

    @property
    def tokens(self) -> int:
        """Generated target tokens, each sentence's </s> included."""
        return sum(len(ids) + 1 for ids in self.outputs)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s

    @property
    def sentences_per_s(self) -> float:
        return self.sentences / self.wall_s


@dataclass(frozen=True)
class Paired:
    """The naive loop and cached greedy at batch 1 on the same sentences, timed in turns."""

    naive: Run
    cached: Run
    speedups: list[float]  # per sentence: the naive loop's seconds / cached batch 1's
    rounds: int

    @property
    def tokens_per_s_ratio(self) -> float:
        """Cached batch 1's tokens/s over the naive loop's, on the same sentences."""
        return self.cached.tokens_per_s / self.naive.tokens_per_s

    def summary(self) -> dict[str, float | int]:
        """The ratio of the totals and the spread of the per-sentence speed-ups."""
        # Inclusive: with few sentences the default method extrapolates past the data.
        deciles = (
            statistics.quantiles(self.speedups, n=10, method="inclusive")
            if len(self.speedups) > 1
            else []
        )
        return {
            "sentences": self.naive.sentences,
            "rounds": self.rounds,
            "outputs_that_differ": sum(
                a != b for a, b in zip(self.naive.outputs, self.cached.outputs, strict=True)
            ),
            "naive_tokens_per_s": round(self.naive.tokens_per_s, 1),
            "cached_b1_tokens_per_s": round(self.cached.tokens_per_s, 1),
            "cached_b1_vs_naive": round(self.tokens_per_s_ratio, 2),
            "per_sentence_speedup_median": round(statistics.median(self.speedups), 2),
            "per_sentence_speedup_p10": round(deciles[0] if deciles else self.speedups[0], 2),
            "per_sentence_speedup_p90": round(deciles[-1] if deciles else self.speedups[0], 2),
        }


def time_paired(
    naive: NaiveGreedy,
    decoder: Decoder,
    sources: Sequence[Sequence[int]],
    options: DecodeOptions = DecodeOptions(),
    rounds: int = 1,
) -> Paired:
    """The naive loop and cached greedy at batch 1, sentence by sentence in turns.

    On a shared machine the load moves by tens of percent within a minute, more than the
    margin to a speed-up target; timing the two on each sentence back to back (which one
    goes first alternates) puts both under the same load. With `rounds` > 1 every sentence
    is timed that many times on each side and the times are averaged: not the fastest,
    which would favour the side whose calls are short enough to slip between the bursts
    of other load. The graphs are traced first.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be positive, not {rounds}")
    if not sources:
        raise ValueError("no sentences to time")

    def cached(source: Sequence[int]) -> list[int]:
        return decoder.translate([source], options)[0][0].ids

    def plain(source: Sequence[int]) -> list[int]:
        ids = naive.translate(source)
        return ids[:-1] if ids and ids[-1] == EOS_ID else ids

    started = time.perf_counter()
    naive.translate(sources[0])
    naive_warmup_s = time.perf_counter() - started
    traced = naive.traces
    singles = [[i] for i in range(len(sources))]
    cached_warmup_s, warm_traces = _warm_up(decoder, sources, singles, options)
    warm = decoder.traces
    sides: tuple[Callable[[Sequence[int]], list[int]], ...] = (plain, cached)
    seconds = [[0.0] * len(sources) for _ in sides]
    outputs: list[list[list[int]]] = [[[] for _ in sources] for _ in sides]
    for round_number in range(rounds):
        for i, source in enumerate(sources):
            order = (0, 1) if (i + round_number) % 2 == 0 else (1, 0)
            for side in order:
                tick = time.perf_counter()
                outputs[side][i] = sides[side](source)
                seconds[side][i] += time.perf_counter() - tick
    runs = [
        Run(name, 1, outputs[side], sum(seconds[side]) / rounds, warmup_s, graphs, timed)
        for side, name, warmup_s, graphs, timed in (
            (0, "naive greedy", naive_warmup_s, traced, naive.traces - traced),
            (1, "cached greedy (paired)", cached_warmup_s, warm_traces, decoder.traces - warm),
        )
    ]
    speedups = [slow / fast for slow, fast in zip(*seconds, strict=True)]
    return Paired(runs[0], runs[1], speedups, rounds)


def time_cached(
    decoder: Decoder,
    sources: Sequence[Sequence[int]],
    batch: int,
    options: DecodeOptions,
    name: str,
) -> Run:
    """Decoder.translate over length-sorted batches (as the service's batcher groups them)."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    chunks = [order[start : start + batch] for start in range(0, len(order), batch)]
    warmup_s, warm_traces = _warm_up(decoder, sources, chunks, options)
    warm = decoder.traces
    outputs: list[list[int]] = [[] for _ in sources]
    started = time.perf_counter()
    for chunk in chunks:
        nbest = decoder.translate([sources[i] for i in chunk], options)
        for i, hypotheses in zip(chunk, nbest, strict=True):
            outputs[i] = hypotheses[0].ids
    wall_s = time.perf_counter() - started
    return Run(name, batch, outputs, wall_s, warmup_s, warm_traces, decoder.traces - warm)


def _warm_up(
    decoder: Decoder,
    sources: Sequence[Sequence[int]],
    chunks: list[list[int]],
    options: DecodeOptions,
) -> tuple[float, int]:
    """Runs the first chunk (one graph serves every shape) -> the seconds it took and the
    graphs it traced."""
    before = decoder.traces
    started = time.perf_counter()
    decoder.translate([sources[i] for i in chunks[0]], options)
    return time.perf_counter() - started, decoder.traces - before


def averaged(runs: Sequence[Run]) -> Run:
    """One setting timed several times: the mean wall time, the last run's outputs (the
    same in every run) and the traces of them all."""
    last = runs[-1]
    return Run(
        last.name,
        last.batch,
        last.outputs,
        statistics.fmean(run.wall_s for run in runs),
        sum(run.warmup_s for run in runs),
        sum(run.traces_warmup for run in runs),
        sum(run.traces_timed for run in runs),
    )


def matmul_peak(size: int = 2048, rounds: int = 5) -> float:
    """Best of `rounds` GFLOP/s of a float32 size x size matmul (TF32 where TF enables it),
    through TF's own kernel, as the decoder's graphs run it."""
    a = tf.random.uniform((size, size), dtype=tf.float32)
    b = tf.random.uniform((size, size), dtype=tf.float32)
    best = math.inf
    product = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))  # cheap to sync
    product(a, b).numpy()  # trace and warm up
    started = time.perf_counter()
    product(a, b).numpy()
    # Enough calls per round that dispatch overhead vanishes on a fast accelerator.
    repeats = max(1, math.ceil(0.2 / (time.perf_counter() - started)))
    for _ in range(rounds):
        started = time.perf_counter()
        results = [product(a, b) for _ in range(repeats)]
        results[-1].numpy()  # one stream: the last result waits for all of them
        best = min(best, (time.perf_counter() - started) / repeats)
    return 2 * size**3 / best / 1e9


def read_bandwidth(megabytes: int = 512, rounds: int = 5) -> float:
    """Best of `rounds` GB/s of summing a float32 tensor far larger than the caches."""
    data = tf.ones((megabytes * 2**20 // 4,), tf.float32)
    total = tf.function(tf.reduce_sum)
    total(data).numpy()  # trace and warm up
    best = math.inf
    for _ in range(rounds):
        started = time.perf_counter()
        total(data).numpy()
        best = min(best, time.perf_counter() - started)
    return megabytes * 2**20 / best / 1e9


def weight_bytes_per_step(model: Seq2SeqTransformer) -> int:
    """Bytes of float32 weights one cached decoding step reads, whatever its batch: the
    decoder blocks (less the cross-attention key/value projections, applied once per
    batch), the final norm and the output embedding."""
    once_per_batch = set()
    for block in model.decoder_blocks:
        attention = block.cross_attention
        once_per_batch |= {
            id(w) for w in attention.key_dense.weights + attention.value_dense.weights
        }
    weights = [w for block in model.decoder_blocks for w in block.weights]
    weights += model.decoder_norm.weights
    weights.append(model.decoder_embedding.token_embedding.embeddings)
    return 4 * sum(math.prod(w.shape) for w in weights if id(w) not in once_per_batch)


FLOPS_METHOD = (
    "model.decoding.flops_per_token (decoder step: projections, feed-forward, attention over "
    "the real source incl. </s> and the real context up to the token, output layer), "
    "averaged over every token generated by cached greedy at batch 64; excludes the "
    "encoder (once per sentence) and the padding the batched loop also computes"
)


def mean_flops_per_token(
    model: Seq2SeqTransformer, sources: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]]
) -> dict[str, float]:
    """Useful decoder FLOPs per generated token, averaged over the tokens actually generated.

    Each token's step is charged its own source length (with </s>) and context (the
    positions up to and including it), not the padded shapes the batched loop computes.
    Also returns those lengths' token-weighted means.
    """
    flops = source_total = context_total = 0.0
    count = 0
    for source, output in zip(sources, outputs, strict=True):
        source_len = min(len(source) + 1, model.model_config.max_length)
        for position in range(len(output) + 1):  # + 1: the </s> step
            flops += flops_per_token(model, source_len, position + 1)
            source_total += source_len
            context_total += position + 1
            count += 1
    return {
        "flops_per_token": flops / count,
        "mean_source_len": source_total / count,
        "mean_context_len": context_total / count,
    }


def describe_device() -> str:
    """What the decoding ran on, for the report."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
        return f"GPU {details.get('device_name', gpus[0].name)} (TF32 {'on' if tf32 else 'off'})"
    return f"CPU ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})"
