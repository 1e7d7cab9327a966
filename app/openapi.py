"""The OpenAPI document: the error responses the inference routes share, and what FastAPI
cannot see by itself (bodies parsed by hand, the X-Request-ID header of the middleware).

The document is a contract that tests check every response against (schemathesis), so
each status a route can return is listed with its body and headers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from app.schemas import ErrorResponse

REQUEST_ID = "X-Request-ID"

RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}

# Every error an inference route can answer with; the body is always ErrorResponse.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "unsupported language pair or option"},
    403: {"model": ErrorResponse, "description": "missing or invalid API key (API_KEYS set)"},
    413: {"model": ErrorResponse, "description": "body, text or item count over the limits"},
    422: {"model": ErrorResponse, "description": "invalid input"},
    429: {"model": ErrorResponse, "description": "rate limit exceeded", "headers": RETRY_AFTER},
    503: {
        "model": ErrorResponse,
        "description": "queue full or model not loaded",
        "headers": RETRY_AFTER,
    },
    504: {"model": ErrorResponse, "description": "no result within the request deadline"},
}

_REQUEST_ID_PARAMETER = {
    "name": REQUEST_ID,
    "in": "header",
    "required": False,
    "description": "kept as the request id when printable and at most 64 characters",
    "schema": {"type": "string"},
}
_REQUEST_ID_HEADER = {
    "description": "the request id: the client's X-Request-ID or a new one",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 64},
}


def install_openapi(app: FastAPI, parsed_bodies: tuple[type[BaseModel], ...]) -> None:
    """Replaces app.openapi with one that completes FastAPI's document (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            _add_parsed_bodies(spec, parsed_bodies)
            _add_request_id(spec)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_parsed_bodies(spec: dict[str, Any], models: tuple[type[BaseModel], ...]) -> None:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema


def _add_request_id(spec: dict[str, Any]) -> None:
    """Every operation takes an optional X-Request-ID and every response carries one."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            # New lists and dicts: FastAPI may share them with the route's `responses`.
            operation["parameters"] = [*operation.get("parameters", []), _REQUEST_ID_PARAMETER]
            for response in operation.get("responses", {}).values():
                headers = {**response.get("headers", {}), REQUEST_ID: _REQUEST_ID_HEADER}
                response["headers"] = headers
