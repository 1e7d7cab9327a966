"""The store of translated files: random names, bounded, expiring (a fake clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.filestore import FileStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def store_in(folder: Path, clock: Clock, **limits: int) -> FileStore:
    values = {"ttl_seconds": 60, "max_files": 10, "max_bytes": 10_000, **limits}
    return FileStore(folder, extensions=frozenset({"txt", "docx"}), clock=clock, **values)


def test_a_stored_file_comes_back_under_a_random_name(tmp_path: Path) -> None:
    store = store_in(tmp_path, Clock())
    first, second = store.put(b"one", "txt"), store.put(b"one", "txt")
    assert first != second and first.endswith(".txt") and len(first) == 36
    assert store.get(first) == b"one"


def test_an_expired_file_is_gone(tmp_path: Path) -> None:
    clock = Clock()
    store = store_in(tmp_path, clock)
    name = store.put(b"data", "txt")
    clock.now += 60
    assert store.get(name) == b"data"
    clock.now += 1
    assert store.get(name) is None
    assert len(store) == 0  # removed when met


def test_the_oldest_files_make_room_by_count_and_by_bytes(tmp_path: Path) -> None:
    clock = Clock()
    store = store_in(tmp_path, clock, max_files=2, max_bytes=2_500)
    names = []
    for _ in range(3):
        names.append(store.put(b"x" * 1_000, "txt"))
        clock.now += 1
    assert store.get(names[0]) is None and store.get(names[2]) is not None
    assert len(store) == 2
    big = store.put(b"y" * 2_000, "txt")  # 1_000 + 2_000 > 2_500: only the new one stays
    assert [store.get(n) for n in names[1:]] == [None, None]
    assert store.get(big) == b"y" * 2_000


@pytest.mark.parametrize(
    "name",
    ["", "..", "../secret.txt", "x.txt", "A" * 32 + ".pdf", "A" * 32, "A" * 31 + "/.txt"],
)
def test_malformed_or_unknown_names_find_nothing(tmp_path: Path, name: str) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "secret.txt").write_bytes(b"secret")
    store = store_in(tmp_path / "store", Clock())
    assert store.get(name) is None
    assert store.get("A" * 32 + ".txt") is None  # well formed, never stored


def test_an_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        store_in(tmp_path, Clock()).put(b"x", "exe")
