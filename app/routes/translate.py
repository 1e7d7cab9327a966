"""POST /translate, POST /detect, GET /languages: LibreTranslate-compatible."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from app import inference, languages, translation
from app.access import ACCESS
from app.deps import CacheDep, RegistryDep, SettingsDep
from app.limits import as_list, check_sentences, check_texts
from app.openapi import ERRORS
from app.params import openapi_fields, parser
from app.schemas import (
    DetectedLanguage,
    DetectRequest,
    Language,
    TranslateRequest,
    TranslateResponse,
)
from model.decode_options import DecodeOptions
from tokenizers.normalize import basic

router = APIRouter(tags=["translation"])


PARSED_BODIES = (TranslateRequest, DetectRequest)
TranslateBody = Annotated[TranslateRequest, Depends(parser(TranslateRequest))]
DetectBody = Annotated[DetectRequest, Depends(parser(DetectRequest))]


async def _detect(registry: Any, cache: Any, texts: list[str], timeout: float) -> list[Any]:
    served = languages.langid_model(registry)
    results = await inference.classify(served, cache, texts, timeout)
    return [
        [DetectedLanguage(language=label, confidence=round(p * 100, 2)) for label, p in item.value]
        for item in results
    ]


@router.post(
    "/translate",
    dependencies=[ACCESS],
    response_model=TranslateResponse,
    responses=ERRORS,
    openapi_extra=openapi_fields(TranslateRequest),
)
async def translate(
    body: TranslateBody, registry: RegistryDep, cache: CacheDep, settings: SettingsDep
) -> TranslateResponse:
    """Translate one text or a list of texts (LibreTranslate's request and response).

    A text is split into sentences, each translated (and cached) on its own and joined
    back with the text's own whitespace and line breaks; `score` is then the sentences'
    mean, and alternative k joins each sentence's k-th best. `format: html` translates
    the visible text of the markup and keeps its tags (no alternatives)."""
    texts, is_list = as_list(body.q)
    check_texts(texts, settings, "q")
    documents = [translation.parse_html(t) for t in texts] if body.format == "html" else None
    source, detected = body.source, None
    blocks = [d.texts() for d in documents] if documents else [[t] for t in texts]
    if source == "auto":  # from the first item's text (an HTML item's, not its tags)
        sample = " ".join(blocks[0])[: settings.max_text_chars]
        sample = sample if basic(sample) else texts[0]
        found = await _detect(registry, cache, [sample], settings.request_timeout_seconds)
        detected = [found[0][0]]
        source = detected[0].language
    served = languages.translation_model(registry, source, body.target)
    language = served.predictor.source
    segmented = [translation.segment(b, language, lines=not documents) for b in blocks]
    check_sentences([[s for block in item for s in block] for item in segmented], settings, "q")
    beam = max(body.beam_size or settings.default_beam_size, body.alternatives + 1)
    options = DecodeOptions(
        beam_size=beam,
        num_return=body.alternatives + 1,
        length_penalty=served.predictor.length_penalty,
        max_length=min(body.max_length or settings.max_output_tokens, settings.max_output_tokens),
    )
    results = await translation.translate_items(
        served, cache, segmented, documents, options, settings.request_timeout_seconds
    )
    pick = (lambda xs: xs) if is_list else (lambda xs: xs[0])
    return TranslateResponse(
        translatedText=pick([r.text for r in results]),
        alternatives=pick([r.alternatives for r in results]) if body.alternatives else None,
        detectedLanguage=detected[0] if detected else None,
        model=served.key,
        version=served.version,
        cached=pick([r.cached for r in results]),
        score=pick([r.score for r in results]),
    )


@router.post(
    "/detect",
    dependencies=[ACCESS],
    response_model=list[DetectedLanguage] | list[list[DetectedLanguage]],
    responses=ERRORS,
    openapi_extra=openapi_fields(DetectRequest),
)
async def detect(
    body: DetectBody, registry: RegistryDep, cache: CacheDep, settings: SettingsDep
) -> Any:
    """Detect the language: candidates with confidence 0-100, most likely first."""
    texts, is_list = as_list(body.q)
    check_texts(texts, settings, "q")
    found = await _detect(registry, cache, texts, settings.request_timeout_seconds)
    return found if is_list else found[0]


@router.get("/languages", response_model=list[Language])
async def list_languages(registry: RegistryDep) -> list[Language]:
    """Source languages with their target languages, from the loaded models."""
    targets: dict[str, list[str]] = {}
    for source, target in languages.pairs(registry):
        targets.setdefault(source, []).append(target)
    return [
        Language(code=code, name=languages.language_name(code), targets=sorted(t))
        for code, t in sorted(targets.items())
    ]
