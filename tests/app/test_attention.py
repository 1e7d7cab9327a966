"""POST /attention-map: bertviz-layout JSON and PNG heatmaps."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient

TEXT = "A dog sits on the street."


def attention(client: TestClient, **body: object):  # type: ignore[no-untyped-def]
    payload = {"task": "translation", "text": TEXT, "source": "en", "target": "de", **body}
    return client.post("/attention-map", json=payload)


def test_translation_json_has_tokens_with_spans_and_three_maps(client: TestClient) -> None:
    response = attention(client)
    assert response.status_code == 200, response.text
    body = response.json()
    source, target = body["source_tokens"], body["target_tokens"]
    for token in source:
        if token["piece"] not in ("</s>",):
            assert TEXT[token["start"] : token["end"]] in token["piece"].replace("▁", " ")
    for token in target[1:]:
        assert body["translation"][token["start"] : token["end"]] in token["piece"].replace(
            "▁", " "
        )
    layers, heads = body["layers"], body["heads"]
    cross = body["cross_attention"]
    assert len(cross) == len(layers) and len(cross[0]) == len(heads)
    assert len(cross[0][0]) == len(target) and len(cross[0][0][0]) == len(source)
    assert len(body["encoder_attention"][0][0]) == len(source)
    assert len(body["decoder_attention"][0][0][0]) == len(target)
    for row in cross[0][0]:
        assert sum(row) == pytest.approx(1.0, abs=1e-2)


def test_decoder_self_attention_is_causal(client: TestClient) -> None:
    decoder = attention(client).json()["decoder_attention"][0][0]
    for query, row in enumerate(decoder):
        assert all(weight == 0 for weight in row[query + 1 :])


def test_layers_and_heads_select_a_subset(client: TestClient) -> None:
    body = attention(client, layers=[0], heads=[1]).json()
    assert body["layers"] == [0] and body["heads"] == [1]
    full = attention(client).json()
    assert body["cross_attention"][0][0] == full["cross_attention"][0][1]


@pytest.mark.parametrize("field", ["layers", "heads"])
def test_out_of_range_indexes_are_a_clear_422(client: TestClient, field: str) -> None:
    response = attention(client, **{field: [7]})
    assert response.status_code == 422
    assert "out of range" in response.json()["error"]


def test_translation_of_several_sentences_is_a_clear_422(client: TestClient) -> None:
    response = attention(client, text=f"{TEXT} The cat eats.")
    assert response.status_code == 422
    assert "one sentence" in response.json()["error"]


def test_translation_needs_a_language_pair(client: TestClient) -> None:
    response = client.post("/attention-map", json={"task": "translation", "text": TEXT})
    assert response.status_code == 400


def test_unknown_task_is_422(client: TestClient) -> None:
    response = client.post("/attention-map", json={"task": "summarize", "text": TEXT})
    assert response.status_code == 422
    assert response.json()["error_type"] == "invalid_input"


def test_sentiment_attention_has_tokens_label_and_a_square_map(client: TestClient) -> None:
    response = client.post("/attention-map", json={"task": "sentiment", "text": "a funny film"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["label"] in ("POSITIVE", "NEGATIVE") and 0.5 <= body["score"] <= 1
    n = len(body["tokens"])
    assert len(body["attention"][0][0]) == n and len(body["attention"][0][0][0]) == n


def _png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


@pytest.mark.parametrize("average", [False, True])
def test_png_format_returns_a_heatmap(client: TestClient, average: bool) -> None:
    response = attention(client, format="png", average_heads=average)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    width, height = _png_size(response.content)
    assert width > 200 and height > 200


def test_accept_header_asks_for_png(client: TestClient) -> None:
    response = client.post(
        "/attention-map",
        json={"task": "sentiment", "text": "a dull story"},
        headers={"Accept": "image/png"},
    )
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")
