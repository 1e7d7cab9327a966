"""The per-item flow behind the routes: normalize, look up the cache, batch the misses,
fill the cache. Hits never touch the model; identical texts in one request run once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from app.batching import BatcherClosed, QueueFull
from app.cache import ResultCache, cache_key
from app.errors import DeadlineExceeded, ModelUnavailable, Overloaded
from app.registry import ServedModel
from model.decode_options import DecodeOptions


@dataclass(frozen=True)
class ItemResult:
    value: Any  # JSON-ready: what the cache stores
    cached: bool


async def _model_call(served: ServedModel, call: Awaitable[Any], timeout: float) -> Any:
    """Awaits a batcher call with the request deadline; maps its refusals to HTTP errors."""
    try:
        return await asyncio.wait_for(call, timeout)
    except QueueFull:
        raise Overloaded(f"the {served.key} queue is full; retry shortly") from None
    except BatcherClosed:
        raise ModelUnavailable(f"{served.key} is being replaced; retry") from None
    except TimeoutError:
        raise DeadlineExceeded(f"no result within {timeout:g}s; the work was dropped") from None


async def cached_run(
    served: ServedModel,
    cache: ResultCache,
    texts: Sequence[str],
    params: dict[str, Any],
    payload_for: Any,
    to_value: Any,
    timeout: float,
) -> list[ItemResult]:
    """Looks every text up, runs the distinct misses in the batcher, stores their values."""
    prepared = [served.predictor.prepare(text) for text in texts]
    keys = [cache_key(served.task, served.name, served.version, params, p) for p in prepared]
    found = await cache.get_many(keys)
    missing: dict[str, str] = {}  # key -> prepared text, one per distinct text
    for key, text, value in zip(keys, prepared, found, strict=True):
        if value is None:
            missing.setdefault(key, text)
    computed: dict[str, Any] = {}
    if missing:
        miss_texts = list(missing.values())
        submit = served.batcher.submit_many(
            [payload_for(t) for t in miss_texts],
            [len(t) for t in miss_texts],
            tuple(sorted(params.items())),
        )
        outputs = await _model_call(served, submit, timeout)
        computed = {key: to_value(out) for key, out in zip(missing, outputs, strict=True)}
        await cache.set_many(computed)
    return [
        ItemResult(value, True) if value is not None else ItemResult(computed[key], False)
        for key, value in zip(keys, found, strict=True)
    ]


async def translate(
    served: ServedModel,
    cache: ResultCache,
    texts: Sequence[str],
    options: DecodeOptions,
    timeout: float,
) -> list[ItemResult]:
    """Values: [[text, score], ...] n-best per text."""
    params = {
        "beam_size": options.beam_size,
        "num_return": options.num_return,
        "max_length": options.max_length,
        "length_penalty": options.length_penalty,
        "engine": getattr(served.predictor, "engine", "keras"),
    }
    return await cached_run(
        served,
        cache,
        texts,
        params,
        payload_for=lambda text: (text, options),
        to_value=lambda nbest: [[t.text, round(t.score, 6)] for t in nbest],
        timeout=timeout,
    )


async def classify(
    served: ServedModel, cache: ResultCache, texts: Sequence[str], timeout: float
) -> list[ItemResult]:
    """Values: [[label, probability], ...] most likely first."""
    return await cached_run(
        served,
        cache,
        texts,
        {},
        payload_for=lambda text: text,
        to_value=lambda ranked: [[label, round(p, 6)] for label, p in ranked],
        timeout=timeout,
    )


async def run_exclusive(served: ServedModel, func: Any, timeout: float) -> Any:
    """A one-off model call on the model's thread (attention maps), with the deadline."""
    return await _model_call(served, served.batcher.run_exclusive(func), timeout)
