"""POST /attention-map: tokens and attention in bertviz's layout, as JSON or a PNG."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app import languages, sentences
from app.access import ACCESS
from app.deps import RegistryDep, SettingsDep
from app.errors import BadRequest, InvalidInput
from app.inference import run_exclusive
from app.limits import check_texts
from app.openapi import ERRORS
from app.rendering import heatmap_png
from app.routes.sentiment import sentiment_model
from app.schemas import AttentionRequest, SentimentAttention, Token, TranslationAttention
from model.decode_options import DecodeOptions

router = APIRouter(tags=["attention"])


def _select(indexes: list[int] | None, size: int, what: str) -> list[int]:
    if indexes is None:
        return list(range(size))
    if not indexes:
        raise InvalidInput(f"{what}: give at least one index, or omit it for all")
    bad = [i for i in indexes if not 0 <= i < size]
    if bad:
        raise InvalidInput(f"{what}: {bad} out of range; the model has {size} (0-{size - 1})")
    return list(dict.fromkeys(indexes))


def _subset(array: np.ndarray, layers: list[int], heads: list[int]) -> list[Any]:
    """[layer][head][query][key] restricted to the chosen layers and heads, rounded."""
    picked = array[np.ix_(layers, heads)] if array.size else array
    return np.round(picked.astype(np.float64), 4).tolist()


def _tokens(pieces: list[Any]) -> list[Token]:
    return [Token(piece=p.piece, start=p.start, end=p.end) for p in pieces]


def _wants_png(body: AttentionRequest, request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return body.format == "png" or ("image/png" in accept and "application/json" not in accept)


@router.post(
    "/attention-map",
    dependencies=[ACCESS],
    response_model=TranslationAttention | SentimentAttention,
    responses={**ERRORS, 200: {"content": {"image/png": {}}}},
)
async def attention_map(
    body: AttentionRequest, request: Request, registry: RegistryDep, settings: SettingsDep
) -> Any:
    """Attention of one text: encoder self, decoder self and cross-attention for a
    translation (of one sentence: a text of several is refused with 422), encoder
    self-attention for sentiment; `[layer][head][query][key]`."""
    check_texts([body.text], settings, "text")
    if body.task == "translation":
        if not body.source or not body.target:
            raise BadRequest("translation attention needs 'source' and 'target'")
        served = languages.translation_model(registry, body.source, body.target)
        count = len(sentences.sentences(sentences.split(body.text, served.predictor.source)))
        if count > 1:
            raise InvalidInput(
                f"text: attention maps are drawn for one sentence; this text has {count}, "
                "send them one at a time"
            )
        options = DecodeOptions(
            beam_size=settings.default_beam_size,
            max_length=settings.max_output_tokens,
            length_penalty=served.predictor.length_penalty,
        )
        config = served.predictor.config
        # One index addresses a layer of every stack: only those both stacks have.
        depth = min(config.encoder_layers, config.decoder_layers)
        layers = _select(body.layers, depth, "layers")  # checked before the model runs
        heads = _select(body.heads, config.num_heads, "heads")
        result = await run_exclusive(
            served,
            lambda: served.predictor.attention(body.text, options),
            settings.request_timeout_seconds,
        )
        response = TranslationAttention(
            model=served.key,
            version=served.version,
            translation=result["translation"],
            source_tokens=_tokens(result["source_tokens"]),
            target_tokens=_tokens(result["target_tokens"]),
            layers=layers,
            heads=heads,
            encoder_attention=_subset(result["encoder_attention"], layers, heads),
            decoder_attention=_subset(result["decoder_attention"], layers, heads),
            cross_attention=_subset(result["cross_attention"], layers, heads),
        )
        maps, rows, cols = result["cross_attention"], response.target_tokens, response.source_tokens
        what = "cross-attention"
    else:
        served = sentiment_model(registry, settings.sentiment_model)
        config = served.predictor.config
        layers = _select(body.layers, config.encoder_layers, "layers")
        heads = _select(body.heads, config.num_heads, "heads")
        result = await run_exclusive(
            served, lambda: served.predictor.attention(body.text), settings.request_timeout_seconds
        )
        response = SentimentAttention(
            model=served.key,
            version=served.version,
            tokens=_tokens(result["tokens"]),
            label=result["label"],
            score=result["score"],
            layers=layers,
            heads=heads,
            attention=_subset(result["attention"], layers, heads),
        )
        maps, rows, cols = result["attention"], response.tokens, response.tokens
        what = f"self-attention ({response.label} {response.score:.2f})"
    if not _wants_png(body, request):
        return response
    layer = layers[0] if body.layers else layers[-1]
    chosen = maps[layer][heads]  # (heads, query, key)
    panels = [chosen.mean(axis=0)] if body.average_heads else list(chosen)
    titles = ["heads averaged"] if body.average_heads else [f"head {h}" for h in heads]
    png = await asyncio.to_thread(
        heatmap_png,
        panels,
        titles,
        [t.piece for t in rows],
        [t.piece for t in cols],
        f"{served.key} v{served.version} - layer {layer} {what}",
    )
    return Response(png, media_type="image/png")
