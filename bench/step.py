"""`python -m bench.step`: what one cached decoding step costs, for a preset's shape.

A step's time does not depend on the values of the weights, so an untrained model of the
preset's shape measures it without an artifact (the `base` preset is not shipped). Random
sources of one length decode at each batch size; an untrained model seldom emits </s>, so
rows run to their length limit. Per batch: the time of a call, of a call limited to one
token (the encoder's pass, the loop's setup and its first step), the time per step beyond
the first, and tokens per second. At batch 1 a step reads every decoder weight once: the
report sets the bytes read per second against the machine's read bandwidth, measured in
the same run. Prints a table, then one JSON object.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any

import keras
import numpy as np
import typer

from bench import measure
from bench.naive import NaiveGreedy
from model.cli import setup_logging, user_errors
from model.config import PRESETS, preset
from model.decoding import DecodeOptions, Decoder, XlaMode
from model.transformer import Seq2SeqTransformer, build_model
from tokenizers import EOS_ID

log = logging.getLogger("bench.step")
app = typer.Typer(add_completion=False, help=__doc__)
Opt = typer.Option


@app.command()
@user_errors
def main(
    preset_name: Annotated[str, Opt("--preset", help=f"one of {', '.join(PRESETS)}")] = "base",
    batches: Annotated[str, Opt(help="comma-separated batch sizes")] = "1,8,32,64",
    source_length: Annotated[int, Opt(help="pieces per source sentence", min=1)] = 15,
    rounds: Annotated[int, Opt(help="timed calls per figure (the best round counts)", min=1)] = 5,
    xla: Annotated[XlaMode, Opt(help="on: XLA, as served; off: one graph for all")] = "on",
    output_tokens: Annotated[
        int | None, Opt(help="stop each sentence after this many pieces (default: its limit)")
    ] = None,
    naive_sentences: Annotated[
        int,
        Opt(help="also time the naive loop and batch 1 in turns on this many sentences", min=0),
    ] = 0,
    naive_rounds: Annotated[
        int, Opt(help="times each of those sentences is timed on each side (averaged)", min=1)
    ] = 1,
) -> None:
    """Time cached greedy decoding steps of an untrained model of a preset's shape."""
    setup_logging("INFO")
    try:
        sizes = [int(size) for size in batches.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise ValueError(f"batch sizes must be positive integers: {batches!r}")
    if output_tokens is not None and output_tokens < 1:
        raise ValueError(f"--output-tokens must be positive, not {output_tokens}")
    # max_length counts </s>: output_tokens pieces, then </s>.
    options = (
        DecodeOptions() if output_tokens is None else DecodeOptions(max_length=output_tokens + 1)
    )
    model_config, _ = preset(preset_name, "translation")
    keras.utils.set_random_seed(0)
    model = build_model(model_config)
    assert isinstance(model, Seq2SeqTransformer)
    decoder = Decoder(model, xla=xla)
    rows = [_time_batch(decoder, size, source_length, rounds, options) for size in sizes]
    bandwidth = measure.read_bandwidth()
    weight_bytes = measure.weight_bytes_per_step(model)
    result: dict[str, Any] = {
        "preset": preset_name,
        "parameters": model.count_params(),
        "device": measure.describe_device(),
        "xla": xla,
        "source_length": source_length,
        "output_tokens": output_tokens,
        "batches": rows,
        "weight_mb_per_step": round(weight_bytes / 1e6, 1),
        "read_bandwidth_gb_per_s": round(bandwidth, 1),
    }
    batch1 = [row for row in rows if row["batch"] == 1 and row["ms_per_step"] is not None]
    if batch1:
        step_s = batch1[0]["ms_per_step"] / 1e3
        result["batch1_weight_gb_per_s"] = round(weight_bytes / step_s / 1e9, 2)
    if naive_sentences:
        result["naive"] = _naive_against_batch1(
            decoder, naive_sentences, source_length, options, naive_rounds
        )
    typer.echo(_table(result))
    typer.echo(json.dumps(result, indent=2))


def _sources(decoder: Decoder, count: int, length: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    vocab = decoder.model.model_config.vocab_size
    return [rng.integers(EOS_ID + 1, vocab, size=length).tolist() for _ in range(count)]


def _time_batch(
    decoder: Decoder, size: int, source_length: int, rounds: int, options: DecodeOptions
) -> dict[str, Any]:
    sources = _sources(decoder, size, source_length, seed=size)
    one_token = DecodeOptions(max_length=1)
    call_s, outputs = _best_call(decoder, sources, options, rounds)
    setup_s, _ = _best_call(decoder, sources, one_token, rounds)
    steps = max(len(nbest[0].ids) for nbest in outputs) + 1  # + 1: the </s> step
    tokens = sum(len(nbest[0].ids) + 1 for nbest in outputs)
    log.info("batch %d: %.1f ms per call, %d steps", size, call_s * 1e3, steps)
    return {
        "batch": size,
        "steps": steps,
        "tokens": tokens,
        "ms_per_call": round(call_s * 1e3, 2),
        "ms_setup": round(setup_s * 1e3, 2),
        # None when every row stopped at its first step: nothing to divide.
        "ms_per_step": round((call_s - setup_s) / (steps - 1) * 1e3, 3) if steps > 1 else None,
        "tokens_per_s": round(tokens / call_s, 1),
    }


def _naive_against_batch1(
    decoder: Decoder, count: int, source_length: int, options: DecodeOptions, rounds: int
) -> dict[str, Any]:
    """The naive loop and cached greedy at batch 1 over the same sentences, timed sentence
    by sentence in turns, `rounds` times each, after both have traced or compiled their
    graphs (`measure.time_paired`)."""
    sources = _sources(decoder, count, source_length, seed=0)
    paired = measure.time_paired(
        NaiveGreedy(decoder.model, options), decoder, sources, options, rounds
    )
    log.info(
        "naive loop: %.1f tokens/s; cached batch 1: %.1f",
        paired.naive.tokens_per_s,
        paired.cached.tokens_per_s,
    )
    return {**paired.summary(), "tokens": paired.naive.tokens}


def _best_call(
    decoder: Decoder, sources: list[list[int]], options: DecodeOptions, rounds: int
) -> tuple[float, Any]:
    """The fastest of `rounds` calls, after one that compiles; and that call's output."""
    outputs = decoder.translate(sources, options)
    decoder.wait_for_compilations()  # --xla background: time the compiled loop
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        outputs = decoder.translate(sources, options)
        best = min(best, time.perf_counter() - started)
    return best, outputs


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['device']}; preset {result['preset']} untrained "
        f"({result['parameters']:,} parameters); XLA {result['xla']}",
        f"{'batch':>5}{'steps':>7}{'ms/call':>10}{'ms setup':>10}{'ms/step':>9}{'tokens/s':>10}",
    ]
    for row in result["batches"]:
        step = "-" if row["ms_per_step"] is None else f"{row['ms_per_step']:.2f}"
        lines.append(
            f"{row['batch']:>5}{row['steps']:>7}{row['ms_per_call']:>10.1f}"
            f"{row['ms_setup']:>10.1f}{step:>9}{row['tokens_per_s']:>10.0f}"
        )
    if "naive" in result:
        naive = result["naive"]
        lines.append(
            f"naive loop, batch 1, {naive['sentences']} sentences: {naive['naive_tokens_per_s']} "
            f"tokens/s; cached, same sentences in turns: {naive['cached_b1_tokens_per_s']} "
            f"({naive['cached_b1_vs_naive']}x; per sentence median "
            f"{naive['per_sentence_speedup_median']}x); {naive['outputs_that_differ']} outputs "
            "differ"
        )
    if "batch1_weight_gb_per_s" in result:
        lines.append(
            f"batch 1 reads {result['weight_mb_per_step']} MB of weights per step: "
            f"{result['batch1_weight_gb_per_s']} GB/s of the {result['read_bandwidth_gb_per_s']} "
            "GB/s measured"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    app()
