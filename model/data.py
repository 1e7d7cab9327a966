"""Corpus readers and the classifiers' batch pipelines (translation's: model/batches.py).

Readers fail with a DataError that names the file (and line) at fault; pipelines batch by
length so that padding stays small, and reshuffle every epoch. TensorFlow gets tf.data
pipelines of any shape; compiled backends (JAX) get `PaddedBatches`, whose few fixed shapes
compile once each.
"""

from __future__ import annotations

import csv
import gzip
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import keras
import numpy as np

from model.batches import plan_batches
from tokenizers import PAD_ID

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)

TEXT_COLUMNS = ("sentence", "content", "text", "review")
LABEL_COLUMNS = ("label", "sentiment", "polarity")


class DataError(ValueError):
    """Input data is missing or malformed; the message says where."""


def read_lines(path: str | Path, *, keep_cr: bool = False) -> list[str]:
    """Lines of a UTF-8 text file, plain or gzip, without their newlines (and without a
    carriage return before them, unless `keep_cr`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:  # type: ignore[operator]
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read: {error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DataError(f"{path}: line {line} is not valid UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines if keep_cr else [line.rstrip("\r") for line in lines]


def _join_broken_rows(lines: list[str], delimiter: str) -> list[str]:
    """Rows whose text held a line break (CR LF, written unquoted) rejoined: a line with
    fewer fields than the header, after a line ending in CR, continues that line. A CR LF
    file's whole rows are left alone."""
    if not lines:
        return lines
    fields = lines[0].count(delimiter)
    rows = [lines[0]]
    for line in lines[1:]:
        if rows[-1].endswith("\r") and line.count(delimiter) < fields:
            rows[-1] = rows[-1][:-1] + " " + line
        else:
            rows.append(line)
    if len(rows) < len(lines):
        log.info("rejoined %d lines broken inside a row", len(lines) - len(rows))
    return [row.rstrip("\r") for row in rows]


def iter_lines(path: str | Path) -> Iterator[str]:
    """`read_lines`, a line at a time (files too large to hold whole)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    number = 0
    try:
        with opener(path, "rb") as handle:  # type: ignore[operator]
            for number, raw in enumerate(handle, start=1):  # noqa: B007
                yield raw.decode("utf-8").rstrip("\r\n")
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read: {error}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: line {number} is not valid UTF-8") from None


def find_split(data_dir: str | Path, split: str, language: str) -> Path:
    """`split.lang` or `split.lang.gz` inside data_dir (the Multi30k layout)."""
    for name in (f"{split}.{language}.gz", f"{split}.{language}"):
        if (Path(data_dir) / name).is_file():
            return Path(data_dir) / name
    raise DataError(f"{data_dir}: neither {split}.{language}.gz nor {split}.{language} exists")


def read_parallel(source_path: str | Path, target_path: str | Path) -> list[tuple[str, str]]:
    """Line-aligned files -> pairs; pairs with an empty side are dropped and counted."""
    sources, targets = read_lines(source_path), read_lines(target_path)
    if len(sources) != len(targets):
        raise DataError(
            f"line counts differ: {source_path} has {len(sources)} lines, "
            f"{target_path} has {len(targets)}"
        )
    return _drop_empty(list(zip(sources, targets, strict=True)), f"{source_path}")


def read_pairs_tsv(path: str | Path) -> list[tuple[str, str]]:
    """Tatoeba/ManyThings format: source TAB target [TAB attribution]."""
    pairs = []
    for number, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise DataError(f"{path}: line {number} has no tab-separated target")
        pairs.append((fields[0], fields[1]))
    return _drop_empty(pairs, str(path))


def _drop_empty(pairs: list[tuple[str, str]], where: str) -> list[tuple[str, str]]:
    kept = [(s.strip(), t.strip()) for s, t in pairs if s.strip() and t.strip()]
    if len(kept) < len(pairs):
        log.warning("%s: dropped %d pairs with an empty side", where, len(pairs) - len(kept))
    if not kept:
        raise DataError(f"{where}: no usable sentence pairs")
    return kept


def read_classification(path: str | Path) -> list[tuple[str, str]]:
    """(text, label) from SST-2 TSV, a CSV with text and label columns, or aclImdb folders."""
    path = Path(path)
    if path.is_dir():
        return _read_imdb_folder(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder")
    delimiter = "\t" if path.suffix in (".tsv", ".gz") else ","
    rows = list(
        csv.reader(
            _join_broken_rows(read_lines(path, keep_cr=True), delimiter),
            delimiter=delimiter,
            quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL,
        )
    )
    if not rows:
        raise DataError(f"{path}: empty file")
    header = [h.strip().lower() for h in rows[0]]
    text_col = next((header.index(c) for c in TEXT_COLUMNS if c in header), None)
    label_col = next((header.index(c) for c in LABEL_COLUMNS if c in header), None)
    if text_col is None or label_col is None:
        raise DataError(
            f"{path}: header {rows[0]} needs a text column ({', '.join(TEXT_COLUMNS)}) "
            f"and a label column ({', '.join(LABEL_COLUMNS)})"
        )
    examples = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) <= max(text_col, label_col):
            raise DataError(f"{path}: line {number} has {len(row)} columns, expected {len(header)}")
        text, label = row[text_col].strip(), row[label_col].strip()
        if text:
            examples.append((text, label))
    if not examples:
        raise DataError(f"{path}: no examples")
    return examples


def _read_imdb_folder(path: Path) -> list[tuple[str, str]]:
    examples = []
    for label in ("neg", "pos"):
        folder = path / label
        if not folder.is_dir():
            raise DataError(f"{path}: the aclImdb layout needs a {label}/ folder")
        for file in sorted(folder.glob("*.txt")):
            text = " ".join(read_lines(file)).replace("<br />", " ").strip()
            if text:
                examples.append((text, "1" if label == "pos" else "0"))
    return examples


def read_langid(
    data_dir: str | Path, languages: Sequence[str], split: str
) -> list[tuple[str, str]]:
    """One file per language (`split.lang[.gz]`) -> (line, language) examples."""
    examples = []
    for language in languages:
        lines = [line.strip() for line in read_lines(find_split(data_dir, split, language))]
        examples.extend((line, language) for line in lines if line)
    return examples


def label_counts(examples: Sequence[tuple[str, str]]) -> dict[str, int]:
    return dict(sorted(Counter(label for _, label in examples).items()))


T = TypeVar("T")


def read_window(pieces: Sequence[T], limit: int, tail: int = 0) -> list[T]:
    """What a classifier reads of a text's pieces: all of them up to `limit`, else the first
    `limit - tail` and the last `tail` (ModelConfig.read_pieces and tail_pieces)."""
    if len(pieces) <= limit:
        return list(pieces)
    head = limit - tail
    return [*pieces[:head], *pieces[len(pieces) - tail :]]


# Pipelines over already-tokenized ids.

BUCKETS = (8, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256)
FIXED_BUCKETS = (16, 24, 32, 48, 64, 96, 128, 192, 256)  # fewer shapes, fewer compilations


def _bucketed(
    dataset: tf.data.Dataset,
    length_of: object,
    tokens_per_batch: int,
    max_length: int,
    max_batch: int,
) -> tf.data.Dataset:
    boundaries = [b for b in BUCKETS if b < max_length]
    sizes = [max(1, min(max_batch, tokens_per_batch // b)) for b in [*boundaries, max_length]]
    return dataset.bucket_by_sequence_length(
        length_of,
        boundaries,
        sizes,
        padded_shapes=None,
        padding_values=None,
        pad_to_bucket_boundary=False,
        drop_remainder=False,
    )


def classification_dataset(
    examples: Sequence[tuple[list[int], int]],
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    max_length: int,
    repeat: bool = False,
) -> tf.data.Dataset:
    """(ids, label) batches of up to batch_size examples of similar length; `repeat` makes
    the stream endless (epochs of a set number of steps, each reshuffled pass after pass)."""
    import tensorflow as tf

    ids = [np.array(i[:max_length] or [PAD_ID], np.int32) for i, _ in examples]
    labels = [np.int32(label) for _, label in examples]

    def generate() -> Iterator[tuple[np.ndarray, np.int32]]:
        yield from zip(ids, labels, strict=True)

    signature = (tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32))
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature).cache()
    if shuffle:
        dataset = dataset.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = _bucketed(
        dataset, lambda x, y: tf.shape(x)[0], batch_size * 32, max_length + 1, batch_size
    )
    return dataset.prefetch(tf.data.AUTOTUNE)


class PaddedBatches(keras.utils.PyDataset):
    """Batches of fixed shapes: each example goes to the smallest bucket length that holds it,
    every batch of a bucket has that bucket's size and is padded to its length, so a compiled
    train step is built once per bucket. Training order (`shuffle`) is redrawn every epoch and
    drops each bucket's incomplete last batch; evaluation order keeps every example.

    `examples` are tuples of id sequences (padded) and scalars (stacked); `length_of` gives an
    example's padded length and `to_batch` turns the stacked fields into (inputs, targets).
    """

    def __init__(
        self,
        examples: Sequence[tuple[Any, ...]],
        *,
        length_of: Any,
        batch_size_for: Any,
        to_batch: Any,
        max_length: int,
        shuffle: bool,
        seed: int,
    ) -> None:
        super().__init__()
        self.examples = examples
        self.to_batch = to_batch
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        bounds = [b for b in FIXED_BUCKETS if b < max_length] + [max_length]
        lengths = np.array([length_of(e) for e in examples])
        slots = np.searchsorted(bounds, lengths)  # first bound >= length
        self.buckets = [
            (bound, batch_size_for(bound), np.flatnonzero(slots == i))
            for i, bound in enumerate(bounds)
            if np.any(slots == i)
        ]
        self.batches: list[tuple[int, int, np.ndarray]] = []
        self._plan()

    def _plan(self) -> None:
        self.batches = plan_batches(self.buckets, self.rng, self.shuffle)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> Any:
        bound, _, members = self.batches[index]
        fields = zip(*(self.examples[i] for i in members), strict=True)
        stacked = [_pad(list(f), bound) if np.ndim(f[0]) else np.array(f) for f in fields]
        return self.to_batch(*stacked)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._plan()


def _pad(sequences: list[np.ndarray], length: int) -> np.ndarray:
    out = np.full((len(sequences), length), PAD_ID, np.int32)
    for row, sequence in enumerate(sequences):
        out[row, : len(sequence)] = sequence
    return out


def padded_classification_batches(
    examples: Sequence[tuple[list[int], int]],
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    max_length: int,
) -> PaddedBatches:
    """`classification_dataset`'s batches in fixed shapes."""
    rows = [(np.array(i[:max_length] or [PAD_ID], np.int32), np.int32(y)) for i, y in examples]
    return PaddedBatches(
        rows,
        length_of=lambda e: len(e[0]),
        batch_size_for=lambda bound: batch_size,
        to_batch=lambda ids, labels: (ids, labels),
        max_length=max_length,
        shuffle=shuffle,
        seed=seed,
    )
