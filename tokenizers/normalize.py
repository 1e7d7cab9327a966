"""Text normalizers applied identically at training and at serving time.

SST-2 is lowercased and split in the Penn Treebank way ("it 's", "does n't", "film ."),
so a sentiment model trained on it must see served text in that form too: the name of
the normalizer is stored in the artifact's config and the service applies it.

`review` brings raw reviews and SST-2's phrases to one form, for a model trained on both:
markup left in scraped reviews (`<br />`, `<i>`, `&amp;`) is removed, SST-2's PTB quotes
(`` and '') and the raw text's quotes both become `"`, an ellipsis stays one token, and the
rest is `sst`.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable

_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f]")
_SPACES = re.compile(r"\s+")
_CLITICS = re.compile(r"(?i)(\w)(n't|'s|'re|'ve|'m|'ll|'d)\b")
_PUNCT = re.compile(r"([.,!?;:()\"]|--)")
# An html tag: a letter after `<` or `</`, no `<` or `>` inside (not "<3" or "a < b").
_TAG = re.compile(r"</?[a-zA-Z][^<>]{0,200}>")
_PTB_QUOTES = re.compile(r"``|''")
_ELLIPSIS = re.compile(r"(?:\.\s*){3,}|…")
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})


def basic(text: str) -> str:
    """NFC, control characters removed, runs of whitespace collapsed."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def sst(text: str) -> str:
    """Lowercased, PTB-style split clitics and punctuation, like SST-2's sentences."""
    text = basic(text).translate(_QUOTES).lower()
    text = _CLITICS.sub(lambda m: f"{m.group(1)} {m.group(2)}", text)
    text = text.replace("n 't", " n't").replace("  ", " ")
    text = _PUNCT.sub(r" \1 ", text)
    return _SPACES.sub(" ", text).strip()


def review(text: str) -> str:
    """`sst` for raw reviews and SST-2 alike: markup removed, quotes and ellipses unified."""
    text = _TAG.sub(" ", html.unescape(text))
    text = _PTB_QUOTES.sub('"', text)
    # The ellipsis is set aside from `sst`'s split of every "." and put back as one token.
    joined = " ... ".join(sst(part) for part in _ELLIPSIS.split(text))
    return _SPACES.sub(" ", joined).strip()


NORMALIZERS: dict[str, Callable[[str], str]] = {"basic": basic, "sst": sst, "review": review}


def normalize(text: str, name: str) -> str:
    try:
        return NORMALIZERS[name](text)
    except KeyError:
        raise ValueError(f"unknown normalizer {name!r}; known: {sorted(NORMALIZERS)}") from None
