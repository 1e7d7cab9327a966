"""File formats /translate_file reads and writes: each reads bytes into a document whose
text blocks are translated (app.translation) and rendered back into the same format.

Reading an uploaded file runs third-party parsers on untrusted bytes: whatever they raise
becomes a 400 naming the format (never a 500), and a .docx is checked for its declared
uncompressed size before anything is inflated (zip bombs)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.config import Settings
from app.errors import BadRequest, PayloadTooLarge
from app.translation import Translated

log = logging.getLogger(__name__)


class FileDocument(Protocol):
    lines: bool  # whether a line break inside a block ends a sentence (app.sentences.split)

    def texts(self) -> list[str]:
        """The text blocks to translate, in order."""
        ...

    def render(self, translated: Sequence[Translated]) -> bytes:
        """The file with block i replaced by translated[i]."""
        ...


@dataclass(frozen=True)
class FileFormat:
    name: str  # the metrics label and the stored file's extension
    media_type: str
    read: Callable[[bytes, Settings], FileDocument]


def _formats() -> dict[str, FileFormat]:
    from app.formats import html, subtitles, text, word

    html_format = FileFormat("html", "text/html", html.read)
    return {
        ".txt": FileFormat("txt", "text/plain", text.read),
        ".html": html_format,
        ".htm": html_format,
        ".docx": FileFormat(
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            word.read,
        ),
        ".srt": FileFormat("srt", "application/x-subrip", subtitles.read),
    }


def supported_formats() -> list[str]:
    """The file extensions /translate_file accepts (LibreTranslate's supportedFilesFormat)."""
    return sorted(_formats())


def format_for(filename: str) -> FileFormat:
    """The format of an uploaded file, from its extension; 400 listing the supported ones."""
    extension = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    found = _formats().get(extension)
    if found is None:
        supported = ", ".join(supported_formats())
        raise BadRequest(f"unsupported file format {extension or '(none)'!r}; use {supported}")
    return found


def format_names() -> frozenset[str]:
    """The formats' names: the extensions translated files are stored under."""
    return frozenset(f.name for f in _formats().values())


def by_name(name: str) -> FileFormat | None:
    return next((f for f in _formats().values() if f.name == name), None)


def read(file_format: FileFormat, data: bytes, settings: Settings) -> FileDocument:
    """The document in `data`; 400 when it cannot be read as `file_format`, 413 when it
    unpacks too large."""
    try:
        return file_format.read(data, settings)
    except (BadRequest, PayloadTooLarge):
        raise
    except Exception as error:  # a parser's failure on untrusted bytes is the file's fault
        log.info("unreadable .%s upload: %s", file_format.name, type(error).__name__)
        raise BadRequest(f"the file is not a readable .{file_format.name} file") from None


def decode(data: bytes, file_format: str) -> str:
    """UTF-8 text (a byte order mark is dropped); 400 otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest(f"the .{file_format} file is not UTF-8 text") from None
