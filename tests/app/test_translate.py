"""POST /translate, /detect and GET /languages, as LibreTranslate clients use them."""

from __future__ import annotations

from fastapi.testclient import TestClient

SENTENCE = "A man runs in the house."


def translate(client: TestClient, **body: object) -> dict:  # type: ignore[type-arg]
    response = client.post("/translate", json={"source": "en", "target": "de", **body})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_string_gives_a_string_with_model_version_and_score(client: TestClient) -> None:
    body = translate(client, q=SENTENCE)
    assert isinstance(body["translatedText"], str) and body["translatedText"]
    assert body["model"] == "translation/en-de"
    assert body["version"] == 1
    assert isinstance(body["cached"], bool)
    assert body["score"] <= 0.0


def test_a_list_gives_a_list_in_the_same_order(client: TestClient) -> None:
    texts = [SENTENCE, "The dog sits.", SENTENCE]
    body = translate(client, q=texts)
    singles = [translate(client, q=t)["translatedText"] for t in texts]
    assert body["translatedText"] == singles
    assert len(body["cached"]) == len(body["score"]) == 3


def test_form_encoded_bodies_work_like_json(client: TestClient) -> None:
    form = client.post("/translate", data={"q": SENTENCE, "source": "en", "target": "de"})
    assert form.status_code == 200, form.text
    assert form.json()["translatedText"] == translate(client, q=SENTENCE)["translatedText"]


def test_api_key_field_is_accepted(client: TestClient) -> None:
    assert translate(client, q=SENTENCE, api_key="anything")["translatedText"]


def test_alternatives_come_from_beam_search(client: TestClient) -> None:
    body = translate(client, q=SENTENCE, alternatives=2)
    assert len(body["alternatives"]) == 2
    assert all(isinstance(text, str) for text in body["alternatives"])
    listed = translate(client, q=[SENTENCE, "The cat eats."], alternatives=1)
    assert [len(a) for a in listed["alternatives"]] == [1, 1]


def test_second_identical_request_is_served_from_the_cache(client: TestClient) -> None:
    text = "A child plays on a blue ball."
    first = translate(client, q=text, beam_size=1)
    second = translate(client, q=text, beam_size=1)
    assert second["cached"] is True
    assert second["translatedText"] == first["translatedText"]
    assert second["score"] == first["score"]


def test_max_length_caps_the_output(client: TestClient) -> None:
    body = translate(client, q=SENTENCE, max_length=2, beam_size=1)
    assert len(body["translatedText"].split()) <= 2


def test_html_format_is_refused_clearly(client: TestClient) -> None:
    response = client.post(
        "/translate", json={"q": "<b>x</b>", "source": "en", "target": "de", "format": "html"}
    )
    assert response.status_code == 400
    assert response.json()["error_type"] == "bad_request"
    assert "html" in response.json()["error"]


def test_an_unsupported_pair_lists_the_supported_ones(client: TestClient) -> None:
    response = client.post("/translate", json={"q": "x", "source": "en", "target": "fr"})
    assert response.status_code == 400
    assert response.json()["error_type"] == "unsupported_language"
    assert "en->de" in response.json()["error"]


def test_source_auto_detects_with_the_language_identifier(client: TestClient) -> None:
    body = translate(client, q="the man and the dog with a house", source="auto")
    assert body["detectedLanguage"]["language"] == "en"
    assert 0 <= body["detectedLanguage"]["confidence"] <= 100


def test_detect_returns_every_language_with_confidence(client: TestClient) -> None:
    response = client.post("/detect", json={"q": "der mann und der hund mit ein haus"})
    assert response.status_code == 200
    candidates = response.json()
    assert candidates[0]["language"] == "de"
    assert {c["language"] for c in candidates} == {"en", "de", "fr", "cs"}
    assert abs(sum(c["confidence"] for c in candidates) - 100) < 0.5
    assert [c["confidence"] for c in candidates] == sorted(
        (c["confidence"] for c in candidates), reverse=True
    )
    listed = client.post("/detect", data={"q": "le chien et la maison"})
    assert listed.status_code == 200 and listed.json()[0]["language"] == "fr"


def test_languages_are_built_from_the_loaded_models(client: TestClient) -> None:
    assert client.get("/languages").json() == [{"code": "en", "name": "English", "targets": ["de"]}]


def test_new_batch_shapes_and_beam_widths_use_the_graphs_traced_at_load(
    client: TestClient,
) -> None:
    """TRANSLATION_ENGINE=keras: the warm-up traces the greedy graph and the beam graph,
    which serve every batch shape and beam width: no request traces anything."""
    predictor = client.app.state.registry.models["translation/en-de"].predictor  # type: ignore[attr-defined]
    assert predictor.engine == "keras"
    traced = predictor.decoder.traces
    assert traced == 2
    text = " ".join(["a red dog runs on the grass"] * 6)  # a source length no test used
    assert translate(client, q=[text, SENTENCE, text], beam_size=1)["translatedText"]
    for alternatives in (5, 7):  # beam widths 6 and 8, which no other test here uses
        body = translate(client, q=f"{SENTENCE} {alternatives}", alternatives=alternatives)
        assert len(body["alternatives"]) == alternatives
    assert predictor.decoder.traces == traced
