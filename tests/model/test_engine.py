"""The CTranslate2 export: every weight mapped, and the engine decodes like the Keras model."""

from __future__ import annotations

from pathlib import Path

import pytest

from model import artifacts, data, engine
from model.decoding import DecodeOptions
from model.predictor import LoadedArtifact, Translator, load_artifact
from model.transformer import build_model


@pytest.fixture(scope="module")
def version(trained_root: Path) -> Path:
    return trained_root / "translation" / "en-de" / "1"


@pytest.fixture(scope="module")
def loaded(version: Path) -> LoadedArtifact:
    return load_artifact(version)


@pytest.fixture(scope="module")
def sources(corpus_dir: Path, loaded: LoadedArtifact) -> list[list[int]]:
    lines = data.read_lines(corpus_dir / "val.en.gz") + data.read_lines(corpus_dir / "train.en.gz")
    return loaded.tokenizer.encode_batch(lines[:120])


def _engine(version: Path, loaded: LoadedArtifact, compute_type: str = "float32") -> engine.Engine:
    options = engine.EngineOptions(compute_type=compute_type)
    return engine.Engine(version / engine.EXPORT_DIR, loaded.tokenizer, options)


def test_a_published_version_carries_a_checked_export(version: Path) -> None:
    manifest = artifacts.verify(version)  # the export's files are checksummed too
    assert f"{engine.EXPORT_DIR}/model.bin" in manifest["files"]
    check = manifest["engine"]
    assert check["sentences"] > 0
    assert check["identical_greedy"] == check["sentences"]
    assert set(check["bleu"]) == {"float32", "int8"}


def test_float32_greedy_output_is_the_keras_reference_piece_for_piece(
    version: Path, loaded: LoadedArtifact, sources: list[list[int]]
) -> None:
    reference = Translator(loaded).decoder
    ours = _engine(version, loaded)
    options = DecodeOptions(beam_size=1)
    expected = reference.translate(sources, options)
    got = ours.translate(sources, options)
    assert [h[0].ids for h in got] == [h[0].ids for h in expected]
    for source, a, b in zip(sources, expected, got, strict=True):
        if len(b[0].ids) < ours.limit(len(source), options):  # ended with </s>
            assert b[0].score == pytest.approx(a[0].score, abs=1e-4)


def test_beam_search_n_best_lists_agree(
    version: Path, loaded: LoadedArtifact, sources: list[list[int]]
) -> None:
    """Both rank by total log-probability here (no length penalty). The best hypothesis is
    the same everywhere, and a hypothesis both lists hold has the same score in both. Lower
    places may differ: the searches stop differently (CTranslate2 ends a sentence once it
    has its n finished hypotheses, ours when no live beam can still win)."""
    reference = Translator(loaded).decoder
    ours = _engine(version, loaded)
    options = DecodeOptions(beam_size=4, num_return=3, length_penalty=0.0)
    expected = reference.translate(sources, options)
    got = ours.translate(sources, options)
    shared = 0
    for a, b in zip(expected, got, strict=True):
        assert len(b) == 3
        assert b[0].ids == a[0].ids
        scores = {tuple(h.ids): h.ranking_score for h in a}
        for hypothesis in b:
            if tuple(hypothesis.ids) in scores:
                shared += 1
                assert hypothesis.ranking_score == pytest.approx(
                    scores[tuple(hypothesis.ids)], abs=1e-3
                )
    assert shared > len(sources)  # more than the best ones alone


def test_output_length_limits_are_the_keras_decoders(
    version: Path, loaded: LoadedArtifact, sources: list[list[int]]
) -> None:
    reference = Translator(loaded).decoder
    ours = _engine(version, loaded)
    options = DecodeOptions(beam_size=1, max_length=4)
    expected = reference.translate(sources[:20], options)
    got = ours.translate(sources[:20], options)
    assert [h[0].ids for h in got] == [h[0].ids for h in expected]
    assert max(len(h[0].ids) for h in got) <= 3  # the last of 4 steps is </s>


def test_int8_engine_translates_too(
    version: Path, loaded: LoadedArtifact, sources: list[list[int]]
) -> None:
    ours = _engine(version, loaded, "int8")
    assert ours.name.startswith("ctranslate2/int8")  # int8 weights, float32 elsewhere
    nbest = ours.translate(sources[:8], DecodeOptions(beam_size=2, num_return=2))
    assert all(len(h) == 2 and h[0].score <= 0 for h in nbest)


def test_the_export_fails_on_a_weight_it_did_not_map(
    loaded: LoadedArtifact, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(engine._Weights, "feed_forward", lambda self, spec, block: None)
    with pytest.raises(engine.ExportError, match="ffn/hidden/kernel"):
        engine.export(loaded.model, loaded.tokenizer, tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_untied_embeddings_are_refused(loaded: LoadedArtifact, tmp_path: Path) -> None:
    model = build_model(loaded.config.replace(tie_embeddings=False))
    with pytest.raises(engine.ExportError, match="tied embeddings"):
        engine.export(model, loaded.tokenizer, tmp_path / "export")


@pytest.mark.parametrize(
    ("bleu", "device", "expected"),
    [
        ({"float32": 30.0, "int8": 29.8}, "cpu", "int8"),
        ({"float32": 30.0, "int8": 29.6}, "cpu", "float32"),
        ({"float32": 30.0, "int8": 30.4}, "cuda", "int8_float16"),
        ({"float32": 30.0, "int8": 29.0}, "cuda", "float16"),
        ({}, "cpu", "float32"),
    ],
)
def test_int8_serves_only_within_the_allowed_bleu_drop(
    bleu: dict[str, float], device: str, expected: str
) -> None:
    assert engine.choose_compute_type({"bleu": bleu}, device) == expected
