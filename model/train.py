"""`python -m model.train {translation,sentiment,langid} ...`: train and publish a model.

Every hyperparameter of the chosen preset can be overridden by a flag; the configuration
actually used is written into the artifact's manifest. Under KERAS_BACKEND=jax (a GPU
worker without TensorFlow) the fitted model is saved, and `publish` evaluates and publishes
it under TensorFlow.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Annotated, Any

import typer

from model.cli import setup_logging, user_errors

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
log = logging.getLogger("model.train")

Preset = Annotated[
    str, typer.Option(help="tiny (tests, seconds), small (CPU), release (shipped models), base")
]
Out = Annotated[Path, typer.Option(help="artifacts root; writes <out>/<task>/<name>/<version>/")]
Opt = typer.Option
PRECISION_HELP = "auto (on a GPU or a CPU with native bfloat16) | on | off"


def _configs(task: str, preset_name: str, overrides: dict[str, Any]) -> tuple[Any, Any]:
    from model.config import ModelConfig, TrainConfig, preset

    model_config, train_config = preset(preset_name, task)  # type: ignore[arg-type]
    given = {k: v for k, v in overrides.items() if v is not None}
    if "layers" in given:
        given["encoder_layers"] = given["decoder_layers"] = given.pop("layers")
    model_fields = set(ModelConfig.__dataclass_fields__)
    train_fields = set(TrainConfig.__dataclass_fields__)
    model_config = model_config.replace(**{k: v for k, v in given.items() if k in model_fields})
    train_config = train_config.replace(**{k: v for k, v in given.items() if k in train_fields})
    if "vocab_size" in given:
        model_config = model_config.replace(vocab_size=given["vocab_size"])
    return model_config, train_config


# What --init-from may change: regularization. Everything else of the model is the artifact's.
CONTINUED_MODEL_FIELDS = ("dropout", "attention_dropout", "token_dropout")
SHAPE_FLAGS = ("d_model", "num_heads", "d_ff", "layers", "vocab_size", "max_length")


def _continued(path: Path, task: str, model_config: Any, given: dict[str, Any]) -> tuple[Any, Any]:
    """The configs of a run that continues the published artifact at `path`: its shape,
    tokenizer and training settings, with the regularization and training flags given."""
    from model import artifacts
    from model.config import ModelConfig, TrainConfig

    manifest = artifacts.verify(path)  # refuses a folder that is not a whole artifact
    if manifest.get("task") != task:
        raise ValueError(f"--init-from {path}: a {manifest.get('task')} model, not {task}")
    theirs = ModelConfig.from_dict(manifest["model_config"])
    clashing = [
        name
        for name in SHAPE_FLAGS
        if given.get(name) is not None
        and given[name] != getattr(theirs, "encoder_layers" if name == "layers" else name)
    ]
    if clashing:
        raise ValueError(
            f"--init-from {path}: the shape is the artifact's; drop --"
            + ", --".join(name.replace("_", "-") for name in clashing)
        )
    kept = {name: getattr(model_config, name) for name in CONTINUED_MODEL_FIELDS}
    model_config = theirs.replace(
        **{name: value for name, value in kept.items() if given.get(name) is not None}
    )
    # The updates it made: recorded since continued training exists, else epochs x steps.
    selection, before = manifest.get("selection", {}), manifest.get("train_config", {})
    updates = selection.get("updates")
    if updates is None:
        epochs_run = len(manifest.get("history", {}).get("loss", []))
        steps = int(before.get("epoch_steps", 0))
        updates = int(before.get("initial_step", 0)) + epochs_run * steps
    # Its training settings too, except what this command's flags set.
    train_fields = set(TrainConfig.__dataclass_fields__)
    train_config = TrainConfig.from_dict({k: v for k, v in before.items() if k in train_fields})
    train_config = train_config.replace(
        **{k: v for k, v in given.items() if v is not None and k in train_fields}
    )
    return model_config, train_config.replace(
        init_from=str(Path(path).resolve()),
        initial_step=int(updates),
        vocab_size=int(manifest.get("tokenizer", {}).get("vocab_size", theirs.vocab_size)),
    )


# CPU flags of native bfloat16 matrix products; without one, bfloat16 is emulated (measured:
# 20-30 s an update where float32 takes 3, docs/training.md).
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bfloat16 natively (Linux' flags; False where unknown)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    flags = {
        flag
        for line in text.splitlines()
        if line.startswith("flags")
        for flag in line.partition(":")[2].split()
    }
    return any(flag in flags for flag in BFLOAT16_CPU_FLAGS)


def _gpu() -> bool:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.default_backend() == "gpu"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _resolve_precision(flag: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """--mixed-precision: auto is on where it is fast (a GPU, or a CPU with native
    bfloat16); on is refused on a CPU that would emulate bfloat16."""
    if flag not in ("auto", "on", "off"):
        raise ValueError(f"--mixed-precision {flag!r}: one of auto, on, off")
    if flag == "off":
        return False
    if _gpu() or cpu_has_bfloat16(cpuinfo):
        return True
    if flag == "on":
        raise ValueError(
            "--mixed-precision on: this CPU has no native bfloat16 "
            f"({' or '.join(BFLOAT16_CPU_FLAGS)}), so every update would be many times "
            "slower than in float32; use --mixed-precision auto or off"
        )
    return False


def _hyper(
    d_model: Annotated[int | None, Opt(help="model width")] = None,
    num_heads: Annotated[int | None, Opt(help="attention heads")] = None,
    d_ff: Annotated[int | None, Opt(help="feed-forward width")] = None,
    layers: Annotated[int | None, Opt(help="encoder and decoder layers")] = None,
    dropout: Annotated[float | None, Opt()] = None,
    attention_dropout: Annotated[float | None, Opt()] = None,
    epochs: Annotated[int | None, Opt()] = None,
    epoch_steps: Annotated[
        int | None, Opt(help="updates per epoch (checkpoint and validation); 0: a full pass")
    ] = None,
    batch_tokens: Annotated[int | None, Opt(help="translation batch size in tokens")] = None,
    batch_size: Annotated[int | None, Opt(help="classifier batch size in examples")] = None,
    warmup_steps: Annotated[int | None, Opt()] = None,
    learning_rate_scale: Annotated[float | None, Opt()] = None,
    label_smoothing: Annotated[float | None, Opt()] = None,
    token_dropout: Annotated[
        float | None, Opt(help="classifiers: share of input tokens replaced by <unk> in training")
    ] = None,
    pretrain_epochs: Annotated[
        int | None, Opt(help="classifiers: masked-LM pre-training epochs of the encoder")
    ] = None,
    mask_rate: Annotated[float | None, Opt(help="share of tokens masked in pre-training")] = None,
    vocab_size: Annotated[int | None, Opt(help="SentencePiece vocabulary size")] = None,
    max_source_length: Annotated[
        int | None,
        Opt(help="tokens: longer sources are dropped (translation) or cut (classifiers)"),
    ] = None,
    max_length: Annotated[
        int | None, Opt(help="longest input the model is built for (positions)")
    ] = None,
    read_pieces: Annotated[
        int | None,
        Opt(help="classifiers: pieces read per text (default: max_source_length)"),
    ] = None,
    tail_pieces: Annotated[
        int | None,
        Opt(help="classifiers: of those, taken from a longer text's end (0: the start only)"),
    ] = None,
    early_stopping_patience: Annotated[int | None, Opt()] = None,
    average_checkpoints: Annotated[int | None, Opt(help="average the N best epochs")] = None,
    beam_size: Annotated[int | None, Opt(help="beam for the final validation score")] = None,
    max_minutes: Annotated[
        float | None, Opt(help="stop after the epoch past this budget (pre-training excluded)")
    ] = None,
    seed: Annotated[int | None, Opt()] = None,
    work_dir: Annotated[
        Path | None,
        Opt(
            help="checkpoint folder (default <out>/.work/<task>/<name>); a run started again "
            "with the same folder resumes from its last epoch"
        ),
    ] = None,
    jit_compile: Annotated[
        str | None, Opt(help="auto: Keras compiles the train step with XLA where it can; off")
    ] = None,
    log_every: Annotated[
        float | None, Opt(help="seconds between progress lines in the log (0: none)")
    ] = None,
    strategy: Annotated[str | None, Opt(help="default | mirrored | multiworker")] = None,
    init_from: Annotated[
        Path | None,
        Opt(
            help="a published version folder of the same task: its weights, tokenizer, shape "
            "and training settings (flags given override them) start the run, and the "
            "learning-rate schedule goes on from its updates"
        ),
    ] = None,
) -> dict[str, Any]:
    return dict(locals())


def _hyper_options(func: Any) -> Any:
    """Appends _hyper's flags to a command (typer reads the signature)."""
    import inspect

    own = inspect.signature(func, eval_str=True)
    kept = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
    extra = [
        p.replace(kind=p.KEYWORD_ONLY)
        for p in inspect.signature(_hyper, eval_str=True).parameters.values()
    ]
    func.__signature__ = own.replace(parameters=[*kept, *extra])
    return func


def _run(
    task: str,
    corpus: Any,
    preset_name: str,
    out: Path,
    precision: str,
    normalizer: str | None,
    labels: tuple[str, ...] | None,
    hyper: dict[str, Any],
) -> None:
    from model.training import train

    work_dir = hyper.pop("work_dir", None)
    init_from = hyper.pop("init_from", None)
    model_config, train_config = _configs(task, preset_name, hyper)
    if init_from is not None:
        model_config, train_config = _continued(init_from, task, model_config, hyper)
    if normalizer:
        model_config = model_config.replace(normalizer=normalizer)
    if labels:
        model_config = model_config.replace(labels=labels)
    train_config = train_config.replace(mixed_precision=_resolve_precision(precision))
    path = train(corpus, model_config, train_config, out, work_dir=work_dir)
    typer.echo(str(path))


@app.command()
@_hyper_options
@user_errors
def translation(
    out: Out = Path("runs"),
    preset: Preset = "small",
    source: Annotated[str, Opt(help="source language code")] = "en",
    target: Annotated[str, Opt(help="target language code")] = "de",
    data_dir: Annotated[
        Path | None,
        Opt(help="folder with train.<lang>[.gz], val.<lang>[.gz]; with --recipe, its data root"),
    ] = None,
    recipe: Annotated[
        Path | None,
        Opt(help="TOML mixture of corpora with weights and validation splits (recipes/)"),
    ] = None,
    pairs: Annotated[
        Path | None, Opt(help="TSV pairs: source TAB target [TAB attribution]")
    ] = None,
    validation_fraction: Annotated[float, Opt(help="held out of --pairs for validation")] = 0.05,
    max_train_lines: Annotated[int | None, Opt(help="use only the first N training pairs")] = None,
    test_split: Annotated[str | None, Opt(help="also score this split of --data-dir")] = None,
    typed_share: Annotated[
        float | None,
        Opt(help="with --recipe: share of pairs added again as typed (overrides the recipe's)"),
    ] = None,
    mixed_precision: Annotated[str, Opt(help=PRECISION_HELP)] = "auto",
    **hyper: Any,
) -> None:
    """Train a sequence-to-sequence Transformer on parallel text."""
    setup_logging()
    corpus = _translation_corpus(
        source, target, data_dir, recipe, pairs, validation_fraction, max_train_lines,
        test_split, hyper.get("seed") or 1234, typed_share,
    )  # fmt: skip
    _run("translation", corpus, preset, out, mixed_precision, None, None, hyper)


def _translation_corpus(
    source: str,
    target: str,
    data_dir: Path | None,
    recipe: Path | None,
    pairs: Path | None,
    validation_fraction: float,
    max_train_lines: int | None,
    test_split: str | None,
    seed: int,
    typed_share: float | None = None,
) -> Any:
    """The Corpus of `translation`'s flags (its lists are the only references left)."""
    from model import data
    from model.training import Corpus

    if sum(x is not None for x in (recipe, pairs)) + (data_dir is not None and not recipe) != 1:
        raise ValueError("give exactly one of --recipe, --data-dir and --pairs")
    sources: dict[str, Any] = {}
    test = None
    splits: dict[str, list[tuple[str, str]]] = {}
    if recipe is not None:
        from model import mixture

        specs, settings = mixture.read_recipe(recipe)
        if typed_share is not None:
            if not 0.0 <= typed_share <= 1.0:
                raise ValueError(f"--typed-share {typed_share} is not in [0, 1]")
            settings = {**settings, "typed_share": typed_share}
        mixed = mixture.build(
            specs,
            data_dir or recipe.parent,
            source,
            target,
            seed=seed,
            typed_share=float(settings.get("typed_share", 0.0)),
        )
        train_pairs, splits = mixed.train, mixed.validation
        val_pairs = mixed.all_validation
        sources = {"recipe": str(recipe), "recipe_text": recipe.read_text(), **settings}
        sources["corpora"] = mixed.report
    elif typed_share is not None:
        raise ValueError("--typed-share goes with --recipe")
    elif data_dir is not None:
        train_pairs = data.read_parallel(
            data.find_split(data_dir, "train", source), data.find_split(data_dir, "train", target)
        )
        val_pairs = data.read_parallel(
            data.find_split(data_dir, "val", source), data.find_split(data_dir, "val", target)
        )
        if test_split:
            test = data.read_parallel(
                data.find_split(data_dir, test_split, source),
                data.find_split(data_dir, test_split, target),
            )
        sources = {"data_dir": str(data_dir), "validation": "val", "test": test_split}
    else:
        assert pairs is not None
        all_pairs = data.read_pairs_tsv(pairs)
        random.Random(seed).shuffle(all_pairs)
        held = max(1, int(len(all_pairs) * validation_fraction))
        train_pairs, val_pairs = all_pairs[held:], all_pairs[:held]
        sources = {"pairs": str(pairs), "validation_fraction": validation_fraction}
    if max_train_lines:
        train_pairs = train_pairs[:max_train_lines]
    return Corpus(
        f"{source}-{target}",
        train_pairs,
        val_pairs,
        sources,
        source,
        target,
        test,
        validation_splits=splits,
    )


def _labels_for(examples: list[tuple[str, str]]) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """SST-2's 0/1 become NEGATIVE/POSITIVE; other label names are upper-cased."""
    names = sorted({label for _, label in examples})
    if set(names) <= {"0", "1"}:  # also a split that holds one of the two
        mapping = {"0": "NEGATIVE", "1": "POSITIVE"}
    else:
        mapping = {n: n.upper() for n in names}
    return tuple(mapping[n] for n in names), [(t, mapping[lab]) for t, lab in examples]


# Recipe settings the sentiment command reads besides its corpora: flags given on the
# command line win over them.
SENTIMENT_RECIPE_KEYS = {"name", "normalizer", "headline", "pretrain_text"}


def _sentiment_recipe(
    recipe: Path, data_dir: Path, normalizer: str | None, hyper: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """The mixture of a sentiment recipe, and its settings with the flags' defaults filled."""
    from model import data, mixture
    from tokenizers import normalize

    specs, settings = mixture.read_recipe(recipe)
    unknown = set(settings) - SENTIMENT_RECIPE_KEYS - set(hyper)
    if unknown:
        raise data.DataError(f"{recipe}: unknown settings {sorted(unknown)}")
    for key, value in settings.items():
        if key in hyper and hyper[key] is None:
            hyper[key] = value
    norm = normalizer or settings.get("normalizer", "review")
    mixed = mixture.build_classification(
        specs, data_dir, seed=hyper.get("seed") or 1234, key=lambda text: normalize(text, norm)
    )
    settings = {**settings, "normalizer": norm}
    settings["pretrain_text"] = [data_dir / f for f in settings.get("pretrain_text", [])]
    return mixed, settings


@app.command()
@_hyper_options
@user_errors
def sentiment(
    train: Annotated[
        Path | None, Opt(help="SST-2 TSV, CSV with text/label columns, or aclImdb folder")
    ] = None,
    dev: Annotated[Path | None, Opt(help="validation data, same formats")] = None,
    recipe: Annotated[
        Path | None,
        Opt(help="TOML mixture of corpora with weights and validation splits (recipes/)"),
    ] = None,
    data_dir: Annotated[
        Path | None, Opt(help="with --recipe: the folder its paths are relative to")
    ] = None,
    out: Out = Path("runs"),
    preset: Preset = "small",
    name: Annotated[
        str | None, Opt(help="model name in the artifacts tree (default: sst2, or the recipe's)")
    ] = None,
    normalizer: Annotated[
        str | None,
        Opt(help="sst (lowercase, PTB tokens) | review (sst for raw reviews too) | basic"),
    ] = None,
    max_train_lines: Annotated[int | None, Opt()] = None,
    pretrain_text: Annotated[
        list[Path] | None,
        Opt(
            help="unlabeled text, one text a line (.gz too; long ones are cut into windows), "
            "added to the training texts for --pretrain-epochs; repeatable"
        ),
    ] = None,
    mixed_precision: Annotated[str, Opt(help=PRECISION_HELP)] = "auto",
    **hyper: Any,
) -> None:
    """Train a Transformer sentiment classifier, on one corpus (--train, --dev) or on a
    recipe's mixture (--recipe)."""
    setup_logging()
    from model import data
    from model.training import Corpus

    if (recipe is None) == (train is None and dev is None) or (recipe is None and not train):
        raise ValueError("give --recipe, or --train and --dev")
    if recipe is None and dev is None:
        raise ValueError("--train needs --dev")
    splits: dict[str, list[tuple[str, str]]] = {}
    unlabeled_files = list(pretrain_text or [])
    if recipe is not None:
        mixed, settings = _sentiment_recipe(recipe, data_dir or recipe.parent, normalizer, hyper)
        labels, train_examples = _labels_for(mixed.train)
        for split, examples in mixed.validation.items():
            split_labels, splits[split] = _labels_for(examples)
            if set(split_labels) - set(labels):
                raise data.DataError(f"{split}: labels {sorted(split_labels)} not in training")
        dev_examples = [pair for pairs in splits.values() for pair in pairs]
        name = name or settings.get("name", "en")
        normalizer = settings["normalizer"]
        unlabeled_files = settings["pretrain_text"] + unlabeled_files
        sources: dict[str, Any] = {
            "recipe": str(recipe),
            "recipe_text": recipe.read_text(),
            **{k: v for k, v in settings.items() if k != "pretrain_text"},
            "corpora": mixed.report,
        }
    else:
        assert train is not None and dev is not None
        labels, train_examples = _labels_for(data.read_classification(train))
        dev_labels, dev_examples = _labels_for(data.read_classification(dev))
        if set(dev_labels) - set(labels):
            raise data.DataError(
                f"{dev}: labels {sorted(set(dev_labels) - set(labels))} not in training"
            )
        name, normalizer = name or "sst2", normalizer or "sst"
        sources = {"train": str(train), "dev": str(dev)}
    if max_train_lines:
        train_examples = train_examples[:max_train_lines]
    log.info("labels: %s", data.label_counts(train_examples))
    if not hyper.get("pretrain_epochs"):
        unlabeled_files = []  # read only by pre-training
    if unlabeled_files:
        sources["pretrain_text"] = [str(path) for path in unlabeled_files]
    corpus = Corpus(
        name,
        train_examples,
        dev_examples,
        sources,
        validation_splits=splits,
        unlabeled_files=unlabeled_files,
    )
    _run("sentiment", corpus, preset, out, mixed_precision, normalizer, labels, hyper)


@app.command()
@_hyper_options
@user_errors
def langid(
    data_dir: Annotated[Path, Opt(help="folder with <split>.<lang>[.gz] line files")],
    languages: Annotated[str, Opt(help="comma-separated language codes")] = "en,de,fr,cs",
    out: Out = Path("runs"),
    preset: Preset = "small",
    name: Annotated[str, Opt()] = "multi30k",
    train_split: Annotated[str, Opt()] = "train",
    val_split: Annotated[str, Opt()] = "val",
    max_train_lines: Annotated[int | None, Opt(help="per language")] = None,
    mixed_precision: Annotated[str, Opt(help=PRECISION_HELP)] = "auto",
    **hyper: Any,
) -> None:
    """Train a language identifier (one training file per language)."""
    setup_logging()
    from model import data
    from model.training import Corpus

    codes = tuple(code.strip() for code in languages.split(",") if code.strip())
    if len(codes) < 2:
        raise ValueError("--languages needs at least two codes")
    train_examples: list[tuple[str, str]] = []
    for code in codes:
        lines = data.read_langid(data_dir, [code], train_split)
        train_examples += lines[:max_train_lines] if max_train_lines else lines
    random.Random(hyper.get("seed") or 1234).shuffle(train_examples)
    val_examples = data.read_langid(data_dir, codes, val_split)
    corpus = Corpus(
        name, train_examples, val_examples, {"data_dir": str(data_dir), "languages": list(codes)}
    )
    _run("langid", corpus, preset, out, mixed_precision, "basic", codes, hyper)


@app.command()
@user_errors
def publish(
    fitted: Annotated[Path, typer.Argument(help="folder written by a run under another backend")],
    out: Out = Path("runs"),
    beam_size: Annotated[int | None, Opt(help="beam for the validation score")] = None,
) -> None:
    """Evaluate and publish a model fitted under another Keras backend."""
    setup_logging()
    from model.publishing import load_fitted, publish_fitted

    model, corpus = load_fitted(fitted)
    typer.echo(str(publish_fitted(model, corpus, out, beam_size=beam_size)))


if __name__ == "__main__":
    app()
