"""POST /translate_file and GET /download_file/{name}: LibreTranslate's file translation."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from app import files, formats
from app.access import ACCESS, Forbidden
from app.deps import CacheDep, FileStoreDep, RegistryDep, SettingsDep
from app.errors import InvalidInput, NotFound
from app.openapi import ERRORS
from app.schemas import ErrorResponse, FileTranslation

router = APIRouter(tags=["files"])

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_DOWNLOADS = {f.media_type: _BINARY for f in map(formats.format_for, formats.supported_formats())}


async def files_on(settings: SettingsDep) -> None:
    """FILES_TRANSLATION=false turns the endpoint off, with LibreTranslate's answer."""
    if not settings.files_translation:
        raise Forbidden("Files translation are disabled on this server.")


@router.post(
    "/translate_file",
    dependencies=[Depends(files_on), ACCESS],
    response_model=FileTranslation,
    responses=ERRORS,
    description=f"Translate a file ({', '.join(formats.supported_formats())}) into the same "
    "format; the answer links to the translation, which can be downloaded until it expires.",
)
async def translate_file(
    request: Request,
    file: Annotated[UploadFile, File(description="a file: see the supported formats below")],
    registry: RegistryDep,
    cache: CacheDep,
    settings: SettingsDep,
    store: FileStoreDep,
    source: Annotated[
        str | None, Form(description="source language code, or 'auto' (or in the query)")
    ] = None,
    target: Annotated[
        str | None, Form(description="target language code (or in the query)")
    ] = None,
    api_key: Annotated[str | None, Form(description="accepted for LibreTranslate")] = None,
) -> FileTranslation:
    """LibreTranslate's file translation (described in the decorator, from the formats).
    `source` and `target` come from the form, else from the query string, as there."""
    source = source or request.query_params.get("source")
    target = target or request.query_params.get("target")
    if not source or not target:
        raise InvalidInput("source and target language codes are required")
    data = await file.read()
    context = (registry, cache, settings)
    name = await files.translate_file(file.filename or "", data, source, target, context, store)
    return FileTranslation(translatedFileUrl=str(request.url_for("download_file", name=name)))


@router.get(
    "/download_file/{name}",
    response_class=Response,
    responses={
        200: {"content": _DOWNLOADS, "description": "the translated file"},
        404: {"model": ErrorResponse, "description": "unknown or expired name"},
    },
)
async def download_file(name: str, store: FileStoreDep) -> Response:
    """A file translated by /translate_file, while it has not expired."""
    data = await asyncio.to_thread(store.get, name)
    if data is None:
        raise NotFound("no such file: the name is unknown or the file has expired")
    return Response(
        data,
        media_type=files.media_type(name),
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
