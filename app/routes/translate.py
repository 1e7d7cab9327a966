"""POST /translate, POST /detect, GET /languages: LibreTranslate-compatible."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from app import inference, languages
from app.access import ACCESS
from app.deps import CacheDep, RegistryDep, SettingsDep
from app.errors import BadRequest
from app.limits import as_list, check_texts
from app.openapi import ERRORS
from app.params import openapi_fields, parser
from app.schemas import (
    DetectedLanguage,
    DetectRequest,
    Language,
    TranslateRequest,
    TranslateResponse,
)
from model.decoding import DecodeOptions

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
    """Translate one text or a list of texts (LibreTranslate's request and response)."""
    if body.format == "html":
        raise BadRequest("format 'html' is not supported; send plain text with format 'text'")
    texts, is_list = as_list(body.q)
    check_texts(texts, settings, "q")
    source, detected = body.source, None
    if source == "auto":
        detected = [
            d[0]
            for d in await _detect(registry, cache, texts[:1], settings.request_timeout_seconds)
        ]
        source = detected[0].language
    served = languages.translation_model(registry, source, body.target)
    beam = max(body.beam_size or settings.default_beam_size, body.alternatives + 1)
    options = DecodeOptions(
        beam_size=beam,
        num_return=body.alternatives + 1,
        max_length=min(body.max_length or settings.max_output_tokens, settings.max_output_tokens),
    )
    results = await inference.translate(
        served, cache, texts, options, settings.request_timeout_seconds
    )
    best = [item.value[0][0] for item in results]
    alternatives = [[text for text, _ in item.value[1:]] for item in results]
    pick = (lambda xs: xs) if is_list else (lambda xs: xs[0])
    return TranslateResponse(
        translatedText=pick(best),
        alternatives=pick(alternatives) if body.alternatives else None,
        detectedLanguage=detected[0] if detected else None,
        model=served.key,
        version=served.version,
        cached=pick([item.cached for item in results]),
        score=pick([item.value[0][1] for item in results]),
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
