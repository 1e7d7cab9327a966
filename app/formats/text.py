"""Plain text files: one block, line breaks kept (as in /translate)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.config import Settings
from app.formats import decode
from app.translation import Translated


@dataclass
class TextDocument:
    text: str
    lines: bool = True

    def texts(self) -> list[str]:
        return [self.text]

    def render(self, translated: Sequence[Translated]) -> bytes:
        return translated[0].text.encode("utf-8")


def read(data: bytes, settings: Settings) -> TextDocument:
    return TextDocument(decode(data, "txt"))
