"""LibreTranslate's clients unchanged: fields from the JSON body, the form body or the query
string (the body wins), GET /frontend/settings, and deep-translator over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from deep_translator import LibreTranslator
from deep_translator.exceptions import AuthorizationException
from fastapi.testclient import TestClient

from app.formats import supported_formats
from app.main import create_app
from tests.app.conftest import make_settings, wait_until_ready
from tests.servers import LiveServer

SENTENCE = "A man runs in the house."
PAIR = {"source": "en", "target": "de"}
KEY = {"Authorization": "Bearer query-key"}


def translated(client: TestClient, text: str) -> str:
    """The translation of a JSON request with the key in the header (beam size 1)."""
    response = client.post("/translate", json={"q": text, **PAIR, "beam_size": 1}, headers=KEY)
    assert response.status_code == 200, response.text
    return str(response.json()["translatedText"])


@pytest.fixture(scope="module")
def keyed(trained_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = make_settings(
        trained_root, api_keys="query-key", data_dir=tmp_path_factory.mktemp("libre-data")
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        wait_until_ready(client)
        yield client


def test_every_endpoint_takes_its_fields_from_the_query_string(keyed: TestClient) -> None:
    query = {"q": SENTENCE, **PAIR, "beam_size": "1", "api_key": "query-key"}
    response = keyed.post("/translate", params=query)  # no body at all, as deep-translator
    assert response.status_code == 200, response.text
    assert response.json()["translatedText"] == translated(keyed, SENTENCE)
    detect = keyed.post("/detect", params={"q": "Ein Hund läuft.", "api_key": "query-key"})
    assert detect.status_code == 200, detect.text
    assert detect.json()[0]["language"] in ("en", "de", "fr", "cs")
    suggestion = {"q": "A dog.", "s": "Ein Hund.", **PAIR, "api_key": "query-key"}
    suggest = keyed.post("/suggest", params=suggestion)
    assert (suggest.status_code, suggest.json()) == (200, {"success": True})


def test_a_repeated_q_in_the_query_string_is_a_list(keyed: TestClient) -> None:
    response = keyed.post(
        "/translate", params=[("q", SENTENCE), ("q", "The dog sits."), *PAIR.items()], headers=KEY
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["translatedText"]) == 2


def test_a_key_in_the_query_string_is_checked(keyed: TestClient) -> None:
    fields = {"q": SENTENCE, **PAIR}
    assert keyed.post("/translate", params={**fields, "api_key": "wrong"}).status_code == 403
    assert keyed.post("/translate", params=fields).status_code == 403
    json_body = keyed.post("/translate", params={"api_key": "query-key"}, json=fields)
    assert json_body.status_code == 200, json_body.text


@pytest.mark.parametrize("as_form", [False, True])
def test_the_body_wins_over_the_query_string(keyed: TestClient, as_form: bool) -> None:
    query = {"q": "The dog sits.", "source": "en", "target": "fr", "api_key": "wrong"}
    body = {"q": SENTENCE, **PAIR, "beam_size": "1", "api_key": "query-key"}
    sent = {"data": body} if as_form else {"json": body}
    response = keyed.post("/translate", params=query, **sent)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    assert response.json()["translatedText"] == translated(keyed, SENTENCE)


def test_query_and_body_fields_combine(keyed: TestClient) -> None:
    response = keyed.post("/translate", params={"target": "de"}, json={"q": SENTENCE}, headers=KEY)
    assert response.status_code == 422  # no source anywhere
    response = keyed.post(
        "/translate", params={"target": "de", "beam_size": "1"}, data={"q": SENTENCE}, headers=KEY
    )
    assert response.status_code == 422  # still no source
    complete = keyed.post(
        "/translate", params=PAIR | {"beam_size": "1"}, data={"q": SENTENCE}, headers=KEY
    )
    assert complete.status_code == 200, complete.text


def test_an_empty_request_is_422_not_500(keyed: TestClient) -> None:
    response = keyed.post("/translate", headers=KEY)
    assert response.status_code == 422
    assert response.json()["error_type"] == "invalid_input"


def test_frontend_settings_are_true_to_the_settings(keyed: TestClient) -> None:
    response = keyed.get("/frontend/settings")  # open, like /languages: no key needed
    assert response.status_code == 200
    assert response.json() == {
        "charLimit": 500,
        "frontendTimeout": 500,
        "apiKeys": True,
        "keyRequired": True,
        "suggestions": True,
        "filesTranslation": True,
        "supportedFilesFormat": supported_formats(),
        "language": {
            "source": {"code": "auto", "name": "Auto Detect"},  # a language identifier is loaded
            "target": {"code": "de", "name": "German"},
        },
    }


def test_frontend_settings_follow_other_settings(trained_root: Path) -> None:
    settings = make_settings(
        trained_root,
        max_text_chars=123,
        frontend_timeout_ms=900,
        suggestions=False,
        files_translation=False,
        frontend_language_source="en",
        frontend_language_target="fr",  # not served from en: the first target that is
    )
    with TestClient(create_app(settings)) as client:
        wait_until_ready(client)
        body = client.get("/frontend/settings").json()
    assert (body["charLimit"], body["frontendTimeout"]) == (123, 900)
    assert (body["apiKeys"], body["keyRequired"], body["suggestions"]) == (False, False, False)
    assert (body["filesTranslation"], body["supportedFilesFormat"]) == (False, [])
    assert body["language"] == {
        "source": {"code": "en", "name": "English"},
        "target": {"code": "de", "name": "German"},
    }


def test_deep_translator_translates_through_the_service(trained_root: Path, tmp_path: Path) -> None:
    """deep-translator posts q, source, target and api_key as query parameters to
    custom_url + 'translate' (its LibreTranslator), with requests over a real socket."""
    settings = make_settings(trained_root, api_keys="client-key", data_dir=tmp_path)
    with LiveServer(create_app(settings)) as server:
        expected = httpx.post(
            f"{server.url}/translate",
            json={"q": SENTENCE, **PAIR},
            headers={"Authorization": "Bearer client-key"},
            timeout=60,
        ).json()["translatedText"]
        client = LibreTranslator(
            source="en", target="de", api_key="client-key", custom_url=f"{server.url}/"
        )
        assert client.translate(SENTENCE) == expected
        batch = client.translate_batch([SENTENCE, "The dog sits."])
        assert batch[0] == expected and isinstance(batch[1], str) and batch[1]
        stranger = LibreTranslator(
            source="en", target="de", api_key="wrong", custom_url=f"{server.url}/"
        )
        with pytest.raises(AuthorizationException):
            stranger.translate(SENTENCE)
