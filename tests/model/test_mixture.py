"""Training mixtures: reading, cleaning, weighting and the per-corpus validation splits."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from model import mixture
from model.data import DataError


def _write(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("".join(f"{line}\n" for line in lines))


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    # A Tatoeba-like TSV: 30 English sentences, the first 10 with two German translations,
    # plus one exact duplicate, one identical pair, one empty side, one length outlier.
    rows = [f"Sentence number {i}.\tSatz Nummer {i}." for i in range(30)]
    rows += [f"Sentence number {i}.\tDer Satz Nummer {i}." for i in range(10)]
    rows += [
        "Sentence number 3.\tSatz Nummer 3.",  # duplicate
        "Tom.\tTom.",  # identical
        "Nothing here.\t ",  # empty target
        "Yes.\t" + "Ja, das ist eine sehr lange und ganz andere Antwort. " * 3,  # ratio
    ]
    _write(tmp_path / "tatoeba.tsv.gz", rows)
    _write(tmp_path / "news.en.gz", [f"News item {i} reported." for i in range(8)])
    _write(tmp_path / "news.de.gz", [f"Nachricht {i} gemeldet." for i in range(8)])
    _write(tmp_path / "newsval.en.gz", ["News item 0 reported.", "Fresh news today."])
    _write(tmp_path / "newsval.de.gz", ["Nachricht 0 gemeldet.", "Neue Nachrichten heute."])
    return tmp_path


def _recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    return path


RECIPE = """
typed_share = 0.5
[[corpus]]
name = "tatoeba"
train = "tatoeba.tsv.gz"
columns = ["en", "de"]
holdout = 5
holdout_by = "en"
weight = 1.0
typed_variant = true
license = "CC-BY 2.0"
attribution = "Tatoeba (tatoeba.org)"

[[corpus]]
name = "news"
train = "news"
validation = "newsval"
weight = 2.5
"""


def test_cleaning_counts_every_dropped_pair_by_reason(data_dir: Path) -> None:
    recipe = RECIPE.replace("holdout = 5", "holdout = 0")  # every row stays in training
    specs, settings = mixture.read_recipe(_recipe(data_dir, recipe))
    mixed = mixture.build(specs, data_dir, "en", "de", typed_share=settings["typed_share"])
    report = mixed.report["tatoeba"]
    assert report["dropped"]["duplicate"] == 1
    assert report["dropped"]["identical"] == 1
    assert report["dropped"]["empty"] == 1
    assert report["dropped"]["length_ratio"] == 1
    # The news training pair whose source is in news' validation split goes.
    assert mixed.report["news"]["dropped"]["in_validation"] == 1
    assert mixed.report["news"]["kept"] == 7


def test_holdout_keeps_every_english_sentence_in_one_split_only(data_dir: Path) -> None:
    specs, _ = mixture.read_recipe(_recipe(data_dir, RECIPE))
    mixed = mixture.build(specs, data_dir, "en", "de")
    held = {s for s, _ in mixed.validation["tatoeba"]}
    assert len(held) == len(mixed.validation["tatoeba"]) == 5  # one reference each
    assert not held & {s for s, _ in mixed.train}
    # The other direction carves the same English sentences (its target side).
    reverse = mixture.build(specs, data_dir, "de", "en")
    assert {t for _, t in reverse.validation["tatoeba"]} == held


def test_weights_upsample_and_typed_copies_are_added(data_dir: Path) -> None:
    specs, _ = mixture.read_recipe(_recipe(data_dir, RECIPE))
    mixed = mixture.build(specs, data_dir, "en", "de", typed_share=0.5)
    news = mixed.report["news"]
    assert news["typed_copies"] == round(0.5 * news["kept"])
    # 7 kept pairs at weight 2.5: each twice, plus half of them once more.
    assert news["in_mixture"] == 7 * 2 + round(0.5 * 7) + news["typed_copies"]
    assert len(mixed.train) == sum(r["in_mixture"] for r in mixed.report.values())
    typed = [s for s, _ in mixed.train if s == s.lower() and not s.endswith(".")]
    assert typed, "typed copies are lowercased and lose their final punctuation"
    assert mixed.validation["tatoeba_typed"] == [
        (mixture.typed(s), t) for s, t in mixed.validation["tatoeba"]
    ]


def test_given_validation_sets_are_kept_as_published(data_dir: Path) -> None:
    specs, _ = mixture.read_recipe(_recipe(data_dir, RECIPE))
    mixed = mixture.build(specs, data_dir, "en", "de")
    assert mixed.validation["news"] == [
        ("News item 0 reported.", "Nachricht 0 gemeldet."),
        ("Fresh news today.", "Neue Nachrichten heute."),
    ]


def test_upsample_draws_the_fraction_without_repeats() -> None:
    pairs = [(str(i), str(i)) for i in range(10)]
    out = mixture.upsample(pairs, 1.3, random.Random(0))
    assert len(out) == 13 and len(set(out)) == 10


def test_typed_lowercases_and_strips_final_punctuation() -> None:
    assert mixture.typed("Where is Tom?!") == "where is tom"
    assert mixture.typed("Stop... ") == "stop"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("typed_share = 0.1\n", "no \\[\\[corpus\\]\\]"),
        ('[[corpus]]\nname = "a"\n', "needs a name and a train path"),
        ('[[corpus]]\nname = "a"\ntrain = "x"\nweight = 0\n', "weight must be positive"),
        ('[[corpus]]\nname = "a"\ntrain = "x"\nsize = 3\n', "unknown fields"),
        ('[[corpus]]\nname = "a"\ntrain = "x"\n[[corpus]]\nname = "a"\ntrain = "y"\n', "repeat"),
        ("[[corpus]\n", "recipe.toml"),
    ],
)
def test_bad_recipes_are_refused_with_a_reason(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        mixture.read_recipe(_recipe(tmp_path, text))


def test_missing_files_and_columns_name_the_problem(data_dir: Path) -> None:
    spec = mixture.CorpusSpec.from_dict({"name": "t", "train": "t", "columns": ["en", "fr"]})
    with pytest.raises(DataError, match="lack"):
        mixture.read_corpus_file(data_dir / "tatoeba.tsv.gz", spec, "en", "de")
    spec = mixture.CorpusSpec.from_dict({"name": "n", "train": "missing"})
    with pytest.raises(DataError, match=r"missing\.en"):
        mixture.read_corpus_file(data_dir / "missing", spec, "en", "de")


def test_licenses_and_credits_travel_with_each_corpus(data_dir: Path) -> None:
    specs, _ = mixture.read_recipe(_recipe(data_dir, RECIPE))
    report = mixture.build(specs, data_dir, "en", "de").report
    assert report["tatoeba"]["license"] == "CC-BY 2.0"
    assert report["tatoeba"]["attribution"] == "Tatoeba (tatoeba.org)"
    assert report["tatoeba"]["files"] == ["tatoeba.tsv.gz"]
    assert "license" not in report["news"]  # none given, none invented
