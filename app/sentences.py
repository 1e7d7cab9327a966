"""Sentence splitting and joining: a text becomes segments that keep every character.

`split` cuts a text at line breaks first, then each line into sentences with pysbd (rule
based, no model to download). Line breaks are hard boundaries because they carry layout
(lists, addresses, verse, subtitles) that a translation must give back exactly; a sentence
hard-wrapped over two lines is therefore translated as two pieces (markup, where a line
break is only whitespace, asks for `lines=False`: sentences then run over line breaks). A
paragraph goes to pysbd in windows of WINDOW characters. Whatever lies between
sentences (spaces, newlines, blank lines) is a segment of its own, marked as not a
sentence, and `join` puts it back untouched, so `join(split(t), sentences(split(t))) == t`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pysbd
from pysbd.languages import LANGUAGE_CODES

from tokenizers.normalize import basic

log = logging.getLogger(__name__)

FALLBACK_LANGUAGE = "en"  # pysbd's rules for a language it lacks (e.g. cs)
WINDOW = 1_000  # characters the splitter sees at once (see _windows)


@dataclass(frozen=True)
class Segment:
    text: str
    is_sentence: bool  # False: whitespace (or control characters) kept as it is


def _segmenter(language: str) -> pysbd.Segmenter:
    # A new one per call (under a microsecond): segment() keeps the text on the instance,
    # so one shared by the event loop and the file threads would mix their texts up.
    code = language if language in LANGUAGE_CODES else FALLBACK_LANGUAGE
    return pysbd.Segmenter(language=code, clean=False)


def _windows(line: str) -> list[str]:
    """The line in pieces of at most WINDOW characters, cut after a full stop (or another
    end mark, or a space) where there is one: pysbd's time grows with the square of its
    input, so a long paragraph goes to it a window at a time."""
    pieces, start = [], 0
    while len(line) - start > WINDOW:
        end = start + WINDOW
        cut = max(line.rfind(mark, start, end) for mark in (". ", "! ", "? "))
        cut = cut + 2 if cut > start else line.rfind(" ", start, end) + 1
        cut = cut if cut > start else end
        pieces.append(line[start:cut])
        start = cut
    return [*pieces, line[start:]]


def _sentences_of_line(line: str, language: str) -> list[str]:
    """The sentences of one line without their surrounding whitespace, in order."""
    found: list[str] = []
    for window in _windows(line):
        try:
            found += _segmenter(language).segment(window)
        except Exception:  # pysbd is rule-based third-party code: its bug is one sentence
            log.warning("sentence splitter failed on %d characters", len(window))
            found.append(window)
    return [s.strip() for s in found if s.strip()]


def _split_line(line: str, language: str, segments: list[Segment], probe: str = "") -> None:
    """probe: `line` with characters replaced one for one, what the splitter sees."""
    probe = probe or line
    cursor = 0
    for sentence in _sentences_of_line(probe, language):
        start = probe.find(sentence, cursor)
        if start < 0:  # the splitter changed the text: keep the rest as one sentence
            break
        _add_gap(line[cursor:start], segments)
        _add_sentence(line[start : start + len(sentence)], segments)
        cursor = start + len(sentence)
    rest = line[cursor:]
    if rest.strip():
        stripped = rest.strip()
        start = rest.index(stripped)
        _add_gap(rest[:start], segments)
        _add_sentence(stripped, segments)
        rest = rest[start + len(stripped) :]
    _add_gap(rest, segments)


def _add_sentence(sentence: str, segments: list[Segment]) -> None:
    if basic(sentence):
        segments.append(Segment(sentence, True))
    else:  # control characters only: nothing a model could translate
        _add_gap(sentence, segments)


def _add_gap(gap: str, segments: list[Segment]) -> None:
    if not gap:
        return
    if segments and not segments[-1].is_sentence:  # merge neighbouring whitespace
        segments[-1] = Segment(segments[-1].text + gap, False)
    else:
        segments.append(Segment(gap, False))


def split(text: str, language: str, *, lines: bool = True) -> list[Segment]:
    """Sentences and the whitespace around them; concatenated, the segments are `text`.

    lines=False (markup, where a line break is only whitespace): sentences may run over
    line breaks; the whitespace inside a sentence is then the translator's to collapse."""
    segments: list[Segment] = []
    if not lines:  # pysbd ends a sentence at a line break: it sees spaces instead
        _split_line(text, language, segments, "".join(" " if c.isspace() else c for c in text))
        return segments
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")
        _split_line(body, language, segments)
        _add_gap(line[len(body) :], segments)
    return segments


def sentences(segments: Iterable[Segment]) -> list[str]:
    """The sentences to translate, in order."""
    return [s.text for s in segments if s.is_sentence]


def join(segments: Sequence[Segment], translations: Sequence[str]) -> str:
    """The segments with each sentence replaced by its translation, in order."""
    count = sum(s.is_sentence for s in segments)
    if count != len(translations):
        raise ValueError(f"{len(translations)} translations for {count} sentences")
    replaced = iter(translations)
    return "".join(next(replaced) if s.is_sentence else s.text for s in segments)
