"""CTranslate2: the export of a trained Seq2SeqTransformer and the engine that decodes it.

The Keras model stays the source of truth. `export` maps its weights one by one onto
CTranslate2's `TransformerSpec` (pre-norm, final norms, ReLU, tied embeddings, scaled
embeddings, our interleaved sinusoids as an explicit position table) and fails on any
weight it did not map; `verify_export` checks that the engine's float32 greedy output is
the Keras reference decoder's, piece for piece. `Engine` decodes with it in the service.

Length normalization differs between the two decoders: ours ranks beams by the GNMT
penalty ((5 + len) / 6) ** alpha, CTranslate2 by len ** alpha. The engine keeps its own;
the alpha it uses is a service setting (see docs/performance.md for the choice).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.layers import sinusoid_table
from tokenizers import BOS_ID, PAD_ID, SubwordTokenizer

if TYPE_CHECKING:
    from model.decode_options import DecodeOptions, Hypothesis
    from model.transformer import Seq2SeqTransformer

log = logging.getLogger(__name__)

EXPORT_DIR = "ctranslate2"  # inside a translation version folder
LAYER_NORM_EPSILON = 1e-6  # model.layers' LayerNormalization
# int8 weights serve by default only when they cost at most this much validation BLEU.
INT8_MAX_BLEU_DROP = 0.3
# CTranslate2 ranks beams by total log-probability / length ** alpha; chosen on validation
# (docs/performance.md): the engine's own default of 1, the mean log-probability per token.
ENGINE_LENGTH_PENALTY = 1.0


class ExportError(ValueError):
    """The model cannot be exported as it is (a weight left unmapped, a shape off)."""


class _Weights:
    """The model's variables as numpy arrays, each marked when the export takes it."""

    def __init__(self, model: Seq2SeqTransformer, dtype: str) -> None:
        self.dtype = dtype
        self.unused = {id(v): v.path for v in model.weights if "seed_generator" not in v.path}

    def take(self, variable: Any) -> np.ndarray:
        self.unused.pop(id(variable), None)
        return np.asarray(variable.numpy(), dtype=self.dtype)

    def linear(self, spec: Any, dense: Any) -> None:
        """A Dense layer: kernel (in, out) -> weight (out, in)."""
        spec.weight = np.ascontiguousarray(self.take(dense.kernel).T)
        spec.bias = self.take(dense.bias)

    def projections(self, spec: Any, *denses: Any) -> None:
        """Head projections (EinsumDense kernels (d_model, heads, key_dim)) stacked
        row-wise, as CTranslate2's fused query/key/value products take them."""
        kernels = [self.take(d.kernel) for d in denses]
        spec.weight = np.ascontiguousarray(
            np.concatenate([k.reshape(k.shape[0], -1).T for k in kernels], axis=0)
        )
        spec.bias = np.concatenate([self.take(d.bias).reshape(-1) for d in denses])

    def output(self, spec: Any, dense: Any) -> None:
        """The attention output (heads, key_dim, d_model) -> (d_model, heads * key_dim)."""
        kernel = self.take(dense.kernel)
        spec.weight = np.ascontiguousarray(kernel.reshape(-1, kernel.shape[-1]).T)
        spec.bias = self.take(dense.bias)

    def norm(self, spec: Any, layer: Any) -> None:
        spec.gamma = self.take(layer.gamma)
        spec.beta = self.take(layer.beta)

    def feed_forward(self, spec: Any, block: Any) -> None:
        self.norm(spec.layer_norm, block.ffn_norm)
        self.linear(spec.linear_0, block.feed_forward.hidden)
        self.linear(spec.linear_1, block.feed_forward.project)


def build_spec(model: Seq2SeqTransformer, vocabulary: Sequence[str], dtype: str) -> Any:
    """The filled TransformerSpec of `model` (weights in `dtype`, float32 or float16)."""
    import ctranslate2

    config = model.model_config
    if not config.tie_embeddings:
        raise ExportError("only models with tied embeddings are exported")
    spec = ctranslate2.specs.TransformerSpec.from_config(
        (config.encoder_layers, config.decoder_layers),
        config.num_heads,
        pre_norm=True,
        activation=ctranslate2.specs.Activation.RELU,
    )
    weights = _Weights(model, dtype)
    embedding = weights.take(model.embedding.token_embedding.embeddings)
    positions = sinusoid_table(config.max_length, config.d_model).astype(dtype)
    encoder, decoder = spec.encoder, spec.decoder
    for side in (encoder, decoder):
        side.scale_embeddings = True  # by sqrt(d_model), as TokenAndPositionEmbedding does
        side.position_encodings.encodings = positions
    encoder.embeddings[0].weight = embedding
    decoder.embeddings.weight = embedding
    decoder.projection.weight = embedding  # tied output projection, no bias
    weights.norm(encoder.layer_norm, model.encoder_norm)
    weights.norm(decoder.layer_norm, model.decoder_norm)
    for layer, block in zip(encoder.layer, model.encoder_blocks, strict=True):
        attention = block.self_attention
        weights.norm(layer.self_attention.layer_norm, block.attention_norm)
        weights.projections(
            layer.self_attention.linear[0],
            attention.query_dense,
            attention.key_dense,
            attention.value_dense,
        )
        weights.output(layer.self_attention.linear[1], attention.output_dense)
        weights.feed_forward(layer.ffn, block)
    for layer, block in zip(decoder.layer, model.decoder_blocks, strict=True):
        own, cross = block.self_attention, block.cross_attention
        weights.norm(layer.self_attention.layer_norm, block.self_norm)
        weights.projections(
            layer.self_attention.linear[0], own.query_dense, own.key_dense, own.value_dense
        )
        weights.output(layer.self_attention.linear[1], own.output_dense)
        weights.norm(layer.attention.layer_norm, block.cross_norm)
        weights.projections(layer.attention.linear[0], cross.query_dense)
        weights.projections(layer.attention.linear[1], cross.key_dense, cross.value_dense)
        weights.output(layer.attention.linear[2], cross.output_dense)
        weights.feed_forward(layer.ffn, block)
    if weights.unused:
        raise ExportError(f"weights not mapped to the engine: {sorted(weights.unused.values())}")
    spec.config.layer_norm_epsilon = LAYER_NORM_EPSILON
    spec.config.add_source_eos = True  # sources are pieces + </s>, as in training
    spec.register_source_vocabulary(list(vocabulary))
    spec.register_target_vocabulary(list(vocabulary))
    return spec


def export(
    model: Seq2SeqTransformer,
    tokenizer: SubwordTokenizer,
    folder: Path,
    dtype: str = "float32",
    quantization: str | None = None,
) -> Path:
    """Writes the CTranslate2 model of `model` into `folder` (created; must not exist):
    weights in `dtype`, or quantized (`int8`: a quarter of float32's size)."""
    if folder.exists():
        raise ExportError(f"{folder} exists already")
    vocabulary = [tokenizer.id_to_piece(i) for i in range(tokenizer.vocab_size)]
    spec = build_spec(model, vocabulary, dtype)
    spec.validate()
    spec.optimize(quantization=quantization)  # None: weights stay in `dtype`
    folder.mkdir(parents=True)
    spec.save(str(folder))
    positions = {"max_length": model.model_config.max_length}
    (folder / POSITIONS_FILE).write_text(json.dumps(positions) + "\n")
    log.info("exported %s to CTranslate2 (%s)", model.name, quantization or dtype)
    return folder


@dataclass(frozen=True)
class EngineOptions:
    """How the service runs the engine: device, compute type and threads."""

    device: str = "cpu"
    compute_type: str = "int8"
    inter_threads: int = 1  # batches decoded at once
    intra_threads: int = 1  # threads per batch (int8 with more than 1 thrashes OpenMP)


class Engine:
    """A CTranslate2 translator over one export; decodes subword ids like the Keras
    Decoder does (same `translate` signature and Hypothesis results)."""

    def __init__(
        self,
        folder: Path,
        tokenizer: SubwordTokenizer,
        options: EngineOptions = EngineOptions(),
    ) -> None:
        import ctranslate2

        self.options = options
        self.translator = ctranslate2.Translator(
            str(folder),
            device=options.device,
            compute_type=options.compute_type,
            inter_threads=options.inter_threads,
            intra_threads=options.intra_threads,
        )
        self.tokenizer = tokenizer
        self.vocabulary = [tokenizer.id_to_piece(i) for i in range(tokenizer.vocab_size)]
        self.index = {piece: i for i, piece in enumerate(self.vocabulary)}
        self.compute_type = self.translator.compute_type
        self.length_penalty = ENGINE_LENGTH_PENALTY
        self.name = f"ctranslate2/{self.compute_type}"  # what the outputs depend on
        self.description = (
            f"{self.name} on {options.device}, {options.inter_threads} batches at once, "
            f"{options.intra_threads} thread(s) each"
        )
        # The position table's length bounds sources (with </s>) and outputs (after <s>).
        self.positions = _positions(folder)

    def translate(
        self, sources: Sequence[Sequence[int]], options: DecodeOptions
    ) -> list[list[Hypothesis]]:
        """sources: subword ids without specials -> n-best hypotheses per source.

        A Hypothesis' score is the mean log-probability per token, </s> included, as the
        Keras decoder reports it; its ranking score is CTranslate2's (total / len ** alpha).
        """
        from model.decode_options import Hypothesis

        if not sources:
            return []
        sources = [list(ids)[: self.positions - 1] for ids in sources]
        tokens = [[self.vocabulary[i] for i in ids] for ids in sources]
        limits = [self.limit(len(s), options) for s in sources]
        results = self.translator.translate_batch(
            tokens,
            beam_size=options.beam_size,
            num_hypotheses=options.num_return,
            length_penalty=options.length_penalty,
            max_decoding_length=max(limits) + 1,  # room for </s> after the longest
            min_decoding_length=0,  # </s> may come first, as in the Keras decoder
            return_scores=True,
            max_batch_size=0,
            # As the Keras decoder: never <pad> or <s> (an undertrained model may favour them).
            suppress_sequences=[[self.vocabulary[PAD_ID]], [self.vocabulary[BOS_ID]]],
        )
        nbest = []
        for result, limit in zip(results, limits, strict=True):
            hypotheses = []
            for pieces, ranking in zip(result.hypotheses, result.scores, strict=True):
                ids = [self.index[p] for p in pieces][:limit]
                ended = len(pieces) <= limit  # </s> was generated (and counted) unless cut
                length = len(ids) + int(ended)
                total = ranking * max(length, 1) ** options.length_penalty
                hypotheses.append(Hypothesis(ids, total / max(length, 1), ranking))
            nbest.append(hypotheses)
        return nbest

    def limit(self, source_length: int, options: DecodeOptions) -> int:
        """Most pieces an output may have before its </s>: the Keras decoder's rule (steps
        up to the source length with its </s> times the ratio plus the offset, the cap and
        the position table; the last step is </s>)."""
        ratio = int((source_length + 1) * options.max_length_ratio) + options.max_length_offset
        return min(options.max_length, self.positions - 1, ratio) - 1

    def close(self) -> None:
        """Frees the engine's memory now rather than at garbage collection."""
        self.translator.unload_model()


POSITIONS_FILE = "positions.json"  # beside CTranslate2's files: the table's length


def _positions(folder: Path) -> int:
    return int(json.loads((folder / POSITIONS_FILE).read_text())["max_length"])


def export_metadata(folder: Path) -> dict[str, Any]:
    """CTranslate2's own config.json of an export (what it was written with)."""
    return json.loads((folder / "config.json").read_text())


def verify_export(
    reference: Any,
    tokenizer: SubwordTokenizer,
    folder: Path,
    sources: Sequence[str],
    references: Sequence[str],
    *,
    beam_size: int,
    batch_size: int = 32,
) -> dict[str, Any]:
    """The identity check of an export, for the manifest: float32 greedy pieces of the
    engine against the Keras reference decoder's (`reference`, a model.decoding.Decoder)
    on `sources`, and the BLEU of each compute type at `beam_size` (what the service uses
    to choose int8 only when it costs at most INT8_MAX_BLEU_DROP)."""
    from model.decode_options import DecodeOptions
    from model.scoring import translation_scores

    ids = tokenizer.encode_batch(list(sources))
    greedy = DecodeOptions(beam_size=1)
    engine = Engine(folder, tokenizer, EngineOptions(compute_type="float32"))
    identical, score_gap = 0, 0.0
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        ours = reference.translate(chunk, greedy)
        theirs = engine.translate(chunk, greedy)
        for source, a, b in zip(chunk, ours, theirs, strict=True):
            if a[0].ids == b[0].ids:
                identical += 1
                if len(b[0].ids) < engine.limit(len(source), greedy):  # not cut at the limit
                    score_gap = max(score_gap, abs(a[0].score - b[0].score))
    engine.close()
    bleu = {}
    beam = DecodeOptions(beam_size=beam_size, length_penalty=ENGINE_LENGTH_PENALTY)
    for compute_type in ("float32", "int8"):
        engine = Engine(folder, tokenizer, EngineOptions(compute_type=compute_type))
        outputs = [
            tokenizer.decode(nbest[0].ids)
            for start in range(0, len(ids), batch_size)
            for nbest in engine.translate(ids[start : start + batch_size], beam)
        ]
        bleu[compute_type] = translation_scores(outputs, list(references))["bleu"]
        engine.close()
    return {
        "format": "ctranslate2",
        "folder": EXPORT_DIR,
        "sentences": len(ids),
        "identical_greedy": identical,
        "max_score_difference": round(score_gap, 6),
        "bleu": bleu,
        "beam_size": beam_size,
        "length_penalty": ENGINE_LENGTH_PENALTY,
    }


def choose_compute_type(manifest_engine: dict[str, Any], device: str) -> str:
    """int8 on a CPU when the export's check found it within INT8_MAX_BLEU_DROP of
    float32 (float32 otherwise); int8_float16 on a GPU under the same rule, else float16."""
    bleu = manifest_engine.get("bleu", {})
    int8_ok = (
        "int8" in bleu
        and "float32" in bleu
        and bleu["float32"] - bleu["int8"] <= INT8_MAX_BLEU_DROP
    )
    if device == "cuda":
        return "int8_float16" if int8_ok else "float16"
    return "int8" if int8_ok else "float32"
