"""/translate through the CTranslate2 engine (the default), next to the Keras reference."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.app.conftest import make_settings, wait_until_ready

SENTENCES = ["A man runs in the house.", "The dog sits.", "A child plays on a ball."]


def _client(root: Path, engine: str) -> Iterator[TestClient]:
    settings = make_settings(root, translation_engine=engine, engine_compute_type="float32")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        wait_until_ready(client)
        yield client


@pytest.fixture(scope="module")
def engine_client(trained_root: Path) -> Iterator[TestClient]:
    yield from _client(trained_root, "ctranslate2")


@pytest.fixture(scope="module")
def keras_client(trained_root: Path) -> Iterator[TestClient]:
    yield from _client(trained_root, "keras")


def _translate(client: TestClient, **body: object) -> dict[str, object]:
    response = client.post("/translate", json={"source": "en", "target": "de", **body})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_models_name_the_engine_that_decodes(engine_client: TestClient) -> None:
    models = {m["name"]: m for m in engine_client.get("/models").json()}
    assert models["en-de"]["engine"].startswith("ctranslate2/float32 on cpu, 2 batches")
    served = engine_client.app.state.registry.models["translation/en-de"]  # type: ignore[attr-defined]
    assert served.predictor.length_penalty == 1.0  # the engine's normalization (docs)


def test_greedy_answers_equal_the_keras_reference(
    engine_client: TestClient, keras_client: TestClient
) -> None:
    ours = _translate(engine_client, q=SENTENCES, beam_size=1)
    reference = _translate(keras_client, q=SENTENCES, beam_size=1)
    assert ours["translatedText"] == reference["translatedText"]


def test_alternatives_paragraphs_and_scores_through_the_engine(engine_client: TestClient) -> None:
    body = _translate(engine_client, q=SENTENCES[0], alternatives=2, beam_size=3)
    assert len(body["alternatives"]) == 2  # type: ignore[arg-type]
    assert body["score"] <= 0  # type: ignore[operator]
    paragraph = _translate(engine_client, q=" ".join(SENTENCES), beam_size=1)
    singles = [_translate(engine_client, q=s, beam_size=1)["translatedText"] for s in SENTENCES]
    assert paragraph["translatedText"] == " ".join(singles)  # type: ignore[arg-type]


def test_attention_maps_come_from_the_keras_model_over_the_engines_output(
    engine_client: TestClient,
) -> None:
    response = engine_client.post(
        "/attention-map",
        json={"task": "translation", "text": SENTENCES[1], "source": "en", "target": "de"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    translated = _translate(engine_client, q=SENTENCES[1])["translatedText"]
    assert body["translation"] == translated
    assert len(body["cross_attention"][0][0]) == len(body["target_tokens"])
    assert len(body["cross_attention"][0][0][0]) == len(body["source_tokens"])
