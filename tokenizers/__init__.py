"""SentencePiece subword tokenizers: train on a training split, load, encode with spans."""

from tokenizers.normalize import NORMALIZERS, normalize
from tokenizers.subword import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    Encoding,
    Piece,
    SubwordTokenizer,
    train_tokenizer,
)

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "NORMALIZERS",
    "PAD_ID",
    "UNK_ID",
    "Encoding",
    "Piece",
    "SubwordTokenizer",
    "normalize",
    "train_tokenizer",
]
