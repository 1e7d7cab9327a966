"""`python -m app`: the settings that shape the server process reach uvicorn and malloc."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

import app.__main__ as entrypoint


def test_keep_alive_and_arena_cap_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class Server:
        def __init__(self, config: Any, app: FastAPI, drain_seconds: float) -> None:
            seen["config"], seen["drain"] = config, drain_seconds

        def run(self) -> None:
            seen["ran"] = True

    monkeypatch.setenv("KEEP_ALIVE_SECONDS", "90")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "3")
    monkeypatch.setenv("MALLOC_TRIM_SECONDS", "0")
    monkeypatch.setattr(entrypoint, "DrainingServer", Server)
    monkeypatch.setattr(entrypoint, "create_app", lambda settings: FastAPI())
    monkeypatch.setattr(entrypoint, "limit_malloc_arenas", lambda n: seen.setdefault("arenas", n))
    entrypoint.main(host="127.0.0.1", port=8123, graceful_seconds=5, drain_seconds=1.5)
    assert seen["ran"] and seen["drain"] == 1.5 and seen["arenas"] == 3
    assert seen["config"].timeout_keep_alive == 90
    assert seen["config"].timeout_graceful_shutdown == 5
