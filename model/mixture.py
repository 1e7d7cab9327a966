"""Training mixtures: several corpora, each with its weight and validation split.

A recipe is a small TOML file (see `recipes/`), one `[[corpus]]` table per corpus:

    [[corpus]]
    name = "tatoeba"
    train = "general/tatoeba.en-de.tsv.gz"   # a TSV of pairs ...
    columns = ["en", "de"]                    # ... whose columns are these languages
    holdout = 3000                            # carve 3,000 source sentences for validation
    holdout_by = "en"                         # grouped by this side (never in both splits)
    weight = 1.0                              # upsampling: 2.5 = every pair 2 or 3 times
    typed_variant = true                      # also score lowercased, unpunctuated input
    license = "CC-BY 2.0"                     # recorded in the model card, with ...
    attribution = "Tatoeba (tatoeba.org)"     # ... the credit the license asks for

    [[corpus]]
    name = "news"
    train = ["general/newstest2008", "general/newstest2009"]  # line-aligned PREFIX.<lang>[.gz]
    validation = "general/newstest2013"
    weight = 4.0

Classification corpora (`build_classification`) are files `read_classification` reads (a
TSV or CSV with a header naming the text and label columns); `holdout` then counts texts:

    [[corpus]]
    name = "imdb"
    train = "sentiment/imdb_train.tsv.gz"
    holdout = 2500                            # 2,500 reviews carved out for validation

Paths are relative to the data folder the caller gives. Every corpus is cleaned the same
way, and the counts are logged and recorded per corpus. Parallel text: pairs with an empty
side, the same text on both sides, an implausible length ratio, exact duplicates, or a
source sentence that is in any validation split are dropped. Classification: empty texts,
repeated texts (compared as the model sees them), texts given contradicting labels, and texts
in any validation split.
"""

from __future__ import annotations

import logging
import random
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model import data

log = logging.getLogger(__name__)

Pair = tuple[str, str]
# Past this ratio of characters one side is rarely a translation of the other
# (sentence-alignment errors, a title glued to a paragraph); short pairs are exempt.
MAX_LENGTH_RATIO = 3.0
RATIO_MIN_CHARS = 12
_FINAL_PUNCT = re.compile(r"[\s.!?…。]+$")


@dataclass(frozen=True)
class CorpusSpec:
    """One corpus of a recipe; see the module docstring for the fields."""

    name: str
    train: tuple[str, ...]
    weight: float = 1.0
    columns: tuple[str, ...] = ()  # TSV corpora: the language of each column
    validation: str | None = None  # a file or line-aligned prefix of the same format
    holdout: int = 0  # else: this many source sentences carved out of train
    holdout_by: str | None = None
    typed_variant: bool = False
    license: str = ""
    attribution: str = ""

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CorpusSpec:
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise data.DataError(f"corpus {raw.get('name')!r}: unknown fields {sorted(unknown)}")
        if "name" not in raw or "train" not in raw:
            raise data.DataError(f"every [[corpus]] needs a name and a train path: {raw}")
        train = raw["train"]
        spec = cls(
            **{
                **raw,
                "train": tuple([train] if isinstance(train, str) else train),
                "columns": tuple(raw.get("columns", ())),
            }
        )
        if spec.weight <= 0:
            raise data.DataError(f"corpus {spec.name!r}: weight must be positive")
        if spec.validation and spec.holdout:
            raise data.DataError(f"corpus {spec.name!r}: give validation or holdout, not both")
        return spec


Reader = Callable[[Path, "CorpusSpec"], list[Pair]]
Cleaner = Callable[[Sequence[Pair], set[str]], tuple[list[Pair], dict[str, int]]]


@dataclass
class Mixture:
    """Cleaned, weighted training pairs and one validation split per corpus."""

    train: list[Pair]
    validation: dict[str, list[Pair]]
    report: dict[str, dict[str, Any]] = field(default_factory=dict)  # per corpus counts

    @property
    def all_validation(self) -> list[Pair]:
        return [pair for pairs in self.validation.values() for pair in pairs]


def read_recipe(path: Path) -> tuple[list[CorpusSpec], dict[str, Any]]:
    """The corpus specs of a TOML recipe and its other top-level settings."""
    try:
        recipe = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise data.DataError(f"{path}: {error}") from None
    corpora = recipe.pop("corpus", [])
    if not corpora:
        raise data.DataError(f"{path}: no [[corpus]] tables")
    specs = [CorpusSpec.from_dict(raw) for raw in corpora]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise data.DataError(f"{path}: corpus names repeat: {names}")
    return specs, recipe


def read_corpus_file(path: Path, spec: CorpusSpec, source: str, target: str) -> list[Pair]:
    """(source, target) pairs of one TSV file or line-aligned `PREFIX.<lang>[.gz]` pair."""
    if spec.columns:
        missing = {source, target} - set(spec.columns)
        if missing:
            raise data.DataError(f"corpus {spec.name!r}: columns {spec.columns} lack {missing}")
        s_col, t_col = spec.columns.index(source), spec.columns.index(target)
        pairs = []
        for number, line in enumerate(data.read_lines(path), start=1):
            fields = line.split("\t")
            if len(fields) < len(spec.columns):
                raise data.DataError(f"{path}: line {number} has {len(fields)} columns")
            pairs.append((fields[s_col], fields[t_col]))
        return pairs
    found = [_aligned(path, lang) for lang in (source, target)]
    sources, targets = (data.read_lines(p) for p in found)
    if len(sources) != len(targets):
        raise data.DataError(f"{found[0]} has {len(sources)} lines, {found[1]} {len(targets)}")
    return list(zip(sources, targets, strict=True))


def _aligned(prefix: Path, language: str) -> Path:
    for candidate in (Path(f"{prefix}.{language}.gz"), Path(f"{prefix}.{language}")):
        if candidate.is_file():
            return candidate
    raise data.DataError(f"neither {prefix}.{language}.gz nor {prefix}.{language} exists")


def typed(text: str) -> str:
    """Text as people type it: lowercased, without final punctuation."""
    return _FINAL_PUNCT.sub("", text.lower())


def clean(pairs: Sequence[Pair], exclude_sources: set[str]) -> tuple[list[Pair], dict[str, int]]:
    """Drops unusable pairs; returns the kept ones and a count per reason."""
    counts = dict.fromkeys(("empty", "identical", "length_ratio", "duplicate", "in_validation"), 0)
    seen: set[Pair] = set()
    kept = []
    for raw_source, raw_target in pairs:
        s, t = " ".join(raw_source.split()), " ".join(raw_target.split())
        reason = None
        if not s or not t:
            reason = "empty"
        elif s.casefold() == t.casefold():
            reason = "identical"
        elif max(len(s), len(t)) >= RATIO_MIN_CHARS and (
            max(len(s), len(t)) > MAX_LENGTH_RATIO * min(len(s), len(t))
        ):
            reason = "length_ratio"
        elif (s, t) in seen:
            reason = "duplicate"
        elif s in exclude_sources:
            reason = "in_validation"
        if reason:
            counts[reason] += 1
            continue
        seen.add((s, t))
        kept.append((s, t))
    return kept, counts


def clean_classification(
    examples: Sequence[Pair], exclude: set[str], key: Callable[[str], str] = str
) -> tuple[list[Pair], dict[str, int]]:
    """Drops unusable (text, label) examples; `key` is the form texts are compared in (the
    model's normalizer), `exclude` the validation texts in that form."""
    counts = dict.fromkeys(("empty", "conflicting", "duplicate", "in_validation"), 0)
    keyed = [(key(" ".join(text.split())), text, label) for text, label in examples]
    labels: dict[str, set[str]] = {}
    for k, _, label in keyed:
        labels.setdefault(k, set()).add(label)
    seen: set[str] = set()
    kept = []
    for k, text, label in keyed:
        reason = None
        if not k:
            reason = "empty"
        elif len(labels[k]) > 1:
            reason = "conflicting"
        elif k in seen:
            reason = "duplicate"
        elif k in exclude:
            reason = "in_validation"
        if reason:
            counts[reason] += 1
            continue
        seen.add(k)
        kept.append((" ".join(text.split()), label))
    return kept, counts


def carve(
    pairs: list[Pair], count: int, by_source: bool, seed: int
) -> tuple[list[Pair], list[Pair]]:
    """Holds out `count` distinct grouping sentences: every pair of a held-out sentence
    leaves training, and validation keeps one pair per sentence (one reference each)."""
    side = 0 if by_source else 1
    groups = sorted({pair[side] for pair in pairs})
    random.Random(seed).shuffle(groups)
    held = set(groups[:count])
    validation: dict[str, Pair] = {}
    train = []
    for pair in pairs:
        if pair[side] in held:
            validation.setdefault(pair[side], pair)
        else:
            train.append(pair)
    return train, sorted(validation.values())


def upsample(pairs: list[Pair], weight: float, rng: random.Random) -> list[Pair]:
    """Every pair int(weight) times, plus a random share weight % 1 once more."""
    whole, part = int(weight), weight - int(weight)
    extra = rng.sample(pairs, round(part * len(pairs))) if part else []
    return pairs * whole + extra


def build(
    specs: Sequence[CorpusSpec],
    data_dir: Path,
    source: str,
    target: str,
    *,
    seed: int = 1234,
    typed_share: float = 0.0,
) -> Mixture:
    """Reads, splits, cleans and weights every parallel corpus of a recipe.

    `typed_share` adds that share of each corpus' pairs once more with the source as people
    type it (lowercase, no final punctuation), so such input translates like clean input.
    """
    for spec in specs:
        if spec.holdout and (spec.holdout_by or source) not in (source, target):
            raise data.DataError(f"corpus {spec.name!r}: holdout_by {spec.holdout_by!r} is no side")

    def read(path: Path, spec: CorpusSpec) -> list[Pair]:
        return read_corpus_file(path, spec, source, target)

    return _build(
        specs,
        data_dir,
        read,
        clean,
        by_source=lambda spec: (spec.holdout_by or source) == source,
        seed=seed,
        typed_share=typed_share,
    )


def build_classification(
    specs: Sequence[CorpusSpec],
    data_dir: Path,
    *,
    seed: int = 1234,
    key: Callable[[str], str] = str,
) -> Mixture:
    """Reads, splits, cleans and weights every (text, label) corpus of a recipe; `key` is
    the form texts are compared in when cleaning (the model's normalizer)."""

    def read(path: Path, spec: CorpusSpec) -> list[Pair]:
        return data.read_classification(path)

    def cleaner(examples: Sequence[Pair], exclude: set[str]) -> tuple[list[Pair], dict[str, int]]:
        return clean_classification(examples, exclude, key)

    return _build(specs, data_dir, read, cleaner, by_source=lambda spec: True, seed=seed, key=key)


def _build(
    specs: Sequence[CorpusSpec],
    data_dir: Path,
    read: Reader,
    cleaner: Cleaner,
    *,
    by_source: Callable[[CorpusSpec], bool],
    seed: int,
    typed_share: float = 0.0,
    key: Callable[[str], str] = str,
) -> Mixture:
    raw: dict[str, list[Pair]] = {}
    validation: dict[str, list[Pair]] = {}
    for spec in specs:
        pairs = [p for f in spec.train for p in read(data_dir / f, spec)]
        if spec.validation:
            # A given validation set is kept as published (empty pairs aside).
            held = read(data_dir / spec.validation, spec)
            validation[spec.name] = [
                (s.strip(), t.strip()) for s, t in held if s.strip() and t.strip()
            ]
        elif spec.holdout:
            normalized = [(" ".join(s.split()), " ".join(t.split())) for s, t in pairs]
            pairs, validation[spec.name] = carve(normalized, spec.holdout, by_source(spec), seed)
        raw[spec.name] = pairs
        if spec.typed_variant and spec.name in validation:
            validation[f"{spec.name}_typed"] = [(typed(s), t) for s, t in validation[spec.name]]
    held_sources = {key(s) for pairs in validation.values() for s, _ in pairs}
    rng = random.Random(seed)
    train: list[Pair] = []
    report: dict[str, dict[str, Any]] = {}
    for spec in specs:
        kept, dropped = cleaner(raw[spec.name], held_sources)
        if not kept:
            raise data.DataError(f"corpus {spec.name!r}: no usable pairs")
        weighted = upsample(kept, spec.weight, rng)
        extra = [(typed(s), t) for s, t in rng.sample(kept, round(typed_share * len(kept)))]
        train += weighted + extra
        report[spec.name] = {
            "read": len(raw[spec.name]),
            "dropped": dropped,
            "kept": len(kept),
            "weight": spec.weight,
            "typed_copies": len(extra),
            "in_mixture": len(weighted) + len(extra),
            "validation": len(validation.get(spec.name, [])),
            "files": list(spec.train),
            **({"license": spec.license} if spec.license else {}),
            **({"attribution": spec.attribution} if spec.attribution else {}),
        }
        log.info(
            "%s: %d read, %d kept, dropped %s; weight %g -> %d in the mixture; %d validation",
            spec.name,
            len(raw[spec.name]),
            len(kept),
            ", ".join(f"{k} {v}" for k, v in dropped.items() if v) or "none",
            spec.weight,
            len(weighted) + len(extra),
            len(validation.get(spec.name, [])),
        )
    rng.shuffle(train)
    return Mixture(train, validation, report)
