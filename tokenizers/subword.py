"""A thin, typed wrapper over SentencePiece.

SentencePiece does the real work (training, segmentation, detokenization, character
offsets); this module fixes the special ids the models rely on and keeps training
deterministic so the same data and seed give the same vocabulary.
"""

from __future__ import annotations

import codecs
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm

log = logging.getLogger(__name__)

# Fixed for every tokenizer we train: the models pad with 0 and mask on it.
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


@dataclass(frozen=True)
class Piece:
    """One subword with its character span [start, end) in the text it came from."""

    piece: str
    id: int
    start: int
    end: int


@dataclass(frozen=True)
class Encoding:
    ids: list[int]
    pieces: list[Piece]


class SubwordTokenizer:
    """Loads a serialized SentencePiece model (a protobuf, never pickle)."""

    def __init__(self, model_proto: bytes) -> None:
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self._proto = model_proto
        ids = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if ids != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ValueError(f"tokenizer has special ids {ids}, expected (0, 1, 2, 3)")

    @classmethod
    def load(cls, path: str | Path) -> SubwordTokenizer:
        return cls(Path(path).read_bytes())

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self._proto)

    @property
    def vocab_size(self) -> int:
        return int(self._sp.get_piece_size())

    def id_to_piece(self, token_id: int) -> str:
        return str(self._sp.id_to_piece(token_id))

    def encode(self, text: str) -> list[int]:
        return list(self._sp.encode(text, out_type=int))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(ids) for ids in self._sp.encode(list(texts), out_type=int)]

    def encode_with_spans(self, text: str) -> Encoding:
        """Ids plus each piece's span in `text` (for attention maps)."""
        proto = self._sp.encode(text, out_type="proto")
        # SentencePiece reports UTF-8 byte offsets; callers index the str by characters.
        char_at = {}
        offset = 0
        for index, char in enumerate(text):
            char_at[offset] = index
            offset += len(char.encode("utf-8"))
        char_at[offset] = len(text)
        pieces = []
        for p in proto.pieces:
            start, end = char_at[int(p.begin)], char_at[int(p.end)]
            while start < end and text[start].isspace():  # the span covers the word only
                start += 1
            pieces.append(Piece(p.piece, int(p.id), start, end))
        return Encoding(ids=[p.id for p in pieces], pieces=pieces)

    def decode(self, ids: Iterable[int]) -> str:
        """Detokenized text; special ids (pad, bos, eos) are dropped, unknown kept as ⁇.

        Byte-fallback pieces at the end that do not complete a UTF-8 character (an output
        cut at its length limit) are dropped rather than shown as U+FFFD.
        """
        kept = [int(i) for i in ids if int(i) not in (PAD_ID, BOS_ID, EOS_ID)]
        return str(self._sp.decode(kept[: len(kept) - self._incomplete_tail(kept)]))

    def _incomplete_tail(self, ids: Sequence[int]) -> int:
        """How many trailing byte pieces begin a UTF-8 character they do not finish."""
        start = len(ids)
        while start > 0 and self._sp.is_byte(ids[start - 1]):
            start -= 1
        raw = bytes(int(self._sp.id_to_piece(i)[1:-1], 16) for i in ids[start:])  # "<0xC5>"
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        decoder.decode(raw, final=False)
        return len(decoder.getstate()[0])  # the bytes it still waits on


def train_tokenizer(
    sentences: Iterable[str],
    *,
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float | None = None,
    byte_fallback: bool = False,
    seed_sentencepiece_size: int = 1_000_000,
    max_sentences: int = 2_000_000,
) -> SubwordTokenizer:
    """Trains on `sentences` (the training split only; the caller guarantees it).

    SentencePiece's trainer is deterministic for a fixed input order and a single
    thread, so the same data gives the same vocabulary. With `byte_fallback`, characters
    outside the vocabulary are spelled as UTF-8 byte pieces rather than mapped to <unk>, and
    the rarest characters (past a 0.9995 coverage, unless given) are left to those bytes.
    """
    text = [s for s in sentences if s.strip()]
    if not text:
        raise ValueError("cannot train a tokenizer on no text")
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text),
        model_writer=buffer,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage or (0.9995 if byte_fallback else 1.0),
        byte_fallback=byte_fallback,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        pad_piece="<pad>",
        unk_piece="<unk>",
        bos_piece="<s>",
        eos_piece="</s>",
        input_sentence_size=max_sentences,
        shuffle_input_sentence=False,
        seed_sentencepiece_size=seed_sentencepiece_size,
        num_threads=1,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    tokenizer = SubwordTokenizer(buffer.getvalue())
    log.info("trained a %s tokenizer: %d pieces", model_type, tokenizer.vocab_size)
    return tokenizer
