"""The benchmark's own arithmetic: what it divides by must be right for its figures to be."""

from __future__ import annotations

import keras

from bench import measure
from model.config import ModelConfig
from model.transformer import build_model


def test_weight_bytes_per_step_counts_what_a_cached_step_reads() -> None:
    config = ModelConfig(
        vocab_size=50, d_model=16, num_heads=2, d_ff=24, encoder_layers=1, decoder_layers=2,
        dropout=0.0, max_length=32,
    )  # fmt: skip
    keras.utils.set_random_seed(3)
    model = build_model(config)
    d, f, v = config.d_model, config.d_ff, config.vocab_size
    per_layer = (
        4 * (d * d + d)  # self-attention query, key, value and output, with biases
        + 2 * (d * d + d)  # cross-attention query and output (its keys/values: once a batch)
        + (d * f + f)
        + (f * d + d)  # feed-forward
        + 3 * 2 * d  # three layer norms
    )
    expected = 4 * (config.decoder_layers * per_layer + 2 * d + v * d)  # + final norm, output
    assert measure.weight_bytes_per_step(model) == expected
