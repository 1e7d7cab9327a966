"""`python -m app.suggestions export --out pairs.tsv`: the stored suggestions as the
`source TAB target` lines that `python -m model.train translation --pairs` reads."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from app.config import Settings
from app.suggestions.store import SuggestionStore

log = logging.getLogger(__name__)
cli = typer.Typer(add_completion=False, help=__doc__)
Opt = typer.Option


def one_line(text: str) -> str:
    """A tab or line break inside a text would split the TSV line: they become spaces."""
    return " ".join(text.replace("\t", " ").replace("\r", " ").replace("\n", " ").split())


@cli.callback()
def main() -> None:
    """Suggestions kept by the service."""


@cli.command()
def export(
    out: Annotated[Path, Opt(help="TSV file to write: source TAB target per line")],
    source: Annotated[str | None, Opt(help="only this source language")] = None,
    target: Annotated[str | None, Opt(help="only this target language")] = None,
    min_count: Annotated[int, Opt(min=1, help="only pairs suggested at least N times")] = 1,
    database_url: Annotated[
        str | None, Opt(help="default: SUGGESTIONS_DATABASE_URL, else DATA_DIR's SQLite")
    ] = None,
) -> None:
    """Writes the suggestions (original text, suggested translation) as training pairs."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    store = SuggestionStore(database_url or Settings().suggestions_url())
    written = skipped = 0
    try:
        store.create_schema()  # an empty database exports nothing rather than failing
        with out.open("w", encoding="utf-8", newline="\n") as handle:
            for q, s in store.pairs(source, target, min_count):
                q, s = one_line(q), one_line(s)
                if not q or not s:
                    skipped += 1
                    continue
                handle.write(f"{q}\t{s}\n")
                written += 1
    finally:
        store.engine.dispose()
    log.info("%d pairs written to %s (%d empty skipped)", written, out, skipped)


if __name__ == "__main__":
    cli()
