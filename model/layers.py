"""Transformer building blocks, one small Keras layer per idea.

Attention returns its weights as values (never stashed on the layer) and can run one
decoding step at a time against a key/value cache. Blocks are pre-norm: the residual
path stays an identity, which trains stably from scratch without the careful warmup a
post-norm stack needs, at the price of one final LayerNorm per stack.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from tokenizers import EOS_ID, PAD_ID, UNK_ID

# Masked logits get this value; representable in float16 and still ~0 after softmax.
_MASK_VALUE = -1e4


def _serializable(cls: type) -> type:
    return keras.saving.register_keras_serializable(package="nlp")(cls)


@_serializable
class MultiHeadAttention(keras.layers.Layer):
    """Scaled dot-product attention over `num_heads` heads of `key_dim` each.

    The projections have the same shapes and order as `keras.layers.MultiHeadAttention`
    (query, key, value, output), so its weights load here one for one.
    """

    def __init__(self, *, num_heads: int, key_dim: int, dropout: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.dropout = dropout
        projection = dict(output_shape=(None, num_heads, key_dim), bias_axes="de")
        self.query_dense = keras.layers.EinsumDense("abc,cde->abde", name="query", **projection)
        self.key_dense = keras.layers.EinsumDense("abc,cde->abde", name="key", **projection)
        self.value_dense = keras.layers.EinsumDense("abc,cde->abde", name="value", **projection)
        self.dropout_layer = keras.layers.Dropout(dropout)
        self.output_dense: keras.layers.EinsumDense | None = None

    def build(self, query_shape: tuple[int | None, ...], value_shape: Any = None) -> None:
        value_shape = query_shape if value_shape is None else value_shape
        d_model = query_shape[-1]
        self.query_dense.build(query_shape)
        self.key_dense.build(value_shape)
        self.value_dense.build(value_shape)
        self.output_dense = keras.layers.EinsumDense(
            "abcd,cde->abe", output_shape=(None, d_model), bias_axes="e", name="attention_output"
        )
        self.output_dense.build((None, None, self.num_heads, self.key_dim))

    def project_key_value(self, value: Any) -> tuple[Any, Any]:
        """Keys and values for `value`; cross-attention computes these once per batch."""
        return self.key_dense(value), self.value_dense(value)  # (batch, len, heads, key_dim)

    def call(
        self,
        query: Any,
        value: Any,
        attention_mask: Any = None,
        training: bool = False,
    ) -> tuple[Any, Any]:
        key, value = self.project_key_value(value)
        return self.attend(query, key, value, attention_mask, training=training)

    def cache_key_value(self, value: Any) -> tuple[Any, Any]:
        """Keys and values laid out for one-query steps: keys (batch, heads, key_dim, len) and
        values (batch, heads, len, key_dim), so that `attend_step` is two batched matmuls with
        no transpose of the cache (einsum over the (batch, len, heads, key_dim) layout copies
        it at every step)."""
        return self.cache_layout(*self.project_key_value(value))

    @staticmethod
    def cache_layout(key: Any, value: Any) -> tuple[Any, Any]:
        """(batch, len, heads, key_dim) keys and values -> `cache_key_value`'s layout."""
        return ops.transpose(key, (0, 2, 3, 1)), ops.transpose(value, (0, 2, 1, 3))

    def attend(
        self, query: Any, key: Any, value: Any, attention_mask: Any = None, training: bool = False
    ) -> tuple[Any, Any]:
        """Attends `query` (batch, q_len, d_model) to projected keys/values.

        attention_mask: boolean, broadcastable to (batch, q_len, k_len); True = may attend.
        Returns the output (batch, q_len, d_model) and weights (batch, heads, q_len, k_len).
        """
        q = self._queries(query)  # (batch, q_len, heads, key_dim)
        logits = ops.einsum("aqhd,akhd->ahqk", q, key)  # (batch, heads, q_len, k_len)
        scores = self._softmax(logits, attention_mask)
        weights = ops.cast(self.dropout_layer(scores, training=training), value.dtype)
        context = ops.einsum("ahqk,akhd->aqhd", weights, value)  # (batch, q_len, heads, key_dim)
        return self.output_dense(context), scores  # type: ignore[misc]

    def attend_step(self, query: Any, key: Any, value: Any, attention_mask: Any) -> tuple[Any, Any]:
        """`attend` at inference for queries (batch, q_len, d_model) over keys/values in
        `cache_key_value`'s layout -> (batch, q_len, d_model), weights (batch, heads, q, k)."""
        q = ops.transpose(self._queries(query), (0, 2, 1, 3))  # (batch, heads, q_len, key_dim)
        scores = self._softmax(ops.matmul(q, key), attention_mask)  # (batch, heads, q, k)
        context = ops.matmul(ops.cast(scores, value.dtype), value)  # (batch, heads, q, key_dim)
        context = ops.transpose(context, (0, 2, 1, 3))  # (batch, q_len, heads, key_dim)
        return self.output_dense(context), scores  # type: ignore[misc]

    def _queries(self, query: Any) -> Any:
        q = self.query_dense(query)  # (batch, q_len, heads, key_dim)
        return q * ops.cast(1.0 / math.sqrt(self.key_dim), q.dtype)

    @staticmethod
    def _softmax(logits: Any, attention_mask: Any) -> Any:
        # Softmax in float32: under mixed precision float16 logits saturate.
        logits = ops.cast(logits, "float32")
        if attention_mask is not None:
            mask = ops.expand_dims(ops.cast(attention_mask, "bool"), axis=1)
            logits = ops.where(mask, logits, _MASK_VALUE)
        return ops.softmax(logits, axis=-1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_heads=self.num_heads, key_dim=self.key_dim, dropout=self.dropout)
        return config


def sinusoid_table(length: int, depth: int) -> np.ndarray:
    """The fixed positional encodings of "Attention Is All You Need", (length, depth)."""
    positions = np.arange(length)[:, None]
    rates = 1.0 / np.power(10000.0, (2 * (np.arange(depth) // 2)) / depth)
    angles = positions * rates[None, :]
    table = np.zeros((length, depth), dtype="float32")
    table[:, 0::2] = np.sin(angles[:, 0::2])
    table[:, 1::2] = np.cos(angles[:, 1::2])
    return table


@_serializable
class TokenAndPositionEmbedding(keras.layers.Layer):
    """Learned token embeddings scaled by sqrt(d_model), plus sinusoidal positions.

    The token matrix also serves as the (tied) output projection through `logits`.
    """

    def __init__(
        self, *, vocab_size: int, d_model: int, max_length: int, dropout: float, **kwargs: Any
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.max_length = max_length
        self.dropout = dropout
        self.token_embedding = keras.layers.Embedding(
            vocab_size,
            d_model,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=d_model**-0.5),
            name="tokens",
        )
        self.dropout_layer = keras.layers.Dropout(dropout)
        self.positions = ops.convert_to_tensor(sinusoid_table(max_length, d_model))

    def build(self, input_shape: Any) -> None:
        self.token_embedding.build(input_shape)

    def call(self, token_ids: Any, start: Any = 0, training: bool = False) -> Any:
        """token_ids (batch, len) -> (batch, len, d_model); positions start at `start`."""
        x = self.token_embedding(token_ids) * ops.cast(math.sqrt(self.d_model), self.compute_dtype)
        length = ops.shape(token_ids)[1]
        positions = ops.slice(self.positions, (start, 0), (length, self.d_model))
        x = x + ops.cast(positions, x.dtype)[None]
        return self.dropout_layer(x, training=training)

    def logits(self, hidden: Any) -> Any:
        """Tied output projection: (batch, len, d_model) -> (batch, len, vocab) in float32."""
        matrix = ops.cast(self.token_embedding.embeddings, hidden.dtype)
        # One 2-D product over all positions: a (batch, len, d) x (d, vocab) product
        # broadcast over the batch has a gradient of (batch, d, vocab) before its sum,
        # gigabytes at a 12,000-piece vocabulary.
        batch, length = ops.shape(hidden)[0], ops.shape(hidden)[1]
        flat = ops.reshape(hidden, (-1, self.d_model))
        logits = ops.matmul(flat, ops.transpose(matrix))
        return ops.cast(ops.reshape(logits, (batch, length, self.vocab_size)), "float32")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            d_model=self.d_model,
            max_length=self.max_length,
            dropout=self.dropout,
        )
        return config


@_serializable
class FeedForward(keras.layers.Layer):
    """Position-wise two-layer network with a ReLU, as in the paper."""

    def __init__(self, *, d_model: int, d_ff: int, dropout: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.d_model = d_model
        self.d_ff = d_ff
        self.dropout = dropout
        self.hidden = keras.layers.Dense(d_ff, activation="relu", name="hidden")
        self.project = keras.layers.Dense(d_model, name="project")
        self.dropout_layer = keras.layers.Dropout(dropout)

    def build(self, input_shape: Any) -> None:
        self.hidden.build(input_shape)
        self.project.build((*input_shape[:-1], self.d_ff))

    def call(self, x: Any, training: bool = False) -> Any:
        return self.project(self.dropout_layer(self.hidden(x), training=training))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(d_model=self.d_model, d_ff=self.d_ff, dropout=self.dropout)
        return config


class _Block(keras.layers.Layer):
    """Shared constructor arguments of encoder and decoder blocks."""

    def __init__(
        self,
        *,
        d_model: int,
        num_heads: int,
        d_ff: int,
        dropout: float,
        attention_dropout: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.d_model = d_model
        self.num_heads = num_heads
        self.d_ff = d_ff
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.residual_dropout = keras.layers.Dropout(dropout)
        self.feed_forward = FeedForward(d_model=d_model, d_ff=d_ff, dropout=dropout, name="ffn")
        self.ffn_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="ffn_norm")

    def _attention(self, name: str) -> MultiHeadAttention:
        return MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=self.d_model // self.num_heads,
            dropout=self.attention_dropout,
            name=name,
        )

    def _feed_forward(self, x: Any, training: bool) -> Any:
        y = self.feed_forward(self.ffn_norm(x), training=training)
        return x + self.residual_dropout(y, training=training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            d_model=self.d_model,
            num_heads=self.num_heads,
            d_ff=self.d_ff,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
        )
        return config


@_serializable
class EncoderBlock(_Block):
    """Global self-attention, then feed-forward; each with its own norm and residual."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.self_attention = self._attention("self_attention")
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="attention_norm")

    def build(self, input_shape: Any) -> None:
        for layer in (self.attention_norm, self.ffn_norm, self.feed_forward):
            layer.build(input_shape)
        self.self_attention.build(input_shape, input_shape)

    def call(self, x: Any, padding_mask: Any, training: bool = False) -> tuple[Any, Any]:
        """x (batch, len, d_model), padding_mask (batch, 1, len) -> (x, attention weights)."""
        h = self.attention_norm(x)
        y, scores = self.self_attention(h, h, attention_mask=padding_mask, training=training)
        x = x + self.residual_dropout(y, training=training)
        return self._feed_forward(x, training), scores


@_serializable
class DecoderBlock(_Block):
    """Causal self-attention, cross-attention, feed-forward: three separate norms.

    (The seeds reused one add-and-norm layer for two sublayers; each has its own here.)
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.self_attention = self._attention("self_attention")
        self.cross_attention = self._attention("cross_attention")
        self.self_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="self_norm")
        self.cross_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="cross_norm")

    def build(self, input_shape: Any) -> None:
        for layer in (self.self_norm, self.cross_norm, self.ffn_norm, self.feed_forward):
            layer.build(input_shape)
        self.self_attention.build(input_shape, input_shape)
        self.cross_attention.build(input_shape, input_shape)

    def call(
        self,
        x: Any,
        memory: Any,
        causal_mask: Any,
        memory_mask: Any,
        training: bool = False,
    ) -> tuple[Any, Any, Any]:
        """Teacher-forced pass over the whole target prefix.

        x (batch, tgt_len, d_model); memory (batch, src_len, d_model);
        causal_mask (batch, tgt_len, tgt_len); memory_mask (batch, 1, src_len).
        """
        h = self.self_norm(x)
        y, self_scores = self.self_attention(h, h, attention_mask=causal_mask, training=training)
        x = x + self.residual_dropout(y, training=training)
        h = self.cross_norm(x)
        y, cross_scores = self.cross_attention(
            h, memory, attention_mask=memory_mask, training=training
        )
        x = x + self.residual_dropout(y, training=training)
        return self._feed_forward(x, training), self_scores, cross_scores

    def step(
        self,
        x: Any,
        index: Any,
        self_cache: tuple[Any, Any],
        cross_cache: tuple[Any, Any],
        memory_mask: Any,
    ) -> tuple[Any, tuple[Any, Any], Any, Any]:
        """One decoding step at position `index` (inference only, no dropout).

        x (rows, 1, d_model); self_cache: keys (rows, heads, key_dim, max_len) and values
        (rows, heads, max_len, key_dim) with positions < index filled; cross_cache: the
        memory's keys and values in the same layout (`MultiHeadAttention.cache_key_value`),
        one per sentence. Returns the output, the updated self cache, and both attention
        weights.
        """
        attention = self.self_attention
        h = self.self_norm(x)
        new_key, new_value = attention.cache_layout(*attention.project_key_value(h))
        # Written in place (a dynamic-update-slice) rather than by blending the whole cache.
        key = ops.slice_update(self_cache[0], (0, 0, 0, index), new_key)
        value = ops.slice_update(self_cache[1], (0, 0, index, 0), new_value)
        visible = ops.reshape(ops.arange(ops.shape(value)[2]) <= index, (1, 1, -1))
        y, self_scores = attention.attend_step(h, key, value, visible)
        x = x + y
        y, cross_scores = self._cross_attend_step(self.cross_norm(x), cross_cache, memory_mask)
        x = x + y
        return self._feed_forward(x, training=False), (key, value), self_scores, cross_scores

    def _cross_attend_step(
        self, h: Any, cross_cache: tuple[Any, Any], memory_mask: Any
    ) -> tuple[Any, Any]:
        """Cross-attention for rows that may be `beams` hypotheses per source sentence.

        The memory's keys/values are kept once per sentence: the (batch * beams, 1, d_model)
        queries become (batch, beams, d_model), i.e. `beams` queries of one sentence, so
        beam search neither copies nor re-reads the memory per hypothesis.
        """
        rows, d_model = ops.shape(h)[0], ops.shape(h)[-1]
        sentences = ops.shape(cross_cache[0])[0]
        queries = ops.reshape(h, (sentences, rows // sentences, d_model))
        y, scores = self.cross_attention.attend_step(queries, *cross_cache, memory_mask)
        scores = ops.transpose(scores, (0, 2, 1, 3))  # (batch, beams, heads, src_len)
        scores = ops.reshape(scores, (rows, 1, *ops.shape(scores)[2:]))
        return ops.reshape(y, (rows, 1, d_model)), ops.transpose(scores, (0, 2, 1, 3))


@_serializable
class TokenDropout(keras.layers.Layer):
    """In training, replaces each word token by <unk> with probability `rate`.

    Padding and </s> are kept. <unk> is also the mask of masked-language-model
    pre-training, so a pre-trained encoder has learned to read around it.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, token_ids: Any, training: bool = False) -> Any:
        if not training or self.rate <= 0:
            return token_ids
        draw = keras.random.uniform(ops.shape(token_ids), seed=self.seed_generator)
        words = ops.logical_and(ops.not_equal(token_ids, PAD_ID), ops.not_equal(token_ids, EOS_ID))
        dropped = ops.logical_and(words, draw < self.rate)
        return ops.where(dropped, ops.cast(UNK_ID, token_ids.dtype), token_ids)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
