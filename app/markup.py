"""HTML in, HTML out: the visible text of a document or fragment is translated; tags,
attributes, comments and structure are kept.

Why blocks, not text nodes: in `<p>Click <a href="/x">here</a> to go on.</p>` the text
nodes are "Click ", "here" and " to go on."; translated one by one they make three bad
fragments. Instead the text of a block element with its inline children (<a>, <b>, <em>,
<span>...) is one *flow*, split into sentences and translated like plain text; the
translation is then cut back into the flow's text nodes by app.projection (each node keeps
a share, at the same relative place in the same sentence). Placeholders the model should
copy (`<x1>here</x1>`) were rejected: models trained from scratch on plain sentences do
not copy tokens they never saw, and a lost placeholder loses a tag. Projection never
loses a tag; its cost is that a tag may land a word off after reordering.

Left alone: <script>, <style>, <pre>, <code>, anything with translate="no" or the class
"notranslate" (with its descendants), comments, attributes (alt and title included). An
inline element left alone (<code> in a sentence) keeps its text; the words around it are
still one sentence. <br> and block elements end a flow. The parser is lxml's HTML parser,
which repairs broken markup the way browsers do, so the output is always well-formed;
entities are read as characters and written back as characters (&amp;, &lt; and &gt; as
entities), which is the same document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import lxml.html
from lxml import etree

from app.projection import distribute
from app.sentences import Segment

SKIPPED = frozenset({"script", "style", "pre", "code", "textarea", "template"})
INLINE = frozenset(
    {"a", "abbr", "b", "bdi", "bdo", "cite", "code", "data", "del", "dfn", "em", "font", "i"}
    | {"img", "ins", "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strong"}
    | {"sub", "sup", "time", "u", "var"}
)


class MarkupError(ValueError):
    """The markup could not be read at all."""


@dataclass
class _Slot:
    node: etree._Element
    attr: str  # "text" or "tail"; "" for an element left alone (its text stays)
    text: str


@dataclass
class Flow:
    """The text of a block with its inline children, in the nodes it lives in."""

    slots: list[_Slot] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(slot.text for slot in self.slots)


def _left_alone(element: etree._Element) -> bool:
    return (
        element.tag in SKIPPED
        or str(element.get("translate", "")).strip().lower() == "no"
        or "notranslate" in str(element.get("class", "")).split()
    )


class Document:
    def __init__(self, markup: str) -> None:
        head = markup.lstrip()[:9].lower()
        self._whole = head.startswith(("<!doctype", "<html"))
        self._doctype = head.startswith("<!doctype")
        try:
            if self._whole:
                self.root = lxml.html.document_fromstring(markup)
            else:
                self.root = lxml.html.fragment_fromstring(markup, create_parent="div")
        except (etree.ParserError, ValueError) as error:
            raise MarkupError(f"the markup could not be parsed: {error}") from None
        self.flows: list[Flow] = []
        self._walk_block(self.root)

    def _close(self, flow: Flow) -> Flow:
        if flow.text.strip():
            self.flows.append(flow)
        return Flow()

    def _walk_block(self, element: etree._Element) -> None:
        self._close(self._walk_content(element, Flow()))

    def _walk_content(self, element: etree._Element, flow: Flow) -> Flow:
        """Adds element's text and children to `flow`; returns the flow open at its end."""
        if element.text:
            flow.slots.append(_Slot(element, "text", element.text))
        for child in element:
            if not isinstance(child.tag, str):
                pass  # a comment or processing instruction: only its tail is text
            elif _left_alone(child):
                if child.tag in INLINE:
                    flow.slots.append(_Slot(child, "", child.text_content()))
                else:
                    flow = self._close(flow)
            elif child.tag in INLINE:
                flow = self._walk_content(child, flow)
            else:
                flow = self._close(flow)
                self._walk_block(child)
            if child.tail:
                flow.slots.append(_Slot(child, "tail", child.tail))
        return flow

    def texts(self) -> list[str]:
        """The text of every flow, in document order: what to translate."""
        return [flow.text for flow in self.flows]

    def render(self, translated: Sequence[tuple[Sequence[Segment], Sequence[str]]]) -> str:
        """The markup with flow i's sentences replaced: translated[i] is its segments (of
        texts()[i]) and one translation per sentence."""
        for flow, (segments, translations) in zip(self.flows, translated, strict=True):
            parts = distribute([s.text for s in flow.slots], segments, translations)
            for slot, part in zip(flow.slots, parts, strict=True):
                if slot.attr:
                    setattr(slot.node, slot.attr, xml_safe(part))
        return self._serialize()

    def _serialize(self) -> str:
        if not self._whole:  # the fragment's wrapper is ours: only its inside is returned
            return lxml.html.tostring(self.root, encoding="unicode")[len("<div>") : -len("</div>")]
        tree = self.root.getroottree()
        if self._doctype:
            return lxml.html.tostring(tree, encoding="unicode", doctype=tree.docinfo.doctype)
        return lxml.html.tostring(self.root, encoding="unicode")


def xml_safe(text: str) -> str:
    """Without the characters lxml refuses in a tree (NUL, most C0 controls, surrogates)."""
    return "".join(
        c
        for c in text
        if c in "\t\n\r" or ("\x20" <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd") or c > "\uffff"
    )
