"""POST /suggest: suggestions kept durably (SQLite or PostgreSQL), counted when repeated,
and exported as the training job's TSV pairs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select
from typer.testing import CliRunner

from app.config import Settings
from app.errors import StorageUnavailable
from app.main import create_app
from app.suggestions.__main__ import cli
from app.suggestions.store import SUGGESTIONS, Suggestion, SuggestionStore
from model.data import read_pairs_tsv
from tests.app.conftest import make_settings, wait_until_ready
from tests.servers import metric_value

PAIR = {"source": "en", "target": "de"}
SUGGESTION = {"q": "A dog runs.", "s": "Ein Hund rennt.", **PAIR}


def stored_rows(url: str) -> list[dict[str, Any]]:
    store = SuggestionStore(url)
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(select(SUGGESTIONS).order_by(SUGGESTIONS.c.id))
            return [dict(row) for row in rows.mappings()]
    finally:
        store.engine.dispose()


def serving(root: Path, **changes: object) -> TestClient:
    return TestClient(create_app(make_settings(root, **changes)), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("suggest-data")


@pytest.fixture(scope="module")
def suggesting(trained_root: Path, data_dir: Path) -> Iterator[TestClient]:
    with serving(trained_root, data_dir=data_dir) as client:
        wait_until_ready(client)
        yield client


def sqlite_url(data_dir: Path) -> str:
    return Settings(data_dir=data_dir).suggestions_url()


def test_a_suggestion_is_stored_with_the_model_that_serves_the_pair(
    suggesting: TestClient, data_dir: Path
) -> None:
    body = {**SUGGESTION, "q": "A cat sleeps.", "s": "Eine Katze schläft."}
    response = suggesting.post("/suggest", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    [row] = [r for r in stored_rows(sqlite_url(data_dir)) if r["q"] == "A cat sleeps."]
    assert (row["source"], row["target"], row["s"]) == ("en", "de", "Eine Katze schläft.")
    assert (row["model"], row["model_version"], row["count"]) == ("translation/en-de", 1, 1)
    assert row["first_seen"] == row["last_seen"]


def test_duplicates_are_counted_not_repeated(suggesting: TestClient, data_dir: Path) -> None:
    before = suggesting.get("/metrics").text
    body = {**SUGGESTION, "q": "The man sings."}
    for _ in range(3):
        assert suggesting.post("/suggest", json=body).status_code == 200
    assert suggesting.post("/suggest", json={**body, "s": "Der Mann singt."}).status_code == 200
    rows = [r for r in stored_rows(sqlite_url(data_dir)) if r["q"] == "The man sings."]
    assert sorted((r["s"], r["count"]) for r in rows) == [("Der Mann singt.", 1), (body["s"], 3)]
    repeated = next(r for r in rows if r["count"] == 3)
    assert repeated["last_seen"] > repeated["first_seen"]
    after = suggesting.get("/metrics").text
    for result, added in (("new", 2), ("repeated", 2)):
        delta = metric_value(after, "nlp_suggestions_total", result=result) - metric_value(
            before, "nlp_suggestions_total", result=result
        )
        assert delta == added, result


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**SUGGESTION, "target": "fr"}, 400),
        ({**SUGGESTION, "source": "auto"}, 400),
        ({**SUGGESTION, "q": "x" * 501}, 413),
        ({**SUGGESTION, "s": "x" * 501}, 413),
        ({**SUGGESTION, "s": "   "}, 422),
        ({"q": "A dog.", **PAIR}, 422),
        ({**SUGGESTION, "q": ["a", "b"]}, 422),
    ],
)
def test_bad_suggestions_are_refused_and_not_stored(
    suggesting: TestClient, data_dir: Path, body: dict[str, Any], status: int
) -> None:
    count = len(stored_rows(sqlite_url(data_dir)))
    response = suggesting.post("/suggest", json=body)
    assert response.status_code == status, response.text
    assert len(stored_rows(sqlite_url(data_dir))) == count


def test_suggestions_survive_a_restart(trained_root: Path, tmp_path: Path) -> None:
    with serving(trained_root, data_dir=tmp_path) as first:
        wait_until_ready(first)
        assert first.post("/suggest", json=SUGGESTION).status_code == 200
    with serving(trained_root, data_dir=tmp_path) as second:
        wait_until_ready(second)
        assert second.post("/suggest", json=SUGGESTION).status_code == 200
    [row] = stored_rows(sqlite_url(tmp_path))
    assert row["count"] == 2


def test_postgresql_stores_and_counts_them_too(trained_root: Path, postgres_url: str) -> None:
    with serving(trained_root, suggestions_database_url=postgres_url) as client:
        wait_until_ready(client)
        for _ in range(2):
            assert client.post("/suggest", json=SUGGESTION).status_code == 200
        long_texts = {**SUGGESTION, "q": "ä" * 500, "s": "ö" * 500}  # over an index entry
        assert client.post("/suggest", json=long_texts).status_code == 200
    rows = stored_rows(postgres_url)
    assert [(r["q"], r["count"], r["model"]) for r in rows] == [
        (SUGGESTION["q"], 2, "translation/en-de"),
        ("ä" * 500, 1, "translation/en-de"),
    ]
    assert rows[0]["last_seen"].tzinfo is not None


def test_turned_off_they_are_403_before_the_body_is_read(trained_root: Path) -> None:
    with serving(trained_root, suggestions=False) as client:
        response = client.post("/suggest", content=b"{not json")
        assert response.status_code == 403
        assert response.json()["error"] == "Suggestions are disabled on this server."
        assert client.post("/suggest", json=SUGGESTION).status_code == 403


def test_an_unreachable_database_is_503_not_a_lost_success(trained_root: Path) -> None:
    url = "postgresql://nobody:secret@127.0.0.1:1/none"  # nothing listens on port 1
    with serving(trained_root, suggestions_database_url=url) as client:
        wait_until_ready(client)
        response = client.post("/suggest", json=SUGGESTION)
        assert response.status_code == 503
        assert response.json()["error_type"] == "storage_unavailable"
        assert "secret" not in response.text


def test_export_writes_pairs_the_training_job_reads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'suggestions.sqlite3'}"
    store = SuggestionStore(url)
    store.create_schema()
    model = ("translation/en-de", 1)
    for q, s, times in [("A dog.", "Ein Hund.", 2), ("A\tcat\nsleeps.", "Eine Katze.", 1)]:
        for _ in range(times):
            store.add_now(Suggestion("en", "de", q, s, *model))
    store.add_now(Suggestion("de", "en", "Ein Hund.", "A dog.", "translation/de-en", 1))
    store.engine.dispose()

    def export(*options: str) -> list[tuple[str, str]]:
        out = tmp_path / "pairs.tsv"
        result = CliRunner().invoke(
            cli, ["export", "--out", str(out), "--database-url", url, *options]
        )
        assert result.exit_code == 0, result.output
        return read_pairs_tsv(out)

    assert export("--source", "en", "--target", "de") == [
        ("A dog.", "Ein Hund."),
        ("A cat sleeps.", "Eine Katze."),
    ]
    assert export("--min-count", "2") == [("A dog.", "Ein Hund.")]
    assert len(export()) == 3


async def test_an_unwritable_sqlite_folder_is_503_at_use_not_a_failed_start(
    tmp_path: Path,
) -> None:
    (tmp_path / "taken").write_text("a file where the folder should be")
    store = SuggestionStore(f"sqlite:///{tmp_path / 'taken' / 'suggestions.sqlite3'}")
    await store.start()  # logged, the service still starts
    with pytest.raises(StorageUnavailable):
        await store.add(Suggestion("en", "de", "A dog.", "Ein Hund.", "translation/en-de", 1))
    await store.close()


def test_only_sqlite_and_postgresql_urls_are_accepted() -> None:
    with pytest.raises(ValidationError, match="SUGGESTIONS_DATABASE_URL"):
        Settings(suggestions_database_url="mysql://root@localhost/db")
    assert Settings(suggestions_database_url="postgresql://u:p@h/db").suggestions_url() == (
        "postgresql://u:p@h/db"
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_concurrent_repeats_are_all_counted(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        request.getfixturevalue("postgres_url")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path / 'suggestions.sqlite3'}"
    )
    store = SuggestionStore(url)
    await store.start()
    model = ("translation/en-de", 1)
    same = Suggestion("en", "de", "A dog.", "Ein Hund.", *model)
    others = [Suggestion("en", "de", f"Dog {i}.", "Hund.", *model) for i in range(5)]
    results = await asyncio.gather(*(store.add(s) for s in [same] * 20 + others))
    await store.close()
    assert results.count(True) == 6  # the first of the 20, and the 5 others
    rows = stored_rows(url)
    assert sorted(r["count"] for r in rows) == [1] * 5 + [20]
