"""model.artifacts: atomic, integer-versioned publishing and checksum verification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model import artifacts
from model.artifacts import ArtifactError, list_versions, publish, verify


def publish_one(root: Path, task: str = "translation", name: str = "en-de") -> Path:
    """A small artifact: weights, tokenizer, metrics, a nested file and a manifest."""
    publication = publish(root, task, name)
    with publication as staging:
        (staging / artifacts.WEIGHTS).write_bytes(bytes(range(256)) * 4)
        (staging / artifacts.TOKENIZER).write_bytes(b"sentencepiece")
        (staging / artifacts.METRICS).write_text('{"bleu": 1.0}')
        (staging / "extra").mkdir()
        (staging / "extra" / "notes.txt").write_text("nested files are hashed too")
        (staging / artifacts.MANIFEST).write_text(json.dumps({"model_config": {"d_model": 8}}))
    assert publication.path is not None
    return publication.path


def test_publish_numbers_versions_1_2_3(tmp_path: Path) -> None:
    paths = [publish_one(tmp_path) for _ in range(3)]
    assert paths == [tmp_path / "translation" / "en-de" / str(v) for v in (1, 2, 3)]
    assert [ref.version for ref in list_versions(tmp_path, "translation", "en-de")] == [1, 2, 3]
    assert [verify(p)["version"] for p in paths] == [1, 2, 3]


def test_versions_are_ordered_as_integers(tmp_path: Path) -> None:
    folder = tmp_path / "sentiment" / "sst2"
    for version in (2, 10, 9):
        (folder / str(version)).mkdir(parents=True)
    assert [r.version for r in list_versions(tmp_path, "sentiment", "sst2")] == [2, 9, 10]
    assert publish_one(tmp_path, "sentiment", "sst2").name == "11"


def test_manifest_keeps_the_writers_fields_and_adds_provenance(tmp_path: Path) -> None:
    manifest = verify(publish_one(tmp_path))
    assert manifest["model_config"] == {"d_model": 8}
    assert (manifest["task"], manifest["name"], manifest["version"]) == ("translation", "en-de", 1)
    assert {"tensorflow", "keras", "sentencepiece"} <= set(manifest["framework_versions"])
    assert "created_at" in manifest and "git_commit" in manifest
    assert sorted(manifest["files"]) == [
        "extra/notes.txt", artifacts.METRICS, artifacts.WEIGHTS, artifacts.TOKENIZER,
    ]  # fmt: skip


def test_a_failing_publish_leaves_no_version_and_no_staging_folder(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="interrupted"),
        publish(tmp_path, "translation", "en-de") as staging,
    ):
        (staging / artifacts.WEIGHTS).write_bytes(b"half")
        raise RuntimeError("interrupted")
    folder = tmp_path / "translation" / "en-de"
    assert list(folder.iterdir()) == []
    assert list_versions(tmp_path, "translation", "en-de") == []


def test_staging_folders_are_not_versions(tmp_path: Path) -> None:
    publication = publish(tmp_path, "translation", "en-de")
    with publication:
        assert list_versions(tmp_path, "translation", "en-de") == []
        assert publication.staging.name.startswith(".")
    assert publication.path is not None and publication.path.name == "1"


def test_unknown_task_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="unknown task 'summarize'"):
        publish(tmp_path, "summarize", "x")


def test_changing_one_byte_of_the_weights_fails_verification(tmp_path: Path) -> None:
    path = publish_one(tmp_path)
    weights = path / artifacts.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[100] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256") as error:
        verify(path)
    assert str(weights) in str(error.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = publish_one(tmp_path)
    (path / artifacts.TOKENIZER).unlink()
    with pytest.raises(ArtifactError, match="missing") as error:
        verify(path)
    assert str(path / artifacts.TOKENIZER) in str(error.value)


def test_an_extra_file_is_named(tmp_path: Path) -> None:
    path = publish_one(tmp_path)
    (path / "smuggled.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(ArtifactError, match="not listed") as error:
        verify(path)
    assert str(path / "smuggled.pkl") in str(error.value)


def test_a_missing_or_broken_manifest_is_an_artifact_error(tmp_path: Path) -> None:
    path = publish_one(tmp_path)
    (path / artifacts.MANIFEST).write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        verify(path)
    (path / artifacts.MANIFEST).unlink()
    with pytest.raises(ArtifactError, match=r"manifest\.json is missing"):
        verify(path)


def test_list_models_finds_every_task_and_name(tmp_path: Path) -> None:
    publish_one(tmp_path, "translation", "en-de")
    publish_one(tmp_path, "sentiment", "sst2")
    assert artifacts.list_models(tmp_path) == [("translation", "en-de"), ("sentiment", "sst2")]
