"""`python -m bench.decode`: the cached decoder against the naive loop, side by side.

One run on the same sentences: the naive baseline (batch 1, a full forward pass per step)
on a subset, cached greedy at batch 1, 8, 32 and 64, and beam 4 at batch 32. Prints a
table, then one JSON object with every figure and the ratios the decoding issue targets.
Timings exclude compilation (each setting is warmed up first); on a shared CPU they move
with the machine's load, which the JSON records.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from model.cli import setup_logging, user_errors

if TYPE_CHECKING:
    from bench.measure import Run

log = logging.getLogger("bench.decode")
app = typer.Typer(add_completion=False, help=__doc__)
Opt = typer.Option

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "multi30k"
GREEDY_BATCHES = (1, 8, 32, 64)
BEAM_SIZE, BEAM_BATCH = 4, 32
# The targets: (ratio name, comparison, bound).
TARGETS = (
    ("greedy_b1_vs_naive_tokens_per_s", ">=", 5.0),
    ("greedy_b64_vs_b1_tokens_per_s", ">=", 8.0),
    ("beam4_vs_greedy_time_at_b32", "<=", 3.0),
    ("beam4_minus_greedy_bleu_at_b32", ">=", 0.0),
)


@app.command()
@user_errors
def main(
    artifact: Annotated[Path, Opt(help="version folder, or model folder (latest version)")],
    source_file: Annotated[Path, Opt(help="English sources")] = DATA / "test_2016_flickr.en.gz",
    reference_file: Annotated[Path, Opt(help="German refs")] = DATA / "test_2016_flickr.de.gz",
    sentences: Annotated[int, Opt(help="first N lines", min=1)] = 512,
    naive_sentences: Annotated[int, Opt(help="naive loop's subset", min=1)] = 64,
    quick: Annotated[bool, Opt(help="smoke run: 32 sentences, naive on 8")] = False,
    xla: Annotated[bool, Opt(help="Decoder(jit_compile=True)")] = False,
    matmul_size: Annotated[int, Opt(help="square matmul for the peak", min=64)] = 2048,
    json_out: Annotated[Path | None, Opt(help="also write the JSON here")] = None,
) -> None:
    """Benchmark cached greedy and beam search against the naive loop."""
    setup_logging("INFO")
    from bench import measure
    from bench.naive import NaiveGreedy
    from model.data import read_parallel
    from model.decoding import DecodeOptions
    from model.evaluate import resolve_artifact
    from model.predictor import Translator, load_artifact
    from model.scoring import translation_scores

    if quick:
        sentences, naive_sentences = 32, 8
    path = resolve_artifact(artifact)
    translator = Translator(load_artifact(path), jit_compile=xla)
    model, tokenizer, decoder = translator.model, translator.tokenizer, translator.decoder
    pairs = read_parallel(source_file, reference_file)[:sentences]
    references = [target for _, target in pairs]
    sources = tokenizer.encode_batch([translator.prepare(text) for text, _ in pairs])
    subset = sources[:naive_sentences]
    device = measure.describe_device()
    log.info("%s: %d sentences (naive: %d) on %s", path, len(sources), len(subset), device)

    naive = measure.time_naive(NaiveGreedy(model), subset)
    log.info("naive: %.1f s", naive.wall_s)
    greedy = {}
    for batch in GREEDY_BATCHES:
        greedy[batch] = measure.time_cached(
            decoder, sources, batch, DecodeOptions(beam_size=1), "cached greedy"
        )
        log.info("greedy batch %d: %.1f s", batch, greedy[batch].wall_s)
    beam = measure.time_cached(
        decoder, sources, BEAM_BATCH, DecodeOptions(beam_size=BEAM_SIZE), f"beam {BEAM_SIZE}"
    )
    log.info("beam %d batch %d: %.1f s", BEAM_SIZE, BEAM_BATCH, beam.wall_s)
    peak_gflops = measure.matmul_peak(matmul_size)
    flops = measure.mean_flops_per_token(model, sources, greedy[64].outputs)

    def scores(run: Run, refs: list[str]) -> dict[str, Any]:
        return translation_scores([tokenizer.decode(ids) for ids in run.outputs], refs)

    runs = [naive, *greedy.values(), beam]
    quality = {id(run): scores(run, references[: run.sentences]) for run in runs}
    b1_on_subset = scores(_head(greedy[1], len(subset)), references[: len(subset)])
    differing = sum(a != b for a, b in zip(naive.outputs, greedy[1].outputs, strict=False))

    result: dict[str, Any] = {
        "artifact": str(path),
        "device": device,
        "xla": xla,
        "sentences": len(sources),
        "naive_sentences": len(subset),
        "runs": [_run_figures(run, quality[id(run)], naive) for run in runs],
        "naive_subset": {
            "sentences": len(subset),
            "differing_from_cached_greedy_b1": differing,
            "naive_bleu": quality[id(naive)]["bleu"],
            "cached_greedy_b1_bleu": b1_on_subset["bleu"],
        },
        "decoder_compilations": decoder.compilations,
        "matmul_peak": {"size": matmul_size, "gflops": round(peak_gflops, 1)},
        "flops_per_token": round(flops),
        "flops_method": measure.mean_flops_per_token.__doc__.split("\n")[0],
        "greedy_b64_gflops": round(greedy[64].tokens_per_s * flops / 1e9, 2),
        "greedy_b64_fraction_of_peak": round(
            greedy[64].tokens_per_s * flops / 1e9 / peak_gflops, 4
        ),
        "bleu_signature": quality[id(naive)]["signature"],
    }
    result["ratios"] = _ratios(naive, greedy, beam, quality)
    result["targets"] = {
        name: {
            "value": result["ratios"][name],
            "target": f"{op} {bound:g}",
            "met": _holds(result["ratios"][name], op, bound),
        }
        for name, op, bound in TARGETS
    }
    typer.echo(_table(result))
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


def _head(run: Run, count: int) -> Run:
    from dataclasses import replace

    return replace(run, outputs=run.outputs[:count])


def _run_figures(run: Run, quality: dict[str, Any], naive: Run) -> dict[str, Any]:
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
        "compilations_warmup": run.compilations_warmup,
        "compilations_timed": run.compilations_timed,
    }


def _ratios(
    naive: Run, greedy: dict[int, Run], beam: Run, quality: dict[int, dict[str, Any]]
) -> dict[str, float]:
    return {
        "greedy_b1_vs_naive_tokens_per_s": round(greedy[1].tokens_per_s / naive.tokens_per_s, 2),
        "greedy_b64_vs_b1_tokens_per_s": round(greedy[64].tokens_per_s / greedy[1].tokens_per_s, 2),
        "beam4_vs_greedy_time_at_b32": round(beam.wall_s / greedy[BEAM_BATCH].wall_s, 2),
        "beam4_minus_greedy_bleu_at_b32": round(
            quality[id(beam)]["bleu"] - quality[id(greedy[BEAM_BATCH])]["bleu"], 2
        ),
    }


def _holds(value: float, op: str, bound: float) -> bool:
    return value >= bound if op == ">=" else value <= bound


def _table(result: dict[str, Any]) -> str:
    header = f"{'setting':<15}{'batch':>6}{'sent.':>6}{'tokens/s':>11}{'sent./s':>10}"
    header += f"{'BLEU':>7}{'wall s':>9}{'vs naive':>10}"
    lines = [f"{result['device']}; {result['sentences']} sentences; XLA {result['xla']}", header]
    for run in result["runs"]:
        lines.append(
            f"{run['setting']:<15}{run['batch']:>6}{run['sentences']:>6}"
            f"{run['tokens_per_s']:>11.1f}{run['sentences_per_s']:>10.2f}{run['bleu']:>7.2f}"
            f"{run['wall_s']:>9.2f}{run['speedup_vs_naive']:>9.2f}x"
        )
    subset = result["naive_subset"]
    lines.append(
        f"naive subset ({subset['sentences']}): {subset['differing_from_cached_greedy_b1']} "
        f"sentences differ from cached greedy batch 1; BLEU naive {subset['naive_bleu']:.2f}, "
        f"cached {subset['cached_greedy_b1_bleu']:.2f}"
    )
    lines.append(
        f"matmul peak {result['matmul_peak']['gflops']:.1f} GFLOP/s; greedy batch 64 reaches "
        f"{result['greedy_b64_gflops']:.2f} GFLOP/s = "
        f"{100 * result['greedy_b64_fraction_of_peak']:.2f}% "
        f"({result['flops_per_token']:,} FLOPs per token)"
    )
    for name, target in result["targets"].items():
        verdict = "met" if target["met"] else "MISSED"
        lines.append(f"{name:<34}{target['value']:>8}  target {target['target']:<6} {verdict}")
    return "\n".join(lines)


if __name__ == "__main__":
    app()
