"""Tiny synthetic corpora that the tests write themselves (no shared data needed).

A toy English->German word mapping gives the tiny translation model something learnable;
toy positive/negative phrases and four toy "languages" do the same for the classifiers.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

LEXICON = {
    "a": "ein",
    "the": "der",
    "man": "mann",
    "woman": "frau",
    "dog": "hund",
    "cat": "katze",
    "is": "ist",
    "runs": "läuft",
    "sits": "sitzt",
    "eats": "isst",
    "big": "groß",
    "small": "klein",
    "red": "rot",
    "blue": "blau",
    "house": "haus",
    "street": "straße",
    "in": "in",
    "on": "auf",
    "and": "und",
    "child": "kind",
    "plays": "spielt",
    "ball": "ball",
}
SUBJECTS = ["a man", "a woman", "the dog", "the cat", "a child"]
VERBS = ["runs", "sits", "eats", "plays"]
PLACES = ["in the house", "on the street", "with a ball", "in a red house", "on a blue ball"]
POSITIVE = ["great", "wonderful", "moving", "funny", "beautiful", "brilliant"]
NEGATIVE = ["dull", "boring", "awful", "tedious", "ugly", "lifeless"]
NOUNS = ["film", "movie", "story", "script", "cast", "ending"]
ALPHABETS = {
    "en": "the and with a man woman dog street house",
    "de": "der und mit ein mann frau hund straße haus",
    "fr": "le et avec un homme femme chien rue maison",
    "cs": "a s muž žena pes ulice dům velký malý",
}


def translate_word(word: str) -> str:
    return LEXICON.get(word, word)


def english_sentences(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(PLACES)}".capitalize() + "."
        for _ in range(count)
    ]


def to_german(sentence: str) -> str:
    words = sentence.rstrip(".").lower().split()
    return " ".join(translate_word(w) for w in words).capitalize() + "."


def write_lines(path: Path, lines: list[str], gz: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ("\n".join(lines) + "\n").encode("utf-8")
    if gz:
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)
    return path


def write_parallel_corpus(folder: Path, train: int = 400, val: int = 40) -> Path:
    """Multi30k layout: train.en.gz / train.de.gz / val.* / test.*."""
    for split, count, seed in (("train", train, 1), ("val", val, 2), ("test", val, 3)):
        english = english_sentences(count, seed)
        write_lines(folder / f"{split}.en.gz", english)
        write_lines(folder / f"{split}.de.gz", [to_german(s) for s in english])
    return folder


def sentiment_rows(count: int, seed: int) -> list[tuple[int, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        label = rng.randint(0, 1)
        word = rng.choice(POSITIVE if label else NEGATIVE)
        rows.append((label, f"the {rng.choice(NOUNS)} is {word} ."))
    return rows


def write_sst(path: Path, count: int, seed: int, text_column: str = "sentence") -> Path:
    lines = [f"label\t{text_column}"] + [
        f"{label}\t{text}" for label, text in sentiment_rows(count, seed)
    ]
    return write_lines(path, lines, gz=False)


def write_langid_corpus(folder: Path, per_language: int = 150) -> Path:
    for language, words in ALPHABETS.items():
        vocabulary = words.split()
        for split, count, seed in (("train", per_language, 1), ("val", 20, 2)):
            rng = random.Random(f"{language}{seed}")
            lines = [
                " ".join(rng.choice(vocabulary) for _ in range(rng.randint(3, 8)))
                for _ in range(count)
            ]
            write_lines(folder / f"{split}.{language}.gz", lines)
    return folder


def review(label: int, rng: random.Random, sentences: int) -> str:
    """A raw review-like text: capitals, html breaks, the verdict in its last sentence."""
    body = [
        f"The {rng.choice(NOUNS)} {rng.choice(VERBS)} {rng.choice(PLACES)}."
        for _ in range(sentences)
    ]
    verdict = rng.choice(POSITIVE if label else NEGATIVE)
    return "<br /><br />".join([*body, f"In the end it's {verdict.upper()}!"])


def write_sentiment_mixture(folder: Path, *, weights: tuple[float, float, float]) -> Path:
    """SST-2 style train/dev files, raw IMDB-like reviews and pros/cons sentences, with a
    recipe mixing them (returned). Each file holds known cleaning cases; see the tests."""
    rng = random.Random(11)
    sst = [f"{label}\t{text}" for label, text in sentiment_rows(120, seed=12)]
    write_lines(folder / "sst2" / "train.tsv", ["label\tsentence", *sst], gz=False)
    write_sst(folder / "sst2" / "dev.tsv", 20, 13, "content")
    labels = [i % 2 for i in range(60)]
    reviews = [f"{y}\t{review(y, rng, rng.randint(2, 12))}" for y in labels]
    # A review of markup alone (empty once normalized), an exact repeat, and a repeat that
    # differs only in case and spacing.
    extra = ["1\t<br /><br />", reviews[0], reviews[1].upper().replace(" ", "  ")]
    write_lines(folder / "sentiment" / "imdb_train.tsv.gz", ["label\ttext", *reviews, *extra])
    pros = [f"1\t{w.capitalize()} {n}, easy to use!" for w in POSITIVE for n in NOUNS]
    cons = [f"0\t{w.capitalize()} {n}, hard to use." for w in NEGATIVE for n in NOUNS]
    # A text given both labels, and SST-2 dev sentences (raw) that must leave training.
    dev = [line.split("\t")[1] for line in read_text_lines(folder / "sst2" / "dev.tsv")[1:3]]
    tricky = ["1\tWorks fine", "0\tworks fine", *(f"1\t{s.capitalize()}" for s in dev)]
    write_lines(folder / "sentiment" / "pros_cons.tsv.gz", ["label\ttext", *pros, *cons, *tricky])
    recipe = folder / "sentiment-test.toml"
    recipe.write_text(
        f"""name = "en"
headline = "sst2"
normalizer = "review"
read_pieces = 24
tail_pieces = 16

[[corpus]]
name = "sst2"
train = "sst2/train.tsv"
validation = "sst2/dev.tsv"
weight = {weights[0]}

[[corpus]]
name = "imdb"
train = "sentiment/imdb_train.tsv.gz"
holdout = 10
weight = {weights[1]}

[[corpus]]
name = "pros_cons"
train = "sentiment/pros_cons.tsv.gz"
holdout = 12
weight = {weights[2]}
""",
        encoding="utf-8",
    )
    return recipe


def read_text_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        return handle.read().splitlines()
