"""Sentiment mixtures: each source weighted, cleaned as the model sees it, split per corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from model import mixture
from tests import synthetic
from tokenizers import normalize


def _review(text: str) -> str:
    return normalize(text, "review")


def _build(folder: Path, seed: int = 3) -> mixture.Mixture:
    recipe = synthetic.write_sentiment_mixture(folder, weights=(1.0, 2.0, 0.5))
    specs, settings = mixture.read_recipe(recipe)
    assert settings["normalizer"] == "review" and settings["headline"] == "sst2"
    return mixture.build_classification(specs, folder, seed=seed, key=_review)


def test_each_source_is_weighted_and_its_cleaning_counted(tmp_path: Path) -> None:
    mixed = _build(tmp_path)
    report = mixed.report
    # Reviews: markup alone is empty once normalized; of the exact repeat and the repeat in
    # other case and spacing, one is a repeat of a training review, the other of a review
    # carved into validation (seed 3).
    assert report["imdb"]["dropped"] == {
        "empty": 1, "conflicting": 0, "duplicate": 1, "in_validation": 1,
    }  # fmt: skip
    # Pros/cons: "Works fine" as a pro and as a con; two SST-2 dev sentences, capitalized.
    assert report["pros_cons"]["dropped"] == {
        "empty": 0, "conflicting": 2, "duplicate": 0, "in_validation": 2,
    }  # fmt: skip
    # SST-2's generated phrases repeat; those equal to a dev sentence leave training.
    assert report["sst2"]["dropped"]["in_validation"] > 0
    for name, weight in (("sst2", 1.0), ("imdb", 2.0), ("pros_cons", 0.5)):
        counts = report[name]
        assert counts["read"] == counts["kept"] + sum(counts["dropped"].values())
        assert counts["weight"] == weight
        assert counts["in_mixture"] == round(counts["kept"] * weight)
    assert len(mixed.train) == sum(c["in_mixture"] for c in report.values())
    # imdb's 2.0: every kept review exactly twice.
    reviews = [text for text, _ in mixed.train if "<br />" in text]
    assert len(reviews) == 2 * report["imdb"]["kept"] == 2 * len(set(reviews))


def test_validation_splits_are_carved_per_corpus_and_kept_out_of_training(
    tmp_path: Path,
) -> None:
    mixed = _build(tmp_path)
    assert {name: len(split) for name, split in mixed.validation.items()} == {
        "sst2": 20, "imdb": 10, "pros_cons": 12,
    }  # fmt: skip
    assert mixed.report["sst2"]["validation"] == 20
    held = {_review(text) for split in mixed.validation.values() for text, _ in split}
    assert not held & {_review(text) for text, _ in mixed.train}
    assert {label for _, label in mixed.train} == {"0", "1"}


def test_the_carved_splits_are_deterministic_by_seed(tmp_path: Path) -> None:
    first = _build(tmp_path / "a", seed=3)
    again = _build(tmp_path / "b", seed=3)
    other = _build(tmp_path / "c", seed=4)
    assert first.validation == again.validation and first.train == again.train
    assert first.validation["imdb"] != other.validation["imdb"]
    assert first.validation["sst2"] == other.validation["sst2"]  # given, not carved


def test_clean_classification_compares_texts_as_the_model_sees_them() -> None:
    examples = [("Great film!", "1"), ("great  film !", "1"), ("", "0"), ("Meh.", "0"),
                ("meh .", "1"), ("Dull.", "0")]  # fmt: skip
    kept, counts = mixture.clean_classification(examples, {"dull ."}, _review)
    assert kept == [("Great film!", "1")]
    assert counts == {"empty": 1, "conflicting": 2, "duplicate": 1, "in_validation": 1}


def test_a_recipe_with_a_bad_weight_is_refused(tmp_path: Path) -> None:
    recipe = tmp_path / "bad.toml"
    recipe.write_text('[[corpus]]\nname = "x"\ntrain = "x.tsv"\nweight = 0\n')
    with pytest.raises(ValueError, match="weight must be positive"):
        mixture.read_recipe(recipe)
