"""model.layers: attention against Keras's, embeddings, blocks, config round trips."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import pytest
from keras import ops

from model.layers import (
    DecoderBlock,
    EncoderBlock,
    FeedForward,
    MultiHeadAttention,
    TokenAndPositionEmbedding,
    sinusoid_table,
)

D_MODEL, HEADS = 8, 2
BLOCK = dict(d_model=D_MODEL, num_heads=HEADS, d_ff=16, dropout=0.0)


def normal(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


@pytest.fixture()
def attention_pair() -> tuple[MultiHeadAttention, keras.layers.MultiHeadAttention]:
    """Ours and Keras's, with Keras's weights copied into ours."""
    keras.utils.set_random_seed(1)
    reference = keras.layers.MultiHeadAttention(num_heads=HEADS, key_dim=4)
    reference.build((None, None, D_MODEL), (None, None, D_MODEL))
    ours = MultiHeadAttention(num_heads=HEADS, key_dim=4)
    ours.build((None, None, D_MODEL), (None, None, D_MODEL))
    ours.set_weights(reference.get_weights())  # query, key, value, output: kernel, bias
    return ours, reference


def test_attention_matches_keras_with_the_same_weights(attention_pair: Any) -> None:
    ours, reference = attention_pair
    query, value = normal(2, 3, D_MODEL), normal(2, 5, D_MODEL, seed=1)
    expected, expected_scores = reference(query, value, return_attention_scores=True)
    output, scores = ours(query, value)
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
    assert tuple(scores.shape) == (2, HEADS, 3, 5)  # (batch, heads, q, k)


def test_attention_matches_keras_with_a_padding_mask(attention_pair: Any) -> None:
    ours, reference = attention_pair
    query, value = normal(2, 3, D_MODEL), normal(2, 5, D_MODEL, seed=1)
    mask = np.ones((2, 3, 5), dtype=bool)
    mask[0, :, 2:] = False  # first sequence: two real keys, three padding
    mask[1, :, 4:] = False
    expected, expected_scores = reference(
        query, value, attention_mask=mask, return_attention_scores=True
    )
    output, scores = ours(query, value, attention_mask=mask)
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
    assert np.all(ops.convert_to_numpy(scores)[0, :, :, 2:] == 0.0)


def test_attention_mask_broadcasts_over_queries(attention_pair: Any) -> None:
    ours, _ = attention_pair
    query = normal(1, 3, D_MODEL)
    full = np.array([[[True, True, False, False]] * 3])
    broadcast = np.array([[[True, True, False, False]]])  # (batch, 1, k), as padding masks are
    value = normal(1, 4, D_MODEL, seed=2)
    np.testing.assert_allclose(
        ours(query, value, attention_mask=full)[0], ours(query, value, attention_mask=broadcast)[0]
    )


def test_attention_scales_scores_by_the_head_size_not_the_model_width() -> None:
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    layer.build((None, None, D_MODEL), (None, None, D_MODEL))
    query = normal(1, 1, D_MODEL)
    value = normal(1, 3, D_MODEL, seed=3)
    key = layer.key_dense(value)  # (batch, k, heads, key_dim)
    q = layer.query_dense(query)
    logits = np.einsum("aqhd,akhd->ahqk", q, key) / math.sqrt(4)
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(layer(query, value)[1], expected, rtol=1e-5)


def test_sinusoid_table_alternates_sine_and_cosine() -> None:
    table = sinusoid_table(10, 6)
    assert table.shape == (10, 6)
    np.testing.assert_allclose(table[0], [0, 1, 0, 1, 0, 1])
    np.testing.assert_allclose(table[3, 0], math.sin(3), rtol=1e-6)
    np.testing.assert_allclose(table[3, 3], math.cos(3 / 10000 ** (2 / 6)), rtol=1e-6)


def test_embeddings_are_scaled_by_sqrt_d_model_plus_positions() -> None:
    layer = TokenAndPositionEmbedding(vocab_size=12, d_model=D_MODEL, max_length=16, dropout=0.0)
    ids = np.array([[4, 5, 6]], dtype=np.int32)
    output = ops.convert_to_numpy(layer(ids, start=2))
    table = ops.convert_to_numpy(layer.token_embedding.embeddings)
    expected = table[ids[0]] * math.sqrt(D_MODEL) + sinusoid_table(16, D_MODEL)[2:5]
    np.testing.assert_allclose(output[0], expected, rtol=1e-5, atol=1e-6)


def test_token_embeddings_are_trainable() -> None:
    layer = TokenAndPositionEmbedding(vocab_size=12, d_model=D_MODEL, max_length=16, dropout=0.0)
    layer.build((None, None))
    assert layer.token_embedding.embeddings.trainable
    assert [w.path for w in layer.trainable_weights] == [layer.token_embedding.embeddings.path]


def test_tied_output_projection_scores_every_vocabulary_entry() -> None:
    layer = TokenAndPositionEmbedding(vocab_size=12, d_model=D_MODEL, max_length=16, dropout=0.0)
    layer.build((None, None))
    hidden = normal(2, 3, D_MODEL)
    logits = layer.logits(hidden)
    table = ops.convert_to_numpy(layer.token_embedding.embeddings)
    np.testing.assert_allclose(logits, hidden @ table.T, rtol=1e-5, atol=1e-5)
    assert logits.dtype == "float32"


def test_feed_forward_dropout_is_off_at_inference_and_on_in_training() -> None:
    keras.utils.set_random_seed(2)
    layer = FeedForward(d_model=D_MODEL, d_ff=64, dropout=0.5)
    x = normal(2, 3, D_MODEL)
    np.testing.assert_array_equal(layer(x, training=False), layer(x, training=False))
    assert not np.allclose(layer(x, training=True), layer(x, training=True))


def test_encoder_block_gives_padding_no_attention() -> None:
    keras.utils.set_random_seed(3)
    block = EncoderBlock(**BLOCK)
    x = normal(1, 4, D_MODEL)
    mask = np.array([[[True, True, True, False]]])
    output, scores = block(x, mask)
    assert tuple(output.shape) == (1, 4, D_MODEL)
    assert np.all(ops.convert_to_numpy(scores)[..., 3] == 0.0)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_decoder_block_step_matches_the_teacher_forced_pass(policy: str) -> None:
    # mixed_float16 is what a GPU serves with: the step runs in float16.
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        keras.utils.set_random_seed(4)
        block = DecoderBlock(**BLOCK)
        x, memory = normal(1, 5, D_MODEL), normal(1, 3, D_MODEL, seed=1)
        causal = np.tril(np.ones((5, 5), dtype=bool))[None]
        memory_mask = np.ones((1, 1, 3), dtype=bool)
        expected, _, _ = block(x, memory, causal, memory_mask)
        dtype = block.compute_dtype
        cache = (
            ops.zeros((1, HEADS, D_MODEL // HEADS, 5), dtype),  # keys: (batch, heads, key_dim, len)
            ops.zeros(
                (1, HEADS, 5, D_MODEL // HEADS), dtype
            ),  # values: (batch, heads, len, key_dim)
        )
        cross = block.cross_attention.cache_key_value(ops.cast(memory, dtype))
        tolerance = 1e-5 if policy == "float32" else 1e-2
        for index in range(5):
            step_input = ops.cast(x[:, index : index + 1], dtype)
            output, cache, _, _ = block.step(step_input, index, cache, cross, memory_mask)
            assert output.dtype == dtype
            np.testing.assert_allclose(
                ops.convert_to_numpy(ops.cast(output[0, 0], "float32")),
                ops.convert_to_numpy(ops.cast(expected[0, index], "float32")),
                rtol=tolerance * 10,
                atol=tolerance,
            )
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


LAYERS = [
    (MultiHeadAttention, dict(num_heads=HEADS, key_dim=4, dropout=0.1)),
    (TokenAndPositionEmbedding, dict(vocab_size=12, d_model=D_MODEL, max_length=16, dropout=0.1)),
    (FeedForward, dict(d_model=D_MODEL, d_ff=16, dropout=0.1)),
    (EncoderBlock, dict(BLOCK, attention_dropout=0.1)),
    (DecoderBlock, dict(BLOCK, attention_dropout=0.1)),
]


def call(layer: keras.layers.Layer) -> Any:
    """The layer's main output on a small batch."""
    x, ids = normal(2, 3, D_MODEL), np.array([[4, 5, 0], [6, 0, 0]], dtype=np.int32)
    mask = np.ones((2, 1, 3), dtype=bool)
    if isinstance(layer, MultiHeadAttention):
        return layer(x, x)[0]
    if isinstance(layer, TokenAndPositionEmbedding):
        return layer(ids)
    if isinstance(layer, EncoderBlock):
        return layer(x, mask)[0]
    if isinstance(layer, DecoderBlock):
        return layer(x, x, np.ones((2, 3, 3), dtype=bool), mask)[0]
    return layer(x)


@pytest.mark.parametrize(("cls", "kwargs"), LAYERS, ids=[c.__name__ for c, _ in LAYERS])
def test_layer_config_round_trips(cls: type[keras.layers.Layer], kwargs: dict[str, Any]) -> None:
    layer = cls(name="original", **kwargs)
    config = layer.get_config()
    assert {k: config[k] for k in kwargs} == kwargs
    restored = cls.from_config(config)
    assert restored.get_config() == config
    assert call(restored).shape == call(layer).shape


@pytest.mark.parametrize(("cls", "kwargs"), LAYERS, ids=[c.__name__ for c, _ in LAYERS])
def test_layer_is_registered_for_keras_serialization(
    cls: type[keras.layers.Layer], kwargs: dict[str, Any]
) -> None:
    serialized = keras.saving.serialize_keras_object(cls(**kwargs))
    assert serialized["registered_name"] == f"nlp>{cls.__name__}"
    assert type(keras.saving.deserialize_keras_object(serialized)) is cls


def test_tied_projection_gradient_holds_no_per_row_copy_of_the_vocabulary_matrix() -> None:
    """The output projection's gradient is one (d_model, vocab) product over all positions:
    a product broadcast over the batch would build (batch, d_model, vocab) first."""
    import tensorflow as tf

    batch, length, vocab = 5, 3, 11
    layer = TokenAndPositionEmbedding(vocab_size=vocab, d_model=D_MODEL, max_length=8, dropout=0)
    layer.build((batch, length))
    hidden = tf.constant(normal(batch, length, D_MODEL))

    @tf.function
    def step(hidden: Any) -> Any:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer.logits(hidden) ** 2)
        return tape.gradient(loss, layer.token_embedding.embeddings)

    graph = step.get_concrete_function(hidden).graph
    shapes = {
        tuple(output.shape.as_list())
        for op in graph.get_operations()
        for output in op.outputs
        if output.shape.rank is not None
    }
    assert (vocab, D_MODEL) in shapes  # the gradient itself
    assert not {s for s in shapes if len(s) == 3 and s[0] == batch and vocab in s[1:]} - {
        (batch, length, vocab)
    }
    expected = np.einsum("bld,blv->vd", hidden.numpy(), 2 * np.asarray(layer.logits(hidden)))
    np.testing.assert_allclose(step(hidden).numpy(), expected, rtol=1e-4, atol=1e-4)
