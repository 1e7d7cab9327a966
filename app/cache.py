"""Per-item result cache: Redis when REDIS_URL is set, an in-process LRU otherwise.

A key is the sha256 of the task, model name, model version, decoding parameters and the
normalized text, so a new model version never serves an old answer. Values are JSON.
A Redis failure never fails a request: the lookup counts as an error (metric), the
first failure is logged, and Redis is left alone for `retry_seconds` before the next try.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app import metrics

log = logging.getLogger(__name__)

KEY_PREFIX = "nlp:v1:"


def cache_key(task: str, model: str, version: int, params: dict[str, Any], text: str) -> str:
    material = json.dumps([task, model, version, params, text], sort_keys=True, ensure_ascii=False)
    return KEY_PREFIX + hashlib.sha256(material.encode("utf-8")).hexdigest()


class Backend(Protocol):
    async def get_many(self, keys: Sequence[str]) -> list[str | None]: ...
    async def set_many(self, values: dict[str, str], ttl: int) -> None: ...
    async def close(self) -> None: ...


class MemoryBackend:
    """Bounded LRU with expiry, for a single process without Redis."""

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        now = time.monotonic()
        found: list[str | None] = []
        for key in keys:
            entry = self._items.get(key)
            if entry is None or entry[0] < now:
                self._items.pop(key, None)
                found.append(None)
            else:
                self._items.move_to_end(key)
                found.append(entry[1])
        return found

    async def set_many(self, values: dict[str, str], ttl: int) -> None:
        expires = time.monotonic() + ttl
        for key, value in values.items():
            self._items[key] = (expires, value)
            self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    async def close(self) -> None:
        self._items.clear()


class RedisBackend:
    def __init__(self, url: str, timeout: float) -> None:
        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
            health_check_interval=30,
        )

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return list(await self.client.mget(list(keys)))

    async def set_many(self, values: dict[str, str], ttl: int) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for key, value in values.items():
                pipe.set(key, value, ex=ttl)
            await pipe.execute()

    async def close(self) -> None:
        await self.client.aclose()


class ResultCache:
    def __init__(self, backend: Backend, *, ttl: int, retry_seconds: float, name: str) -> None:
        self.backend = backend
        self.ttl = ttl
        self.retry_seconds = retry_seconds
        self.name = name
        self._paused_until = 0.0
        self._failing = False

    @property
    def healthy(self) -> bool:
        return not self._failing

    def _available(self) -> bool:
        return time.monotonic() >= self._paused_until

    def _failed(self, error: Exception) -> None:
        if not self._failing:
            log.warning(
                "cache %s failed, bypassing it for %gs: %s",
                self.name,
                self.retry_seconds,
                error.__class__.__name__,
            )
        self._failing = True
        self._paused_until = time.monotonic() + self.retry_seconds

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]:
        """Decoded values or None per key; errors count as misses."""
        if not keys:
            return []
        if not self._available():
            metrics.CACHE_REQUESTS.labels("error").inc(len(keys))
            return [None] * len(keys)
        try:
            raw = await self.backend.get_many(keys)
        except (RedisError, OSError) as error:
            self._failed(error)
            metrics.CACHE_REQUESTS.labels("error").inc(len(keys))
            return [None] * len(keys)
        if self._failing:
            log.info("cache %s is back", self.name)
            self._failing = False
        values = [json.loads(value) if value is not None else None for value in raw]
        hits = sum(value is not None for value in values)
        metrics.CACHE_REQUESTS.labels("hit").inc(hits)
        metrics.CACHE_REQUESTS.labels("miss").inc(len(values) - hits)
        return values

    async def set_many(self, values: dict[str, Any]) -> None:
        if not values or not self._available():
            return
        try:
            await self.backend.set_many(
                {key: json.dumps(value, ensure_ascii=False) for key, value in values.items()},
                self.ttl,
            )
        except (RedisError, OSError) as error:
            self._failed(error)

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.backend.close()


def build_cache(
    redis_url: str | None, *, ttl: int, max_items: int, timeout: float, retry_seconds: float
) -> ResultCache:
    if redis_url:
        return ResultCache(
            RedisBackend(redis_url, timeout), ttl=ttl, retry_seconds=retry_seconds, name="redis"
        )
    return ResultCache(MemoryBackend(max_items), ttl=ttl, retry_seconds=0, name="memory")
