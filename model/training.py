"""The training job's core: tokenize, fit and select weights, then hand over to publishing.

The CLI (`model.train`) parses flags into a ModelConfig/TrainConfig and a Corpus and calls
`train`; tests call `train` directly with tiny configurations. Fitting runs on any Keras
backend: TensorFlow (tf.data, distribution strategies) or JAX (fixed-shape batches, one
compilation per bucket). Decoding, and so evaluation and publishing, needs TensorFlow: under
another backend `train` saves the fitted model for `python -m model.train publish`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from model import artifacts, data, publishing
from model.batches import TranslationBatches, as_tf_dataset, encode_pairs
from model.config import ModelConfig, TrainConfig
from model.objectives import (
    MaskedAccuracy,
    MaskedSequenceLoss,
    SmoothedClassLoss,
    TokenCount,
    transformer_optimizer,
)
from model.pretraining import pretrain_encoder
from model.reporting import (
    EpochWeights,
    ProgressLog,
    TimeBudget,
    TokensPerSecond,
    average_weights,
)
from model.transformer import build_model
from tokenizers import SubwordTokenizer, normalize, train_tokenizer

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)


@dataclass
class Corpus:
    """Training and validation examples: (source, target) or (text, label) pairs."""

    name: str
    train: list[tuple[str, str]]
    validation: list[tuple[str, str]]
    sources: dict[str, Any] = field(default_factory=dict)  # where the data came from
    source_language: str | None = None
    target_language: str | None = None
    test: list[tuple[str, str]] | None = None  # optional extra split to report
    train_examples: int | None = None  # when `train` is not kept (a saved fitted model)
    unlabeled: list[str] = field(default_factory=list)  # extra text for encoder pre-training
    unlabeled_files: list[Path] = field(default_factory=list)  # more, read a line at a time
    # A mixture's validation split per corpus; `validation` is then their concatenation.
    validation_splits: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    @property
    def train_size(self) -> int:
        return len(self.train) if self.train_examples is None else self.train_examples


@dataclass
class Fitted:
    """A trained model with its tokenizer and the record of how it was trained."""

    model: keras.Model
    tokenizer: SubwordTokenizer
    model_config: ModelConfig
    train_config: TrainConfig
    history: dict[str, list[float]]
    selection: dict[str, Any]


def on_tensorflow() -> bool:
    return keras.backend.backend() == "tensorflow"


def _tf_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def strategy_for(name: str) -> Any:
    """A tf.distribute strategy; other backends train on their default device alone."""
    if not on_tensorflow():
        if name != "default":
            raise ValueError(f"--strategy {name} needs the TensorFlow backend")
        return None
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
    raise ValueError(f"unknown strategy {name!r}; choose default, mirrored or multiworker")


def _divisible(dataset: tf.data.Dataset, replicas: int) -> tf.data.Dataset:
    """Trims every batch to a multiple of `replicas` (dropping at most replicas - 1 examples).

    Under a distribution strategy Keras averages the replicas' parts of the first batch to
    build the model's metrics, which fails when an odd batch splits unevenly.
    """
    if replicas == 1:
        return dataset
    import tensorflow as tf

    def trim(*batch: Any) -> Any:
        size = tf.shape(tf.nest.flatten(batch)[0])[0]
        return tf.nest.map_structure(lambda x: x[: size - size % replicas], batch)

    return dataset.map(trim).filter(lambda *batch: tf.size(tf.nest.flatten(batch)[0]) > 0)


def _fit_tokenizer(texts: Sequence[str], train: TrainConfig, work: Path) -> SubwordTokenizer:
    """Reuses the tokenizer of an interrupted run (same data, same seed, same pieces)."""
    path = work / "tokenizer.model"
    if path.exists():
        return SubwordTokenizer.load(path)
    tokenizer = train_tokenizer(
        texts,
        vocab_size=train.vocab_size,
        model_type=train.tokenizer_model_type,
        byte_fallback=train.byte_fallback,
    )
    tokenizer.save(path)
    return tokenizer


def _take_tokenizer(artifact: Path, work: Path) -> None:
    """The artifact's tokenizer becomes the run's (kept if the run already has one)."""
    path = work / "tokenizer.model"
    if not path.exists():
        work.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifact / artifacts.TOKENIZER, path)


def train(
    corpus: Corpus,
    model_config: ModelConfig,
    train_config: TrainConfig,
    out: str | Path,
    *,
    work_dir: str | Path | None = None,
    verbose: int | str = "auto",
) -> Path:
    """Trains, evaluates and publishes one model; returns the published version folder.

    Under a backend other than TensorFlow the fitted model is saved instead, to
    <out>/.fitted/<task>/<name>/, and that folder is returned.
    """
    task = model_config.task
    # A work folder the caller names is theirs: kept, so that the same command with more
    # epochs goes on from the last one. The default one goes once the model is published.
    work = Path(work_dir) if work_dir else Path(out) / ".work" / task / corpus.name
    fitted = fit(corpus, model_config, train_config, work, verbose=verbose)
    if on_tensorflow():
        path = publishing.publish_fitted(fitted, corpus, out)
    else:
        path = publishing.save_fitted(fitted, corpus, Path(out) / ".fitted" / task / corpus.name)
        log.info("fitted model saved; publish it with: python -m model.train publish %s", path)
    if fitted.selection.get("stopped_by_time_budget") or work_dir is not None:
        log.info("the same command with --work-dir %s (and more --epochs) goes on", work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return path


def fit(
    corpus: Corpus,
    model_config: ModelConfig,
    train_config: TrainConfig,
    work: Path,
    *,
    verbose: int | str = "auto",
) -> Fitted:
    """Tokenizer, training with per-epoch checkpoints in `work`, and weight selection."""
    task = model_config.task
    if task == "translation" and train_config.pretrain_epochs > 0:
        raise ValueError("encoder pre-training is for classifiers (sentiment, langid)")
    if verbose == "auto":  # a progress bar on a terminal, one line per epoch in a log file
        verbose = 1 if sys.stdout.isatty() else 2
    if task != "translation" and not model_config.read_pieces:
        # Recorded, so that the service reads texts as training cut them.
        read = min(train_config.max_source_length, model_config.max_length)
        model_config = model_config.replace(read_pieces=max(read, model_config.tail_pieces + 1))
    # Collective ops (multi-worker) must be configured before TensorFlow runs anything.
    strategy = strategy_for(train_config.strategy)
    keras.utils.set_random_seed(train_config.seed)
    work.mkdir(parents=True, exist_ok=True)
    norm = model_config.normalizer
    train_set = [
        (normalize(a, norm), b if task != "translation" else normalize(b, norm))
        for a, b in corpus.train
    ]
    val_set = [
        (normalize(a, norm), b if task != "translation" else normalize(b, norm))
        for a, b in corpus.validation
    ]
    if task == "translation":
        # From here on the normalized copy and then the compact token arrays stand for the
        # training text: the corpus drops its own list, so no per-pair object outlives encoding.
        corpus.train_examples, corpus.train = len(corpus.train), []
        texts = [s for s, _ in train_set] + [t for _, t in train_set]
    else:
        texts = [s for s, _ in train_set]
    if train_config.init_from:  # continued training reads text as the artifact's tokenizer does
        _take_tokenizer(Path(train_config.init_from), work)
    tokenizer = _fit_tokenizer(texts, train_config, work)  # training split only
    model_config = model_config.replace(vocab_size=tokenizer.vocab_size)

    epoch_tokens, steps = None, train_config.epoch_steps or None
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if task == "translation":
        fit_data, val_data, epoch_tokens, steps = _translation_data(
            tokenizer, train_set, val_set, train_config, replicas, _resumed_epochs(work)
        )
        del train_set, texts  # the compact arrays hold what training needs
    else:
        fit_data, val_data = _classification_data(
            tokenizer, train_set, val_set, train_config, model_config
        )
        fit_data, val_data = _divisible(fit_data, replicas), _divisible(val_data, replicas)
    if train_config.mixed_precision:
        # bfloat16 needs no loss scaling; TensorFlow's GPU kernels are fastest in float16,
        # a CPU with AVX-512 BF16 or AMX runs bfloat16 matrix products through oneDNN.
        policy = "mixed_float16" if on_tensorflow() and _tf_gpu() else "mixed_bfloat16"
        keras.mixed_precision.set_global_policy(policy)
    pretraining: dict[str, Any] = {}
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_model(model_config)
        if train_config.init_from:
            model.load_weights(Path(train_config.init_from) / artifacts.WEIGHTS)
            log.info(
                "continuing %s from update %d", train_config.init_from, train_config.initial_step
            )
        if train_config.pretrain_epochs > 0:
            mlm, pretraining = pretrain_encoder(
                _pretraining_texts(train_set, corpus, norm),
                tokenizer,
                model_config,
                train_config,
                work,
                replicas=replicas,
                verbose=verbose,
            )
            mlm.copy_encoder_to(model)
        if task == "translation":
            loss: keras.losses.Loss = MaskedSequenceLoss(train_config.label_smoothing)
            metrics: list[Any] = [MaskedAccuracy(), TokenCount()]
        else:
            loss = SmoothedClassLoss(train_config.label_smoothing)
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        optimizer = transformer_optimizer(
            model_config.d_model, train_config.warmup_steps, train_config.learning_rate_scale
        )
        model.compile(
            optimizer=optimizer,
            loss=loss,
            metrics=metrics,
            jit_compile="auto" if train_config.jit_compile == "auto" else False,
        )
        # The schedule goes on where the artifact's run left it (a resumed run's backup
        # restores its own count over this one).
        optimizer.iterations.assign(train_config.initial_step)

    # Translation selects on validation loss; classifiers on accuracy, their goal.
    monitor, higher = ("val_loss", False) if task == "translation" else ("val_accuracy", True)
    epochs = EpochWeights(work / "epochs", monitor, higher)
    callbacks = [
        ProgressLog(train_config.log_every, epoch_tokens),
        TokensPerSecond(),
        # Kept after training: a run stopped by its time budget resumes from it when started
        # again with the same work folder (`train` removes the folder once a run completes).
        keras.callbacks.BackupAndRestore(str(work / "backup"), delete_checkpoint=False),
        keras.callbacks.EarlyStopping(
            monitor=monitor,
            mode="max" if higher else "min",
            patience=train_config.early_stopping_patience,
            restore_best_weights=True,
        ),
        epochs,
    ]
    budget = TimeBudget(train_config.max_minutes) if train_config.max_minutes > 0 else None
    if budget is not None:
        callbacks.append(budget)
    log.info("training %s/%s: %d parameters", task, corpus.name, model.count_params())
    history = model.fit(
        fit_data,
        validation_data=val_data,
        epochs=train_config.epochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=verbose,
    )
    history_dict = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    history_dict.update(_history_from_log(work / "epochs" / "epochs.jsonl", history_dict))
    # Read before the selection: loading an epoch's weights file loads its optimizer too.
    updates = int(optimizer.iterations.numpy())
    selection = _select_weights(model, epochs, train_config, val_data)
    selection["updates"] = updates
    if pretraining:
        selection["pretraining"] = pretraining
    if budget is not None and budget.stopped_early:
        selection["stopped_by_time_budget"] = True
    return Fitted(model, tokenizer, model_config, train_config, history_dict, selection)


def _pretraining_texts(
    train_set: list[tuple[str, str]], corpus: Corpus, normalizer: str
) -> Iterator[str]:
    """The (normalized) training texts, then the unlabeled ones, files read line by line."""
    yield from (text for text, _ in train_set)
    yield from (normalize(text, normalizer) for text in corpus.unlabeled)
    for path in corpus.unlabeled_files:
        yield from (normalize(line, normalizer) for line in data.iter_lines(path))


def _history_from_log(path: Path, history: dict[str, list[float]]) -> dict[str, list[float]]:
    """A resumed run's History starts at the resumed epoch; the epoch log has them all."""
    if not path.exists():
        return {}
    latest = {r["epoch"]: r for r in map(json.loads, path.read_text().splitlines())}
    if len(latest) <= len(history.get("val_loss", [])):
        return {}
    keys = {key for record in latest.values() for key in record} - {"epoch", "score"}
    return {key: [latest[e][key] for e in sorted(latest) if key in latest[e]] for key in keys}


def _select_weights(
    model: keras.Model, epochs: EpochWeights, train: TrainConfig, val_data: Any
) -> dict[str, Any]:
    """Loads the epoch with the best validation score; with average_checkpoints > 1, the
    mean of the N best epochs replaces it only when its validation score is better."""
    ranked = [f for f in epochs.best(max(1, train.average_checkpoints)) if f.exists()]
    if not ranked:
        return {"selected": "last epoch"}
    model.load_weights(ranked[0])
    choice: dict[str, Any] = {"selected": ranked[0].name, "monitor": epochs.monitor}
    if train.average_checkpoints > 1 and len(ranked) > 1:
        metric = epochs.monitor.removeprefix("val_")
        best = float(model.evaluate(val_data, verbose=0, return_dict=True)[metric])
        average_weights(model, ranked)
        averaged = float(model.evaluate(val_data, verbose=0, return_dict=True)[metric])
        log.info(
            "%s: best epoch %.4f, mean of %d best epochs %.4f",
            epochs.monitor,
            best,
            len(ranked),
            averaged,
        )
        choice.update(best_epoch=round(best, 4), averaged=round(averaged, 4))
        if (averaged > best) == epochs.higher_is_better and averaged != best:
            choice["selected"] = f"mean of {[f.name for f in ranked]}"
        else:
            model.load_weights(ranked[0])
    return choice


def _resumed_epochs(work: Path) -> int:
    """The epochs a resumed run has behind it (Keras' own record of where
    BackupAndRestore goes on); 0 for a new run."""
    record = work / "backup" / "training_metadata.json"
    epochs = 0
    if record.is_file():
        try:
            epochs = int(json.loads(record.read_text(encoding="utf-8")).get("epoch", 0))
        except (ValueError, TypeError, AttributeError):
            log.warning("%s: unreadable; the batches start from the stream's beginning", record)
    return epochs


def _translation_data(
    tokenizer: SubwordTokenizer,
    train_set: Sequence[tuple[str, str]],
    val_set: Sequence[tuple[str, str]],
    config: TrainConfig,
    replicas: int,
    resumed_epochs: int = 0,
) -> tuple[Any, Any, int, int]:
    """Training and validation batches, the target tokens of a full pass, the updates of
    an epoch. The training stream goes on after the updates already made: a continued
    artifact's, and those of the epochs a resumed run has behind it."""

    def keep(source_len: int, target_len: int) -> bool:
        return (
            source_len + 1 <= config.max_source_length
            and target_len + 1 <= config.max_target_length
        )

    longest = max(config.max_source_length, config.max_target_length)
    made = []
    for what, pairs in (("train", train_set), ("validation", val_set)):
        sources, targets, dropped = encode_pairs(pairs, tokenizer.encode_batch, keep)
        if dropped:
            log.warning(
                "%s: dropped %d of %d pairs longer than %d/%d tokens",
                what,
                dropped,
                len(pairs),
                config.max_source_length,
                config.max_target_length,
            )
        if not len(sources):
            raise data.DataError(f"no {what} sentence pairs left after the length filter")
        log.info(
            "%s: %d pairs, %.1f MB of token arrays",
            what,
            len(sources),
            sources.nbytes / 1e6 + targets.nbytes / 1e6,
        )
        made.append(
            TranslationBatches(
                sources,
                targets,
                batch_tokens=config.batch_tokens,
                max_length=longest + 1,
                shuffle=what == "train",
                seed=config.seed,
                multiple_of=replicas,
            )
        )
    train_batches, val_batches = made
    steps = config.epoch_steps or len(train_batches)
    if not on_tensorflow():  # compiled backends take the batches as they are
        return train_batches, val_batches, train_batches.target_tokens, steps
    made_before = config.initial_step + resumed_epochs * steps
    if made_before:
        log.info("training batches: the stream goes on after update %d", made_before)
    fit_data = as_tf_dataset(train_batches, repeat=True, skip=made_before)
    return fit_data, as_tf_dataset(val_batches, repeat=False), train_batches.target_tokens, steps


def _classification_data(
    tokenizer: SubwordTokenizer,
    train_set: list[tuple[str, str]],
    val_set: list[tuple[str, str]],
    config: TrainConfig,
    model_config: ModelConfig,
) -> tuple[Any, Any]:
    index = {label: i for i, label in enumerate(model_config.labels)}

    limit, tail = model_config.read_limit, model_config.tail_pieces

    def encode(examples: list[tuple[str, str]]) -> list[tuple[list[int], int]]:
        ids = tokenizer.encode_batch([text for text, _ in examples])
        return [
            (data.read_window(i, limit, tail), index[label])
            for i, (_, label) in zip(ids, examples, strict=True)
        ]

    make = dict(batch_size=config.batch_size, seed=config.seed, max_length=limit)
    if not on_tensorflow():  # fixed-shape batches; an epoch is at most one pass of them
        batches = data.padded_classification_batches
        return batches(encode(train_set), shuffle=True, **make), batches(
            encode(val_set), shuffle=False, **make
        )
    # Epochs of `epoch_steps` updates read an endless stream, as translation's do: a finite
    # one would end inside an epoch and Keras would cut the epochs short from then on.
    fit_data = data.classification_dataset(
        encode(train_set), shuffle=True, repeat=bool(config.epoch_steps), **make
    )
    return fit_data, data.classification_dataset(encode(val_set), shuffle=False, **make)
