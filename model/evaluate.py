"""`python -m model.evaluate`: score an artifact on a test set and print JSON.

Translation: --source-file and --reference-file (line-aligned, plain or gzip), or
--recipe with --split (a corpus of a translation recipe, its validation split carved again
as training carved it; `tatoeba_typed` is the typed copy), give sacreBLEU (default cased
13a signature) and chrF, decoded by the Keras reference or, with --engine, by the
artifact's CTranslate2 export as the service runs it. Classifiers: --tsv with a label and
a text column, or --recipe with --split, give accuracy, F1 and calibration error;
--read-pieces and --tail-pieces score another reading of long texts than the artifact's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from model.cli import setup_logging, user_errors

app = typer.Typer(add_completion=False, help=__doc__)
Opt = typer.Option


def resolve_artifact(path: Path) -> Path:
    """A version folder, or a model folder (its latest version)."""
    from model import artifacts

    if (path / artifacts.MANIFEST).is_file():
        return path
    versions = (
        sorted((p for p in path.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        if path.is_dir()
        else []
    )
    if not versions:
        raise artifacts.ArtifactError(f"{path}: neither a version folder nor a model folder")
    return versions[-1]


@app.command()
@user_errors
def main(
    artifact: Annotated[Path, Opt(help="version folder, or model folder (latest version)")],
    source_file: Annotated[Path | None, Opt(help="sources, one per line")] = None,
    reference_file: Annotated[Path | None, Opt(help="references, line-aligned")] = None,
    tsv: Annotated[Path | None, Opt(help="classifier test set: label and text columns")] = None,
    data_dir: Annotated[
        Path | None,
        Opt(help="langid: folder of <split>.<lang>[.gz] files; with --recipe: its data folder"),
    ] = None,
    split: Annotated[
        str, Opt(help="langid: the split to score with --data-dir; with --recipe: a corpus")
    ] = "test_2016_flickr",
    recipe: Annotated[
        Path | None, Opt(help="score the validation split of a recipe's corpus (--split)")
    ] = None,
    seed: Annotated[
        int | None, Opt(help="with --recipe: the carving seed (default: the artifact's own)")
    ] = None,
    read_pieces: Annotated[
        int | None, Opt(help="classifiers: pieces read per text instead of the artifact's")
    ] = None,
    tail_pieces: Annotated[
        int | None, Opt(help="classifiers: of those, taken from a long text's end")
    ] = None,
    engine: Annotated[
        str, Opt(help="translation: keras, ctranslate2 (float32) or ctranslate2-int8")
    ] = "keras",
    beam_size: Annotated[int, Opt(help="1 = greedy")] = 1,
    length_penalty: Annotated[
        float | None, Opt(help="default: the decoder's own (Keras 0.6, CTranslate2 1.0)")
    ] = None,
    batch_size: Annotated[int, Opt()] = 64,
    limit: Annotated[int | None, Opt(help="score only the first N examples")] = None,
    output: Annotated[Path | None, Opt(help="also write the hypotheses here")] = None,
) -> None:
    """Print quality figures of one artifact as JSON."""
    setup_logging("WARNING")
    from model import data
    from model.decoding import DecodeOptions
    from model.predictor import Classifier, Translator, load_artifact
    from model.publishing import evaluate_classifier, evaluate_translation

    path = resolve_artifact(artifact)
    loaded = load_artifact(path)
    started = time.perf_counter()
    result: dict[str, object] = {"artifact": str(path), "version": loaded.manifest.get("version")}
    if seed is None:  # a recipe's split as the model was validated on it, carved again
        seed = int(loaded.manifest.get("train_config", {}).get("seed", 1234))
    if loaded.config.task == "translation":
        if recipe is not None and (source_file is not None or reference_file is not None):
            raise ValueError("give --recipe (with --split) or --source-file, not both")
        if recipe is not None:
            pairs = _translation_split(loaded.manifest, recipe, data_dir, split, seed)[:limit]
            result["split"] = split
        elif source_file is None or reference_file is None:
            raise ValueError(
                "a translation artifact needs --source-file and --reference-file, or --recipe"
            )
        else:
            pairs = data.read_parallel(source_file, reference_file)[:limit]
        translator = Translator(loaded, decoder=_engine(path, loaded, engine))
        result["engine"] = translator.engine
        penalty = translator.length_penalty if length_penalty is None else length_penalty
        options = DecodeOptions(beam_size=beam_size, length_penalty=penalty)
        scores = evaluate_translation(
            translator,
            [s for s, _ in pairs],
            [t for _, t in pairs],
            options,
            batch_size,
            hypotheses_out=output,
        )
        translator.close()
        result.update(scores)
    else:
        if recipe is not None and (tsv is not None or source_file is not None):
            raise ValueError("give --recipe (with --split) or --tsv, not both")
        if read_pieces is not None or tail_pieces is not None:
            pieces = loaded.config.read_pieces if read_pieces is None else read_pieces
            tail = loaded.config.tail_pieces if tail_pieces is None else tail_pieces
            if pieces > loaded.config.max_length or tail >= (pieces or loaded.config.max_length):
                raise ValueError(
                    f"--read-pieces {pieces} and --tail-pieces {tail} (the artifact's value "
                    "where a flag is not given): read at most max_length "
                    f"{loaded.config.max_length} pieces, and fewer from the end than in all"
                )
            config = loaded.config.replace(read_pieces=pieces, tail_pieces=tail)
            loaded = dataclasses.replace(loaded, config=config)
            result["read"] = {
                "read_pieces": loaded.config.read_limit,
                "tail_pieces": loaded.config.tail_pieces,
            }
        classifier = Classifier(loaded)
        if engine != "keras":
            raise ValueError("--engine applies to translation artifacts")
        if recipe is not None:
            examples = _recipe_split(recipe, data_dir or recipe.parent, split, seed)[:limit]
            result["split"] = split
        elif loaded.config.task == "langid" and data_dir is not None:
            examples = data.read_langid(data_dir, classifier.labels, split)[:limit]
        elif tsv is not None:
            examples = data.read_classification(tsv)[:limit]
        else:
            raise ValueError(f"a {loaded.config.task} artifact needs --tsv (or --data-dir)")
        labels = {"0": "NEGATIVE", "1": "POSITIVE"} if loaded.config.task == "sentiment" else {}
        examples = [(text, labels.get(label, label)) for text, label in examples]
        unknown = {label for _, label in examples} - set(classifier.labels)
        if unknown:
            where = f"{recipe} ({split})" if recipe is not None else tsv or data_dir
            raise data.DataError(f"{where}: labels {sorted(unknown)} unknown to the model")
        result.update(evaluate_classifier(classifier, examples, batch_size))
    result["seconds"] = round(time.perf_counter() - started, 2)
    typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


ENGINES = {"ctranslate2": "float32", "ctranslate2-int8": "int8"}  # --engine -> compute type


def _engine(path: Path, loaded: Any, name: str) -> Any:
    """The decoder --engine names: None for the Keras reference, else the export's engine."""
    if name == "keras":
        return None
    if name not in ENGINES:
        raise ValueError(f"--engine {name!r}: one of keras, {', '.join(ENGINES)}")
    from model import engine

    folder = path / engine.EXPORT_DIR
    if not folder.is_dir():
        raise ValueError(f"{path}: no CTranslate2 export ({engine.EXPORT_DIR}/)")
    threads = 1 if ENGINES[name] == "int8" else os.cpu_count() or 1  # as bench.engines runs them
    options = engine.EngineOptions(compute_type=ENGINES[name], intra_threads=threads)
    return engine.Engine(folder, loaded.tokenizer, options)


def _translation_split(
    manifest: dict[str, Any], recipe: Path, data_dir: Path | None, split: str, seed: int
) -> list[tuple[str, str]]:
    """The validation split of one corpus of a translation recipe, in the artifact's
    direction, as training built it (the same carving by `seed`)."""
    from model import data, mixture

    specs, _ = mixture.read_recipe(recipe)
    source, target = str(manifest["source_language"]), str(manifest["target_language"])
    mixed = mixture.build(specs, data_dir or recipe.parent, source, target, seed=seed)
    if split not in mixed.validation:
        raise data.DataError(f"{recipe}: no split {split!r}; it has {sorted(mixed.validation)}")
    return list(mixed.validation[split])


def _recipe_split(recipe: Path, data_dir: Path, split: str, seed: int) -> list[tuple[str, str]]:
    """The validation split of one corpus of a classification recipe, as training built it
    (the same carving by `seed`; texts as read, the classifier normalizes them)."""
    from model import data, mixture
    from tokenizers import normalize

    specs, settings = mixture.read_recipe(recipe)
    norm = settings.get("normalizer", "review")
    mixed = mixture.build_classification(
        specs, data_dir, seed=seed, key=lambda text: normalize(text, norm)
    )
    if split not in mixed.validation:
        raise data.DataError(f"{recipe}: no corpus {split!r}; it has {sorted(mixed.validation)}")
    return list(mixed.validation[split])


if __name__ == "__main__":
    app()
