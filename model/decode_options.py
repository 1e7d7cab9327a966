"""What a decoder is asked for and what it answers, shared by the Keras reference decoder
(model.decoding) and the CTranslate2 engine (model.engine). No TensorFlow here: the service
imports these before any model loads (and `python -m app --help` answers at once)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_BEAM_SIZE = 8


@dataclass(frozen=True)
class DecodeOptions:
    beam_size: int = 1
    num_return: int = 1  # n-best hypotheses per source (<= beam_size)
    length_penalty: float = 0.6  # GNMT's alpha: ((5 + len) / 6) ** alpha
    max_length_ratio: float = 1.5  # output may be this much longer than the source...
    max_length_offset: int = 10  # ...plus this many tokens,
    max_length: int = 200  # and never longer than this hard cap.

    def __post_init__(self) -> None:
        if not 1 <= self.beam_size <= MAX_BEAM_SIZE:
            raise ValueError(f"beam_size must be between 1 and {MAX_BEAM_SIZE}")
        if not 1 <= self.num_return <= self.beam_size:
            raise ValueError("num_return must be between 1 and beam_size")
        if self.max_length < 1:
            raise ValueError("max_length must be positive")


@dataclass(frozen=True)
class Hypothesis:
    ids: list[int]  # without <s> and </s>
    score: float  # mean log-probability per generated token (</s> included)
    ranking_score: float  # total log-probability / length penalty; beams are sorted by it
