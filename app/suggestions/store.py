"""The suggestions database: SQLite by default, PostgreSQL by URL (SQLAlchemy Core).

One row per distinct (source, target, q, s): a repeat increments `count` and moves
`last_seen`. The uniqueness is enforced on `pair_key`, the sha256 of the four fields, rather
than on the texts themselves: PostgreSQL refuses index entries over about 2.7 kB, and two
texts at MAX_TEXT_CHARS can be longer than that. Each row records the model (name and
version) that served the pair when the suggestion last came in.

The engine is synchronous (SQLite has no other driver in the standard library); the service
calls it from a worker thread (`add`), so the event loop never waits on the disk or network.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    make_url,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from app.errors import StorageUnavailable

log = logging.getLogger(__name__)

METADATA = MetaData()
SUGGESTIONS = Table(
    "suggestions",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("pair_key", String(64), nullable=False, unique=True),
    Column("source", String(32), nullable=False),
    Column("target", String(32), nullable=False),
    Column("q", Text, nullable=False),
    Column("s", Text, nullable=False),
    Column("count", Integer, nullable=False),
    Column("model", String(128), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
    Index("ix_suggestions_languages", "source", "target"),
)


@dataclass(frozen=True)
class Suggestion:
    source: str
    target: str
    q: str
    s: str
    model: str
    model_version: int

    def key(self) -> str:
        fields = [self.source, self.target, self.q, self.s]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def build_engine(url: str) -> Engine:
    """An engine for a sqlite:// or postgresql:// URL (PostgreSQL through psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        # Writers wait for each other's lock instead of failing at once.
        return create_engine(parsed, connect_args={"timeout": 30})
    return create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5})


class SuggestionStore:
    def __init__(self, url: str) -> None:
        self.engine = build_engine(url)
        self.where = make_url(url).render_as_string(hide_password=True)
        self._schema_ready = False

    def create_schema(self) -> None:
        """Creates the SQLite file's folder and the table if they are missing (idempotent)."""
        database = self.engine.url.database
        if self.engine.dialect.name == "sqlite" and database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        METADATA.create_all(self.engine)
        self._schema_ready = True

    def add_now(self, suggestion: Suggestion) -> bool:
        """Stores one suggestion; True when it is new, False when it repeats one."""
        if not self._schema_ready:
            self.create_schema()
        now = datetime.now(UTC)
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(SUGGESTIONS)
            .values(
                pair_key=suggestion.key(),
                source=suggestion.source,
                target=suggestion.target,
                q=suggestion.q,
                s=suggestion.s,
                count=1,
                model=suggestion.model,
                model_version=suggestion.model_version,
                first_seen=now,
                last_seen=now,
            )
            .on_conflict_do_update(
                index_elements=[SUGGESTIONS.c.pair_key],
                set_={
                    "count": SUGGESTIONS.c.count + 1,
                    "last_seen": now,
                    "model": suggestion.model,
                    "model_version": suggestion.model_version,
                },
            )
            .returning(SUGGESTIONS.c.count)
        )
        with self.engine.begin() as connection:  # committed before the client hears back
            count = connection.execute(statement).scalar_one()
        return bool(count == 1)

    async def start(self) -> None:
        """Creates the schema at start; an unreachable database is retried on first use."""
        try:
            await asyncio.to_thread(self.create_schema)
        except (SQLAlchemyError, OSError) as error:
            log.error("suggestions database %s unavailable: %s", self.where, type(error).__name__)

    async def add(self, suggestion: Suggestion) -> bool:
        """add_now in a worker thread; a database failure is a 503, never a lost 200."""
        try:
            return await asyncio.to_thread(self.add_now, suggestion)
        except (SQLAlchemyError, OSError) as error:
            log.error("suggestion not stored in %s: %s", self.where, type(error).__name__)
            raise StorageUnavailable("the suggestions database is unavailable") from None

    def pairs(
        self, source: str | None = None, target: str | None = None, min_count: int = 1
    ) -> Iterator[tuple[str, str]]:
        """(q, s) in the order they first came, optionally for one language pair."""
        query = select(SUGGESTIONS.c.q, SUGGESTIONS.c.s).where(SUGGESTIONS.c.count >= min_count)
        if source is not None:
            query = query.where(SUGGESTIONS.c.source == source)
        if target is not None:
            query = query.where(SUGGESTIONS.c.target == target)
        with self.engine.connect() as connection:
            rows = connection.execution_options(yield_per=1000).execute(
                query.order_by(SUGGESTIONS.c.id)
            )
            yield from ((row.q, row.s) for row in rows)

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.dispose)
