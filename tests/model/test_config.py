"""model.config: presets and JSON round trips of the frozen configurations."""

from __future__ import annotations

import json

import pytest

from model.config import PRESETS, ModelConfig, TrainConfig, preset


def test_model_config_round_trips_through_json() -> None:
    config = ModelConfig(task="sentiment", labels=("NEGATIVE", "POSITIVE"), normalizer="sst")
    restored = ModelConfig.from_dict(json.loads(config.to_json()))
    assert restored == config
    assert isinstance(restored.labels, tuple)


def test_train_config_round_trips_through_json() -> None:
    config = TrainConfig(preset="tiny", epochs=2, extra={"note": "x"})
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown ModelConfig fields: \\['width'\\]"):
        ModelConfig.from_dict({"width": 3})


def test_model_width_must_split_evenly_into_heads() -> None:
    with pytest.raises(ValueError, match="not divisible"):
        ModelConfig(d_model=30, num_heads=4)
    assert ModelConfig(d_model=32, num_heads=4).head_dim == 8


def test_classifiers_need_two_labels() -> None:
    with pytest.raises(ValueError, match="at least two labels"):
        ModelConfig(task="sentiment", labels=("POSITIVE",))


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("task", ["translation", "sentiment", "langid"])
def test_presets_give_consistent_configs(name: str, task: str) -> None:
    model_config, train_config = preset(name, task)  # type: ignore[arg-type]
    assert model_config.task == task
    assert model_config.vocab_size == train_config.vocab_size
    assert train_config.preset == name


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(
        ValueError, match="unknown preset 'huge'; choose one of tiny, small, release, base"
    ):
        preset("huge", "translation")
