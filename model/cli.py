"""Shared pieces of the command-line tools: logging, and errors as messages, not tracebacks."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def setup_logging(level: str = "INFO") -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def user_errors(func: F) -> F:
    """Known input errors end the command with a one-line message and exit status 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from model.artifacts import ArtifactError
        from model.data import DataError

        try:
            return func(*args, **kwargs)
        except (DataError, ArtifactError, ValueError, FileNotFoundError) as error:
            logging.getLogger("model").error("%s", error)
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper  # type: ignore[return-value]
