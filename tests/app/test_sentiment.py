"""POST /sentiment, in the Hugging Face text-classification shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.routes.sentiment import sentiment_model
from tests.app.conftest import make_settings, wait_until_ready


def test_a_string_gives_both_labels_sorted_by_score(client: TestClient) -> None:
    response = client.post("/sentiment", json={"inputs": "the film is wonderful ."})
    assert response.status_code == 200, response.text
    ranked = response.json()
    assert {item["label"] for item in ranked} == {"POSITIVE", "NEGATIVE"}
    assert ranked[0]["score"] >= ranked[1]["score"]
    assert abs(sum(item["score"] for item in ranked) - 1.0) < 1e-4


def test_the_tiny_model_learned_the_toy_sentiment(client: TestClient) -> None:
    good = client.post("/sentiment", json={"inputs": "the story is brilliant ."}).json()
    bad = client.post("/sentiment", json={"inputs": "the story is tedious ."}).json()
    assert good[0]["label"] == "POSITIVE"
    assert bad[0]["label"] == "NEGATIVE"


def test_a_list_gives_one_ranking_per_input(client: TestClient) -> None:
    response = client.post("/sentiment", json={"inputs": ["the cast is funny .", "dull"]})
    assert response.status_code == 200
    assert len(response.json()) == 2
    assert all(len(ranking) == 2 for ranking in response.json())


def test_top_k_limits_the_labels(client: TestClient) -> None:
    response = client.post(
        "/sentiment", json={"inputs": "the cast is funny .", "parameters": {"top_k": 1}}
    )
    assert len(response.json()) == 1


def test_served_text_is_normalized_like_the_training_data(client: TestClient) -> None:
    raw = client.post("/sentiment", json={"inputs": "The ending isn't BORING."}).json()
    sst = client.post("/sentiment", json={"inputs": "the ending is n't boring ."}).json()
    assert raw == sst


@pytest.fixture(scope="module")
def review_client(trained_root: Path) -> Iterator[TestClient]:
    """The default text limits: 2,000 characters per text, 20,000 for /sentiment."""
    settings = make_settings(trained_root, max_text_chars=2_000, max_body_bytes=200_000)
    assert settings.max_sentiment_chars == 20_000
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        wait_until_ready(test_client)
        yield test_client


def test_a_whole_review_of_20000_characters_is_answered(review_client: TestClient) -> None:
    sentence = "The story is brilliant and the cast is funny. "
    review = (sentence * 500)[:20_000]
    response = review_client.post("/sentiment", json={"inputs": review})
    assert response.status_code == 200, response.text
    assert {item["label"] for item in response.json()} == {"POSITIVE", "NEGATIVE"}
    too_long = review_client.post("/sentiment", json={"inputs": review + "!"})
    assert too_long.status_code == 413
    assert "20001 characters, at most 20000" in too_long.json()["error"]


def test_translate_keeps_its_own_limit_of_2000_characters(review_client: TestClient) -> None:
    text = "A man runs. " * 167  # 2,004 characters
    response = review_client.post("/translate", json={"q": text, "source": "en", "target": "de"})
    assert response.status_code == 413
    assert "at most 2000" in response.json()["error"]


def test_models_say_what_a_classifier_reads(review_client: TestClient) -> None:
    [info] = [m for m in review_client.get("/models").json() if m["task"] == "sentiment"]
    assert info["reads"] == {"pieces": 128, "head": 128, "tail": 0}  # tiny: no tail
    assert info["metrics"]["calibration"]["temperature"] > 0
    [translation] = [m for m in review_client.get("/models").json() if m["name"] == "en-de"]
    assert translation["reads"] is None


def test_the_named_sentiment_model_is_served_when_loaded() -> None:
    models = [SimpleNamespace(name="sst2"), SimpleNamespace(name="en")]
    registry = SimpleNamespace(of_task=lambda task: models)
    assert sentiment_model(registry, "en").name == "en"
    assert sentiment_model(registry, "other").name == "sst2"  # the first loaded one
