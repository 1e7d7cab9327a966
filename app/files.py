"""A file's way through the service: read it in its format, translate its text blocks
through the same cache and batcher as /translate (in bounded chunks of sentences), write
it back in the same format and keep it in the file store for download."""

from __future__ import annotations

import asyncio
from typing import Any

from app import formats, inference, languages, metrics, translation
from app.cache import ResultCache
from app.config import Settings
from app.errors import InvalidInput, PayloadTooLarge, ServiceError
from app.filestore import FileStore
from app.registry import ModelRegistry
from model.decode_options import DecodeOptions
from tokenizers.normalize import basic


async def _detected_source(
    registry: ModelRegistry, cache: ResultCache, texts: list[str], settings: Settings
) -> str:
    sample = " ".join(texts)[: settings.max_text_chars]
    if not basic(sample):
        raise InvalidInput("source 'auto': the file has no text to detect its language from")
    served = languages.langid_model(registry)
    [found] = await inference.classify(served, cache, [sample], settings.request_timeout_seconds)
    language: str = found.value[0][0]
    return language


async def _translated(
    file_format: formats.FileFormat,
    data: bytes,
    source: str,
    target: str,
    context: tuple[ModelRegistry, ResultCache, Settings],
) -> bytes:
    registry, cache, settings = context
    if len(data) > settings.max_file_bytes:
        raise PayloadTooLarge(f"file: {len(data)} bytes, at most {settings.max_file_bytes}")
    document = await asyncio.to_thread(formats.read, file_format, data, settings)
    texts = document.texts()
    chars = sum(len(text) for text in texts)
    if chars > settings.max_file_chars:
        limit = settings.max_file_chars
        raise PayloadTooLarge(f"file: {chars} characters of text, at most {limit}")
    if source == "auto":
        source = await _detected_source(registry, cache, texts, settings)
    served = languages.translation_model(registry, source, target)
    segmented = await asyncio.to_thread(
        translation.segment, texts, served.predictor.source, lines=document.lines
    )
    options = DecodeOptions(
        beam_size=settings.default_beam_size,
        max_length=settings.max_output_tokens,
        length_penalty=served.predictor.length_penalty,
    )
    done = await translation.translate_segmented(
        served,
        cache,
        segmented,
        options,
        settings.request_timeout_seconds,
        chunk_size=settings.file_chunk_sentences,
    )
    return await asyncio.to_thread(document.render, done)


def _outcome(error: BaseException) -> str:
    if isinstance(error, PayloadTooLarge):
        return "too_large"
    if isinstance(error, ServiceError) and 400 <= error.status < 500:
        return "rejected"
    return "failed"


async def translate_file(
    filename: str,
    data: bytes,
    source: str,
    target: str,
    context: tuple[ModelRegistry, ResultCache, Settings],
    store: FileStore,
) -> str:
    """The stored translation's name. 400 for an unknown or unreadable format, 413 over
    the limits; counted in nlp_files_translated_total either way."""
    label, outcome = "unknown", "failed"
    try:
        file_format = formats.format_for(filename)
        label = file_format.name
        output = await _translated(file_format, data, source, target, context)
        name = await asyncio.to_thread(store.put, output, file_format.name)
        outcome = "ok"
        return name
    except BaseException as error:
        outcome = _outcome(error)
        raise
    finally:
        metrics.FILES_TRANSLATED.labels(label, outcome).inc()


def media_type(name: str) -> str:
    found: Any = formats.by_name(name.rpartition(".")[2])
    return found.media_type if found else "application/octet-stream"
