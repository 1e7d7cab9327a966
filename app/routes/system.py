"""GET /health, /ready, /metrics, /models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import RegistryDep
from app.schemas import Health, ModelInfo, Readiness, ReadWindow

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(tags=["system"])


@router.get("/viewer", response_class=FileResponse, include_in_schema=False)
async def viewer() -> FileResponse:
    """The attention viewer page (static HTML; it calls /languages and /attention-map)."""
    return FileResponse(STATIC / "viewer.html", media_type="text/html")


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is alive (it does not say whether models are loaded: see /ready)."""
    return Health()


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(registry: RegistryDep) -> JSONResponse:
    """200 when every model found is loaded and warmed up; 503 with the reasons otherwise."""
    is_ready, reasons = registry.readiness()
    body = Readiness(ready=is_ready, reasons=reasons, models=sorted(registry.models))
    return JSONResponse(body.model_dump(), status_code=200 if is_ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
async def prometheus_metrics() -> Response:
    """Prometheus text exposition."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/models", response_model=list[ModelInfo])
async def models(registry: RegistryDep) -> list[ModelInfo]:
    """Loaded models: version, load time and the metrics recorded in their manifests."""
    return [
        ModelInfo(
            task=m.task,
            name=m.name,
            version=m.version,
            loaded_at=m.loaded_at,
            load_seconds=m.load_seconds,
            metrics=m.manifest.get("metrics", {}),
            path=m.path,
            engine=getattr(m.predictor, "engine_description", None),
            reads=_reads(m.manifest.get("model_config", {})) if m.task != "translation" else None,
        )
        for m in sorted(registry.models.values(), key=lambda m: m.key)
    ]


def _reads(config: dict[str, Any]) -> ReadWindow:
    pieces = config.get("read_pieces") or config.get("max_length", 0)
    tail = config.get("tail_pieces", 0)
    return ReadWindow(pieces=pieces, head=pieces - tail, tail=tail)
