"""Evaluation and publishing of a fitted model, and fitted models saved between the two.

A model fitted under TensorFlow is evaluated (decoding needs TensorFlow) and published at
once. One fitted under another backend (JAX on a GPU worker) is saved with `save_fitted`: its
weights, tokenizer, configuration, training record and evaluation splits; `python -m
model.train publish FOLDER` later evaluates and publishes it under TensorFlow, as one
artifact like any other.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from model import artifacts
from model.calibration import ECE_BINS, expected_calibration_error, fit_temperature, softmax
from model.config import ModelConfig, TrainConfig
from model.reporting import plot_curves
from model.scoring import classification_scores, translation_scores
from model.transformer import build_model
from tokenizers import SubwordTokenizer

if TYPE_CHECKING:
    from model.predictor import Classifier, LoadedArtifact, Translator
    from model.training import Corpus, Fitted

log = logging.getLogger(__name__)

FITTED_RECORD = "fitted.json"


def publish_fitted(
    fitted: Fitted, corpus: Corpus, out: str | Path, *, beam_size: int | None = None
) -> Path:
    """Scores the fitted model on the corpus' validation (and test) split and publishes it.

    A translation model is exported to CTranslate2 and checked first; its splits are then
    scored through the engine (as served, and minutes faster than the reference decoder).
    A classifier is published with the temperature fitted on its validation logits.
    """
    from model.predictor import LoadedArtifact

    fitted = _in_float32(fitted)
    train_config = fitted.train_config
    if beam_size is not None:
        train_config = train_config.replace(beam_size=beam_size)
    loaded = LoadedArtifact(fitted.model, fitted.tokenizer, {}, fitted.model_config)
    publication = artifacts.publish(out, fitted.model_config.task, corpus.name)
    with publication as staging:
        _save_inference_weights(fitted, staging / artifacts.WEIGHTS)
        fitted.tokenizer.save(staging / artifacts.TOKENIZER)
        engine_check, decoder = None, None
        if fitted.model_config.task == "translation":
            from model import engine

            engine_check = export_engine(
                loaded, staging, corpus.validation, beam_size=train_config.beam_size
            )
            decoder = engine.Engine(
                staging / engine.EXPORT_DIR,
                fitted.tokenizer,
                engine.EngineOptions(compute_type="float32", intra_threads=2),
            )
        metrics = evaluate_corpus(loaded, corpus, train_config, decoder=decoder)
        log.info("validation metrics: %s", json.dumps(metrics))
        if decoder is not None:
            decoder.close()
        model_config = fitted.model_config
        if "calibration" in metrics:  # classifiers serve with the fitted temperature
            model_config = model_config.replace(temperature=metrics["calibration"]["temperature"])
        (staging / artifacts.METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
        title = f"{model_config.task}/{corpus.name}"
        plot_curves(fitted.history, staging / "curves.png", title)
        manifest = {
            "model_config": model_config.to_dict(),
            "train_config": train_config.to_dict(),
            "tokenizer": {
                "files": [artifacts.TOKENIZER],
                "vocab_size": fitted.tokenizer.vocab_size,
            },
            "data": {
                **corpus.sources,
                "train_examples": corpus.train_size,
                "validation_examples": len(corpus.validation),
            },
            "metrics": metrics,
            "selection": fitted.selection,  # which weights were kept, and why
            "history": fitted.history,
            "parameters": int(fitted.model.count_params()),
        }
        if engine_check is not None:
            manifest["engine"] = engine_check
        if corpus.source_language:
            manifest.update(
                source_language=corpus.source_language, target_language=corpus.target_language
            )
        (staging / artifacts.MANIFEST).write_text(json.dumps(manifest, indent=2))
    assert publication.path is not None
    return publication.path


ENGINE_CHECK_SENTENCES = 200
ENGINE_MIN_IDENTICAL = 0.98  # float rounding may flip a near-tie, nothing more


def export_engine(
    loaded: LoadedArtifact,
    folder: Path,
    pairs: Sequence[tuple[str, str]],
    *,
    beam_size: int,
    dtype: str = "float32",
    keep_int8: bool = False,
) -> dict[str, Any]:
    """Exports the model to CTranslate2 inside `folder` and checks the export against the
    Keras reference on up to ENGINE_CHECK_SENTENCES validation pairs (spread over them);
    fails when fewer than ENGINE_MIN_IDENTICAL of the greedy outputs are identical.

    With `keep_int8`, the checked export is then replaced by its int8 quantization when
    that costs at most engine.INT8_MAX_BLEU_DROP BLEU on those pairs (a release's size)."""
    from model import engine
    from model.predictor import Translator

    step = max(1, len(pairs) // ENGINE_CHECK_SENTENCES)
    sample = list(pairs)[::step][:ENGINE_CHECK_SENTENCES]
    export = engine.export(loaded.model, loaded.tokenizer, folder / engine.EXPORT_DIR, dtype)
    check = engine.verify_export(
        Translator(loaded).decoder,
        loaded.tokenizer,
        export,
        [s for s, _ in sample],
        [t for _, t in sample],
        beam_size=max(beam_size, 4),
    )
    check["weights_dtype"] = dtype
    log.info("engine export check: %s", json.dumps(check))
    if check["identical_greedy"] < ENGINE_MIN_IDENTICAL * check["sentences"]:
        raise engine.ExportError(
            f"the export differs from the model: {check['identical_greedy']} of "
            f"{check['sentences']} greedy outputs identical"
        )
    if keep_int8 and engine.choose_compute_type(check, "cpu") == "int8":
        shutil.rmtree(export)
        engine.export(loaded.model, loaded.tokenizer, export, quantization="int8")
        check["weights_dtype"] = "int8"
        check["checked_weights_dtype"] = dtype
    return check


def save_fitted(fitted: Fitted, corpus: Corpus, folder: Path) -> Path:
    """Writes what `load_fitted` needs to evaluate and publish the model elsewhere."""
    folder.mkdir(parents=True, exist_ok=True)
    _save_inference_weights(fitted, folder / artifacts.WEIGHTS)
    fitted.tokenizer.save(folder / artifacts.TOKENIZER)
    record = {
        "model_config": fitted.model_config.to_dict(),
        "train_config": fitted.train_config.to_dict(),
        "history": fitted.history,
        "selection": fitted.selection,
        "corpus": {
            "name": corpus.name,
            "sources": corpus.sources,
            "source_language": corpus.source_language,
            "target_language": corpus.target_language,
            "train_examples": corpus.train_size,
            "validation": corpus.validation,
            "test": corpus.test,
            "validation_splits": corpus.validation_splits,
        },
    }
    (folder / FITTED_RECORD).write_text(json.dumps(record, ensure_ascii=False) + "\n")
    return folder


def _in_float32(fitted: Fitted) -> Fitted:
    """Mixed precision is for training: what is published, checked and scored computes in
    float32 (a bfloat16 reference would differ from the float32 export it is checked on)."""
    if keras.mixed_precision.global_policy().name == "float32":
        return fitted
    keras.mixed_precision.set_global_policy("float32")
    model = build_model(fitted.model_config)
    model.set_weights(fitted.model.get_weights())
    return dataclasses.replace(fitted, model=model)


def _save_inference_weights(fitted: Fitted, path: Path) -> None:
    # A fresh model holds the weights alone: the trained one also carries the optimizer.
    inference_model = build_model(fitted.model_config)
    inference_model.set_weights(fitted.model.get_weights())
    inference_model.save_weights(path)


def load_fitted(folder: Path) -> tuple[Fitted, Corpus]:
    from model.training import Corpus, Fitted

    record_path = folder / FITTED_RECORD
    if not record_path.is_file():
        raise FileNotFoundError(f"{folder}: no {FITTED_RECORD}; not a saved fitted model")
    record = json.loads(record_path.read_text(encoding="utf-8"))
    model_config = ModelConfig.from_dict(record["model_config"])
    model = build_model(model_config)
    model.load_weights(folder / artifacts.WEIGHTS)
    tokenizer = SubwordTokenizer.load(folder / artifacts.TOKENIZER)
    c = record["corpus"]
    corpus = Corpus(
        name=c["name"],
        train=[],
        validation=[tuple(pair) for pair in c["validation"]],
        sources=c["sources"],
        source_language=c["source_language"],
        target_language=c["target_language"],
        test=[tuple(pair) for pair in c["test"]] if c["test"] else None,
        train_examples=c["train_examples"],
        validation_splits={
            name: [tuple(pair) for pair in pairs]
            for name, pairs in c.get("validation_splits", {}).items()
        },
    )
    fitted = Fitted(
        model,
        tokenizer,
        model_config,
        TrainConfig.from_dict(record["train_config"]),
        record["history"],
        record["selection"],
    )
    return fitted, corpus


def evaluate_corpus(
    loaded: LoadedArtifact, corpus: Corpus, train: TrainConfig, decoder: Any = None
) -> dict[str, Any]:
    """Scores on the validation split, and on the test split when one was given.

    A mixture is scored on each corpus' validation split (`validation:<name>`), and on their
    concatenation (`validation`) from the same outputs. Classifiers also get a temperature,
    fit on the validation logits (`calibration`).
    """
    splits = dict(corpus.validation_splits) or {"validation": corpus.validation}
    if corpus.test:
        splits["test"] = corpus.test
    if loaded.config.task != "translation":
        return evaluate_classifier_splits(loaded, splits, pooled=bool(corpus.validation_splits))
    from model.decoding import DecodeOptions
    from model.predictor import Translator

    translator = Translator(loaded, decoder=decoder)
    penalty = train.length_penalty
    if decoder is not None:
        from model.engine import ENGINE_LENGTH_PENALTY

        penalty = ENGINE_LENGTH_PENALTY
    options = DecodeOptions(beam_size=train.beam_size, length_penalty=penalty)
    pooled: tuple[list[str], list[str]] = ([], [])
    results: dict[str, Any] = {}
    for split, examples in splits.items():
        references = [t for _, t in examples]
        hypotheses: list[str] = []
        scores = evaluate_translation(
            translator, [s for s, _ in examples], references, options, collect=hypotheses
        )
        name = _split_name(split)
        results[name] = scores
        if split in corpus.validation_splits:
            pooled[0].extend(hypotheses)
            pooled[1].extend(references)
        log.info("%s: BLEU %s", name, scores["bleu"])
    if corpus.validation_splits:
        results["validation"] = translation_scores(*pooled)
        results["validation"].update(
            beam_size=options.beam_size, length_penalty=options.length_penalty
        )
    return results


def evaluate_translation(
    translator: Translator,
    sources: Sequence[str],
    references: Sequence[str],
    options: Any,
    batch_size: int = 64,
    hypotheses_out: Path | None = None,
    collect: list[str] | None = None,
) -> dict[str, Any]:
    """Corpus scores of translating `sources` (sorted by length into batches)."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))  # less padding
    outputs: dict[int, str] = {}
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        nbest = translator.translate([sources[i] for i in chunk], options)
        for i, hypotheses in zip(chunk, nbest, strict=True):
            outputs[i] = hypotheses[0].text
    ordered = [outputs[i] for i in range(len(sources))]
    if collect is not None:  # the caller keeps the translations
        collect.extend(ordered)
    if hypotheses_out is not None:
        hypotheses_out.write_text("\n".join(ordered) + "\n", encoding="utf-8")
    scores = translation_scores(ordered, references)
    scores.update(beam_size=options.beam_size, length_penalty=options.length_penalty)
    return scores


def _split_name(split: str) -> str:
    return split if split in ("validation", "test") else f"validation:{split}"


def evaluate_classifier_splits(
    loaded: LoadedArtifact, splits: dict[str, list[tuple[str, str]]], *, pooled: bool
) -> dict[str, Any]:
    """Accuracy, F1 and calibration error per split (`validation:<corpus>` for a mixture's,
    and `validation` for them pooled), with a temperature fit on the pooled validation
    logits: every split's error is reported before (`ece_uncalibrated`) and after it."""
    from model.predictor import Classifier

    classifier = Classifier(loaded)
    index = {label: i for i, label in enumerate(classifier.labels)}
    logits = {s: classifier_logits(classifier, [t for t, _ in ex]) for s, ex in splits.items()}
    truth = {s: np.array([index[label] for _, label in ex], int) for s, ex in splits.items()}
    held = [s for s in splits if s != "test"]  # the test split is never fit on
    if pooled:
        logits["validation"] = np.concatenate([logits[s] for s in held])
        truth["validation"] = np.concatenate([truth[s] for s in held])
    temperature = fit_temperature(logits["validation"], truth["validation"])
    results: dict[str, Any] = {}
    for split in logits:
        results[_split_name(split)] = classifier_scores(
            logits[split], truth[split], classifier.labels, temperature
        )
        log.info("%s: %s", _split_name(split), results[_split_name(split)])
    results["calibration"] = {
        "temperature": temperature,
        "fit_on": "validation",
        "ece_bins": ECE_BINS,
        "ece_uncalibrated": results["validation"]["ece_uncalibrated"],
        "ece": results["validation"]["ece"],
    }
    return results


def classifier_logits(
    classifier: Classifier, texts: Sequence[str], batch_size: int = 128
) -> np.ndarray:
    """Logits of every text, in batches of texts of similar length (less padding)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), len(classifier.labels)), np.float64)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        out[chunk] = classifier.logits([texts[i] for i in chunk])
    return out


def classifier_scores(
    logits: np.ndarray, truth: np.ndarray, labels: Sequence[str], temperature: float
) -> dict[str, Any]:
    """Accuracy and F1 (a temperature changes no prediction), and the expected calibration
    error of the probabilities before and after the temperature."""
    scores = classification_scores(truth.tolist(), np.argmax(logits, -1).tolist(), labels)
    scores["ece_uncalibrated"] = round(expected_calibration_error(softmax(logits), truth), 4)
    scores["ece"] = round(expected_calibration_error(softmax(logits, temperature), truth), 4)
    return scores


def evaluate_classifier(
    classifier: Classifier, examples: Sequence[tuple[str, str]], batch_size: int = 128
) -> dict[str, Any]:
    """Scores with the classifier's own temperature."""
    index = {label: i for i, label in enumerate(classifier.labels)}
    truth = np.array([index[label] for _, label in examples], int)
    logits = classifier_logits(classifier, [text for text, _ in examples], batch_size)
    return classifier_scores(logits, truth, classifier.labels, classifier.temperature)
