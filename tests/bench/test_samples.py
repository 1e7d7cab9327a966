"""bench.samples: a running service's answers next to a recipe's validation references."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from app.main import create_app
from bench.samples import EVERYDAY, app
from model import data
from tests.app.conftest import make_settings
from tests.servers import LiveServer


def test_prints_the_service_answers_next_to_every_split_and_a_paragraph(
    trained_root: Path, corpus_dir: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('[[corpus]]\nname = "captions"\ntrain = "train"\nvalidation = "val"\n')
    references = [
        t for _, t in data.read_parallel(corpus_dir / "val.en.gz", corpus_dir / "val.de.gz")
    ]
    with LiveServer(create_app(make_settings(trained_root))) as server:
        args = [
            "--url", server.url, "--recipe", str(recipe), "--data-dir", str(corpus_dir),
            "--per-split", "3", "--paragraph-split", "captions", "--paragraph-at", "2",
            "--paragraph-sentences", "3",
        ]  # fmt: skip
        result = CliRunner().invoke(app, args)
        refused = CliRunner().invoke(app, [*args[:-4], "--paragraph-split", "nosuch"])
    assert result.exit_code == 0, result.output
    out = result.output
    for sentence in EVERYDAY["en"]:
        assert f"| {sentence} | " in out
    split = out.split("#### captions (every 13th validation pair)\n")[1].split("####")[0]
    rows = [line for line in split.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 3  # the header and three pairs, every 13th of 40
    assert [row.rstrip(" |").rsplit(" | ", 1)[1] for row in rows[1:]] == references[::13][:3]
    assert f"- reference: {' '.join(references[2:5])}" in out
    assert "- whole == one by one: True" in out
    assert refused.exit_code == 2 and "no split 'nosuch'" in refused.output
