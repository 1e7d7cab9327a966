"""Text normalizers applied identically at training and at serving time.

SST-2 is lowercased and split in the Penn Treebank way ("it 's", "does n't", "film ."),
so a sentiment model trained on it must see served text in that form too: the name of
the normalizer is stored in the artifact's config and the service applies it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f]")
_SPACES = re.compile(r"\s+")
_CLITICS = re.compile(r"(?i)(\w)(n't|'s|'re|'ve|'m|'ll|'d)\b")
_PUNCT = re.compile(r"([.,!?;:()\"]|--)")
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


NORMALIZERS: dict[str, Callable[[str], str]] = {"basic": basic, "sst": sst}


def normalize(text: str, name: str) -> str:
    try:
        return NORMALIZERS[name](text)
    except KeyError:
        raise ValueError(f"unknown normalizer {name!r}; known: {sorted(NORMALIZERS)}") from None
