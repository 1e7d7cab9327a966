"""Timing pieces of bench.decode: one decoding setting, the matmul peak, FLOPs per token."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf

from bench.naive import NaiveGreedy
from model.decoding import DecodeOptions, Decoder, batch_bucket, flops_per_token
from model.transformer import Seq2SeqTransformer
from tokenizers import EOS_ID


@dataclass(frozen=True)
class Run:
    """One timed setting over a list of sentences."""

    name: str
    batch: int
    outputs: list[list[int]]  # generated ids per sentence, in input order, </s> excluded
    wall_s: float
    warmup_s: float  # compilation and first runs, excluded from wall_s
    compilations_warmup: int
    compilations_timed: int  # graphs traced while timing: 0 unless shapes were missed

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


def time_naive(naive: NaiveGreedy, sources: Sequence[Sequence[int]]) -> Run:
    """The baseline loop, one sentence at a time, after one warm-up sentence."""
    started = time.perf_counter()
    naive.translate(sources[0])
    warmup_s = time.perf_counter() - started
    traced = naive.traces
    outputs = []
    started = time.perf_counter()
    for source in sources:
        ids = naive.translate(source)
        outputs.append(ids[:-1] if ids[-1] == EOS_ID else ids)
    wall_s = time.perf_counter() - started
    return Run("naive greedy", 1, outputs, wall_s, warmup_s, traced, naive.traces - traced)


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
    before = decoder.compilations
    started = time.perf_counter()
    for chunk in _one_chunk_per_graph(decoder, sources, chunks):
        decoder.translate([sources[i] for i in chunk], options)
    warmup_s = time.perf_counter() - started
    warm = decoder.compilations
    outputs: list[list[int]] = [[] for _ in sources]
    started = time.perf_counter()
    for chunk in chunks:
        nbest = decoder.translate([sources[i] for i in chunk], options)
        for i, hypotheses in zip(chunk, nbest, strict=True):
            outputs[i] = hypotheses[0].ids
    wall_s = time.perf_counter() - started
    return Run(name, batch, outputs, wall_s, warmup_s, warm - before, decoder.compilations - warm)


def _one_chunk_per_graph(
    decoder: Decoder, sources: Sequence[Sequence[int]], chunks: list[list[int]]
) -> list[list[int]]:
    """Warm-up batches: one graph serves every shape without XLA, one per bucket with it."""
    if not decoder.jit_compile:
        return chunks[:1]
    by_shape: dict[tuple[int, int], list[int]] = {}
    for chunk in chunks:
        longest = min(max(len(sources[i]) for i in chunk) + 1, decoder.model_max_length)
        key = (batch_bucket(len(chunk)), -(-longest // decoder.length_bucket))
        by_shape.setdefault(key, chunk)
    return list(by_shape.values())


def matmul_peak(size: int = 2048, rounds: int = 5) -> float:
    """Best of `rounds` GFLOP/s of a float32 size x size matmul (TF32 where TF enables it)."""
    a = tf.random.uniform((size, size), dtype=tf.float32)
    b = tf.random.uniform((size, size), dtype=tf.float32)
    product = tf.function(lambda x, y: tf.reduce_sum(tf.matmul(x, y)))  # scalar: cheap to sync
    product(a, b).numpy()  # trace and warm up
    started = time.perf_counter()
    product(a, b).numpy()
    # Enough calls per round that dispatch overhead vanishes on a fast accelerator.
    repeats = max(1, math.ceil(0.2 / (time.perf_counter() - started)))
    best = math.inf
    for _ in range(rounds):
        started = time.perf_counter()
        results = [product(a, b) for _ in range(repeats)]
        results[-1].numpy()  # one stream: the last result waits for all of them
        best = min(best, (time.perf_counter() - started) / repeats)
    return 2 * size**3 / best / 1e9


def mean_flops_per_token(
    model: Seq2SeqTransformer, sources: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]]
) -> float:
    """Useful decoder FLOPs per generated token, averaged over the tokens actually generated.

    Each token's step is charged its own source length (with </s>) and context (the
    positions up to and including it), not the padded shapes the compiled loop computes;
    the encoder (once per sentence) is left out.
    """
    total, count = 0.0, 0
    for source, output in zip(sources, outputs, strict=True):
        source_len = min(len(source) + 1, model.model_config.max_length)
        for position in range(len(output) + 1):  # + 1: the </s> step
            total += flops_per_token(model, source_len, position + 1)
            count += 1
    return total / count


def describe_device() -> str:
    """What the decoding ran on, for the report."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
        return f"GPU {details.get('device_name', gpus[0].name)} (TF32 {'on' if tf32 else 'off'})"
    return f"CPU ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})"
