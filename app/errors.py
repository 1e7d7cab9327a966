"""Errors the service returns on purpose, and the handlers that shape every error as
{"error": message, "error_type": kind}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

log = logging.getLogger(__name__)


class ServiceError(Exception):
    status = 500
    error_type = "internal_error"
    retry_after: int | None = None  # seconds, sent as Retry-After unless headers say otherwise

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        if self.retry_after is not None:
            self.headers.setdefault("Retry-After", str(self.retry_after))


class BadRequest(ServiceError):
    status, error_type = 400, "bad_request"


class UnsupportedLanguage(ServiceError):
    status, error_type = 400, "unsupported_language"


class InvalidInput(ServiceError):
    status, error_type = 422, "invalid_input"


class NotFound(ServiceError):
    status, error_type = 404, "not_found"


class PayloadTooLarge(ServiceError):
    status, error_type = 413, "payload_too_large"


class Overloaded(ServiceError):
    status, error_type, retry_after = 503, "overloaded", 1


class ModelUnavailable(ServiceError):
    status, error_type, retry_after = 503, "model_unavailable", 1


class ModelLoading(ModelUnavailable):
    """The model is on disk and being loaded (start-up or a new model): this replica will
    serve it soon, another may serve it now. 503, never 400, so a proxy retries elsewhere."""

    retry_after = 5


class StorageUnavailable(ServiceError):
    status, error_type, retry_after = 503, "storage_unavailable", 5


class DeadlineExceeded(ServiceError):
    status, error_type = 504, "timeout"


def error_body(message: str, error_type: str) -> dict[str, str]:
    return {"error": message, "error_type": error_type}


def _validation_message(errors: list[Any]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", ""))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, error: ServiceError) -> JSONResponse:
        return JSONResponse(
            error_body(error.message, error.error_type), error.status, headers=error.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body(_validation_message(list(error.errors())), "invalid_input"), 422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(
            error_body(str(error.detail), kind), error.status_code, headers=error.headers
        )

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, error: ClientDisconnect) -> JSONResponse:
        # The client left while its body was read: nobody reads this answer, and it is not
        # the service's fault. 499 is nginx's "client closed request".
        log.info("client closed the request on %s", request.url.path)
        return JSONResponse(error_body("client closed the request", "client_closed_request"), 499)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse(error_body("internal error", "internal_error"), 500)
