"""Frozen configuration dataclasses, serialized as JSON inside every artifact."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Self

Task = Literal["translation", "sentiment", "langid"]


class _JsonMixin:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload,no-any-return]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class ModelConfig(_JsonMixin):
    """Shape of a Transformer; enough to rebuild it before loading weights."""

    task: Task = "translation"
    vocab_size: int = 8000
    d_model: int = 256
    num_heads: int = 4
    # Per-head size is d_model // num_heads, and scores are scaled by its square root
    # (not by d_model's: the seeds' mistake).
    d_ff: int = 1024
    encoder_layers: int = 3
    decoder_layers: int = 3  # unused by classifiers
    dropout: float = 0.1
    attention_dropout: float = 0.0
    # Sinusoidal positions need no training and extrapolate a little past max_length.
    max_length: int = 256
    # Decoder input embedding, encoder embedding and output projection share one matrix:
    # the vocabulary is joint, and on 29k sentence pairs the saved parameters generalize.
    tie_embeddings: bool = True
    # Classifiers: label names in output order; pooled by a masked mean over tokens.
    labels: tuple[str, ...] = ()
    # Text normalizer applied before tokenization, at training and serving time alike.
    normalizer: str = "basic"
    # Classifiers, in training only: the rate at which input tokens are replaced by <unk>
    # (the token masked-language-model pre-training masks with), a regularizer.
    token_dropout: float = 0.0
    # Classifiers: pieces read per text (0 = max_length). A longer text is read as its first
    # read_pieces - tail_pieces and its last tail_pieces pieces, since a review's verdict is
    # often in its last lines (Sun et al., 2019: head+tail beat the head alone on IMDB);
    # tail_pieces 0 reads the first pieces only. `model.data.read_window` applies it, in
    # training and serving alike.
    read_pieces: int = 0
    tail_pieces: int = 0
    # Classifiers: logits are divided by this before the softmax. Fit on the validation
    # splits after training (minimum negative log-likelihood), so that a score of 0.9 is
    # right about 9 times in 10; 1.0 = no calibration.
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by {self.num_heads} heads")
        if self.task != "translation" and len(self.labels) < 2:
            raise ValueError(f"a {self.task} classifier needs at least two labels")
        if not 0.0 <= self.token_dropout < 1.0:
            raise ValueError(f"token_dropout {self.token_dropout} is not in [0, 1)")
        if self.task == "translation" and self.token_dropout > 0:
            raise ValueError("token_dropout is for classifiers (sentiment, langid)")
        if not 0 <= self.read_pieces <= self.max_length:
            raise ValueError(f"read_pieces {self.read_pieces} is not in [0, {self.max_length}]")
        if not 0 <= self.tail_pieces < self.read_limit:
            raise ValueError(f"tail_pieces {self.tail_pieces} is not in [0, {self.read_limit})")
        if not self.temperature > 0:
            raise ValueError(f"temperature {self.temperature} is not positive")
        object.__setattr__(self, "labels", tuple(self.labels))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads

    @property
    def read_limit(self) -> int:
        """The most pieces of one text a classifier reads."""
        return self.read_pieces or self.max_length


@dataclass(frozen=True)
class TrainConfig(_JsonMixin):
    """How a model was trained; recorded in the manifest so a run can be repeated."""

    preset: str = "small"
    batch_tokens: int = 4096  # translation batches are sized in target tokens
    batch_size: int = 64  # classifier batches are sized in examples
    epochs: int = 30
    # Updates per epoch (checkpoint, validation, early stopping); 0 = one pass over the data.
    # A large corpus on a CPU takes hours a pass: shorter epochs checkpoint more often, and
    # each draws its batches afresh from the whole corpus.
    epoch_steps: int = 0
    warmup_steps: int = 4000
    learning_rate_scale: float = 1.0  # multiplies d_model^-0.5 * min(...) of the schedule
    label_smoothing: float = 0.1
    early_stopping_patience: int = 5
    max_source_length: int = 128  # longer training pairs are dropped (and counted)
    max_target_length: int = 128
    vocab_size: int = 8000
    tokenizer_model_type: str = "unigram"
    # Characters outside the vocabulary become UTF-8 byte pieces instead of <unk>, so emoji
    # and names in other scripts survive a round trip (costs 256 pieces: off for tiny vocabularies).
    byte_fallback: bool = True
    log_every: float = 60.0  # seconds between progress lines in a log file; 0 = none
    # Keras compiles the train step with XLA when it can ("auto"); "off" runs TensorFlow's
    # graph as it is (see docs/training.md for its memory on the general-domain mixture).
    jit_compile: str = "auto"
    seed: int = 1234
    strategy: str = "default"
    mixed_precision: bool = False
    average_checkpoints: int = 0  # average the weights of the last N best epochs
    max_minutes: float = 0.0  # wall-clock budget; 0 = none (stops after the epoch past it)
    beam_size: int = 1  # used for the final validation metrics
    length_penalty: float = 0.6
    # Classifiers: epochs of masked-language-model pre-training of the encoder (on the
    # training texts and any extra unlabeled text) before fitting; 0 = none.
    pretrain_epochs: int = 0
    mask_rate: float = 0.15  # the share of tokens the pre-training predicts
    # A published artifact whose weights and tokenizer the run starts from (continued
    # training), and the updates that artifact had made: the schedule goes on from there.
    init_from: str = ""
    initial_step: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_rate <= 1.0:
            raise ValueError(f"mask_rate {self.mask_rate} is not in (0, 1]")
        if self.pretrain_epochs < 0:
            raise ValueError(f"pretrain_epochs {self.pretrain_epochs} is negative")
        if self.initial_step < 0:
            raise ValueError(f"initial_step {self.initial_step} is negative")


# `tiny` trains in seconds for tests; `small` suits a 2-core CPU; `release` is what the shipped
# translation models use: narrow, 4 layers, heavy dropout, since 29k pairs overfit a wider
# model (minutes on a GPU, hours on a CPU); `base` is the paper's size, with more dropout.
# Multi30k has ~430k target tokens: at 1.5k-4k tokens a batch an epoch is only 100-300
# updates, so warmups are short compared with WMT recipes.
# fmt: off
PRESETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "tiny": (
        dict(d_model=32, num_heads=2, d_ff=64, encoder_layers=1, decoder_layers=1,
             dropout=0.0, max_length=128),
        dict(batch_tokens=512, batch_size=32, epochs=3, warmup_steps=50, vocab_size=200,
             early_stopping_patience=2, learning_rate_scale=2.0, byte_fallback=False),
    ),
    "small": (
        dict(d_model=256, num_heads=4, d_ff=1024, encoder_layers=3, decoder_layers=3,
             dropout=0.2),
        dict(batch_tokens=1536, batch_size=64, epochs=25, warmup_steps=800, vocab_size=8000,
             average_checkpoints=5),
    ),
    "release": (
        dict(d_model=256, num_heads=4, d_ff=1024, encoder_layers=4, decoder_layers=4,
             dropout=0.3, attention_dropout=0.1),
        dict(batch_tokens=4096, batch_size=128, epochs=80, warmup_steps=1000,
             learning_rate_scale=0.5, vocab_size=8000, average_checkpoints=5,
             early_stopping_patience=10),
    ),
    "base": (
        dict(d_model=512, num_heads=8, d_ff=2048, encoder_layers=6, decoder_layers=6,
             dropout=0.3, attention_dropout=0.1),
        dict(batch_tokens=4096, batch_size=64, epochs=60, warmup_steps=1500, vocab_size=10000,
             average_checkpoints=5, early_stopping_patience=8),
    ),
}
# fmt: on


def preset(name: str, task: Task) -> tuple[ModelConfig, TrainConfig]:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    model_kw, train_kw = PRESETS[name]
    model = dict(model_kw, task=task, vocab_size=train_kw["vocab_size"])
    if task != "translation":
        model["labels"] = ("NEGATIVE", "POSITIVE")  # replaced by the data's labels
    return ModelConfig(**model), TrainConfig(preset=name, **train_kw)
