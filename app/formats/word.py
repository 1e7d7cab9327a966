"""Word (.docx) files: every paragraph of the body, tables (nested ones too), text boxes,
headers and footers is a block; its runs keep their formatting.

A paragraph is translated as a whole and its translation is cut back into its runs by
app.projection (a bold word keeps its share of the sentence at about the same place),
rather than put in the first run with the others cleared, which would lose all inline
formatting. Runs inside tracked changes, fields and content controls are left as they are.

Before python-docx opens the file, the zip's declared uncompressed sizes are summed and a
file over MAX_FILE_UNPACKED_BYTES is refused: Python's zip reader never inflates a member
past its declared size, so that bound holds whatever the archive really contains."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import docx
from docx.document import Document
from docx.oxml.ns import qn
from docx.text.hyperlink import Hyperlink
from docx.text.paragraph import Paragraph
from docx.text.run import Run

from app.config import Settings
from app.errors import BadRequest, PayloadTooLarge
from app.markup import xml_safe
from app.projection import distribute
from app.translation import Translated

MAX_MEMBERS = 10_000  # a Word file has tens of parts; thousands are an attack


def _check_archive(data: bytes, settings: Settings) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise BadRequest("the file is not a readable .docx file (not a zip archive)") from None
    declared = sum(member.file_size for member in members)
    if len(members) > MAX_MEMBERS or declared > settings.max_file_unpacked_bytes:
        raise PayloadTooLarge(
            f"the .docx unpacks to {declared} bytes in {len(members)} parts; at most "
            f"{settings.max_file_unpacked_bytes} bytes and {MAX_MEMBERS} parts"
        )


def _paragraphs(document: Document) -> Iterator[Paragraph]:
    """Every paragraph once: body (tables and text boxes included), headers, footers."""
    roots = [document.element.body]
    for section in document.sections:
        for part in (section.header, section.footer):
            if not part.is_linked_to_previous:
                roots.append(part._element)
    # The elements themselves, not their id(): lxml makes a new proxy object for a node
    # whenever none is alive, so the id of a dropped one can come back for another node.
    seen: set[object] = set()
    for root in roots:
        for element in root.iter(qn("w:p")):
            if element not in seen:
                seen.add(element)
                yield Paragraph(element, document)


def _runs(paragraph: Paragraph) -> list[Run]:
    runs: list[Run] = []
    for item in paragraph.iter_inner_content():
        runs.extend(item.runs if isinstance(item, Hyperlink) else [item])
    return runs


@dataclass
class WordDocument:
    document: Document
    blocks: list[list[Run]]
    lines: bool = True  # a line break in a paragraph is a manual break

    def texts(self) -> list[str]:
        return ["".join(run.text for run in runs) for runs in self.blocks]

    def render(self, translated: Sequence[Translated]) -> bytes:
        for runs, done in zip(self.blocks, translated, strict=True):
            pieces = [run.text for run in runs]
            parts = distribute(pieces, done.segments, done.sentences)
            for run, piece, part in zip(runs, pieces, parts, strict=True):
                if part != piece:
                    run.text = xml_safe(part)
        out = io.BytesIO()
        self.document.save(out)
        return out.getvalue()


def read(data: bytes, settings: Settings) -> WordDocument:
    _check_archive(data, settings)
    document = docx.Document(io.BytesIO(data))
    blocks = [runs for runs in map(_runs, _paragraphs(document)) if any(r.text for r in runs)]
    return WordDocument(document, blocks)
