"""POST /suggest: a user's better translation, kept for training (LibreTranslate's)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app import languages, metrics
from app.access import ACCESS, Forbidden
from app.deps import RegistryDep, SettingsDep, SuggestionsDep
from app.limits import check_texts
from app.openapi import ERRORS
from app.params import openapi_fields, parser
from app.schemas import SuggestRequest, SuggestResponse
from app.suggestions.store import Suggestion

router = APIRouter(tags=["feedback"])

PARSED_BODIES = (SuggestRequest,)
SuggestBody = Annotated[SuggestRequest, Depends(parser(SuggestRequest))]


async def suggestions_on(store: SuggestionsDep) -> None:
    """Checked before the body is read, as LibreTranslate does."""
    if store is None:
        raise Forbidden("Suggestions are disabled on this server.")


@router.post(
    "/suggest",
    dependencies=[Depends(suggestions_on), ACCESS],
    response_model=SuggestResponse,
    responses=ERRORS,
    openapi_extra=openapi_fields(SuggestRequest),
)
async def suggest(
    body: SuggestBody, store: SuggestionsDep, registry: RegistryDep, settings: SettingsDep
) -> SuggestResponse:
    """Submit a better translation `s` of `q`; repeats are counted, not stored twice."""
    assert store is not None  # suggestions_on answered 403 otherwise
    check_texts([body.q], settings, "q")
    check_texts([body.s], settings, "s")
    served = languages.translation_model(registry, body.source, body.target)
    is_new = await store.add(
        Suggestion(body.source, body.target, body.q, body.s, served.key, served.version)
    )
    metrics.SUGGESTIONS.labels(result="new" if is_new else "repeated").inc()
    return SuggestResponse(success=True)
