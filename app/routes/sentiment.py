"""POST /sentiment: the Hugging Face text-classification request and response."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app import inference
from app.access import ACCESS
from app.deps import CacheDep, RegistryDep, SettingsDep
from app.errors import ModelLoading, ModelUnavailable
from app.limits import as_list, check_texts
from app.openapi import ERRORS
from app.schemas import LabelScore, SentimentRequest

router = APIRouter(tags=["sentiment"])


def sentiment_model(registry: Any, preferred: str) -> Any:
    """The loaded sentiment model named `preferred`, else the first loaded one."""
    models = registry.of_task("sentiment")
    if not models and registry.pending_of_task("sentiment"):
        raise ModelLoading("the sentiment model is loading; retry shortly")
    if not models:
        raise ModelUnavailable("no sentiment model is loaded")
    return next((m for m in models if m.name == preferred), models[0])


@router.post(
    "/sentiment",
    dependencies=[ACCESS],
    response_model=list[LabelScore] | list[list[LabelScore]],
    responses=ERRORS,
)
async def sentiment(
    body: SentimentRequest, registry: RegistryDep, cache: CacheDep, settings: SettingsDep
) -> Any:
    """Labels (POSITIVE, NEGATIVE) with probabilities, most likely first; a list per input
    when `inputs` is a list. Text is normalized like the training data (the model's
    normalizer: lowercase, PTB tokens, markup removed).

    A text may be a whole review, up to MAX_SENTIMENT_CHARS characters (20,000 by default).
    The model reads a bounded number of its pieces: all of a short text; of a longer one
    its first and its last pieces (`sentiment/en`: the first 128 and the last 384 of 512);
    GET /models shows each model's numbers (`reads`). Probabilities are scaled by a
    temperature fit on validation data, so a score of 0.9 is right about 9 times in 10 on
    text like the training data."""
    texts, is_list = as_list(body.inputs)
    check_texts(texts, settings, "inputs", settings.max_sentiment_chars)
    served = sentiment_model(registry, settings.sentiment_model)
    results = await inference.classify(served, cache, texts, settings.request_timeout_seconds)
    top_k = body.parameters.top_k if body.parameters else None
    ranked = [
        [LabelScore(label=label, score=p) for label, p in item.value][:top_k] for item in results
    ]
    return ranked if is_list else ranked[0]
