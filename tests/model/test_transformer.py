"""model.transformer: masks, dropout, config round trips and saved weights."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from model.config import ModelConfig
from model.layers import sinusoid_table
from model.transformer import (
    Seq2SeqTransformer,
    TransformerClassifier,
    build_model,
    causal_mask,
    padding_mask,
)
from tokenizers import BOS_ID, EOS_ID, PAD_ID

SOURCE = np.array([[5, 6, 7, EOS_ID], [8, 9, EOS_ID, PAD_ID]], dtype=np.int32)
TARGET = np.array([[BOS_ID, 10, 11, 12], [BOS_ID, 13, 14, 15]], dtype=np.int32)


def numpy(x: object) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(x))


def pad(ids: np.ndarray, extra: int) -> np.ndarray:
    return np.pad(ids, ((0, 0), (0, extra)), constant_values=PAD_ID)


def test_padding_mask_marks_real_tokens() -> None:
    assert numpy(padding_mask(SOURCE)).tolist() == [
        [[True, True, True, True]], [[True, True, True, False]],
    ]  # fmt: skip


def test_causal_mask_sees_only_earlier_non_padding_positions() -> None:
    mask = numpy(causal_mask(np.array([[BOS_ID, 4, PAD_ID]], dtype=np.int32)))
    assert mask.tolist() == [[[True, False, False], [True, True, False], [True, True, False]]]


def test_source_padding_does_not_change_the_logits(seq2seq: Seq2SeqTransformer) -> None:
    logits = numpy(seq2seq((SOURCE, TARGET)))
    padded = numpy(seq2seq((pad(SOURCE, 5), TARGET)))
    np.testing.assert_allclose(padded, logits, rtol=1e-5, atol=1e-5)


def test_source_padding_does_not_change_the_encoder_memory(seq2seq: Seq2SeqTransformer) -> None:
    memory, _, _ = seq2seq.encode(SOURCE)
    padded, _, _ = seq2seq.encode(pad(SOURCE, 3))
    np.testing.assert_allclose(numpy(padded)[1, :3], numpy(memory)[1, :3], rtol=1e-5, atol=1e-5)


def test_target_padding_does_not_change_real_positions(seq2seq: Seq2SeqTransformer) -> None:
    logits = numpy(seq2seq((SOURCE, TARGET)))
    padded = numpy(seq2seq((SOURCE, pad(TARGET, 2))))
    np.testing.assert_allclose(padded[:, :4], logits, rtol=1e-5, atol=1e-5)


def test_decoder_logits_at_t_ignore_later_target_tokens(seq2seq: Seq2SeqTransformer) -> None:
    logits = numpy(seq2seq((SOURCE, TARGET)))
    changed = TARGET.copy()
    changed[:, 2:] = [[20, 21], [22, 23]]
    changed_logits = numpy(seq2seq((SOURCE, changed)))
    np.testing.assert_allclose(changed_logits[:, :2], logits[:, :2], rtol=1e-5, atol=1e-5)
    assert not np.allclose(changed_logits[:, 2:], logits[:, 2:])  # the change is visible later


def test_classifier_logits_ignore_padding(classifier: TransformerClassifier) -> None:
    logits = numpy(classifier(SOURCE))
    assert logits.shape == (2, 2)
    np.testing.assert_allclose(numpy(classifier(pad(SOURCE, 6))), logits, rtol=1e-5, atol=1e-5)


def test_dropout_is_off_at_inference_and_on_in_training(tiny_config: ModelConfig) -> None:
    keras.utils.set_random_seed(6)
    model = build_model(tiny_config.replace(dropout=0.3, attention_dropout=0.1))
    first = numpy(model((SOURCE, TARGET), training=False))
    np.testing.assert_array_equal(numpy(model((SOURCE, TARGET), training=False)), first)
    trained = numpy(model((SOURCE, TARGET), training=True))
    assert not np.allclose(trained, numpy(model((SOURCE, TARGET), training=True)))


def test_embeddings_are_trainable_and_receive_gradients(seq2seq: Seq2SeqTransformer) -> None:
    embeddings = seq2seq.embedding.token_embedding.embeddings
    assert any(w is embeddings for w in seq2seq.trainable_weights)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(seq2seq((SOURCE, TARGET))[:, :, 10])
    gradient = tf.convert_to_tensor(tape.gradient(loss, embeddings))
    assert float(tf.reduce_max(tf.abs(gradient))) > 0


def test_decoder_input_starts_with_scaled_embeddings(seq2seq: Seq2SeqTransformer) -> None:
    c = seq2seq.model_config
    embedded = numpy(seq2seq.decoder_embedding(TARGET[:1]))
    table = numpy(seq2seq.embedding.token_embedding.embeddings)
    expected = table[TARGET[0]] * math.sqrt(c.d_model) + sinusoid_table(c.max_length, c.d_model)[:4]
    np.testing.assert_allclose(embedded[0], expected, rtol=1e-5, atol=1e-6)


def test_tied_embeddings_share_one_matrix(
    seq2seq: Seq2SeqTransformer, tiny_config: ModelConfig
) -> None:
    assert seq2seq.decoder_embedding is seq2seq.embedding
    untied = Seq2SeqTransformer(tiny_config.replace(tie_embeddings=False))
    assert untied.decoder_embedding is not untied.embedding


def test_return_attention_gives_every_layer_in_bertviz_layout(
    seq2seq: Seq2SeqTransformer, tiny_config: ModelConfig
) -> None:
    _, attention = seq2seq((SOURCE, TARGET[:, :3]), return_attention=True)
    heads = tiny_config.num_heads
    assert [tuple(a.shape) for a in attention["encoder"]] == [(2, heads, 4, 4)] * 2
    assert [tuple(a.shape) for a in attention["decoder"]] == [(2, heads, 3, 3)] * 2
    assert [tuple(a.shape) for a in attention["cross"]] == [(2, heads, 3, 4)] * 2


@pytest.fixture(params=["translation", "sentiment"])
def model(
    request: pytest.FixtureRequest,
    seq2seq: Seq2SeqTransformer,
    classifier: TransformerClassifier,
) -> Seq2SeqTransformer | TransformerClassifier:
    return seq2seq if request.param == "translation" else classifier


def inputs_for(model: keras.Model) -> object:
    return (SOURCE, TARGET) if isinstance(model, Seq2SeqTransformer) else SOURCE


def test_model_config_round_trips(model: Seq2SeqTransformer | TransformerClassifier) -> None:
    config = model.get_config()
    restored = type(model).from_config(config)
    assert restored.get_config() == config
    assert restored.model_config == model.model_config
    assert len(restored.encoder_blocks) == model.model_config.encoder_layers
    if isinstance(restored, Seq2SeqTransformer):
        assert len(restored.decoder_blocks) == model.model_config.decoder_layers


def test_model_is_registered_for_keras_serialization(
    model: Seq2SeqTransformer | TransformerClassifier,
) -> None:
    serialized = keras.saving.serialize_keras_object(model)
    assert serialized["registered_name"] == f"nlp>{type(model).__name__}"
    assert keras.saving.get_registered_object(serialized["registered_name"]) is type(model)


def test_saved_weights_reload_into_a_fresh_model(
    model: Seq2SeqTransformer | TransformerClassifier, tmp_path: Path
) -> None:
    expected = numpy(model(inputs_for(model)))
    model.save_weights(tmp_path / "model.weights.h5")
    keras.utils.set_random_seed(9)
    fresh = build_model(model.model_config)
    assert type(fresh) is type(model)
    assert not np.allclose(numpy(fresh(inputs_for(model))), expected)  # another initialization
    fresh.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(numpy(fresh(inputs_for(model))), expected)
