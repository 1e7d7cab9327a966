"""Splitting a text into sentences and joining it back: every character is kept."""

from __future__ import annotations

import random

import pytest

from app import sentences
from app.projection import distribute
from app.sentences import Segment

PARAGRAPH = "  A man runs.  The dog sits!\n\nA child plays? The cat eats. \r\n"


def test_a_paragraph_splits_into_its_sentences() -> None:
    segments = sentences.split(PARAGRAPH, "en")
    assert sentences.sentences(segments) == [
        "A man runs.",
        "The dog sits!",
        "A child plays?",
        "The cat eats.",
    ]


def test_whitespace_and_line_breaks_come_back_exactly() -> None:
    segments = sentences.split(PARAGRAPH, "en")
    assert "".join(s.text for s in segments) == PARAGRAPH
    gaps = [s.text for s in segments if not s.is_sentence]
    assert gaps == ["  ", "  ", "\n\n", " ", " \r\n"]
    upper = [s.upper() for s in sentences.sentences(segments)]
    assert sentences.join(segments, upper) == PARAGRAPH.upper()


def test_abbreviations_do_not_end_a_sentence() -> None:
    segments = sentences.split("Mr. Smith sees Dr. Brown. They talk.", "en")
    assert sentences.sentences(segments) == ["Mr. Smith sees Dr. Brown.", "They talk."]


def test_a_line_break_always_ends_a_sentence_unless_lines_are_only_whitespace() -> None:
    text = "A title\nA man runs. The dog sits."
    assert sentences.sentences(sentences.split(text, "en")) == [
        "A title",
        "A man runs.",
        "The dog sits.",
    ]
    flowing = sentences.split("A man\n  runs. The dog sits.", "en", lines=False)
    assert sentences.sentences(flowing) == ["A man\n  runs.", "The dog sits."]


@pytest.mark.parametrize("text", ["", "   ", "\n\n", " \t\r\n ", "\x00\x01"])
def test_empty_and_whitespace_only_texts_have_no_sentence(text: str) -> None:
    segments = sentences.split(text, "en")
    assert sentences.sentences(segments) == []
    assert sentences.join(segments, []) == text


def test_a_language_without_rules_uses_english_ones() -> None:
    assert sentences.sentences(sentences.split("Muž běží. Pes sedí.", "cs")) == [
        "Muž běží.",
        "Pes sedí.",
    ]


def test_any_text_round_trips_and_sentences_are_trimmed() -> None:
    alphabet = "ab .!?\n\r \t\u2028Mr.e.g. 1.5 \"'()\u00a0\u3002\x00"
    rng = random.Random(7)
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 50)))
        for lines in (True, False):
            segments = sentences.split(text, rng.choice(["en", "de", "cs"]), lines=lines)
            assert sentences.join(segments, sentences.sentences(segments)) == text
            for segment in segments:
                if segment.is_sentence:
                    assert segment.text == segment.text.strip() != ""


def test_a_paragraph_longer_than_the_splitters_window_keeps_every_sentence() -> None:
    expected = [f"The dog number {i} sits on the mat." for i in range(200)]
    text = "  ".join(expected)
    assert len(text) > 5 * sentences.WINDOW
    segments = sentences.split(text, "en", lines=False)
    assert sentences.sentences(segments) == expected
    assert sentences.join(segments, expected) == text
    unbroken = "x" * (3 * sentences.WINDOW)  # no place to cut: cut anyway, keep every char
    assert "".join(sentences.sentences(sentences.split(unbroken, "en"))) == unbroken


def test_join_refuses_a_wrong_number_of_translations() -> None:
    segments = sentences.split("One. Two.", "en")
    with pytest.raises(ValueError, match="2 sentences"):
        sentences.join(segments, ["Eins."])


def test_projection_keeps_every_piece_and_the_gaps_between_sentences() -> None:
    pieces = ["Click ", "here", " to go on. Then ", "wait", "."]
    segments = sentences.split("".join(pieces), "en")
    parts = distribute(pieces, segments, ["Klicken Sie hier, um weiterzugehen.", "Dann warten."])
    assert len(parts) == len(pieces)
    assert "".join(parts) == "Klicken Sie hier, um weiterzugehen. Dann warten."
    assert parts[2].endswith("weiterzugehen. Dann ")  # the boundary between sentences kept
    assert parts[3:] == ["warten", "."]  # cut between the word and its full stop
    assert not parts[1].endswith(" ")  # whitespace after a tagged word stays outside it
    spaced = distribute(
        ["A man ", "sleeps", "."], sentences.split("A man sleeps.", "en"), ["Ein Mann schläft."]
    )
    assert spaced == ["Ein Mann ", "schläft", "."]  # and before it too


def test_projection_refuses_pieces_of_another_text() -> None:
    with pytest.raises(ValueError):
        distribute(["x"], [Segment("y", True)], ["z"])
