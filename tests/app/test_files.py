"""POST /translate_file and GET /download_file: each format round trips with its structure
kept and its text translated like /translate would; hostile files are refused cleanly."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docx
import lxml.html
import pytest
import srt
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.main import create_app
from tests.app.conftest import make_settings, wait_until_ready

MAX_FILE_BYTES = 60_000


def zipfile_with(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.fixture(scope="module")
def files_client(
    trained_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    settings = make_settings(
        trained_root,
        max_file_bytes=MAX_FILE_BYTES,
        max_file_chars=2_000,
        max_file_unpacked_bytes=1_000_000,
        file_chunk_sentences=2,
        file_store_dir=tmp_path_factory.mktemp("files"),
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        wait_until_ready(client)
        yield client


def upload(client: TestClient, name: str, data: bytes, source: str = "en"):  # type: ignore[no-untyped-def]
    return client.post(
        "/translate_file",
        files={"file": (name, data)},
        data={"source": source, "target": "de"},
    )


def translated_file(client: TestClient, name: str, data: bytes) -> bytes:
    response = upload(client, name, data)
    assert response.status_code == 200, response.text
    url = response.json()["translatedFileUrl"]
    assert url.startswith("http://testserver/download_file/")
    extension = name.rsplit(".", 1)[1]
    assert url.endswith(".html" if extension == "htm" else f".{extension}")
    download = client.get(url)
    assert download.status_code == 200, download.text
    assert f'filename="{url.rsplit("/", 1)[1]}"' in download.headers["content-disposition"]
    return download.content


def text_of(client: TestClient, text: str) -> str:
    response = client.post("/translate", json={"q": text, "source": "en", "target": "de"})
    assert response.status_code == 200, response.text
    return str(response.json()["translatedText"])


def test_a_text_file_is_translated_like_the_same_text(files_client: TestClient) -> None:
    text = "The dog sits. The cat eats.\n\n  A man runs in the house.\n"
    out = translated_file(files_client, "notes.txt", text.encode()).decode()
    assert out == text_of(files_client, text)
    assert out != text


def test_an_html_file_keeps_its_markup(files_client: TestClient) -> None:
    page = (
        "<!DOCTYPE html><html><head><title>The dog sits.</title></head><body>"
        '<p id="a">The cat <b>eats</b>.</p><pre>A man runs.</pre></body></html>'
    )
    out = translated_file(files_client, "page.htm", page.encode()).decode()
    assert out.startswith("<!DOCTYPE html>")
    tree = lxml.html.document_fromstring(out)
    assert tree.findtext(".//title") == text_of(files_client, "The dog sits.")
    paragraph = tree.get_element_by_id("a")
    assert [e.tag for e in paragraph] == ["b"]
    assert paragraph.text_content() == text_of(files_client, "The cat eats.")
    assert tree.findtext(".//pre") == "A man runs."


def make_docx() -> bytes:
    document = docx.Document()
    paragraph = document.add_paragraph("The dog ")
    paragraph.add_run("sits").bold = True
    paragraph.add_run(".")
    document.add_paragraph("")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "The cat eats."
    table.cell(0, 1).text = "A man runs."
    document.sections[0].header.paragraphs[0].text = "The sun shines."
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_a_word_file_keeps_its_runs_and_tables(files_client: TestClient) -> None:
    out = docx.Document(io.BytesIO(translated_file(files_client, "report.docx", make_docx())))
    first, empty = out.paragraphs[:2]
    assert [r.bold for r in first.runs] == [None, True, None]  # formatting kept per run
    assert first.text == text_of(files_client, "The dog sits.")
    assert empty.text == ""
    assert out.sections[0].header.paragraphs[0].text == text_of(files_client, "The sun shines.")
    cells = out.tables[0].rows[0].cells
    assert [c.text for c in cells] == [
        text_of(files_client, "The cat eats."),
        text_of(files_client, "A man runs."),
    ]


def test_subtitles_keep_their_numbers_and_timings(files_client: TestClient) -> None:
    source = (
        "1\n00:00:01,000 --> 00:00:02,500\nThe dog sits.\n\n"
        "7\n00:00:03,000 --> 00:00:04,000\nThe cat\neats.\n\n"
    )
    cues = list(srt.parse(translated_file(files_client, "film.srt", source.encode()).decode()))
    originals = list(srt.parse(source))
    assert [(c.index, c.start, c.end) for c in cues] == [
        (c.index, c.start, c.end) for c in originals
    ]
    assert [c.content for c in cues] == [
        text_of(files_client, "The dog sits."),
        text_of(files_client, "The cat eats."),  # a wrapped line is one sentence
    ]


def test_a_file_goes_to_the_batcher_in_chunks(files_client: TestClient) -> None:
    text = " ".join(f"A dog runs {n} times." for n in range(5))  # sentences no test sent
    before = batches()
    translated_file(files_client, "chunks.txt", text.encode())
    assert batches() == before + 3  # 2 + 2 + 1 sentences: file_chunk_sentences=2


@pytest.mark.parametrize("name", ["paper.pdf", "noextension", "archive.docx.zip"])
def test_an_unknown_format_is_400_listing_the_supported_ones(
    files_client: TestClient, name: str
) -> None:
    response = upload(files_client, name, b"The dog sits.")
    assert response.status_code == 400
    assert ".docx, .htm, .html, .srt, .txt" in response.json()["error"]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("fake.docx", b"The dog sits."),  # not a zip
        ("empty.docx", b""),
        ("other.docx", zipfile_with({"hello.txt": b"not a word file"})),
        ("latin1.txt", "Café crème.".encode("latin-1")),
        ("broken.srt", b"1\nnot a timing\nThe dog sits.\n"),
    ],
)
def test_a_corrupt_file_is_400(files_client: TestClient, name: str, data: bytes) -> None:
    before = files_counted(name.rsplit(".", 1)[1], "rejected")
    response = upload(files_client, name, data)
    assert response.status_code == 400, response.text
    assert response.json()["error_type"] == "bad_request"
    assert files_counted(name.rsplit(".", 1)[1], "rejected") == before + 1


def test_broken_html_still_gives_well_formed_html(files_client: TestClient) -> None:
    out = translated_file(files_client, "broken.html", b"<p>The dog <b>sits.<div></i>A man runs")
    tree = lxml.html.fragment_fromstring(out.decode(), create_parent="div")
    assert [e.tag for e in tree.iter()][:3] == ["div", "p", "b"]


def test_a_zip_bomb_is_refused_before_anything_is_inflated(
    files_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = zipfile_with({"word/document.xml": b"\0" * 2_000_000})  # a few KB on the wire
    assert len(bomb) < MAX_FILE_BYTES

    def never(*args: object) -> None:
        raise AssertionError("python-docx opened a zip bomb")

    monkeypatch.setattr("app.formats.word.docx.Document", never)
    response = upload(files_client, "bomb.docx", bomb)
    assert response.status_code == 413, response.text
    assert "unpacks to 2000000 bytes" in response.json()["error"]


def test_a_file_over_the_limits_is_413(files_client: TestClient) -> None:
    before = files_counted("txt", "too_large")
    too_big = upload(files_client, "big.txt", b"a" * (MAX_FILE_BYTES + 1))
    assert too_big.status_code == 413 and "at most 60000" in too_big.json()["error"]
    far_too_big = upload(files_client, "big.txt", b"a" * (MAX_FILE_BYTES * 10))  # middleware
    assert far_too_big.status_code == 413
    too_long = upload(files_client, "long.txt", b"The dog sits. " * 200)  # 2_800 characters
    assert too_long.status_code == 413 and "characters" in too_long.json()["error"]
    assert files_counted("txt", "too_large") == before + 2  # the middleware answers first


def test_unknown_names_are_404(files_client: TestClient) -> None:
    for name in ["A" * 32 + ".txt", "..", "%2e%2e%2fetc%2fpasswd", "x.exe"]:
        response = files_client.get(f"/download_file/{name}")
        assert response.status_code == 404, name
        assert response.json()["error_type"] == "not_found"


def test_source_auto_detects_the_files_language(files_client: TestClient) -> None:
    response = upload(files_client, "auto.txt", b"the man and the dog with a house", "auto")
    assert response.status_code == 200, response.text


def test_a_successful_file_is_counted_by_format(files_client: TestClient) -> None:
    before = files_counted("srt", "ok")
    translated_file(files_client, "one.srt", b"1\n00:00:01,000 --> 00:00:02,000\nA dog.\n")
    assert files_counted("srt", "ok") == before + 1


def files_counted(file_format: str, outcome: str) -> float:
    labels = {"format": file_format, "outcome": outcome}
    return REGISTRY.get_sample_value("nlp_files_translated_total", labels) or 0.0


def batches() -> float:
    labels = {"model": "translation/en-de"}
    return REGISTRY.get_sample_value("nlp_batch_size_count", labels) or 0.0
