"""`python -m bench.engines`: the Keras reference decoder against CTranslate2, side by side.

Every (engine, setting) runs in a process of its own (engines in one process slow each
other down), on the same sentences, in an order that rotates between rounds; each worker
loads the model, warms up on one batch, then times every batch. Prints tokens/s,
sentences/s, BLEU, how many outputs equal the Keras reference's, and one JSON object.

    python -m bench.engines --artifact artifacts/translation/en-de --sentences 1000
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from model.cli import setup_logging, user_errors

log = logging.getLogger("bench.engines")
app = typer.Typer(add_completion=False, help=__doc__)
Opt = typer.Option
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "multi30k"
# engine name -> (kind, compute type, inter threads, intra threads)
ENGINES = {
    "keras": ("keras", "float32", 1, 2),
    "ct2-float32": ("ctranslate2", "float32", 1, 2),
    "ct2-int8": ("ctranslate2", "int8", 1, 1),
}


def _decoder(artifact: Path, engine: str) -> tuple[Any, Any]:
    from model import engine as engines
    from model.predictor import Translator, load_artifact

    loaded = load_artifact(artifact)
    kind, compute_type, inter, intra = ENGINES[engine]
    if kind == "keras":
        return Translator(loaded).decoder, loaded.tokenizer
    options = engines.EngineOptions(
        compute_type=compute_type, inter_threads=inter, intra_threads=intra
    )
    return engines.Engine(
        artifact / engines.EXPORT_DIR, loaded.tokenizer, options
    ), loaded.tokenizer


def worker(artifact: Path, engine: str, beam: int, batch: int, sources: Path, out: Path) -> None:
    """One timed run (`main` calls it in a fresh process)."""
    from model.decoding import DecodeOptions

    decoder, tokenizer = _decoder(artifact, engine)
    lines = sources.read_text(encoding="utf-8").splitlines()
    ids = tokenizer.encode_batch(lines)
    options = DecodeOptions(beam_size=beam, length_penalty=getattr(decoder, "length_penalty", 0.6))
    decoder.translate(ids[:batch], options)  # warm-up: graphs traced, engine loaded
    outputs, tokens = [], 0
    started = time.perf_counter()
    for start in range(0, len(ids), batch):
        for nbest in decoder.translate(ids[start : start + batch], options):
            outputs.append(tokenizer.decode(nbest[0].ids))
            tokens += len(nbest[0].ids) + 1  # </s> counts: it is generated too
    seconds = time.perf_counter() - started
    out.write_text(json.dumps({"seconds": seconds, "tokens": tokens, "outputs": outputs}))


def _run(artifact: Path, engine: str, beam: int, batch: int, sources: Path, folder: Path) -> Any:
    out = folder / f"{engine}-b{beam}-n{batch}.json"
    arguments = [str(artifact), engine, beam, batch, str(sources), str(out)]
    call = (
        "import json, sys; from pathlib import Path; from bench.engines import worker; "
        "a = json.loads(sys.argv[1]); worker(Path(a[0]), a[1], a[2], a[3], Path(a[4]), Path(a[5]))"
    )
    command = [sys.executable, "-c", call, json.dumps(arguments)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


@app.command()
@user_errors
def main(
    artifact: Annotated[Path, Opt(help="a translation version, or its model folder (latest)")],
    source: Annotated[Path, Opt(help="source sentences")] = DATA / "test_2016_flickr.en.gz",
    reference: Annotated[Path, Opt(help="their references")] = DATA / "test_2016_flickr.de.gz",
    sentences: Annotated[int, Opt(help="the first N sentences")] = 1000,
    engines: Annotated[str, Opt(help=f"comma-separated, of {', '.join(ENGINES)}")] = ",".join(
        ENGINES
    ),
    settings: Annotated[str, Opt(help="beam:batch pairs")] = "1:1,1:32,1:64,4:32",
    rounds: Annotated[int, Opt(help="repeats of every run, order rotated, averaged")] = 1,
    work: Annotated[Path, Opt(help="scratch folder")] = Path("bench/results/engines"),
) -> None:
    """Times each engine on each setting and compares their outputs and BLEU."""
    setup_logging()
    from model.data import read_parallel
    from model.evaluate import resolve_artifact
    from model.scoring import translation_scores

    artifact = resolve_artifact(artifact)
    names = [e.strip() for e in engines.split(",") if e.strip()]
    unknown = set(names) - set(ENGINES)
    if unknown:
        raise ValueError(f"unknown engines {sorted(unknown)}; choose from {', '.join(ENGINES)}")
    pairs = read_parallel(source, reference)[:sentences]
    work.mkdir(parents=True, exist_ok=True)
    sources = work / "sources.txt"
    sources.write_text("\n".join(s for s, _ in pairs) + "\n", encoding="utf-8")
    grid = [tuple(int(x) for x in item.split(":")) for item in settings.split(",")]
    runs: dict[tuple[str, int, int], list[Any]] = {}
    for round_number in range(rounds):
        order = names[round_number % len(names) :] + names[: round_number % len(names)]
        for beam, batch in grid:
            for engine in order:
                log.info("round %d: %s beam %d batch %d", round_number + 1, engine, beam, batch)
                runs.setdefault((engine, beam, batch), []).append(
                    _run(artifact, engine, beam, batch, sources, work)
                )
    report = []
    for (engine, beam, batch), results in runs.items():
        seconds = sum(r["seconds"] for r in results) / len(results)
        outputs = results[0]["outputs"]
        keras = runs.get(("keras", beam, batch))
        same = (
            sum(a == b for a, b in zip(outputs, keras[0]["outputs"], strict=True))
            if keras
            else None
        )
        report.append({
            "engine": engine, "beam": beam, "batch": batch, "sentences": len(outputs),
            "tokens_per_s": round(results[0]["tokens"] / seconds, 1),
            "sentences_per_s": round(len(outputs) / seconds, 1),
            "bleu": translation_scores(outputs, [t for _, t in pairs])["bleu"],
            "identical_to_keras": same,
        })  # fmt: skip
    print(f"{'engine':<13} {'beam':>4} {'batch':>5} {'tokens/s':>9} {'sent/s':>7} "
          f"{'BLEU':>6} {'same as keras':>14}")  # fmt: skip
    for row in report:
        same = "" if row["identical_to_keras"] is None else f"{row['identical_to_keras']}"
        print(f"{row['engine']:<13} {row['beam']:>4} {row['batch']:>5} "
              f"{row['tokens_per_s']:>9,.1f} {row['sentences_per_s']:>7,.1f} "
              f"{row['bleu']:>6.2f} {same:>14}")  # fmt: skip
    print(json.dumps({"artifact": str(artifact), "rounds": rounds, "runs": report}))


if __name__ == "__main__":
    app()
