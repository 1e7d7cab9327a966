"""Text in, text out: a trained artifact wrapped for the service, the CLIs and benchmarks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from model import artifacts
from model.calibration import softmax
from model.config import ModelConfig
from model.data import read_window
from model.decoding import DecodeOptions, Decoder, attention_maps
from model.transformer import Seq2SeqTransformer, TransformerClassifier, build_model
from tokenizers import EOS_ID, Piece, SubwordTokenizer, normalize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Translation:
    text: str
    score: float  # mean log-probability per token
    token_count: int


@dataclass(frozen=True)
class LoadedArtifact:
    model: Seq2SeqTransformer | TransformerClassifier
    tokenizer: SubwordTokenizer
    manifest: dict[str, Any]
    config: ModelConfig


def load_artifact(path: str | Path, *, verify: bool = True) -> LoadedArtifact:
    """Verifies checksums (unless told not to), rebuilds the model and loads its weights."""
    path = Path(path)
    manifest = artifacts.verify(path) if verify else artifacts.read_manifest(path)
    config = ModelConfig.from_dict(manifest["model_config"])
    model = build_model(config)
    try:
        model.load_weights(path / artifacts.WEIGHTS)
    except (ValueError, OSError) as error:
        raise artifacts.ArtifactError(f"{path / artifacts.WEIGHTS}: cannot load: {error}") from None
    tokenizer = SubwordTokenizer.load(path / artifacts.TOKENIZER)
    if tokenizer.vocab_size != config.vocab_size:
        raise artifacts.ArtifactError(
            f"{path}: tokenizer has {tokenizer.vocab_size} pieces, "
            f"the model expects {config.vocab_size}"
        )
    return LoadedArtifact(model, tokenizer, manifest, config)


class Translator:
    """Translates text with a Seq2SeqTransformer and its joint tokenizer.

    `decoder` is what turns source ids into n-best hypotheses: the CTranslate2 engine
    (model.engine.Engine) in the service, or, by default, the Keras reference decoder.
    Attention maps always come from the Keras model (one teacher-forced pass).
    """

    def __init__(
        self,
        loaded: LoadedArtifact,
        *,
        decoder: Any = None,
    ) -> None:
        if not isinstance(loaded.model, Seq2SeqTransformer):
            raise artifacts.ArtifactError("not a translation artifact")
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.manifest = loaded.manifest
        self.config = loaded.config
        self.decoder = decoder or Decoder(self.model)
        # Each decoder normalizes beam scores its own way (see model.engine).
        self.length_penalty = getattr(self.decoder, "length_penalty", DecodeOptions.length_penalty)
        self.engine = getattr(self.decoder, "name", "keras")
        self.engine_description = getattr(self.decoder, "description", "keras reference decoder")

    @property
    def source(self) -> str:
        return str(self.manifest["source_language"])

    @property
    def target(self) -> str:
        return str(self.manifest["target_language"])

    def prepare(self, text: str) -> str:
        return normalize(text, self.config.normalizer)

    def close(self) -> None:
        self.decoder.close()

    def translate(
        self, texts: Sequence[str], options: DecodeOptions = DecodeOptions()
    ) -> list[list[Translation]]:
        """n-best translations per text (one unless options.num_return > 1)."""
        ids = self.tokenizer.encode_batch([self.prepare(t) for t in texts])
        nbest = self.decoder.translate(ids, options)
        return [
            [Translation(self.tokenizer.decode(h.ids), h.score, len(h.ids) + 1) for h in hyps]
            for hyps in nbest
        ]

    def attention(self, text: str, options: DecodeOptions = DecodeOptions()) -> dict[str, Any]:
        """The translation, its pieces with spans, and every attention map."""
        prepared = self.prepare(text)
        source = self.tokenizer.encode_with_spans(prepared)
        hypothesis = self.decoder.translate([source.ids], options)[0][0]
        translation = self.tokenizer.decode(hypothesis.ids)
        maps = attention_maps(self.model, source.ids, hypothesis.ids)
        return {
            "text": prepared,
            "translation": translation,
            "score": hypothesis.score,
            "source_tokens": [*source.pieces, Piece("</s>", EOS_ID, len(prepared), len(prepared))],
            "target_tokens": output_pieces(self.tokenizer, hypothesis.ids),
            "encoder_attention": maps["encoder"],
            "decoder_attention": maps["decoder"],
            "cross_attention": maps["cross"],
        }


def output_pieces(tokenizer: SubwordTokenizer, ids: Sequence[int]) -> list[Piece]:
    """Decoder query rows: <s> then each generated piece, with spans into the decoded text."""
    pieces = [Piece("<s>", 2, 0, 0)]
    previous = ""
    for i, token in enumerate(ids):
        text = tokenizer.decode(ids[: i + 1])
        start = len(previous)
        while start < len(text) and text[start].isspace():
            start += 1
        pieces.append(Piece(tokenizer.id_to_piece(token), int(token), start, len(text)))
        previous = text
    return pieces


class Classifier:
    """Labels text with a TransformerClassifier (sentiment or language identification)."""

    def __init__(self, loaded: LoadedArtifact) -> None:
        if not isinstance(loaded.model, TransformerClassifier):
            raise artifacts.ArtifactError("not a classifier artifact")
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.manifest = loaded.manifest
        self.config = loaded.config
        self.labels = list(self.config.labels)
        self.temperature = self.config.temperature
        # One graph for every batch shape: eager Keras calls are slow on the CPU.
        self._forward = tf.function(
            lambda ids: self.model(ids, training=False),
            input_signature=[tf.TensorSpec([None, None], tf.int32)],
        )

    def prepare(self, text: str) -> str:
        return normalize(text, self.config.normalizer)

    def close(self) -> None:
        """Nothing runs in the background for a classifier."""

    def read(self, pieces: Sequence[Any]) -> list[Any]:
        """The pieces of a text the model reads (all, or its head and tail)."""
        return read_window(pieces, self.config.read_limit, self.config.tail_pieces)

    def _ids(self, texts: Sequence[str]) -> np.ndarray:
        encoded = [
            self.read(ids) or [0]
            for ids in self.tokenizer.encode_batch([self.prepare(t) for t in texts])
        ]
        width = -(-max(len(ids) for ids in encoded) // 8) * 8  # a few shapes, few traces
        batch = np.zeros((len(encoded), width), dtype=np.int32)
        for row, ids in enumerate(encoded):
            batch[row, : len(ids)] = ids
        return batch

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), labels) logits, before the temperature."""
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float64)
        return np.asarray(self._forward(tf.constant(self._ids(texts))).numpy(), np.float64)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), labels) softmax probabilities of the logits / temperature."""
        return softmax(self.logits(texts), self.temperature).astype(np.float32)

    def classify(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Every label with its probability, most likely first, per text."""
        return [
            sorted(zip(self.labels, map(float, row), strict=True), key=lambda p: -p[1])
            for row in self.probabilities(texts)
        ]

    def attention(self, text: str) -> dict[str, Any]:
        prepared = self.prepare(text)
        encoding = self.tokenizer.encode_with_spans(prepared)
        pieces = self.read(encoding.pieces)
        ids = np.array([[p.id for p in pieces] or [0]], dtype=np.int32)
        logits, attention = self.model(ids, training=False, return_attention=True)
        probs = softmax(np.asarray(logits), self.temperature)[0]
        best = int(np.argmax(probs))
        return {
            "text": prepared,
            "tokens": pieces,
            "label": self.labels[best],
            "score": float(probs[best]),
            "attention": np.stack([a[0].numpy() for a in attention["encoder"]]),
        }
