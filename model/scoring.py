"""Quality scores: sacreBLEU and chrF for translation, accuracy and F1 for classifiers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import sacrebleu


def translation_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """sacreBLEU's defaults: cased, 13a tokenization, on detokenized text."""
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(list(hypotheses), [list(references)])
    chrf_score = chrf.corpus_score(list(hypotheses), [list(references)])
    return {
        "bleu": round(bleu_score.score, 2),
        "chrf": round(chrf_score.score, 2),
        "signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "sentences": len(hypotheses),
    }


def classification_scores(
    truth: Sequence[int], predicted: Sequence[int], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro F1 and per-label F1."""
    y, p = np.asarray(truth), np.asarray(predicted)
    per_label = {}
    for index, label in enumerate(labels):
        tp = int(np.sum((p == index) & (y == index)))
        fp = int(np.sum((p == index) & (y != index)))
        fn = int(np.sum((p != index) & (y == index)))
        per_label[label] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {
        "accuracy": round(float(np.mean(y == p)) if len(y) else 0.0, 4),
        "f1": round(float(np.mean(list(per_label.values()))), 4),
        "f1_per_label": {k: round(v, 4) for k, v in per_label.items()},
        "examples": len(y),
    }
