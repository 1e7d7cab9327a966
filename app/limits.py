"""Input limits that depend on settings: item count, text length, empty text, sentences."""

from __future__ import annotations

from app.config import Settings
from app.errors import InvalidInput, PayloadTooLarge
from app.sentences import Segment
from tokenizers.normalize import basic


def as_list(value: str | list[str]) -> tuple[list[str], bool]:
    """(items, was_a_list)."""
    return (value, True) if isinstance(value, list) else ([value], False)


def check_texts(
    texts: list[str], settings: Settings, field: str, max_chars: int | None = None
) -> list[str]:
    """Refuses too many items, too long or empty texts; returns them unchanged. Texts may
    have `max_chars` characters (default: settings.max_text_chars)."""
    limit = settings.max_text_chars if max_chars is None else max_chars
    if not texts:
        raise InvalidInput(f"{field}: at least one text is required")
    if len(texts) > settings.max_items_per_request:
        raise PayloadTooLarge(
            f"{field}: {len(texts)} items, at most {settings.max_items_per_request} per request"
        )
    for index, text in enumerate(texts):
        where = f"{field}[{index}]" if len(texts) > 1 else field
        if len(text) > limit:
            raise PayloadTooLarge(f"{where}: {len(text)} characters, at most {limit}")
        if not basic(text):
            raise InvalidInput(f"{where}: text is empty")
    return texts


def check_sentences(segmented: list[list[Segment]], settings: Settings, field: str) -> None:
    """Refuses a text with more sentences than max_sentences_per_text (one list per text)."""
    limit = settings.max_sentences_per_text
    for index, segments in enumerate(segmented):
        count = sum(s.is_sentence for s in segments)
        if count > limit:
            where = f"{field}[{index}]" if len(segmented) > 1 else field
            raise PayloadTooLarge(f"{where}: {count} sentences, at most {limit} per text")
