"""The file formats of POST /translate_file."""

from __future__ import annotations


def supported_formats() -> list[str]:
    """The file extensions /translate_file accepts (what /frontend/settings lists)."""
    return [".txt", ".html", ".docx", ".srt", ".md"]
