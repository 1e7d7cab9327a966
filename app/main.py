"""create_app(settings): the FastAPI application. Everything stateful (registry, cache,
batchers, poll loop) is built in the lifespan, never at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from app.access import RateLimiter, parse_keys
from app.cache import build_cache
from app.config import Settings
from app.errors import install_error_handlers
from app.filestore import FileStore
from app.formats import format_names
from app.middleware import BodyLimitMiddleware, RequestLogMiddleware
from app.openapi import install_openapi
from app.registry import ModelRegistry
from app.routes import attention, files, frontend, sentiment, suggest, system, translate
from app.suggestions.store import SuggestionStore

log = logging.getLogger(__name__)

MULTIPART_OVERHEAD = 64 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = ModelRegistry(settings)
        cache = build_cache(
            settings.redis_url,
            ttl=settings.cache_ttl_seconds,
            max_items=settings.cache_max_items,
            timeout=settings.redis_timeout_seconds,
            retry_seconds=settings.redis_retry_seconds,
        )
        app.state.settings, app.state.registry, app.state.cache = settings, registry, cache
        store_dir = settings.file_store_dir or Path(tempfile.mkdtemp(prefix="nlp-files-"))
        app.state.file_store = _file_store(settings, store_dir)
        app.state.api_keys = parse_keys(settings.api_keys)
        app.state.rate_limiter = RateLimiter(
            settings.rate_limit_per_minute, settings.redis_url, settings.redis_timeout_seconds
        )
        app.state.suggestions = (
            SuggestionStore(settings.suggestions_url()) if settings.suggestions else None
        )
        if app.state.suggestions is not None:
            await app.state.suggestions.start()  # the schema, before the first /suggest
        # Models load in the background: /health answers at once, /ready once they are warm,
        # and a request for a model found on disk gets 503 until then (not 400).
        registry.mark_pending()
        loader = asyncio.create_task(registry.start(), name="model-loader")
        poller = asyncio.create_task(_poll_after(loader, registry), name="model-poller")
        try:
            yield
        finally:
            registry.drain()
            poller.cancel()
            if not loader.done():  # stopped while loading: do not wait for the models
                loader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loader
            await registry.close()  # finishes queued work first
            await cache.close()
            await app.state.rate_limiter.close()
            if settings.file_store_dir is None:
                shutil.rmtree(store_dir, ignore_errors=True)
            if app.state.suggestions is not None:
                await app.state.suggestions.close()

    app = FastAPI(
        title="Transformer NLP service",
        version="0.1.0",
        description="Translation, sentiment and attention maps from Transformers trained from "
        "scratch. LibreTranslate-compatible /translate, Hugging Face-compatible /sentiment.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    for module in (translate, files, suggest, frontend, sentiment, attention, system):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=system.STATIC), name="static")
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:  # closed by default: no cross-origin browser access
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        # An upload may be larger than a JSON body: the file, its form fields and boundaries.
        path_limits={"/translate_file": settings.max_file_bytes + MULTIPART_OVERHEAD},
    )
    app.add_middleware(RequestLogMiddleware)
    install_openapi(app, translate.PARSED_BODIES + suggest.PARSED_BODIES)
    return app


def _file_store(settings: Settings, folder: Path) -> FileStore:
    return FileStore(
        folder,
        ttl_seconds=settings.file_store_ttl_seconds,
        max_files=settings.file_store_max_files,
        max_bytes=settings.file_store_max_bytes,
        extensions=format_names(),
    )


async def _poll_after(loader: asyncio.Task[None], registry: ModelRegistry) -> None:
    await loader
    await registry.poll_forever()
