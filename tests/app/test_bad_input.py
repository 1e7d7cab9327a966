"""Hostile and unusual input: a clear JSON error with the right status, or a correct answer.
Never a 500, never a hang."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

PAIR = {"source": "en", "target": "de"}


def assert_error(response, status: int, kind: str | None = None) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_type"} and body["error"]
    if kind:
        assert body["error_type"] == kind


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"q": "", **PAIR}, 422),
        ({"q": "   \n\t ", **PAIR}, 422),
        ({"q": [], **PAIR}, 422),
        ({"q": ["fine", ""], **PAIR}, 422),
        ({"q": 42, **PAIR}, 422),
        ({"q": ["a", 1], **PAIR}, 422),
        ({"q": "hi", "source": "en"}, 422),
        ({"q": "hi", **PAIR, "beam_size": 0}, 422),
        ({"q": "hi", **PAIR, "beam_size": "wide"}, 422),
        ({"q": "hi", **PAIR, "alternatives": -1}, 422),
        ({"q": "x" * 501, **PAIR}, 413),
        ({"q": ["x"] * 9, **PAIR}, 413),
        ({"q": "hi", "source": "xx", "target": "yy"}, 400),
    ],
)
def test_bad_translate_bodies(client: TestClient, body: dict, status: int) -> None:  # type: ignore[type-arg]
    assert_error(client.post("/translate", json=body), status)


@pytest.mark.parametrize(
    "raw", [b"{bad json", b"[1, 2]", b"null", b"\xff\xfe", b'{"q": "\\ud800"}']
)
def test_malformed_json_is_422(client: TestClient, raw: bytes) -> None:
    response = client.post("/translate", content=raw, headers={"content-type": "application/json"})
    assert response.status_code in (200, 422)
    if response.status_code == 422:
        assert_error(response, 422, "invalid_input")


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/translate", b'{"q": "a \\ud800 dog", "source": "en", "target": "de"}'),
        ("/translate", b'{"q": ["fine", "a \\udfff"], "source": "auto", "target": "de"}'),
        ("/translate", b'{"q": "a dog", "source": "\\ud800", "target": "de"}'),
        ("/detect", b'{"q": "a \\udc80 dog"}'),
        ("/sentiment", b'{"inputs": ["a \\ud800 dog"]}'),
        ("/attention-map", b'{"task": "sentiment", "text": "\\ud800"}'),
        (
            "/attention-map",
            b'{"task": "translation", "text": "a", "source": "en", "target": "\\udfff"}',
        ),
    ],
)
def test_lone_surrogates_are_422_not_500(client: TestClient, path: str, raw: bytes) -> None:
    """Legal JSON escapes, but no UTF-8 encoder (tokenizer, cache key) takes them."""
    response = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert_error(response, 422, "invalid_input")
    assert "surrogate" in response.json()["error"]


@pytest.mark.parametrize(
    "text",
    [
        "a dog\x00 runs\x07 in\x1b the house",  # control characters
        "a dog 🐕 runs 🏃‍♂️ in the house 🏠",  # emoji, joiners
        "كلب يركض في المنزل",  # right-to-left script
        "שלום \u202eabc\u202c עולם",  # bidi override characters
        "x" * 500,  # one long word at the limit
    ],
)
def test_unusual_text_gets_an_answer(client: TestClient, text: str) -> None:
    response = client.post("/translate", json={"q": text, **PAIR, "beam_size": 1})
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["translatedText"], str)
    sentiment = client.post("/sentiment", json={"inputs": text})
    assert sentiment.status_code == 200, sentiment.text


def test_100_kb_of_one_word_is_413_not_a_hang(client: TestClient) -> None:
    assert_error(client.post("/translate", json={"q": "a" * 100_000, **PAIR}), 413)


def test_body_over_the_byte_limit_is_413_before_parsing(client: TestClient) -> None:
    response = client.post(
        "/translate",
        content=b"{" + b" " * 70_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/sentiment", {"inputs": ""}, 422),
        ("/sentiment", {"inputs": None}, 422),
        ("/sentiment", {"inputs": ["a"] * 9}, 413),
        ("/sentiment", {"inputs": "ok", "parameters": {"top_k": 0}}, 422),
        ("/detect", {"q": ""}, 422),
        ("/attention-map", {"task": "sentiment", "text": ""}, 422),
        ("/attention-map", {"task": "sentiment", "text": "x" * 600}, 413),
        ("/attention-map", {"task": "sentiment", "text": "ok", "format": "gif"}, 422),
        ("/attention-map", {"task": "sentiment", "text": "ok", "heads": []}, 422),
    ],
)
def test_bad_bodies_on_other_endpoints(
    client: TestClient, path: str, body: dict, status: int
) -> None:  # type: ignore[type-arg]
    assert_error(client.post(path, json=body), status)


def test_unknown_paths_and_methods_are_json_errors(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/translate"), 405, "method_not_allowed")
