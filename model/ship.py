"""`python -m model.ship VERSION_DIR --to artifacts`: publish a trained version for release.

Copies the version into the release tree as its next version, optionally with float16
weights (half the size; loaded back into float32 variables), and writes MODEL_CARD.md
from the manifest. A translation model gets its CTranslate2 export made from the weights
as shipped, checked against the Keras reference on the validation pairs given
(`--check-source/--check-target`). The copy gets its own manifest and checksums.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Annotated, Any

import h5py
import numpy as np
import typer

from model import artifacts
from model.cli import setup_logging, user_errors

app = typer.Typer(add_completion=False, help=__doc__)

LIMITS = {  # per task/name, else per task
    "translation": "Trained on Multi30k image captions: short, literal descriptions of photos. "
    "Expect weaker output on other domains (news, dialogue, long or technical text).",
    "sentiment": "Trained on SST-2 movie-review phrases, lowercased and split PTB-style; served "
    "text is normalized the same way. Other domains, sarcasm and mixed opinions are weak spots.",
    "sentiment/en": "Trained on a mixture of SST-2 movie-review phrases, IMDB movie reviews and "
    "product pros/cons sentences, all lowercased and split PTB-style (markup removed); served "
    "text is normalized the same way. A long review is read as its first and last pieces only "
    "(above). Domains far from movies and products, sarcasm and mixed opinions are weak spots.",
    "langid": "Distinguishes four languages only (en, de, fr, cs), trained on image captions; "
    "very short inputs, names and other languages get a confident but meaningless answer.",
}


def half_precision_copy(source: Path, target: Path) -> None:
    """The same HDF5 weights file with every float32 array stored as float16."""
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:

        def copy(group: Any, into: Any) -> None:
            for key, value in group.attrs.items():
                into.attrs[key] = value
            for key, item in group.items():
                if isinstance(item, h5py.Dataset):
                    data = item[()]
                    if isinstance(data, np.ndarray) and data.dtype == np.float32:
                        data = data.astype(np.float16)
                    into.create_dataset(key, data=data)
                else:
                    copy(item, into.create_group(key))

        copy(src, dst)


def _table(metrics: dict[str, Any]) -> str:
    rows = ["| split | metric | value |", "| --- | --- | --- |"]
    for split, values in metrics.items():
        beam = values.get("beam_size")
        decoding = "" if beam is None else " (greedy)" if beam == 1 else f" (beam {beam})"
        for name in ("bleu", "chrf", "accuracy", "f1", "ece_uncalibrated", "ece", "temperature"):
            if name in values:
                label = name + (decoding if name in ("bleu", "chrf") else "")
                rows.append(f"| {split} | {label} | {values[name]} |")
    return "\n".join(rows)


def _reading(config: dict[str, Any]) -> str:
    """What a classifier reads of a text, and how its probabilities are scaled."""
    limit = config.get("read_pieces") or config["max_length"]
    tail = config.get("tail_pieces", 0)
    longer = (
        f"the first {limit - tail} and the last {tail} of a longer text"
        if tail
        else "the first ones of a longer text"
    )
    return (
        f"- reads up to {limit} pieces per text ({longer}); logits divided by the "
        f"temperature {config.get('temperature', 1.0)} (fit on validation) before the softmax"
    )


def _engine_lines(check: dict[str, Any] | None) -> list[str]:
    if not check:
        return []
    bleu = ", ".join(f"{k} {v}" for k, v in check.get("bleu", {}).items())
    return [
        f"- CTranslate2 export in `{check['folder']}/` ({check['weights_dtype']} weights): "
        f"{check['identical_greedy']} of {check['sentences']} validation sentences decoded "
        f"exactly as the Keras model does (greedy, "
        f"{check.get('checked_weights_dtype', check['weights_dtype'])}); BLEU at beam "
        f"{check['beam_size']}: {bleu}"
    ]


def _limits(manifest: dict[str, Any]) -> str:
    task, name = manifest["task"], manifest["name"]
    corpora = manifest.get("data", {}).get("corpora")
    if task == "translation" and corpora:
        return (
            f"Trained on a mixture of {', '.join(corpora)} (above). Each sentence is translated "
            "on its own (the service splits a text into sentences), so nothing carries across "
            "sentences: pronouns, terms, formality. Long, technical, informal or social-media "
            "text, rare names and sentences longer than the training length are weak spots."
        )
    return LIMITS.get(f"{task}/{name}", LIMITS.get(task, ""))


def _data_lines(sources: dict[str, Any]) -> list[str]:
    """The corpora of a mixture with their counts, licenses and credits; else the sources."""
    corpora = sources.get("corpora")
    if not corpora:
        return [f"- sources: `{json.dumps(sources, sort_keys=True)}`"]
    lines = [
        f"- mixture `{sources.get('recipe', '')}`; per corpus: pairs kept after cleaning, "
        "upsampling weight, validation split, license and credit",
        "",
        "| corpus | files | kept | weight | validation | license | credit |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in corpora.items():
        files = ", ".join(f"`{f}`" for f in row.get("files", []))
        lines.append(
            f"| {name} | {files} | {row['kept']:,} | {row['weight']:g} | {row['validation']:,} "
            f"| {row.get('license') or 'not stated by the source'} | {row.get('attribution', '')} |"
        )
    typed = float(sources.get("typed_share") or 0.0)
    if typed:
        lines += [
            "",
            f"- and {typed:g} of each corpus' pairs once more with the source as people type "
            "it (lowercase, no final punctuation)",
        ]
    return [*lines, ""]


def _training_lines(train: dict[str, Any], selection: dict[str, Any]) -> list[str]:
    """How many updates made the weights, and the version a continued run started from."""
    lines = []
    if selection.get("updates"):
        lines.append(f"- {selection['updates']:,} updates in all")
    if train.get("init_from"):
        started = "/".join(Path(train["init_from"]).parts[-3:])  # task/name/version
        lines.append(
            f"- continued from `{started}` (its weights, tokenizer and settings) at update "
            f"{train.get('initial_step', 0):,}"
        )
    return lines


def model_card(manifest: dict[str, Any], notes: str) -> str:
    task, name, config = manifest["task"], manifest["name"], manifest["model_config"]
    train = manifest["train_config"]
    signature = next(
        (v["signature"] for v in manifest.get("metrics", {}).values() if "signature" in v), None
    )
    lines = [
        f"# Model card: {task}/{name}",
        "",
        "The version number and the sha256 of every file are in `manifest.json` beside this card.",
        "",
        "## Data",
        *_data_lines(manifest.get("data", {})),
        f"- SentencePiece {train['tokenizer_model_type']} vocabulary of "
        f"{config['vocab_size']} pieces, trained on the training split only",
        f"- text normalizer: `{config['normalizer']}`",
        "",
        "## Configuration",
        f"- {config['encoder_layers']} encoder"
        + (f" and {config['decoder_layers']} decoder" if task == "translation" else "")
        + f" layers, d_model {config['d_model']}, {config['num_heads']} heads, d_ff "
        f"{config['d_ff']}, dropout {config['dropout']}, pre-norm, {manifest['parameters']:,} "
        "parameters",
        f"- preset `{train['preset']}`, label smoothing {train['label_smoothing']}, warmup "
        f"{train['warmup_steps']} steps, batch {train['batch_tokens']} tokens / "
        f"{train['batch_size']} examples, seed {train['seed']}",
        *_training_lines(train, manifest.get("selection", {})),
        f"- weights stored as {manifest.get('weights_dtype', 'float32')}",
        *_engine_lines(manifest.get("engine")),
        *([_reading(config)] if task != "translation" else []),
        "",
        "## Scores (measured when trained; held-out test splits never chose anything)",
        _table(manifest.get("metrics", {})),
    ]
    if signature:
        lines += ["", f"sacreBLEU signature: `{signature}`"]
    lines += ["", "## Known limits", _limits(manifest)]
    if notes:
        lines += ["", "## Notes", notes]
    return "\n".join(lines) + "\n"


def _export(
    staging: Path, manifest: dict[str, Any], pairs: list[tuple[str, str]], half: bool
) -> dict[str, Any]:
    """The CTranslate2 export of the weights as shipped (float16 ones stay float16: the
    export checked holds exactly the values the Keras model computes with). With `half`,
    the export shipped is its int8 quantization where that keeps the BLEU (see
    model.publishing.export_engine)."""
    from model.config import ModelConfig
    from model.predictor import LoadedArtifact
    from model.publishing import export_engine
    from model.transformer import build_model
    from tokenizers import SubwordTokenizer

    config = ModelConfig.from_dict(manifest["model_config"])
    model = build_model(config)
    model.load_weights(staging / artifacts.WEIGHTS)
    tokenizer = SubwordTokenizer.load(staging / artifacts.TOKENIZER)
    loaded = LoadedArtifact(model, tokenizer, manifest, config)
    beam = int(manifest["train_config"].get("beam_size", 4))
    dtype = "float16" if half else "float32"
    return export_engine(loaded, staging, pairs, beam_size=beam, dtype=dtype, keep_int8=half)


@app.command()
@user_errors
def main(
    version_dir: Annotated[Path, typer.Argument(help="a published version folder")],
    to: Annotated[Path, typer.Option(help="release artifacts root")] = Path("artifacts"),
    half: Annotated[bool, typer.Option(help="store float16 weights")] = True,
    notes: Annotated[str, typer.Option(help="extra text for the model card")] = "",
    check_source: Annotated[
        Path | None, typer.Option(help="translation: validation sources the export is checked on")
    ] = None,
    check_target: Annotated[
        Path | None, typer.Option(help="translation: their references (line-aligned)")
    ] = None,
) -> None:
    """Copy a verified version into the release tree, with a model card."""
    setup_logging()
    manifest = artifacts.verify(version_dir)
    check_pairs = None
    if manifest["task"] == "translation":
        if check_source is None or check_target is None:
            raise ValueError("a translation model needs --check-source and --check-target")
        from model.data import read_parallel

        check_pairs = read_parallel(check_source, check_target)
    publication = artifacts.publish(to, manifest["task"], manifest["name"])
    with publication as staging:
        for name in manifest["files"]:
            if name == artifacts.WEIGHTS and half:
                half_precision_copy(version_dir / name, staging / name)
            elif name != "MODEL_CARD.md" and not name.startswith("ctranslate2/"):
                shutil.copy2(version_dir / name, staging / name)
        shipped = {k: v for k, v in manifest.items() if k not in ("files", "version")}
        shipped.update(
            weights_dtype="float16" if half else "float32", shipped_from=str(version_dir)
        )
        if check_pairs is not None:
            shipped["engine"] = _export(staging, shipped, check_pairs, half)
        (staging / artifacts.MANIFEST).write_text(json.dumps(shipped, indent=2))
        (staging / "MODEL_CARD.md").write_text(model_card(shipped, notes))
    assert publication.path is not None
    artifacts.verify(publication.path)
    typer.echo(str(publication.path))


if __name__ == "__main__":
    app()
