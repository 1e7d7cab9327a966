"""HTML files: the markup's text blocks (app.markup), UTF-8 in and out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.config import Settings
from app.formats import decode
from app.markup import Document
from app.translation import Translated, parse_html


@dataclass
class HtmlDocument:
    document: Document
    lines: bool = False  # in markup a line break is whitespace

    def texts(self) -> list[str]:
        return self.document.texts()

    def render(self, translated: Sequence[Translated]) -> bytes:
        rendered = self.document.render([(t.segments, t.sentences) for t in translated])
        return rendered.encode("utf-8")


def read(data: bytes, settings: Settings) -> HtmlDocument:
    return HtmlDocument(parse_html(decode(data, "html")))
