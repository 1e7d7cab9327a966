"""POST /sentiment, in the Hugging Face text-classification shape."""

from __future__ import annotations

from fastapi.testclient import TestClient


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
