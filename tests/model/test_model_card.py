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


def test_the_card_of_a_translation_mixture_credits_each_corpus() -> None:
    config = ModelConfig(task="translation", vocab_size=100)
    corpora = {
        "tatoeba": {"files": ["general/tatoeba.en-de.tsv.gz"], "kept": 166070, "weight": 1.0,
                    "validation": 3000, "license": "CC-BY 2.0",
                    "attribution": "Tatoeba (tatoeba.org), via manythings.org/anki"},
        "newstest": {"files": ["general/newstest2008"], "kept": 13042, "weight": 3.0,
                     "validation": 3000},
    }  # fmt: skip
    manifest = {
        "task": "translation",
        "name": "en-de",
        "model_config": config.to_dict(),
        "train_config": TrainConfig().to_dict(),
        "parameters": 1000,
        "data": {"recipe": "recipes/translation-general.toml", "corpora": corpora},
        "metrics": {"validation:tatoeba": {"bleu": 30.0}},
    }
    card = model_card(manifest, "")
    assert (
        "| tatoeba | `general/tatoeba.en-de.tsv.gz` | 166,070 | 1 | 3,000 | CC-BY 2.0 "
        "| Tatoeba (tatoeba.org), via manythings.org/anki |" in card
    )
    row = "| newstest | `general/newstest2008` | 13,042 | 3 | 3,000 | not stated by the source |  |"
    assert row in card
    assert "a mixture of tatoeba, newstest" in card
    assert "image captions" not in card  # the limits of the caption-only models do not apply


def test_the_card_of_a_continued_run_says_where_it_started_and_its_typed_share() -> None:
    corpora = {"tatoeba": {"files": ["t.tsv"], "kept": 10, "weight": 1.0, "validation": 2}}
    train = TrainConfig(init_from="/srv/artifacts/translation/de-en/3", initial_step=1200)
    manifest = {
        "task": "translation",
        "name": "de-en",
        "model_config": ModelConfig(task="translation", vocab_size=100).to_dict(),
        "train_config": train.to_dict(),
        "selection": {"updates": 5700},
        "parameters": 1000,
        "data": {"recipe": "r.toml", "corpora": corpora, "typed_share": 0.3},
        "metrics": {},
    }
    card = model_card(manifest, "")
    assert "- 5,700 updates in all" in card
    assert (
        "- continued from `translation/de-en/3` (its weights, tokenizer and settings) at "
        "update 1,200" in card
    )
    assert "- and 0.3 of each corpus' pairs once more with the source as people type it" in card
    fresh = model_card({**manifest, "train_config": TrainConfig().to_dict(), "data": {}}, "")
    assert "continued from" not in fresh and "people type" not in fresh
