"""Transformer building blocks, one small Keras layer per idea.

Attention returns its weights as values (never stashed on the layer) and can run one
decoding step at a time against a key/value cache. Blocks are pre-norm: the residual
path stays an identity, which trains stably from scratch without the careful warmup a
post-norm stack needs, at the price of one final LayerNorm per stack.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import keras
import numpy as np
from keras import ops

from tokenizers import EOS_ID, PAD_ID, UNK_ID

# Masked logits get this value; representable in float16 and still ~0 after softmax.
_MASK_VALUE = -1e4


class StepKernels(NamedTuple):
    """An attention layer's kernels as 2-D matrices in the compute dtype, made once before
    a decoding loop."""

    projection: Any  # (d_model, parts * heads * key_dim): query[, key, value] side by side
    projection_bias: Any  # (parts * heads * key_dim,)
    output: Any  # (heads * key_dim, d_model)


class FeedForwardKernels(NamedTuple):
    """A feed-forward layer's kernels and biases in the compute dtype, made once before a
    decoding loop."""

    hidden: Any  # (d_model, d_ff)
    hidden_bias: Any  # (d_ff,)
    project: Any  # (d_ff, d_model)
    project_bias: Any  # (d_model,)


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
        key, value = self.project_key_value(value)
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

    def step_kernels(self, keys_and_values: bool) -> StepKernels:
        """The kernels that `step_project` and `attend_step` take, as 2-D matrices in the
        compute dtype: the query's, with the key's and value's beside it when the step
        projects keys and values too (self-attention), and the output's.

        A decoding loop computes them once, before it starts. Inside an XLA loop on the CPU,
        a one-row product with a kernel reshaped there (a free bitcast) is fused with the
        reshape and emitted as plain loops, ~9x slower than the matrix-vector routine that
        a kernel coming in from outside the loop gets. The three projections of
        self-attention are one product (with one row, its bias added after the split, see
        `step_project`): a one-row product streamed 1 MB matrices (the `base` width) at
        ~16 GB/s on the 2-core machine and 3 MB ones at 26-30 GB/s. The concatenation
        copies the kernels, so a decoder makes these once (`Seq2SeqTransformer.step_kernels`).
        """
        assert self.output_dense is not None
        width = self.num_heads * self.key_dim
        layers = [self.query_dense]
        if keys_and_values:
            layers += [self.key_dense, self.value_dense]

        def cast(weight: Any, shape: tuple[int, ...]) -> Any:
            return ops.reshape(ops.cast(weight, self.compute_dtype), shape)

        return StepKernels(
            projection=ops.concatenate([cast(d.kernel, (-1, width)) for d in layers], axis=1),
            projection_bias=ops.concatenate([cast(d.bias, (-1,)) for d in layers], axis=0),
            output=cast(self.output_dense.kernel, (width, -1)),
        )

    def step_project(self, x: Any, kernels: StepKernels) -> list[Any]:
        """(rows, d_model) -> the scaled queries, and the keys and values if `kernels` has
        them, each (rows, heads, key_dim)."""
        count = ops.shape(kernels.projection)[1] // (self.num_heads * self.key_dim)
        y = ops.matmul(x, kernels.projection)
        if x.shape[0] == 1:
            # The biases after the split: XLA's CPU backend would fuse a one-row product
            # with their add and run it on one thread (see `FeedForward.step`).
            biases = ops.split(kernels.projection_bias, count)
            parts = [p + b for p, b in zip(ops.split(y, count, axis=-1), biases, strict=True)]
        else:  # there the fused add is the faster one
            parts = ops.split(y + kernels.projection_bias, count, axis=-1)
        heads = [ops.reshape(part, (-1, self.num_heads, self.key_dim)) for part in parts]
        heads[0] = heads[0] * ops.cast(1.0 / math.sqrt(self.key_dim), heads[0].dtype)
        return heads

    def attend_step(
        self,
        q: Any,
        key: Any,
        value: Any,
        attention_mask: Any,
        kernels: StepKernels,
    ) -> tuple[Any, Any]:
        """`attend` at inference, for queries from `step_project` (batch, q_len, heads,
        key_dim), over keys/values in `cache_key_value`'s layout."""
        q = ops.transpose(q, (0, 2, 1, 3))  # (batch, heads, q_len, key_dim)
        scores = self._softmax(ops.matmul(q, key), attention_mask)  # (batch, heads, q, k)
        context = ops.matmul(ops.cast(scores, value.dtype), value)  # (batch, heads, q, key_dim)
        context = ops.transpose(context, (0, 2, 1, 3))  # (batch, q_len, heads, key_dim)
        assert self.output_dense is not None
        rows = ops.reshape(context, (-1, self.num_heads * self.key_dim))
        y = _rows_times(rows, kernels.output, self.output_dense.bias)
        return ops.reshape(y, (*ops.shape(context)[:-2], -1)), scores

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


def _rows_times(rows: Any, kernel: Any, bias: Any) -> Any:
    """rows (n, d_in) x kernel (d_in, d_out) + the bias, flattened, in the rows' dtype."""
    return ops.matmul(rows, kernel) + ops.reshape(ops.cast(bias, rows.dtype), (-1,))


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
        return ops.cast(ops.einsum("bld,vd->blv", hidden, matrix), "float32")

    def step_logits(self, hidden: Any) -> Any:
        """`logits` of one position per row: (rows, d_model) -> (rows, vocab) in float32.

        Computed as matrix x hidden^T, which reads the (vocab, d_model) matrix in its
        stored order: hidden x matrix^T made XLA's CPU backend copy the matrix transposed
        at every decoding step.
        """
        matrix = ops.cast(self.token_embedding.embeddings, hidden.dtype)
        return ops.cast(ops.transpose(ops.matmul(matrix, ops.transpose(hidden))), "float32")

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

    def step_kernels(self) -> FeedForwardKernels:
        """The kernels and biases that `step` takes, cast once before a decoding loop."""
        weights = (self.hidden.kernel, self.hidden.bias, self.project.kernel, self.project.bias)
        return FeedForwardKernels(*(ops.cast(w, self.compute_dtype) for w in weights))

    def step(self, x: Any, residual: Any, kernels: FeedForwardKernels) -> Any:
        """`residual + call(x)` at inference; x and residual are (rows, d_model).

        No product here has its result added to a bias: XLA's CPU backend fuses a one-row
        product with such an add and then runs it on one thread, at about half the speed
        of the plain product on two. So the output bias goes with the residual (a sum in
        another order: equal up to rounding), and relu(h + b) is computed as
        max(h, -b) + b, which is the same value.
        """
        hidden = ops.matmul(x, kernels.hidden)
        hidden = ops.maximum(hidden, -kernels.hidden_bias) + kernels.hidden_bias
        return (residual + kernels.project_bias) + ops.matmul(hidden, kernels.project)

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

    def step_kernels(self) -> tuple[StepKernels, StepKernels, FeedForwardKernels]:
        """The self- and cross-attention and feed-forward kernels that `step` takes (see
        `MultiHeadAttention.step_kernels`)."""
        return (
            self.self_attention.step_kernels(keys_and_values=True),
            self.cross_attention.step_kernels(keys_and_values=False),
            self.feed_forward.step_kernels(),
        )

    def step(
        self,
        x: Any,
        index: Any,
        self_cache: tuple[Any, Any],
        cross_cache: tuple[Any, Any],
        memory_mask: Any,
        kernels: tuple[StepKernels, StepKernels, FeedForwardKernels],
    ) -> tuple[Any, tuple[Any, Any], Any, Any]:
        """One decoding step at position `index` (inference only, no dropout).

        x (batch, 1, d_model); self_cache: keys (batch, heads, key_dim, max_len) and values
        (batch, heads, max_len, key_dim) with positions < index filled; cross_cache: the
        memory's keys and values in the same layout (`MultiHeadAttention.cache_key_value`);
        kernels: `step_kernels()`. Returns the output, the updated self cache, and both
        attention weights.
        """
        self_kernels, cross_kernels, ffn_kernels = kernels
        h = self.self_norm(x)
        q, new_key, new_value = self.self_attention.step_project(h[:, 0], self_kernels)
        # Written in place (a dynamic-update-slice) rather than by blending the whole cache.
        key = ops.slice_update(self_cache[0], (0, 0, 0, index), new_key[..., None])
        value = ops.slice_update(self_cache[1], (0, 0, index, 0), new_value[:, :, None])
        visible = ops.reshape(ops.arange(ops.shape(value)[2]) <= index, (1, 1, -1))
        y, self_scores = self.self_attention.attend_step(
            q[:, None], key, value, visible, self_kernels
        )
        x = x + y
        h = self.cross_norm(x)
        y, cross_scores = self._cross_attend_step(h, cross_cache, memory_mask, cross_kernels)
        x = x + y
        rows = ops.reshape(x, (-1, ops.shape(x)[-1]))
        y = self.feed_forward.step(self.ffn_norm(rows), rows, ffn_kernels)
        return ops.reshape(y, ops.shape(x)), (key, value), self_scores, cross_scores

    def _cross_attend_step(
        self, h: Any, cross_cache: tuple[Any, Any], memory_mask: Any, kernels: StepKernels
    ) -> tuple[Any, Any]:
        """Cross-attention for rows that may be `beams` hypotheses per source sentence.

        The memory's keys/values are kept once per sentence: the (batch * beams, 1, d_model)
        queries become (batch, beams, d_model), i.e. `beams` queries of one sentence, so
        beam search neither copies nor re-reads the memory per hypothesis.
        """
        rows, d_model = ops.shape(h)[0], ops.shape(h)[-1]
        sentences = ops.shape(cross_cache[0])[0]
        [q] = self.cross_attention.step_project(h[:, 0], kernels)  # (rows, heads, key_dim)
        queries = ops.reshape(q, (sentences, rows // sentences, *ops.shape(q)[1:]))
        y, scores = self.cross_attention.attend_step(queries, *cross_cache, memory_mask, kernels)
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
