"""The attention viewer in a real browser: headless Chromium driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.main import create_app
from tests.app.conftest import make_settings
from tests.servers import LiveServer

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="apt-get install chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
TEXT = "A man sits on a red ball."


@pytest.fixture(scope="module")
def server(trained_root: Path) -> Iterator[LiveServer]:
    live = LiveServer(create_app(make_settings(trained_root, default_beam_size=1)))
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


def open_viewer(browser: object, server: LiveServer, width: int) -> object:
    page = browser.new_page(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
    page.goto(f"{server.url}/viewer")
    page.wait_for_selector("#pair option", state="attached")
    return page


def heatmap(page: object) -> tuple[list[str], list[str], list[str]]:
    """Column labels, row labels and every cell's weight, as the page shows them."""
    cols = page.locator("#heatmap thead th").all_inner_texts()[1:]  # type: ignore[attr-defined]
    rows = page.locator("#heatmap tbody th").all_inner_texts()  # type: ignore[attr-defined]
    cells = page.locator("#heatmap td").evaluate_all(  # type: ignore[attr-defined]
        "cells => cells.map(c => c.dataset.weight)"
    )
    return cols, rows, cells


def label(piece: str) -> str:
    return piece.removeprefix("▁") or "▁"


@pytest.mark.parametrize("width", [1440, 375])
def test_translation_heatmap_matches_the_api_and_follows_layer_and_head(
    browser: object, server: LiveServer, width: int
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = open_viewer(browser, server, width)
    page.fill("#text", TEXT)  # type: ignore[attr-defined]
    page.focus("#run")  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]  # keyboard only
    page.wait_for_selector("#result:not([hidden])")  # type: ignore[attr-defined]
    api = httpx.post(
        f"{server.url}/attention-map",
        json={"task": "translation", "text": TEXT, "source": "en", "target": "de"},
        timeout=60,
    ).json()
    assert page.inner_text("#output") == api["translation"]  # type: ignore[attr-defined]
    cols, rows, first = heatmap(page)
    assert cols == [label(t["piece"]) for t in api["source_tokens"]]
    assert rows == [label(t["piece"]) for t in api["target_tokens"]]
    assert len(first) == len(rows) * len(cols)
    page.screenshot(path=str(SCREENSHOTS / f"translation-{width}.png"), full_page=True)  # type: ignore[attr-defined]

    page.select_option("#head", "0")  # type: ignore[attr-defined]
    _, _, head0 = heatmap(page)
    page.select_option("#head", "1")  # type: ignore[attr-defined]
    _, _, head1 = heatmap(page)
    page.select_option("#layer", "0")  # type: ignore[attr-defined]
    _, _, layer0 = heatmap(page)
    assert head0 != first and head1 != head0 and layer0 != head1
    assert "layer 0, head 1" in page.inner_text("#map-title")  # type: ignore[attr-defined]
    expected = [f"{w:.4f}" for row in api["cross_attention"][0][1] for w in row]
    assert layer0 == expected

    page.focus("#headview .token >> nth=1")  # type: ignore[attr-defined]
    shown = page.locator("#headview line").evaluate_all(  # type: ignore[attr-defined]
        "lines => lines.filter(l => l.getAttribute('stroke-opacity') !== '0')"
        ".map(l => l.dataset.query)"
    )
    assert shown and set(shown) == {"1"}  # only the focused token's lines remain
    page.wait_for_function("document.querySelector('#download').href.startsWith('blob:')")  # type: ignore[attr-defined]
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1  # type: ignore[attr-defined]
    page.close()  # type: ignore[attr-defined]


def test_sentiment_shows_label_score_and_self_attention(
    browser: object, server: LiveServer
) -> None:
    page = open_viewer(browser, server, 1024)
    page.select_option("#task", "sentiment")  # type: ignore[attr-defined]
    assert page.is_hidden("#pair-label")  # type: ignore[attr-defined]
    page.fill("#text", "the film is wonderful .")  # type: ignore[attr-defined]
    page.click("#run")  # type: ignore[attr-defined]
    page.wait_for_selector("#result:not([hidden])")  # type: ignore[attr-defined]
    assert page.inner_text("#output").startswith("POSITIVE")  # type: ignore[attr-defined]
    cols, rows, _ = heatmap(page)
    assert cols == rows and len(rows) >= 4
    page.screenshot(path=str(SCREENSHOTS / "sentiment-1024.png"), full_page=True)  # type: ignore[attr-defined]
    page.close()  # type: ignore[attr-defined]


def test_api_errors_are_shown_in_the_page(browser: object, server: LiveServer) -> None:
    page = open_viewer(browser, server, 1024)
    page.fill("#text", "   ")  # type: ignore[attr-defined]
    page.click("#run")  # type: ignore[attr-defined]
    page.wait_for_selector("#error:not([hidden])")  # type: ignore[attr-defined]
    assert "empty" in page.inner_text("#error")  # type: ignore[attr-defined]
    assert "422" in page.inner_text("#error")  # type: ignore[attr-defined]
    page.close()  # type: ignore[attr-defined]
