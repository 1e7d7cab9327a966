"""`python -m bench.decode`: the cached decoder against the naive loop, side by side.

One run on the same sentences: the naive baseline (batch 1, a full forward pass per step)
on a subset, timed sentence by sentence in turns with cached batch 1 on the same subset
(the batch-1 target's ratio); cached greedy at batch 1, 8, 32 and 64, and beam 4 at batch
32, on every sentence. Prints a table, then one JSON object with every figure and the speed
ratios against their targets. Timings exclude tracing (each setting is warmed up
first); on a shared CPU they move with the machine's load, which the report records, and
`--rounds` repeats every timing in rotation and averages the repeats.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from bench import measure
from bench.measure import Run
from bench.naive import NaiveGreedy
from model.cli import setup_logging, user_errors
from model.data import read_parallel
from model.decoding import DecodeOptions
from model.evaluate import resolve_artifact
from model.predictor import Translator, load_artifact
from model.scoring import translation_scores

log = logging.getLogger("bench.decode")
app = typer.Typer(add_completion=False, help=__doc__)
Opt = typer.Option

# ../shared/data/multi30k from the repository root.
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k"
GREEDY_BATCHES = (1, 8, 32, 64)
BEAM_SIZE, BEAM_BATCH = 4, 32
# The speed and quality targets: ratio name, comparison, bound.
TARGETS = (
    ("greedy_b1_vs_naive_tokens_per_s", ">=", 5.0),
    ("greedy_b64_vs_b1_tokens_per_s", ">=", 8.0),
    ("beam4_vs_greedy_time_at_b32", "<=", 3.0),
    ("beam4_minus_greedy_bleu_at_b32", ">=", 0.0),
)


@dataclass(frozen=True)
class Runs:
    paired: measure.Paired  # the naive loop and cached batch 1 on the first naive_sentences
    greedy: dict[int, Run]  # by batch size
    beam: Run

    @property
    def naive(self) -> Run:
        return self.paired.naive


@app.command()
@user_errors
def main(
    artifact: Annotated[Path, Opt(help="version folder, or model folder (latest version)")],
    source_file: Annotated[Path, Opt(help="English sources")] = DATA / "test_2016_flickr.en.gz",
    reference_file: Annotated[Path, Opt(help="German refs")] = DATA / "test_2016_flickr.de.gz",
    sentences: Annotated[int, Opt(help="first N lines", min=1)] = 512,
    naive_sentences: Annotated[int, Opt(help="naive loop's subset", min=1)] = 64,
    quick: Annotated[bool, Opt(help="smoke run: 32 sentences, naive on 8")] = False,
    rounds: Annotated[
        int, Opt(help="time every setting this many times in rotation and average", min=1)
    ] = 1,
    matmul_size: Annotated[int, Opt(help="square matmul for the peak", min=64)] = 2048,
    json_out: Annotated[Path | None, Opt(help="also write the JSON here")] = None,
) -> None:
    """Benchmark cached greedy and beam search against the naive loop."""
    setup_logging("INFO")
    if quick:
        sentences, naive_sentences = 32, 8
    path = resolve_artifact(artifact)
    translator = Translator(load_artifact(path))
    pairs = read_parallel(source_file, reference_file)[:sentences]
    references = [target for _, target in pairs]
    sources = translator.tokenizer.encode_batch([translator.prepare(s) for s, _ in pairs])
    device = measure.describe_device()
    log.info("%s: %d sentences on %s", path, len(sources), device)

    runs = _measure(translator, sources, naive_sentences, rounds)
    peak_gflops = measure.matmul_peak(matmul_size)
    bandwidth = measure.read_bandwidth()
    result = {
        "artifact": str(path),
        "device": device,
        "sentences": len(sources),
        "naive_sentences": runs.naive.sentences,
        "rounds": rounds,
        **_summary(translator, sources, references, runs, peak_gflops),
        "batch1_memory": _batch1_memory(translator, runs, bandwidth),
        "decoder_traces": translator.decoder.traces,
        "matmul_peak": {"size": matmul_size, "gflops": round(peak_gflops, 1)},
    }
    typer.echo(_table(result))
    text = json.dumps(result, indent=2, ensure_ascii=False)
    typer.echo(text)
    if json_out is not None:
        json_out.write_text(text + "\n", encoding="utf-8")


def _measure(
    translator: Translator, sources: list[list[int]], naive_sentences: int, rounds: int
) -> Runs:
    decoder = translator.decoder
    paired = measure.time_paired(
        NaiveGreedy(translator.model), decoder, sources[:naive_sentences], rounds=rounds
    )
    log.info(
        "naive greedy and cached batch 1 in turns, %d sentences: %.1f s and %.1f s",
        paired.naive.sentences,
        paired.naive.wall_s,
        paired.cached.wall_s,
    )
    settings = [(batch, DecodeOptions(beam_size=1), "cached greedy") for batch in GREEDY_BATCHES]
    settings.append((BEAM_BATCH, DecodeOptions(beam_size=BEAM_SIZE), f"beam {BEAM_SIZE}"))
    timed: list[list[Run]] = [[] for _ in settings]
    for _ in range(rounds):  # in rotation: a slow minute of the machine hits every setting
        for (batch, options, name), runs in zip(settings, timed, strict=True):
            runs.append(measure.time_cached(decoder, sources, batch, options, name))
            log.info("%s, batch %d: %.1f s", name, batch, runs[-1].wall_s)
    *greedy, beam = [measure.averaged(runs) for runs in timed]
    return Runs(paired, {run.batch: run for run in greedy}, beam)


def _summary(
    translator: Translator,
    sources: list[list[int]],
    references: Sequence[str],
    runs: Runs,
    peak_gflops: float,
) -> dict[str, Any]:
    """Quality, speed-ups, the identity check and the fraction of peak, as JSON values."""

    def bleu(run: Run) -> dict[str, Any]:
        hypotheses = [translator.tokenizer.decode(ids) for ids in run.outputs]
        return translation_scores(hypotheses, references[: run.sentences])

    naive, greedy = runs.naive, runs.greedy
    quality = {_key(run): bleu(run) for run in _in_order(runs)}
    b1_subset = quality[_key(runs.paired.cached)]  # cached batch 1 on the naive loop's subset
    flops = measure.mean_flops_per_token(translator.model, sources, greedy[64].outputs)
    b64_gflops = greedy[64].tokens_per_s * flops["flops_per_token"] / 1e9
    ratios = _ratios(runs, quality)
    return {
        "runs": [_figures(run, quality[_key(run)], naive) for run in _in_order(runs)],
        "naive_subset": {
            **runs.paired.summary(),
            "naive_bleu": quality[_key(naive)]["bleu"],
            "cached_greedy_b1_bleu": b1_subset["bleu"],
        },
        "bleu_signature": b1_subset["signature"],
        "flops": {key: round(value, 1) for key, value in flops.items()},
        "flops_method": measure.FLOPS_METHOD,
        "greedy_b64_gflops": round(b64_gflops, 3),
        "greedy_b64_fraction_of_peak": round(b64_gflops / peak_gflops, 5),
        "ratios": ratios,
        "targets": {
            name: {
                "value": ratios[name],
                "target": f"{op} {bound:g}",
                "met": _holds(op, ratios[name], bound),
            }
            for name, op, bound in TARGETS
        },
    }


def _batch1_memory(translator: Translator, runs: Runs, bandwidth: float) -> dict[str, float]:
    """Batch 1 reads every decoder weight for each token: its ceiling is memory bandwidth.

    Steps are counted as tokens (one step per generated token, </s> included).
    """
    step_bytes = measure.weight_bytes_per_step(translator.model)
    used = runs.greedy[1].tokens_per_s * step_bytes / 1e9
    return {
        "weight_mb_per_step": round(step_bytes / 1e6, 1),
        "weight_gb_per_s": round(used, 2),
        "read_bandwidth_gb_per_s": round(bandwidth, 1),
        "fraction_of_bandwidth": round(used / bandwidth, 4),
    }


def _in_order(runs: Runs) -> list[Run]:
    return [runs.naive, runs.paired.cached, *runs.greedy.values(), runs.beam]


def _key(run: Run) -> tuple[str, int]:
    return run.name, run.batch


def _ratios(runs: Runs, quality: dict[tuple[str, int], dict[str, Any]]) -> dict[str, float]:
    greedy, beam = runs.greedy, runs.beam
    ratios = {
        # On the naive loop's sentences, timed in turns with it: the same work, the same load.
        "greedy_b1_vs_naive_tokens_per_s": runs.paired.tokens_per_s_ratio,
        "greedy_b64_vs_b1_tokens_per_s": greedy[64].tokens_per_s / greedy[1].tokens_per_s,
        "beam4_vs_greedy_time_at_b32": beam.wall_s / greedy[BEAM_BATCH].wall_s,
        "beam4_minus_greedy_bleu_at_b32": (
            quality[_key(beam)]["bleu"] - quality[_key(greedy[BEAM_BATCH])]["bleu"]
        ),
    }
    return {name: round(value, 2) for name, value in ratios.items()}


def _figures(run: Run, quality: dict[str, Any], naive: Run) -> dict[str, Any]:
    return {
        "setting": run.name,
        "batch": run.batch,
        "sentences": run.sentences,
        "tokens": run.tokens,
        "wall_s": round(run.wall_s, 3),
        "tokens_per_s": round(run.tokens_per_s, 1),
        "sentences_per_s": round(run.sentences_per_s, 2),
        "speedup_vs_naive": round(run.tokens_per_s / naive.tokens_per_s, 2),
        "bleu": quality["bleu"],
        "chrf": quality["chrf"],
        "warmup_s": round(run.warmup_s, 2),
        "traces_warmup": run.traces_warmup,
        "traces_timed": run.traces_timed,
    }


def _holds(op: str, value: float, bound: float) -> bool:
    return value >= bound if op == ">=" else value <= bound


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['device']}; {result['sentences']} sentences",
        f"{'setting':<23}{'batch':>6}{'sent.':>6}{'tokens/s':>11}{'sent./s':>10}"
        f"{'BLEU':>7}{'wall s':>9}{'vs naive':>10}",
    ]
    for run in result["runs"]:
        lines.append(
            f"{run['setting']:<23}{run['batch']:>6}{run['sentences']:>6}"
            f"{run['tokens_per_s']:>11.1f}{run['sentences_per_s']:>10.2f}{run['bleu']:>7.2f}"
            f"{run['wall_s']:>9.2f}{run['speedup_vs_naive']:>9.2f}x"
        )
    subset = result["naive_subset"]
    lines.append(
        f"naive subset: {subset['outputs_that_differ']} of {subset['sentences']} "
        f"sentences differ from cached greedy batch 1 (BLEU there: naive "
        f"{subset['naive_bleu']:.2f}, cached {subset['cached_greedy_b1_bleu']:.2f}); timed in "
        f"turns, mean of {subset['rounds']}: cached batch 1 is "
        f"{subset['cached_b1_vs_naive']}x the naive loop's tokens/s, per sentence median "
        f"{subset['per_sentence_speedup_median']}x "
        f"({subset['per_sentence_speedup_p10']}-{subset['per_sentence_speedup_p90']}x, "
        "10th-90th percentile)"
    )
    lines.append(
        f"matmul peak {result['matmul_peak']['gflops']:.1f} GFLOP/s; cached greedy batch 64: "
        f"{result['greedy_b64_gflops']:.3f} GFLOP/s = "
        f"{100 * result['greedy_b64_fraction_of_peak']:.3f}% of peak "
        f"({result['flops']['flops_per_token']:,.0f} FLOPs per token)"
    )
    memory = result["batch1_memory"]
    lines.append(
        f"cached greedy batch 1 reads {memory['weight_mb_per_step']:.1f} MB of weights per "
        f"token: {memory['weight_gb_per_s']:.2f} GB/s = "
        f"{100 * memory['fraction_of_bandwidth']:.1f}% of the measured read bandwidth "
        f"({memory['read_bandwidth_gb_per_s']:.1f} GB/s)"
    )
    for name, target in result["targets"].items():
        verdict = "met" if target["met"] else "MISSED"
        lines.append(f"{name:<34}{target['value']:>8}  target {target['target']:<6} {verdict}")
    return "\n".join(lines)


if __name__ == "__main__":
    app()
