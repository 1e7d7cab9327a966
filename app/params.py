"""Request fields where LibreTranslate reads them: the JSON body, the form body or the query
string (Flask's request.values). Real clients rely on each: deep-translator posts its fields as
query parameters with an empty body. A field given in the body wins over the query string."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.errors import InvalidInput

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Fields a client may repeat to send a list (q=a&q=b); any other field keeps its first value.
LIST_FIELDS = frozenset({"q"})


def _collect(items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    grouped: dict[str, list[str]] = {}
    for key, value in items:
        if isinstance(value, str):  # uploaded files are not text fields
            grouped.setdefault(key, []).append(value)
    return {
        key: values if key in LIST_FIELDS and len(values) > 1 else values[0]
        for key, values in grouped.items()
    }


async def _body_fields(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in FORM_TYPES:
        return _collect((await request.form()).multi_items())
    raw = await request.body()
    if not raw.strip():
        return {}  # fields only in the query string
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    return body


async def request_fields(request: Request) -> dict[str, Any]:
    """The query string's fields overlaid with the body's (parsed once per request)."""
    cached: dict[str, Any] | None = getattr(request.state, "libre_fields", None)
    if cached is None:
        cached = {**_collect(request.query_params.multi_items()), **await _body_fields(request)}
        request.state.libre_fields = cached
    return cached


def validated(model: type[BaseModel], fields: dict[str, Any]) -> Any:
    """The model built from the fields; the first problem as a 422."""
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(f"{where}: {first['msg']}" if where else first["msg"]) from None


def parser(model: type[BaseModel]) -> Any:
    """A dependency that builds `model` from the request's fields."""

    async def parse(request: Request) -> Any:
        return validated(model, await request_fields(request))

    return parse


def openapi_fields(model: type[BaseModel]) -> dict[str, Any]:
    """openapi_extra for a route parsed by `parser`: the body as JSON or a form, and each
    top-level field also accepted as an optional query parameter."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    parameters = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": "accepted here too (LibreTranslate clients); the body wins",
            "schema": {"type": "string"},
        }
        for name in model.model_fields
    ]
    return {
        "parameters": parameters,
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {"schema": ref},
                "application/x-www-form-urlencoded": {"schema": ref},
            },
        },
    }
