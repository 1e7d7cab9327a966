"""The models: a sequence-to-sequence Transformer, a Transformer classifier, and the masked
language model that pre-trains a classifier's encoder.

Token id 0 is padding everywhere; masks are derived from it. Source sequences are the
subword ids followed by </s> (no <s>), in training and at inference alike; decoder inputs
start with <s>, decoder targets end with </s>.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from model.config import ModelConfig
from model.layers import DecoderBlock, EncoderBlock, TokenAndPositionEmbedding, TokenDropout
from tokenizers import PAD_ID

Attention = dict[str, list[Any]]


def padding_mask(token_ids: Any) -> Any:
    """(batch, len) ids -> (batch, 1, len) booleans, True where a real token is."""
    return ops.expand_dims(ops.not_equal(token_ids, PAD_ID), axis=1)


def causal_mask(token_ids: Any) -> Any:
    """(batch, len) -> (batch, len, len): position i sees positions <= i that are not padding."""
    length = ops.shape(token_ids)[1]
    rows = ops.arange(length)[:, None]
    cols = ops.arange(length)[None, :]
    return ops.logical_and(ops.expand_dims(rows >= cols, 0), padding_mask(token_ids))


class _Encoder(keras.Model):
    """Embeddings, a stack of encoder blocks and a final norm (the pre-norm stack's)."""

    def __init__(self, model_config: ModelConfig | dict[str, Any], **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(model_config, dict):
            model_config = ModelConfig.from_dict(model_config)
        self.model_config = c = model_config
        self.embedding = TokenAndPositionEmbedding(
            vocab_size=c.vocab_size,
            d_model=c.d_model,
            max_length=c.max_length,
            dropout=c.dropout,
            name="embedding",
        )
        self.encoder_blocks = [
            EncoderBlock(
                d_model=c.d_model,
                num_heads=c.num_heads,
                d_ff=c.d_ff,
                dropout=c.dropout,
                attention_dropout=c.attention_dropout,
                name=f"encoder_{i}",
            )
            for i in range(c.encoder_layers)
        ]
        self.encoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="encoder_norm")

    def encode(self, source_ids: Any, training: bool = False) -> tuple[Any, Any, list[Any]]:
        """source_ids (batch, src_len) -> memory (batch, src_len, d_model), mask, attention."""
        mask = padding_mask(source_ids)  # (batch, 1, src_len)
        x = self.embedding(source_ids, training=training)
        attention = []
        for block in self.encoder_blocks:
            x, scores = block(x, mask, training=training)
            attention.append(scores)
        return self.encoder_norm(x), mask, attention

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "model_config": self.model_config.to_dict()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        return cls(**config)


@keras.saving.register_keras_serializable(package="nlp")
class Seq2SeqTransformer(_Encoder):
    """Encoder-decoder Transformer for translation; call((source, target_in)) -> logits."""

    def __init__(self, model_config: ModelConfig | dict[str, Any], **kwargs: Any):
        super().__init__(model_config, **kwargs)
        c = self.model_config
        self.decoder_embedding = (
            self.embedding
            if c.tie_embeddings
            else TokenAndPositionEmbedding(
                vocab_size=c.vocab_size,
                d_model=c.d_model,
                max_length=c.max_length,
                dropout=c.dropout,
                name="decoder_embedding",
            )
        )
        self.decoder_blocks = [
            DecoderBlock(
                d_model=c.d_model,
                num_heads=c.num_heads,
                d_ff=c.d_ff,
                dropout=c.dropout,
                attention_dropout=c.attention_dropout,
                name=f"decoder_{i}",
            )
            for i in range(c.decoder_layers)
        ]
        self.decoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="decoder_norm")

    def call(self, inputs: Any, training: bool = False, return_attention: bool = False) -> Any:
        source_ids, target_in = inputs
        memory, memory_mask, encoder_attention = self.encode(source_ids, training=training)
        logits, decoder_attention, cross_attention = self.decode(
            target_in, memory, memory_mask, training=training
        )
        if not return_attention:
            return logits
        return logits, {
            "encoder": encoder_attention,
            "decoder": decoder_attention,
            "cross": cross_attention,
        }

    def decode(
        self, target_in: Any, memory: Any, memory_mask: Any, training: bool = False
    ) -> tuple[Any, list[Any], list[Any]]:
        """Teacher-forced decoder: (batch, tgt_len) -> logits (batch, tgt_len, vocab)."""
        mask = causal_mask(target_in)
        x = self.decoder_embedding(target_in, training=training)
        self_attention, cross_attention = [], []
        for block in self.decoder_blocks:
            x, self_scores, cross_scores = block(x, memory, mask, memory_mask, training=training)
            self_attention.append(self_scores)
            cross_attention.append(cross_scores)
        return self._logits(self.decoder_norm(x)), self_attention, cross_attention

    def _logits(self, hidden: Any) -> Any:
        return self.decoder_embedding.logits(hidden)  # (batch, len, vocab), float32

    # Incremental decoding (used by model.decoding inside one graph).

    def init_cache(self, memory: Any, max_length: Any, beams: Any = 1) -> dict[str, Any]:
        """Empty self-attention caches (`beams` rows per sentence, sentence-major) and the
        memory's cross-attention keys/values (one per sentence, shared by its beams): all
        that a decoding loop needs before it starts. The loop changes only "self" (and
        reorders its rows); "cross" passes through it unchanged."""
        batch = ops.shape(memory)[0] * beams
        c = self.model_config
        keys = ops.zeros((batch, c.num_heads, c.head_dim, max_length), dtype=memory.dtype)
        values = ops.zeros((batch, c.num_heads, max_length, c.head_dim), dtype=memory.dtype)
        return {
            "self": [(keys, values) for _ in self.decoder_blocks],
            "cross": [b.cross_attention.cache_key_value(memory) for b in self.decoder_blocks],
        }

    def decode_step(
        self, token_ids: Any, index: Any, cache: dict[str, Any], memory_mask: Any
    ) -> tuple[Any, dict[str, Any], Any]:
        """token_ids (rows,) at position `index` -> log-probabilities (rows, vocab),
        the updated cache and the last layer's cross-attention (rows, heads, src_len).

        rows = sentences x beams, sentence-major; the memory mask has one row per sentence.
        """
        x = self.decoder_embedding(token_ids[:, None], start=index)  # (rows, 1, d_model)
        new_self = []
        cross_scores = None
        for block, self_cache, cross_cache in zip(
            self.decoder_blocks, cache["self"], cache["cross"], strict=True
        ):
            x, updated, _, cross_scores = block.step(x, index, self_cache, cross_cache, memory_mask)
            new_self.append(updated)
        logits = self._logits(self.decoder_norm(x))[:, 0]  # (rows, vocab)
        log_probs = ops.log_softmax(logits, axis=-1)
        return log_probs, {**cache, "self": new_self}, cross_scores[:, :, 0]


@keras.saving.register_keras_serializable(package="nlp")
class TransformerClassifier(_Encoder):
    """Encoder plus a masked-mean pooling head: sentiment and language identification."""

    def __init__(self, model_config: ModelConfig | dict[str, Any], **kwargs: Any):
        super().__init__(model_config, **kwargs)
        c = self.model_config
        # Created only when used: its seed state is a variable, and models trained without
        # it keep the weight layout they were saved with.
        self.token_dropout = (
            TokenDropout(c.token_dropout, name="token_dropout") if c.token_dropout > 0 else None
        )
        self.pool_dropout = keras.layers.Dropout(c.dropout, name="pool_dropout")
        self.classifier = keras.layers.Dense(len(c.labels), name="classifier")

    def call(self, token_ids: Any, training: bool = False, return_attention: bool = False) -> Any:
        if self.token_dropout is not None:
            token_ids = self.token_dropout(token_ids, training=training)
        memory, mask, attention = self.encode(token_ids, training=training)
        weights = ops.cast(ops.transpose(mask, (0, 2, 1)), memory.dtype)  # (batch, len, 1)
        pooled = ops.sum(memory * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
        pooled = self.pool_dropout(pooled, training=training)
        logits = ops.cast(self.classifier(pooled), "float32")  # (batch, labels)
        if return_attention:
            return logits, {"encoder": attention}
        return logits


@keras.saving.register_keras_serializable(package="nlp")
class MaskedLanguageModel(_Encoder):
    """A classifier's encoder with the tied embedding as output layer: predicts the tokens
    that masking replaced (pre-training on unlabeled text). call(ids) -> (batch, len, vocab)
    float32 logits; call((ids, positions)) -> (batch, predictions, vocab), the logits at
    `positions` (batch, predictions) only, as BERT does: the output layer and its softmax
    then cost a seventh of the full sequence's at a 15% masking rate."""

    def call(self, inputs: Any, training: bool = False) -> Any:
        token_ids, positions = inputs if isinstance(inputs, tuple | list) else (inputs, None)
        memory, _, _ = self.encode(token_ids, training=training)
        if positions is not None:
            shape = ops.shape(memory)
            rows = ops.reshape(memory, (-1, self.model_config.d_model))
            offsets = ops.expand_dims(ops.arange(shape[0], dtype="int32") * shape[1], 1)
            memory = ops.take(rows, ops.cast(positions, "int32") + offsets, axis=0)
        return self.embedding.logits(memory)

    def copy_encoder_to(self, model: _Encoder) -> None:
        """Loads this encoder's weights (embedding, blocks, final norm) into `model`'s."""
        pairs = [(self.embedding, model.embedding), (self.encoder_norm, model.encoder_norm)]
        pairs += list(zip(self.encoder_blocks, model.encoder_blocks, strict=True))
        for source, target in pairs:
            target.set_weights(source.get_weights())


def build_model(model_config: ModelConfig) -> Seq2SeqTransformer | TransformerClassifier:
    """A model with its weights created (so that weights can be loaded into it)."""
    model: Seq2SeqTransformer | TransformerClassifier
    ids = ops.ones((1, 4), dtype="int32")
    if model_config.task == "translation":
        model = Seq2SeqTransformer(model_config)
        model((ids, ids))
    else:
        model = TransformerClassifier(model_config)
        model(ids)
    return model
