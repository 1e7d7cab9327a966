"""Texts of several sentences: split, translate every sentence as its own cached batch
item, join back with the original whitespace.

For a text of several sentences the response's numbers are built from its sentences:
`score` is the mean of the sentences' scores (each a mean log-probability per token),
`cached` is true when every sentence came from the cache, and alternative k joins each
sentence's k-th best translation (so a one-sentence text gets exactly the beam's n-best,
and a longer one as many alternatives as its sentence with the fewest). HTML gets no
alternatives: only the best translation is put back into the markup."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app import inference, markup, sentences
from app.cache import ResultCache
from app.errors import BadRequest
from app.registry import ServedModel
from app.sentences import Segment
from model.decode_options import DecodeOptions


@dataclass(frozen=True)
class Translated:
    segments: list[Segment]
    nbest: list[list[Any]]  # per sentence: [[text, score], ...], best first
    cached: bool

    @property
    def sentences(self) -> list[str]:
        return [hypotheses[0][0] for hypotheses in self.nbest]

    @property
    def text(self) -> str:
        return sentences.join(self.segments, self.sentences)

    @property
    def score(self) -> float:
        scores = [hypotheses[0][1] for hypotheses in self.nbest]
        return round(sum(scores) / len(scores), 6) if scores else 0.0

    def alternatives(self) -> list[str]:
        count = min((len(h) for h in self.nbest), default=1) - 1
        return [
            sentences.join(self.segments, [h[k][0] for h in self.nbest])
            for k in range(1, count + 1)
        ]


def segment(texts: Sequence[str], language: str, *, lines: bool = True) -> list[list[Segment]]:
    """Each text's segments (see app.sentences.split)."""
    return [sentences.split(text, language, lines=lines) for text in texts]


async def translate_segmented(
    served: ServedModel,
    cache: ResultCache,
    segmented: Sequence[list[Segment]],
    options: DecodeOptions,
    timeout: float,
    chunk_size: int | None = None,
) -> list[Translated]:
    """Translates every sentence of every text (cached per sentence), in chunks of at most
    `chunk_size` sentences, one after the other, so a long file leaves room in the batcher
    for other requests between its chunks. `timeout` applies to each chunk."""
    flat = [sentence for segments in segmented for sentence in sentences.sentences(segments)]
    step = chunk_size or max(len(flat), 1)
    results: list[inference.ItemResult] = []
    for start in range(0, len(flat), step):
        chunk = flat[start : start + step]
        results += await inference.translate(served, cache, chunk, options, timeout)
    out: list[Translated] = []
    position = 0
    for segments in segmented:
        count = sum(s.is_sentence for s in segments)
        own = results[position : position + count]
        position += count
        out.append(Translated(segments, [r.value for r in own], all(r.cached for r in own)))
    return out


@dataclass(frozen=True)
class ItemTranslation:
    """One text of a request, translated: what /translate answers per item."""

    text: str
    score: float
    cached: bool
    alternatives: list[str]


def parse_html(text: str) -> markup.Document:
    try:
        return markup.Document(text)
    except markup.MarkupError as error:
        raise BadRequest(str(error)) from None


def _combined(text: str, parts: Sequence[Translated], alternatives: list[str]) -> ItemTranslation:
    merged = Translated([], [h for part in parts for h in part.nbest], True)
    return ItemTranslation(text, merged.score, all(p.cached for p in parts), alternatives)


async def translate_items(
    served: ServedModel,
    cache: ResultCache,
    segmented: Sequence[list[list[Segment]]],
    documents: Sequence[markup.Document] | None,
    options: DecodeOptions,
    timeout: float,
) -> list[ItemTranslation]:
    """segmented[i]: the segments of each text block of item i (one block for plain text,
    one per flow for HTML, whose documents are given)."""
    blocks = [block for item in segmented for block in item]
    done = await translate_segmented(served, cache, blocks, options, timeout)
    out: list[ItemTranslation] = []
    position = 0
    for index, item in enumerate(segmented):
        parts = done[position : position + len(item)]
        position += len(item)
        if documents is None:
            out.append(_combined(parts[0].text, parts, parts[0].alternatives()))
        else:
            rendered = documents[index].render([(p.segments, p.sentences) for p in parts])
            out.append(_combined(rendered, parts, []))
    return out
