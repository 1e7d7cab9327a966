"""Versioned, self-describing artifacts: the contract between training and serving.

    <root>/<task>/<name>/<version>/manifest.json, model.weights.h5, *.model, metrics.json, ...

A version is written into a hidden temporary folder beside its final place and renamed
when complete, so a reader never sees half an artifact. The manifest records the sha256 of
every other file; `verify` recomputes them and names the first file that differs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
WEIGHTS = "model.weights.h5"
TOKENIZER = "tokenizer.model"
METRICS = "metrics.json"
TASKS = ("translation", "sentiment", "langid")


class ArtifactError(Exception):
    """An artifact is missing, incomplete or does not match its manifest."""


@dataclass(frozen=True)
class ArtifactRef:
    task: str
    name: str
    version: int
    path: Path

    @property
    def key(self) -> str:
        return f"{self.task}/{self.name}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_versions(root: str | Path, task: str, name: str) -> list[ArtifactRef]:
    """Published versions (integer folder names), oldest first; temporary folders skipped."""
    folder = Path(root) / task / name
    if not folder.is_dir():
        return []
    refs = [
        ArtifactRef(task, name, int(child.name), child)
        for child in folder.iterdir()
        if child.is_dir() and child.name.isdigit()
    ]
    return sorted(refs, key=lambda ref: ref.version)


def list_models(root: str | Path) -> list[tuple[str, str]]:
    """(task, name) of every model folder under root."""
    root = Path(root)
    found = []
    for task in TASKS:
        if (root / task).is_dir():
            found.extend(
                (task, child.name)
                for child in sorted((root / task).iterdir())
                if child.is_dir() and not child.name.startswith(".")
            )
    return found


def read_manifest(path: str | Path) -> dict[str, Any]:
    manifest_path = Path(path) / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{path}: {MANIFEST} is missing")
    try:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{manifest_path}: not valid JSON: {error}") from None
    return manifest


def verify(path: str | Path) -> dict[str, Any]:
    """Checks every file against the manifest's sha256; returns the manifest.

    Raises ArtifactError naming the first missing, unexpected or altered file.
    """
    path = Path(path)
    manifest = read_manifest(path)
    expected: dict[str, str] = manifest.get("files", {})
    if not expected:
        raise ArtifactError(f"{path}: the manifest lists no files")
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    present.discard(MANIFEST)
    for name in sorted(expected):
        if name not in present:
            raise ArtifactError(f"{path / name}: listed in the manifest but missing")
        if sha256_file(path / name) != expected[name]:
            raise ArtifactError(f"{path / name}: sha256 does not match the manifest")
    extra = sorted(present - set(expected))
    if extra:
        raise ArtifactError(f"{path / extra[0]}: not listed in the manifest")
    return manifest


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def framework_versions() -> dict[str, str]:
    import keras
    import sentencepiece
    import tensorflow as tf

    versions = {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "sentencepiece": sentencepiece.__version__,
    }
    try:
        import ctranslate2

        versions["ctranslate2"] = ctranslate2.__version__
    except ImportError:  # the engine is optional for classifiers
        pass
    return versions


class publish:
    """Context manager: yields a temporary folder to fill; on success writes the manifest
    and renames the folder to the next free version (then `.path` is that folder). On
    failure the temporary folder is removed and nothing is published."""

    def __init__(self, root: str | Path, task: str, name: str) -> None:
        if task not in TASKS:
            raise ArtifactError(f"unknown task {task!r}; expected one of {TASKS}")
        self.folder = Path(root) / task / name
        self.task, self.name = task, name
        self.staging = self.folder / f".staging-{uuid.uuid4().hex}"
        self.path: Path | None = None

    def __enter__(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir()
        return self.staging

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            try:
                self.path = _publish_staging(self.staging, self.folder, self.task, self.name)
                return
            except BaseException:
                shutil.rmtree(self.staging, ignore_errors=True)
                raise
        shutil.rmtree(self.staging, ignore_errors=True)


def _publish_staging(staging: Path, folder: Path, task: str, name: str) -> Path:
    manifest_path = staging / MANIFEST
    manifest: dict[str, Any] = (
        json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    )
    files = {
        p.relative_to(staging).as_posix(): sha256_file(p)
        for p in sorted(staging.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }
    manifest.update(
        task=task,
        name=name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        framework_versions=framework_versions(),
        git_commit=_git_commit(),
        files=files,
    )
    # A concurrent writer may take the same number: rename fails then, so try the next.
    for _ in range(100):
        versions = [int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()]
        manifest["version"] = max(versions, default=0) + 1
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        target = folder / str(manifest["version"])
        try:
            os.rename(staging, target)
        except OSError:
            continue
        log.info("published %s", target)
        return target
    raise ArtifactError(f"{folder}: could not find a free version number")
