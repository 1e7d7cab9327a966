"""SubRip (.srt) subtitles: numbering and timings kept, each cue's text translated.

A cue's lines are joined before translation (players wrap subtitles again), except lines
that start with "-", which are the turns of a dialogue and stay lines of their own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import srt

from app.config import Settings
from app.formats import decode
from app.translation import Translated


def _unwrapped(content: str) -> str:
    lines: list[str] = []
    for line in (raw.strip() for raw in content.splitlines()):
        if lines and line and not line.startswith("-"):
            lines[-1] = f"{lines[-1]} {line}".strip()
        else:
            lines.append(line)
    return "\n".join(lines)


@dataclass
class SubtitleDocument:
    cues: list[srt.Subtitle]
    lines: bool = True

    def texts(self) -> list[str]:
        return [_unwrapped(cue.content) for cue in self.cues]

    def render(self, translated: Sequence[Translated]) -> bytes:
        for cue, done in zip(self.cues, translated, strict=True):
            cue.content = done.text
        return srt.compose(self.cues, reindex=False).encode("utf-8")


def read(data: bytes, settings: Settings) -> SubtitleDocument:
    return SubtitleDocument(list(srt.parse(decode(data, "srt"))))
