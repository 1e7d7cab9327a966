"""The models shipped under artifacts/: intact, documented, within the size budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from model import artifacts

SHIPPED = Path(__file__).resolve().parents[1] / "artifacts"
VERSIONS = sorted(p for p in SHIPPED.glob("*/*/*") if p.is_dir() and p.name.isdigit())
BUDGET_BYTES = 100 * 1000 * 1000  # the release limit on everything under artifacts/


@pytest.mark.parametrize("version", VERSIONS, ids=lambda p: str(p.relative_to(SHIPPED)))
def test_every_shipped_version_verifies_and_has_a_model_card(version: Path) -> None:
    manifest = artifacts.verify(version)
    assert manifest["version"] == int(version.name)
    assert manifest["weights_dtype"] in ("float16", "float32")
    card = (version / "MODEL_CARD.md").read_text()
    assert "Known limits" in card and "Scores" in card


def test_shipped_models_fit_the_size_budget() -> None:
    total = sum(f.stat().st_size for f in SHIPPED.rglob("*") if f.is_file())
    assert total <= BUDGET_BYTES
