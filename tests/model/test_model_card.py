"""model.ship.model_card: a classifier's card says what it reads and how it is calibrated."""

from __future__ import annotations

from model.config import ModelConfig, TrainConfig
from model.ship import model_card


def test_the_card_of_a_mixture_lists_each_split_and_the_reading() -> None:
    config = ModelConfig(task="sentiment", labels=("NEGATIVE", "POSITIVE"), max_length=512,
                         read_pieces=512, tail_pieces=384, temperature=1.7)  # fmt: skip
    scores = {"accuracy": 0.9, "f1": 0.89, "ece_uncalibrated": 0.08, "ece": 0.02}
    manifest = {
        "task": "sentiment",
        "name": "en",
        "model_config": config.to_dict(),
        "train_config": TrainConfig().to_dict(),
        "parameters": 1000,
        "metrics": {
            "validation:sst2": scores,
            "validation:imdb": scores,
            "validation": scores,
            "calibration": {"temperature": 1.7, "ece_uncalibrated": 0.08, "ece": 0.02},
        },
    }
    card = model_card(manifest, "")
    assert "reads up to 512 pieces per text (the first 128 and the last 384" in card
    assert "temperature 1.7" in card
    assert "| validation:imdb | accuracy | 0.9 |" in card
    assert "| validation:sst2 | ece_uncalibrated | 0.08 |" in card
    assert "| calibration | temperature | 1.7 |" in card
    assert "IMDB movie reviews" in card  # the mixture's own known limits
