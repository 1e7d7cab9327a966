"""Optional API keys and per-client rate limits for the inference endpoints.

Keys come from `API_KEYS`; a client sends one as `Authorization: Bearer KEY` or as
LibreTranslate's `api_key` field (JSON or form body, or query string). Keys are compared
in constant time and never logged or stored: rate-limit counters are keyed by a hash of
the key (or by the client address when no keys are configured). Counters live in Redis when
REDIS_URL is set, so replicas share them, and in process otherwise (or while Redis is failing).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import redis.asyncio as aioredis
from fastapi import Depends, Request
from redis.exceptions import RedisError

from app.errors import InvalidInput, ServiceError
from app.params import request_fields

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


class Forbidden(ServiceError):
    status, error_type = 403, "forbidden"


class RateLimited(ServiceError):
    status, error_type = 429, "rate_limited"


class RateLimiter:
    """Fixed one-minute windows: INCR + EXPIRE in Redis, a dict otherwise."""

    def __init__(self, per_minute: int, redis_url: str | None, timeout: float) -> None:
        self.per_minute = per_minute
        self._local: dict[tuple[str, int], int] = {}
        self._redis = (
            aioredis.Redis.from_url(
                redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
            if redis_url and per_minute
            else None
        )

    async def hit(self, identity: str) -> float | None:
        """Counts one request; returns seconds to wait when over the limit, else None."""
        if not self.per_minute:
            return None
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        count = await self._count(identity, window)
        if count > self.per_minute:
            return (window + 1) * WINDOW_SECONDS - now
        return None

    async def _count(self, identity: str, window: int) -> int:
        if self._redis is not None:
            key = f"nlp:rate:{identity}:{window}"
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, WINDOW_SECONDS * 2)
                    count, _ = await pipe.execute()
                return int(count)
            except (RedisError, OSError) as error:
                log.warning("rate limiter falls back to this process: %s", type(error).__name__)
        for old in [k for k in self._local if k[1] < window]:
            del self._local[old]
        self._local[(identity, window)] = self._local.get((identity, window), 0) + 1
        return self._local[(identity, window)]

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def parse_keys(raw: str) -> list[bytes]:
    return [key.strip().encode() for key in raw.split(",") if key.strip()]


def _as_bytes(value: str) -> bytes:
    # A JSON body may carry lone surrogates: such a key matches nothing, it must not crash.
    return value.encode("utf-8", "surrogatepass")


def fingerprint(value: str) -> str:
    return hashlib.sha256(_as_bytes(value)).hexdigest()[:16]


async def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    try:
        value = (await request_fields(request)).get("api_key")
    except InvalidInput:
        return None  # the route reports the malformed body
    return value if isinstance(value, str) else None


async def check_access(request: Request) -> None:
    """403 without a valid key (when keys are configured); 429 over the rate limit."""
    keys: list[bytes] = request.app.state.api_keys
    limiter: RateLimiter = request.app.state.rate_limiter
    identity = request.client.host if request.client else "unknown"
    if keys:
        presented = await _presented_key(request)
        if presented is None:
            raise Forbidden("an API key is required: Authorization: Bearer KEY, or api_key")
        given = _as_bytes(presented)
        if not any(hmac.compare_digest(given, key) for key in keys):
            raise Forbidden("invalid API key")
        identity = "key-" + fingerprint(presented)
    wait = await limiter.hit(identity)
    if wait is not None:
        raise RateLimited(
            f"rate limit of {limiter.per_minute} requests per minute exceeded",
            headers={"Retry-After": str(max(1, int(wait + 0.999)))},
        )


# Route-level dependency for the inference endpoints.
ACCESS = Depends(check_access)
