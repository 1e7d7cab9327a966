"""Putting a translation back into the pieces its source came in (HTML text nodes, Word
runs): each piece keeps its formatting and gets a share of the translated text.

A boundary between two pieces that falls in the whitespace between sentences stays there
exactly. One that falls inside a sentence moves to the same relative position in the
sentence's translation, snapped to the nearest edge of a word, so that a bold or linked
word inside a sentence stays inside that sentence's translation, about where it was.
Word order changes between languages, so this is an approximation; what it guarantees is
that every piece, tag and run survives and the sentence is translated as one whole."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from app.sentences import Segment


def _kind(char: str) -> int:
    return 0 if char.isspace() else 1 if char.isalnum() else 2


def _word_edge_near(text: str, position: int) -> int:
    """The word edge (between a space, a word and punctuation) nearest to `position`."""
    edges = [0, len(text)]
    edges += [i for i in range(1, len(text)) if _kind(text[i - 1]) != _kind(text[i])]
    return min(edges, key=lambda edge: (abs(edge - position), edge))


def _mapped(offset: int, segments: Sequence[Segment], targets: Sequence[str]) -> int:
    """A source character offset -> the matching offset in the joined translation."""
    source_start = target_start = 0
    for segment, target in zip(segments, targets, strict=True):
        source_end = source_start + len(segment.text)
        if offset < source_end:
            inside = offset - source_start
            if not segment.is_sentence:
                return target_start + inside
            share = round(inside / len(segment.text) * len(target))
            return target_start + _word_edge_near(target, share)
        source_start, target_start = source_end, target_start + len(target)
    return target_start


def distribute(
    pieces: Sequence[str], segments: Sequence[Segment], translations: Sequence[str]
) -> list[str]:
    """The translation cut into len(pieces) consecutive parts; "".join(parts) is the
    segments joined with `translations`. `pieces` concatenated must be the segments' text."""
    if "".join(pieces) != "".join(s.text for s in segments):
        raise ValueError("the pieces and the segments are not the same text")
    if not pieces:
        return []
    if sum(s.is_sentence for s in segments) != len(translations):
        raise ValueError("one translation per sentence is needed")
    replaced = iter(translations)
    targets = [next(replaced) if s.is_sentence else s.text for s in segments]
    joined = "".join(targets)
    cuts, offset, previous = [0], 0, 0
    for piece in pieces[:-1]:
        offset += len(piece)
        previous = max(previous, _mapped(offset, segments, targets))
        cuts.append(previous)
    cuts.append(len(joined))
    parts = [joined[start:end] for start, end in itertools.pairwise(cuts)]
    for i in range(len(parts) - 1):  # "a <b>man</b> runs": the spaces stay outside the tag
        if pieces[i] and not pieces[i][-1].isspace():
            kept = parts[i].rstrip()
            parts[i], parts[i + 1] = kept, parts[i][len(kept) :] + parts[i + 1]
        if pieces[i + 1] and not pieces[i + 1][0].isspace():
            kept = parts[i + 1].lstrip()
            parts[i], parts[i + 1] = parts[i] + parts[i + 1][: len(parts[i + 1]) - len(kept)], kept
    return parts
