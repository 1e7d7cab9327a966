"""Request dependencies as Annotated aliases (objects built in the lifespan, never at import)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.cache import ResultCache
from app.config import Settings
from app.filestore import FileStore
from app.registry import ModelRegistry
from app.suggestions.store import SuggestionStore


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


def get_cache(request: Request) -> ResultCache:
    cache: ResultCache = request.app.state.cache
    return cache


def get_file_store(request: Request) -> FileStore:
    store: FileStore = request.app.state.file_store
    return store


def get_suggestions(request: Request) -> SuggestionStore | None:
    """The suggestions store; None when SUGGESTIONS is off."""
    store: SuggestionStore | None = request.app.state.suggestions
    return store


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
CacheDep = Annotated[ResultCache, Depends(get_cache)]
FileStoreDep = Annotated[FileStore, Depends(get_file_store)]
SuggestionsDep = Annotated[SuggestionStore | None, Depends(get_suggestions)]
