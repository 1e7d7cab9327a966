"""model.scoring: sacreBLEU/chrF for translation, accuracy and F1 for classifiers."""

from __future__ import annotations

import pytest

from model.scoring import classification_scores, translation_scores


def test_identical_translations_score_100() -> None:
    scores = translation_scores(
        ["Ein Mann läuft.", "Der Hund sitzt."], ["Ein Mann läuft.", "Der Hund sitzt."]
    )
    assert scores["bleu"] == 100.0 and scores["chrf"] == 100.0
    assert scores["sentences"] == 2
    assert "tok:13a" in scores["signature"] and "nc:6" in scores["chrf_signature"]


def test_unrelated_translations_score_low() -> None:
    scores = translation_scores(["xyz qqq"], ["Ein Mann läuft auf der Straße."])
    assert scores["bleu"] < 5 and scores["chrf"] < 20


def test_classification_scores_give_accuracy_and_per_label_f1() -> None:
    scores = classification_scores([0, 0, 1, 1], [0, 1, 1, 1], ["NEGATIVE", "POSITIVE"])
    assert scores["accuracy"] == 0.75
    assert scores["f1_per_label"] == {"NEGATIVE": pytest.approx(2 / 3, abs=1e-4), "POSITIVE": 0.8}
    assert scores["f1"] == pytest.approx((2 / 3 + 0.8) / 2, abs=1e-4)
    assert scores["examples"] == 4


def test_a_label_never_seen_nor_predicted_has_f1_zero() -> None:
    scores = classification_scores([0, 0], [0, 0], ["en", "de"])
    assert scores["f1_per_label"] == {"en": 1.0, "de": 0.0}
