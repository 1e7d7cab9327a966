"""uvicorn's server with a drain in front of its graceful shutdown.

On the first SIGTERM (or Ctrl-C) the registry drains at once: /ready answers 503, so a
load balancer that polls it stops sending requests here. The server keeps answering for
`drain_seconds` (what such a balancer needs to notice), then does what uvicorn does: it
closes the listening socket, lets in-flight requests finish within its graceful timeout,
and runs the lifespan's shutdown, which finishes queued batches. A second signal skips the
rest of the drain.
"""

from __future__ import annotations

import logging
import time
from types import FrameType

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI, drain_seconds: float) -> None:
        super().__init__(config)
        self.app = app
        self.drain_seconds = drain_seconds
        self.drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.drain_until is None:
            self.drain_until = time.monotonic() + self.drain_seconds
            registry = getattr(self.app.state, "registry", None)
            if registry is not None:
                registry.drain()
            if self.drain_seconds > 0:
                log.info("draining for %gs before shutting down", self.drain_seconds)
                self._captured_signals.append(sig)  # re-raised by uvicorn once it has stopped
                return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self.drain_until is not None and time.monotonic() >= self.drain_until:
            self.should_exit = True
        return await super().on_tick(counter)
