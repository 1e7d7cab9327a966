"""Translated files, kept for download for a while: a folder of files under random names.

On disk rather than in memory because the service may run as several worker processes
behind one address: a file translated by one worker must be downloadable from any, and a
folder (FILE_STORE_DIR, shared or on one host) gives that where a dict would not; it also
keeps hundreds of megabytes of files out of the workers' memory. By default the folder is
a temporary one removed at shutdown.

Names are secrets.token_urlsafe tokens plus the format's extension, chosen here: a name
asked for is checked against that shape before it touches the file system, so nothing a
client sends becomes a path. A file's age is its modification time, set from the store's
clock when written (injectable for tests); the store is bounded by count and by bytes,
oldest out first, and expired files are removed as they are met.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import string
import time
from collections.abc import Callable
from pathlib import Path

TOKEN_BYTES = 24
TOKEN_LENGTH = 32  # base64 of 24 bytes, no padding
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-_")


class FileStore:
    def __init__(
        self,
        folder: Path,
        *,
        ttl_seconds: float,
        max_files: int,
        max_bytes: int,
        extensions: frozenset[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder = folder
        self.ttl_seconds = ttl_seconds
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.extensions = extensions  # without the dot
        self.clock = clock
        folder.mkdir(parents=True, exist_ok=True)

    def put(self, data: bytes, extension: str) -> str:
        """Stores `data`; returns its new name. Makes room first (expired, then oldest)."""
        if extension not in self.extensions:
            raise ValueError(f"unknown extension {extension!r}")
        name = f"{secrets.token_urlsafe(TOKEN_BYTES)}.{extension}"
        self._make_room(len(data))
        partial = self.folder / f".{name}.partial"  # never a valid name: not served
        partial.write_bytes(data)
        now = self.clock()
        os.utime(partial, (now, now))
        os.replace(partial, self.folder / name)
        return name

    def get(self, name: str) -> bytes | None:
        """The file's bytes; None for a malformed, unknown or expired name."""
        path = self._path(name)
        if path is None:
            return None
        try:
            if self._expired(path.stat().st_mtime):
                path.unlink(missing_ok=True)
                return None
            return path.read_bytes()
        except FileNotFoundError:  # never stored, or removed by another worker
            return None

    def _path(self, name: str) -> Path | None:
        token, dot, extension = name.partition(".")
        if not dot or extension not in self.extensions:
            return None
        if len(token) != TOKEN_LENGTH:
            return None
        if not set(token) <= _TOKEN_CHARS:
            return None
        return self.folder / f"{token}.{extension}"

    def _expired(self, written: float) -> bool:
        return self.clock() - written > self.ttl_seconds

    def _make_room(self, incoming: int) -> None:
        files: list[tuple[float, int, Path]] = []
        for entry in os.scandir(self.folder):
            if entry.name.startswith(".") or not entry.is_file():
                continue
            with contextlib.suppress(FileNotFoundError):
                stat = entry.stat()
                if self._expired(stat.st_mtime):
                    Path(entry.path).unlink(missing_ok=True)
                else:
                    files.append((stat.st_mtime, stat.st_size, Path(entry.path)))
        files.sort()
        total = sum(size for _, size, _ in files) + incoming
        while files and (len(files) + 1 > self.max_files or total > self.max_bytes):
            _, size, path = files.pop(0)
            path.unlink(missing_ok=True)
            total -= size

    def __len__(self) -> int:
        return sum(1 for e in os.scandir(self.folder) if not e.name.startswith("."))
