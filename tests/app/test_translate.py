"""POST /translate, /detect and GET /languages, as LibreTranslate clients use them."""

from __future__ import annotations

import lxml.html
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

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


FOUR = ["A man runs in the house.", "The dog sits.", "A child plays on a ball.", "The cat eats."]


def test_a_paragraph_is_translated_sentence_by_sentence(client: TestClient) -> None:
    paragraph = translate(client, q=" ".join(FOUR), beam_size=1)
    singles = [translate(client, q=t, beam_size=1) for t in FOUR]
    assert paragraph["translatedText"] == " ".join(s["translatedText"] for s in singles)
    mean = sum(s["score"] for s in singles) / len(singles)
    assert abs(paragraph["score"] - mean) < 1e-5


def test_whitespace_and_line_breaks_around_sentences_are_kept(client: TestClient) -> None:
    body = translate(client, q="  The dog sits.\n\nThe cat eats.  \n", beam_size=1)
    one = translate(client, q="The dog sits.", beam_size=1)["translatedText"]
    two = translate(client, q="The cat eats.", beam_size=1)["translatedText"]
    assert body["translatedText"] == f"  {one}\n\n{two}  \n"


def test_a_known_sentence_in_a_new_paragraph_comes_from_the_cache(client: TestClient) -> None:
    known = ["A red dog sleeps.", "Two men walk in the park.", "A woman eats."]
    options = {"beam_size": 1, "max_length": 57}  # a cache key no other test uses
    first = translate(client, q=" ".join(known), **options)
    assert first["cached"] is False
    before = items_computed()
    second = translate(client, q=" ".join([*known, "A boy runs on the grass."]), **options)
    assert items_computed() == before + 1  # only the new sentence reached the model
    assert second["cached"] is False
    assert second["translatedText"].startswith(first["translatedText"] + " ")
    third = translate(client, q=" ".join([*known, "A boy runs on the grass."]), **options)
    assert third["cached"] is True and items_computed() == before + 1


def test_alternatives_of_several_sentences_join_each_sentences_nbest(client: TestClient) -> None:
    body = translate(client, q="The dog sits. The cat eats.", alternatives=1, beam_size=2)
    one = translate(client, q="The dog sits.", alternatives=1, beam_size=2)
    two = translate(client, q="The cat eats.", alternatives=1, beam_size=2)
    assert body["alternatives"] == [f"{one['alternatives'][0]} {two['alternatives'][0]}"]


def test_too_many_sentences_in_a_text_is_413(client: TestClient) -> None:
    limit = client.app.state.settings.max_sentences_per_text  # type: ignore[attr-defined]
    response = client.post(
        "/translate", json={"q": "A dog. " * (limit + 1), "source": "en", "target": "de"}
    )
    assert response.status_code == 413, response.text
    assert f"at most {limit}" in response.json()["error"]


def test_html_keeps_the_markup_and_translates_its_text(client: TestClient) -> None:
    markup = '<p class="x">The dog <b>sits</b>.</p><pre>The cat eats.</pre><p>A man runs.</p>'
    body = translate(client, q=markup, format="html", beam_size=1)
    out = lxml.html.fragment_fromstring(body["translatedText"], create_parent="div")
    first, pre, last = list(out)
    assert (first.tag, first.get("class"), [e.tag for e in first]) == ("p", "x", ["b"])
    assert (pre.tag, pre.text) == ("pre", "The cat eats.")
    assert (
        first.text_content() == translate(client, q="The dog sits.", beam_size=1)["translatedText"]
    )
    assert last.text_content() == translate(client, q="A man runs.", beam_size=1)["translatedText"]


def test_html_lists_and_alternatives(client: TestClient) -> None:
    body = translate(client, q=["<i>The dog sits.</i>", "plain"], format="html", alternatives=1)
    assert body["translatedText"][0].startswith("<i>")
    assert body["alternatives"] == [[], []]  # the markup gets the best translation only


def test_html_with_source_auto_detects_the_language_of_its_text(client: TestClient) -> None:
    markup = '<div class="x"><p>der mann und der hund</p> <span>mit ein haus</span></div>'
    response = client.post(
        "/translate", json={"q": markup, "source": "auto", "target": "de", "format": "html"}
    )
    assert response.status_code == 400  # detected as German: no de->de model
    assert "de->de" in response.json()["error"]


def test_html_that_cannot_be_parsed_is_400(client: TestClient) -> None:
    body = {"q": "<!DOCTYPE html>", "source": "en", "target": "de", "format": "html"}
    response = client.post("/translate", json=body)
    assert response.status_code == 400
    assert "could not be parsed" in response.json()["error"]


def items_computed() -> float:
    """Items the en->de model has run (the sum of its batch sizes)."""
    labels = {"model": "translation/en-de"}
    return REGISTRY.get_sample_value("nlp_batch_size_sum", labels) or 0.0
