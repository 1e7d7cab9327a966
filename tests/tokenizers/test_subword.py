"""tokenizers.subword: fixed special ids, spans, determinism, and saving without pickle."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest
import sentencepiece as spm

from tests import synthetic
from tokenizers import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    SubwordTokenizer,
    train_tokenizer,
)


def corpus() -> list[str]:
    english = synthetic.english_sentences(200, 1)
    return english + [synthetic.to_german(s) for s in english]


@pytest.fixture(scope="module")
def tokenizer() -> SubwordTokenizer:
    return train_tokenizer(corpus(), vocab_size=80)


def test_special_ids_are_pad_unk_bos_eos(tokenizer: SubwordTokenizer) -> None:
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    pieces = [tokenizer.id_to_piece(i) for i in range(4)]
    assert pieces == ["<pad>", "<unk>", "<s>", "</s>"]


def test_an_unknown_word_maps_to_the_unk_id(tokenizer: SubwordTokenizer) -> None:
    ids = tokenizer.encode("a 日本 dog")
    assert ids.count(UNK_ID) == 1
    assert UNK_ID not in tokenizer.encode("a dog")


def test_unknown_characters_never_disappear_in_decoding(tokenizer: SubwordTokenizer) -> None:
    assert "⁇" in tokenizer.decode(tokenizer.encode("a ☃ dog"))


def test_encode_never_emits_padding_or_sentence_markers(tokenizer: SubwordTokenizer) -> None:
    ids = tokenizer.encode("A man runs in the house.")
    assert ids and not {PAD_ID, BOS_ID, EOS_ID} & set(ids)


@pytest.mark.parametrize(
    "text",
    [
        "A man runs in the house.",
        "Der Hund läuft auf der straße.",  # non-ASCII: spans count characters, not bytes
        "  two  spaces and 日本 unknown ",
    ],
)
def test_every_piece_has_its_character_span(tokenizer: SubwordTokenizer, text: str) -> None:
    encoding = tokenizer.encode_with_spans(text)
    assert encoding.ids == tokenizer.encode(text)
    assert [p.id for p in encoding.pieces] == encoding.ids
    end = 0
    for piece in encoding.pieces:
        assert end <= piece.start <= piece.end <= len(text)
        surface = text[piece.start : piece.end]
        if piece.id == UNK_ID:
            assert surface and not surface.isspace()
        else:
            assert surface == piece.piece.replace("▁", "")  # the span starts at the word
        end = piece.end
    covered = "".join(text[p.start : p.end] for p in encoding.pieces)
    assert covered == "".join(text.split())


def test_decode_round_trips_normal_text(tokenizer: SubwordTokenizer) -> None:
    for text in ["A man runs in the house.", "Ein hund sitzt auf der straße.", "a dog"]:
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_decode_drops_padding_and_sentence_markers(tokenizer: SubwordTokenizer) -> None:
    ids = tokenizer.encode("the cat")
    assert tokenizer.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID]) == "the cat"


def test_batch_encoding_equals_one_by_one(tokenizer: SubwordTokenizer) -> None:
    texts = ["the dog", "A woman eats.", ""]
    assert tokenizer.encode_batch(texts) == [tokenizer.encode(t) for t in texts]


def test_same_data_gives_the_same_vocabulary(tmp_path: Path) -> None:
    first = train_tokenizer(corpus(), vocab_size=80)
    second = train_tokenizer(corpus(), vocab_size=80)
    assert first.vocab_size == second.vocab_size
    assert [first.id_to_piece(i) for i in range(first.vocab_size)] == [
        second.id_to_piece(i) for i in range(second.vocab_size)
    ]
    first.save(tmp_path / "first.model")
    second.save(tmp_path / "second.model")
    assert (tmp_path / "first.model").read_bytes() == (tmp_path / "second.model").read_bytes()


def test_vocab_size_is_a_soft_limit_on_small_data() -> None:
    small = train_tokenizer(["a b c", "a b"], vocab_size=500)
    assert 4 < small.vocab_size < 500


def test_training_on_no_text_is_refused() -> None:
    with pytest.raises(ValueError, match="no text"):
        train_tokenizer(["", "   "], vocab_size=20)


def test_saved_model_reloads_without_pickle(
    tokenizer: SubwordTokenizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tokenizer.model"
    tokenizer.save(path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    reloaded = SubwordTokenizer.load(path)
    text = "A woman sits on a blue ball."
    assert reloaded.encode(text) == tokenizer.encode(text)
    assert reloaded.vocab_size == tokenizer.vocab_size
    native = spm.SentencePieceProcessor(model_file=str(path))  # a plain SentencePiece model
    assert native.encode(text) == tokenizer.encode(text)


def test_a_tokenizer_with_other_special_ids_is_refused() -> None:
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=buffer,
        vocab_size=60,
        hard_vocab_limit=False,
        minloglevel=2,
    )  # SentencePiece's defaults: unk=0, bos=1, eos=2, no padding
    with pytest.raises(ValueError, match="special ids"):
        SubwordTokenizer(buffer.getvalue())


@pytest.fixture(scope="module")
def byte_tokenizer() -> SubwordTokenizer:
    return train_tokenizer(corpus(), vocab_size=400, byte_fallback=True)


@pytest.mark.parametrize(
    "text",
    [
        "a man runs 😀 on the street 🚲",  # emoji
        "Dvořák und Łódź, Ærøskøbing, Þórshöfn",  # letters the corpus never had
        "東京 and Москва and القاهرة and 서울",  # names in other scripts
        "ᚠᛇᚻ runes, ᏣᎳᎩ Cherokee, ∑ sum",
    ],
)
def test_byte_fallback_round_trips_any_character(
    byte_tokenizer: SubwordTokenizer, text: str
) -> None:
    # (SentencePiece's NFKC normalization applies first: text here is already NFKC.)
    ids = byte_tokenizer.encode(text)
    assert UNK_ID not in ids
    assert byte_tokenizer.decode(ids) == text


def test_an_output_cut_inside_a_character_drops_its_bytes(
    byte_tokenizer: SubwordTokenizer,
) -> None:
    text = "Šternfeld 東京"
    ids = byte_tokenizer.encode(text)
    assert byte_tokenizer.decode(ids) == text
    pieces = [byte_tokenizer.id_to_piece(i) for i in ids]
    last = max(i for i, piece in enumerate(pieces) if piece.startswith("<0x"))  # 京's last byte
    cuts = {byte_tokenizer.decode(ids[:end]) for end in range(1, len(ids) + 1)}
    assert all("\ufffd" not in cut for cut in cuts)
    assert byte_tokenizer.decode(ids[:last]) == "Šternfeld 東"  # 京 cut: its bytes dropped
    assert byte_tokenizer.decode(ids[: last + 1]) == text


def test_without_byte_fallback_unseen_characters_become_unk(tokenizer: SubwordTokenizer) -> None:
    assert UNK_ID in tokenizer.encode("東京")
