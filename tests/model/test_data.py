"""model.data: corpus readers name the file (and line) at fault; pipelines shift targets."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from model import data
from model.data import DataError
from tests import synthetic
from tokenizers import PAD_ID


def test_parallel_files_with_different_line_counts_name_both_counts_and_paths(
    tmp_path: Path,
) -> None:
    source = synthetic.write_lines(tmp_path / "train.en", ["a", "b", "c"], gz=False)
    target = synthetic.write_lines(tmp_path / "train.de", ["x", "y"], gz=False)
    with pytest.raises(DataError) as error:
        data.read_parallel(source, target)
    message = str(error.value)
    assert str(source) in message and "3 lines" in message
    assert str(target) in message and "has 2" in message


def test_invalid_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "train.en"
    path.write_bytes(b"fine\nstill fine\nbroken \xff\xfe here\n")
    with pytest.raises(DataError, match="line 3 is not valid UTF-8") as error:
        data.read_lines(path)
    assert str(path) in str(error.value)


def test_invalid_utf8_inside_gzip_names_the_line_too(tmp_path: Path) -> None:
    path = tmp_path / "train.de.gz"
    path.write_bytes(gzip.compress(b"gut\n\xc3\n"))
    with pytest.raises(DataError, match="line 2 is not valid UTF-8"):
        data.read_lines(path)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file") as error:
        data.read_lines(tmp_path / "absent.en")
    assert str(tmp_path / "absent.en") in str(error.value)


def test_gzip_and_plain_files_read_the_same(tmp_path: Path) -> None:
    lines = ["Ein Mann läuft.", "Der Hund sitzt."]
    plain = synthetic.write_lines(tmp_path / "a.de", lines, gz=False)
    packed = synthetic.write_lines(tmp_path / "a.de.gz", lines, gz=True)
    assert data.read_lines(plain) == data.read_lines(packed) == lines


def test_windows_line_endings_are_stripped(tmp_path: Path) -> None:
    path = tmp_path / "crlf.en"
    path.write_bytes(b"one\r\ntwo\r\n")
    assert data.read_lines(path) == ["one", "two"]


def test_pairs_with_an_empty_side_are_dropped(tmp_path: Path) -> None:
    source = synthetic.write_lines(tmp_path / "s.en.gz", ["a man", "", "a dog", "  "])
    target = synthetic.write_lines(tmp_path / "s.de.gz", ["ein mann", "leer", "", "x"])
    assert data.read_parallel(source, target) == [("a man", "ein mann")]


def test_parallel_files_with_no_usable_pair_are_refused(tmp_path: Path) -> None:
    source = synthetic.write_lines(tmp_path / "s.en.gz", ["", " "])
    target = synthetic.write_lines(tmp_path / "s.de.gz", ["x", ""])
    with pytest.raises(DataError, match="no usable sentence pairs"):
        data.read_parallel(source, target)


def test_find_split_prefers_gzip_and_names_both_candidates(tmp_path: Path) -> None:
    synthetic.write_lines(tmp_path / "val.en", ["x"], gz=False)
    synthetic.write_lines(tmp_path / "val.en.gz", ["x"])
    assert data.find_split(tmp_path, "val", "en") == tmp_path / "val.en.gz"
    with pytest.raises(DataError, match=r"neither test\.fr\.gz nor test\.fr exists"):
        data.find_split(tmp_path, "test", "fr")


def test_tsv_pairs_read_source_target_and_ignore_attribution(tmp_path: Path) -> None:
    path = synthetic.write_lines(
        tmp_path / "deu.txt",
        [
            "Go.\tGeh.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272",
            "",
            "Hi.\tHallo!\tCC-BY 2.0 (France) Attribution: tatoeba.org #538123",
            "Run!\tLauf!",
        ],
        gz=False,
    )
    assert data.read_pairs_tsv(path) == [("Go.", "Geh."), ("Hi.", "Hallo!"), ("Run!", "Lauf!")]


def test_tsv_line_without_a_target_names_the_line(tmp_path: Path) -> None:
    path = synthetic.write_lines(tmp_path / "deu.txt", ["Go.\tGeh.", "no tab here"], gz=False)
    with pytest.raises(DataError, match="line 2 has no tab-separated target"):
        data.read_pairs_tsv(path)


@pytest.mark.parametrize("text_column", ["sentence", "content"])
def test_sst2_tsv_reads_text_and_label(tmp_path: Path, text_column: str) -> None:
    path = synthetic.write_sst(tmp_path / "train.tsv", 5, 1, text_column)
    expected = [(text, str(label)) for label, text in synthetic.sentiment_rows(5, 1)]
    assert data.read_classification(path) == expected


def test_sst2_quotes_are_kept_as_text(tmp_path: Path) -> None:
    path = synthetic.write_lines(
        tmp_path / "dev.tsv", ["sentence\tlabel", '" it \'s a " charming " film\t1'], gz=False
    )
    assert data.read_classification(path) == [('" it \'s a " charming " film', "1")]


def test_csv_reads_text_and_label_columns(tmp_path: Path) -> None:
    path = synthetic.write_lines(
        tmp_path / "reviews.csv",
        ["id,text,label", '1,"Great, really great.",POSITIVE', "2,Dull.,NEGATIVE"],
        gz=False,
    )
    assert data.read_classification(path) == [
        ("Great, really great.", "POSITIVE"), ("Dull.", "NEGATIVE"),
    ]  # fmt: skip


def test_classification_file_without_known_columns_is_refused(tmp_path: Path) -> None:
    path = synthetic.write_lines(tmp_path / "x.csv", ["body,stars", "nice,5"], gz=False)
    with pytest.raises(DataError, match="needs a text column") as error:
        data.read_classification(path)
    assert str(path) in str(error.value)


def test_classification_row_with_too_few_columns_names_the_line(tmp_path: Path) -> None:
    path = synthetic.write_lines(tmp_path / "x.tsv", ["sentence\tlabel", "ok\t1", "bad"], gz=False)
    with pytest.raises(DataError, match="line 3 has 1 columns"):
        data.read_classification(path)


def test_imdb_folders_read_pos_and_neg_reviews(tmp_path: Path) -> None:
    for label, name, text in (
        ("pos", "0_9.txt", "A joy.<br /><br />Loved it."),
        ("neg", "1_2.txt", "Dull."),
        ("neg", "2_1.txt", ""),
    ):
        (tmp_path / label).mkdir(exist_ok=True)
        (tmp_path / label / name).write_text(text, encoding="utf-8")
    (tmp_path / "unsup").mkdir()
    (tmp_path / "unsup" / "3_0.txt").write_text("ignored")
    assert data.read_classification(tmp_path) == [("Dull.", "0"), ("A joy.  Loved it.", "1")]


def test_imdb_folder_without_neg_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pos").mkdir()
    with pytest.raises(DataError, match="needs a neg/ folder"):
        data.read_classification(tmp_path)


def test_langid_reads_one_file_per_language(tmp_path: Path) -> None:
    synthetic.write_lines(tmp_path / "val.en.gz", ["the man", ""])
    synthetic.write_lines(tmp_path / "val.de", ["der mann"], gz=False)
    examples = data.read_langid(tmp_path, ["en", "de"], "val")
    assert examples == [("the man", "en"), ("der mann", "de")]
    assert data.label_counts([("a", "en"), ("b", "de"), ("c", "en")]) == {"de": 1, "en": 2}


def test_classification_batches_pad_and_keep_every_example() -> None:
    examples = [([4, 5, 6], 1), ([7], 0), ([], 1)]
    dataset = data.classification_dataset(
        examples, batch_size=8, shuffle=True, seed=0, max_length=2
    )
    rows = sorted(
        (ids.tolist(), int(label))
        for batch_ids, labels in dataset
        for ids, label in zip(batch_ids.numpy(), labels.numpy(), strict=True)
    )
    assert rows == sorted([([4, 5], 1), ([7, PAD_ID], 0), ([PAD_ID, PAD_ID], 1)])


def test_padded_classification_batches_keep_labels_with_their_texts() -> None:
    examples = [([4] * n, n % 2) for n in range(1, 30)] + [([], 1)]
    batches = data.padded_classification_batches(
        examples, batch_size=4, shuffle=False, seed=0, max_length=20
    )
    seen = []
    for index in range(len(batches)):
        ids, labels = batches[index]
        assert ids.shape[1] in (16, 20)
        for row, label in zip(ids.tolist(), labels.tolist(), strict=True):
            length = sum(1 for i in row if i != PAD_ID)
            seen.append((length, label))
    assert sorted(seen) == sorted([(min(n, 20), n % 2) for n in range(1, 30)] + [(0, 1)])


@pytest.mark.parametrize(
    ("length", "limit", "tail", "expected"),
    [
        (5, 8, 3, [0, 1, 2, 3, 4]),  # short texts are read whole
        (8, 8, 3, [0, 1, 2, 3, 4, 5, 6, 7]),
        (12, 8, 3, [0, 1, 2, 3, 4, 9, 10, 11]),  # the first 5 and the last 3
        (12, 8, 0, [0, 1, 2, 3, 4, 5, 6, 7]),  # no tail: the first 8
    ],
)
def test_read_window_keeps_the_head_and_the_tail(
    length: int, limit: int, tail: int, expected: list[int]
) -> None:
    assert data.read_window(list(range(length)), limit, tail) == expected


def test_read_pieces_and_tail_pieces_are_checked() -> None:
    from model.config import ModelConfig

    base = dict(task="sentiment", labels=("NEGATIVE", "POSITIVE"), max_length=64)
    assert ModelConfig(**base, read_pieces=0).read_limit == 64  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="read_pieces 65 is not in"):
        ModelConfig(**base, read_pieces=65)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tail_pieces 10 is not in"):
        ModelConfig(**base, read_pieces=10, tail_pieces=10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="temperature 0 is not positive"):
        ModelConfig(**base, temperature=0)  # type: ignore[arg-type]


def test_a_row_broken_by_a_line_break_in_its_text_is_rejoined(tmp_path: Path) -> None:
    # pros_cons.tsv.gz holds texts with CR LF inside, written unquoted.
    path = tmp_path / "pros.tsv"
    path.write_bytes(b"label\ttext\n1\tWorldwide GSM,\r\nUltracompact size\r\n\n0\tHeavy\n")
    assert data.read_classification(path) == [
        ("Worldwide GSM, Ultracompact size", "1"),
        ("Heavy", "0"),
    ]
    crlf = tmp_path / "crlf.tsv"  # a CR LF file: every row whole
    crlf.write_bytes(b"label\ttext\r\n1\tgood\r\n0\tbad\r\n")
    assert data.read_classification(crlf) == [("good", "1"), ("bad", "0")]


def test_classification_stream_repeats_for_epochs_of_set_steps() -> None:
    examples = [([4, 5], 1), ([7], 0), ([6, 6, 6], 1)]
    make = dict(batch_size=1, shuffle=True, seed=0, max_length=4)
    assert len(list(data.classification_dataset(examples, **make))) == 3
    endless = data.classification_dataset(examples, repeat=True, **make)
    labels = [int(y.numpy()[0]) for _, y in endless.take(9)]
    assert len(labels) == 9 and sorted(labels) == [0, 0, 0, 1, 1, 1, 1, 1, 1]
