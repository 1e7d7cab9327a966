"""model.predictor on the session's trained tiny artifacts (trained_root)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from model import artifacts
from model.calibration import softmax
from model.predictor import Classifier, LoadedArtifact, Translator, load_artifact
from tokenizers import normalize


@pytest.fixture(scope="module")
def translator(trained_root: Path) -> Translator:
    return Translator(load_artifact(trained_root / "translation" / "en-de" / "1"))


@pytest.fixture(scope="module")
def sentiment(trained_root: Path) -> LoadedArtifact:
    return load_artifact(trained_root / "sentiment" / "sst2" / "1")


def test_translator_translates_a_training_like_sentence(translator: Translator) -> None:
    [[translation]] = translator.translate(["A man runs in the house."])
    assert translation.text.strip()
    assert translation.token_count >= 2
    assert translation.score <= 0
    assert (translator.source, translator.target) == ("en", "de")


def test_translator_translates_a_batch_in_order(translator: Translator) -> None:
    texts = ["The dog sits.", "A child plays on the street."]
    batch = [nbest[0].text for nbest in translator.translate(texts)]
    alone = [translator.translate([text])[0][0].text for text in texts]
    assert batch == alone
    assert all(batch)


def test_translator_attention_has_a_row_per_token(translator: Translator) -> None:
    result = translator.attention("The cat eats.")
    sources, targets = result["source_tokens"], result["target_tokens"]
    assert result["translation"].strip()
    assert result["cross_attention"].shape[-2:] == (len(targets), len(sources))
    for piece in sources[:-1]:  # the last is </s>
        assert result["text"][piece.start : piece.end] == piece.piece.replace("▁", "")


def test_classifier_returns_both_labels_sorted_by_probability(sentiment: LoadedArtifact) -> None:
    classifier = Classifier(sentiment)
    results = classifier.classify(["the film is wonderful .", "It's a dull, boring movie."])
    for labels in results:
        assert sorted(name for name, _ in labels) == ["NEGATIVE", "POSITIVE"]
        probabilities = [p for _, p in labels]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)


def test_classifier_probabilities_have_a_row_per_text(sentiment: LoadedArtifact) -> None:
    classifier = Classifier(sentiment)
    assert classifier.probabilities([]).shape == (0, 2)
    probabilities = classifier.probabilities(["great", "awful", "the cast is moving ."])
    assert probabilities.shape == (3, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_langid_classifier_knows_its_four_languages(trained_root: Path) -> None:
    classifier = Classifier(load_artifact(trained_root / "langid" / "multi30k" / "1"))
    [labels] = classifier.classify(["der mann und der hund"])
    assert sorted(name for name, _ in labels) == ["cs", "de", "en", "fr"]


def test_a_tampered_artifact_is_refused(trained_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "sst2"
    shutil.copytree(trained_root / "sentiment" / "sst2" / "1", copy)
    weights = copy / artifacts.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(artifacts.ArtifactError, match=artifacts.WEIGHTS):
        load_artifact(copy)


def test_a_classifier_artifact_is_not_a_translator(sentiment: LoadedArtifact) -> None:
    with pytest.raises(artifacts.ArtifactError, match="not a translation artifact"):
        Translator(sentiment)


def test_the_fitted_temperature_is_stored_and_applied(sentiment: LoadedArtifact) -> None:
    config = sentiment.config
    calibration = sentiment.manifest["metrics"]["calibration"]
    assert config.temperature == calibration["temperature"] > 0
    texts = ["the film is wonderful .", "the plot is dull .", "the cast is moving ."]
    classifier = Classifier(sentiment)
    logits = classifier.logits(texts)
    np.testing.assert_allclose(
        classifier.probabilities(texts), softmax(logits / config.temperature), rtol=1e-5
    )
    # A higher temperature flattens every probability towards 1/2, never changing the label.
    plain = Classifier(replace(sentiment, config=config.replace(temperature=1.0)))
    hotter = Classifier(replace(sentiment, config=config.replace(temperature=4.0)))
    p1, p4 = plain.probabilities(texts), hotter.probabilities(texts)
    np.testing.assert_array_equal(p1.argmax(1), p4.argmax(1))
    assert np.all(np.abs(p4 - 0.5) < np.abs(p1 - 0.5))
    np.testing.assert_allclose(p4, softmax(logits / 4.0), rtol=1e-5)
    assert hotter.attention(texts[0])["score"] == pytest.approx(float(p4[0].max()), rel=1e-4)


def test_a_long_text_is_read_as_its_head_and_tail(sentiment: LoadedArtifact) -> None:
    config = sentiment.config.replace(read_pieces=10, tail_pieces=4)
    classifier = Classifier(replace(sentiment, config=config))
    text = " ".join(["the film is wonderful ."] * 10 + ["the ending is dull ."] * 10)
    pieces = sentiment.tokenizer.encode(normalize(text, config.normalizer))
    assert len(pieces) > 10
    ids = classifier._ids([text])[0]
    np.testing.assert_array_equal(ids[:10], [*pieces[:6], *pieces[-4:]])
    assert not ids[10:].any()  # padding
    tokens = [p.id for p in classifier.attention(text)["tokens"]]
    assert tokens == [*pieces[:6], *pieces[-4:]]
