"""tokenizers.normalize: SST-2 style text, basic cleanup, and unknown names refused."""

from __future__ import annotations

import pytest

from tokenizers import NORMALIZERS, normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It's a film that doesn't work.", "it 's a film that does n't work ."),
        ("I can't believe it!", "i ca n't believe it !"),
        ("They're great, aren't they?", "they 're great , are n't they ?"),
        ("It\u2019s \u201cfine\u201d", 'it \'s " fine "'),  # curly quotes become straight
        ("  Dull --  and   LONG.  ", "dull -- and long ."),
    ],
)
def test_sst_produces_sst2_style_text(text: str, expected: str) -> None:
    assert normalize(text, "sst") == expected


def test_sst_is_idempotent_on_sst2_sentences() -> None:
    sentence = "it 's a charming and often affecting journey . "
    assert normalize(normalize(sentence, "sst"), "sst") == sentence.strip()


def test_basic_strips_control_characters_and_collapses_whitespace() -> None:
    assert normalize("\x00Hello\x1f\x7f  world\t\n\r again ", "basic") == "Hello world again"


def test_basic_keeps_case_and_punctuation_and_composes_unicode() -> None:
    assert normalize("Cafe\u0301, Straße!", "basic") == "Café, Straße!"


def test_unknown_normalizer_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown normalizer 'ptb'"):
        normalize("text", "ptb")


def test_the_known_normalizers_are_basic_review_and_sst() -> None:
    assert sorted(NORMALIZERS) == ["basic", "review", "sst"]


@pytest.mark.parametrize(
    ("source", "text", "expected"),
    [
        # SST-2: already lowercased and tokenized; only its PTB quotes change.
        ("sst2", "it 's a `` gem '' ... is n't it ?", "it 's a \" gem \" ... is n't it ?"),
        ("sst2", "contains no wit , only labored gags", "contains no wit , only labored gags"),
        # IMDB: raw reviews with markup left over from the scrape.
        (
            "imdb",
            'I didn\'t like it.<br /><br />The "plot"... &amp; <i>THE END</i>',
            'i did n\'t like it . the " plot " ... & the end',
        ),
        ("imdb", "A <3 film, and 5 < 6 > 4.", "a <3 film , and 5 < 6 > 4 ."),
        # pros/cons: short raw product sentences.
        ("pros_cons", "Easy to use, economical!", "easy to use , economical !"),
        ("pros_cons", "It's great...down with film!", "it 's great ... down with film !"),
    ],
)
def test_review_makes_every_source_look_like_sst2(source: str, text: str, expected: str) -> None:
    assert normalize(text, "review") == expected


def test_review_is_idempotent_and_keeps_a_lone_ellipsis() -> None:
    once = normalize("Wait... what? It's <b>BAD</b>.", "review")
    assert once == "wait ... what ? it 's bad ."
    assert normalize(once, "review") == once
    assert normalize("...", "review") == "..."
