"""HTML in, HTML out: text blocks translated, markup kept (a stand-in translator that
upper-cases, so that what was translated is visible)."""

from __future__ import annotations

import lxml.html
import pytest

from app import sentences
from app.markup import Document, MarkupError


def translated(markup: str) -> str:
    document = Document(markup)
    blocks = []
    for text in document.texts():
        segments = sentences.split(text, "en", lines=False)
        blocks.append((segments, [s.upper() for s in sentences.sentences(segments)]))
    return document.render(blocks)


def test_a_sentence_with_inline_tags_is_one_text_block() -> None:
    markup = '<p>Click <a href="/x?a=1&amp;b=2" class="k">here</a> to go <b>on</b>.</p>'
    assert Document(markup).texts() == ["Click here to go on."]
    assert translated(markup) == (
        '<p>CLICK <a href="/x?a=1&amp;b=2" class="k">HERE</a> TO GO <b>ON</b>.</p>'
    )


def test_block_elements_and_line_breaks_are_separate_blocks() -> None:
    markup = "<div>Intro<p>First.</p>Between<ul><li>One</li><li>Two</li></ul>A<br>B</div>"
    assert Document(markup).texts() == ["Intro", "First.", "Between", "One", "Two", "A", "B"]
    assert translated(markup) == markup.upper().replace("<BR>", "<br>").replace(
        "DIV>", "div>"
    ).replace("<P>", "<p>").replace("</P>", "</p>").replace("UL>", "ul>").replace("LI>", "li>")


def test_code_script_style_pre_and_translate_no_are_left_alone() -> None:
    markup = (
        "<p>Run <code>ls -l</code> now.</p><pre>keep me</pre><script>var x = 1;</script>"
        '<style>p { color: red }</style><p translate="no">Brand <b>name</b></p>'
        '<p class="notranslate">Other</p><!-- a comment -->'
    )
    out = translated(markup)
    assert "<code>ls -l</code>" in out and out.startswith("<p>RUN <code>")
    for kept in (
        "<pre>keep me</pre>",
        "<script>var x = 1;</script>",
        "<style>p { color: red }</style>",
        '<p translate="no">Brand <b>name</b></p>',
        '<p class="notranslate">Other</p>',
        "<!-- a comment -->",
    ):
        assert kept in out


def test_a_whole_document_keeps_its_doctype_head_and_entities() -> None:
    markup = (
        "<!DOCTYPE html><html><head><title>A title</title></head>"
        "<body><p>Fish &amp; chips &lt;3. Two.</p></body></html>"
    )
    out = translated(markup)
    assert out.startswith("<!DOCTYPE html>")
    assert "<title>A TITLE</title>" in out
    assert "<p>FISH &amp; CHIPS &lt;3. TWO.</p>" in out


def test_broken_markup_comes_back_well_formed() -> None:
    out = translated("<p>Unclosed <b>bold <i>both</p><div>x</span>")
    tree = lxml.html.fragment_fromstring(out, create_parent="div")
    assert [e.tag for e in tree.iter()][:4] == ["div", "p", "b", "i"]
    assert "UNCLOSED" in out and "BOTH" in out
    assert translated("a < b > c") == "A &lt; B &gt; C"


def test_markup_that_is_not_a_document_at_all_is_refused() -> None:
    with pytest.raises(MarkupError, match="could not be parsed"):
        Document("<!DOCTYPE html>")


def test_control_characters_in_a_translation_are_dropped() -> None:
    document = Document("<p>Hello.</p>")
    segments = sentences.split(document.texts()[0], "en", lines=False)
    assert document.render([(segments, ["Ha\x00llo\x01."])]) == "<p>Hallo.</p>"
