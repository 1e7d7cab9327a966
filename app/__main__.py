"""`python -m app`: run the service with uvicorn."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
import uvicorn

from app.config import Settings
from app.main import create_app
from app.memory import PeriodicTrim, limit_malloc_arenas
from app.server import DrainingServer


def main(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
    graceful_seconds: Annotated[int, typer.Option(help="finish in-flight work on SIGTERM")] = 30,
    drain_seconds: Annotated[
        float, typer.Option(help="on SIGTERM, answer /ready 503 this long before closing")
    ] = 0.0,
) -> None:
    """Serve the models found in ARTIFACTS_DIR (see the README for every setting)."""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    limit_malloc_arenas(settings.malloc_arena_max)  # before the models start their threads
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=graceful_seconds,
        timeout_keep_alive=settings.keep_alive_seconds,
    )
    trim = PeriodicTrim(settings.malloc_trim_seconds).start()
    try:
        DrainingServer(config, app, drain_seconds).run()
    finally:
        trim.stop()


if __name__ == "__main__":
    typer.run(main)
