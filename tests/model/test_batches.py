"""Compact token arrays and the translation training job's fixed-shape batches."""

from __future__ import annotations

import numpy as np
import pytest

from model.batches import BOUNDS, Ragged, TranslationBatches, as_tf_dataset, encode_pairs
from tokenizers import BOS_ID, EOS_ID, PAD_ID


def _ragged(rows: list[list[int]], chunks: int = 2) -> Ragged:
    ragged = Ragged()
    for start in range(0, len(rows), chunks):
        ragged.extend(rows[start : start + chunks])
    return ragged.freeze()


def test_ragged_keeps_every_sequence_in_one_flat_array() -> None:
    rows = [[5, 6], [], [7, 8, 9], [10]]
    ragged = _ragged(rows)
    assert [ragged[i].tolist() for i in range(len(ragged))] == rows
    assert ragged.lengths.tolist() == [2, 0, 3, 1]
    assert ragged.flat.dtype == np.int32 and ragged.nbytes == 6 * 4 + 5 * 8


def test_encode_pairs_streams_in_chunks_and_drops_long_pairs() -> None:
    pairs = [("a b", "x"), ("a b c d", "x y"), ("a", "x y z w")]
    seen = []

    def encode(texts: list[str]) -> list[list[int]]:
        seen.append(len(texts))
        return [[4 + len(w) for w in t.split()] for t in texts]

    sources, targets, dropped = encode_pairs(pairs, encode, lambda s, t: s <= 3 and t <= 3, 2)
    assert seen == [2, 2, 1, 1]  # two chunks of two pairs, then one; both sides each
    assert dropped == 2 and len(sources) == len(targets) == 1


def _batches(n: int, *, shuffle: bool, multiple_of: int = 1) -> TranslationBatches:
    rows = [[5] * (1 + i % 30) for i in range(n)]
    return TranslationBatches(
        _ragged(rows, 7),
        _ragged([[6] * (1 + i % 23) for i in range(n)], 7),
        batch_tokens=96,
        max_length=40,
        shuffle=shuffle,
        seed=1,
        multiple_of=multiple_of,
    )


def test_every_batch_of_a_bound_has_one_shape_and_targets_are_shifted() -> None:
    batches = _batches(90, shuffle=False)
    shapes: dict[int, set[tuple[int, int]]] = {}
    rows = 0
    for index in range(len(batches)):
        (source, target_in), target_out = batches[index]
        shapes.setdefault(source.shape[1], set()).add(source.shape)
        rows += int(np.sum(source[:, 0] != PAD_ID))
        assert EOS_ID in source[0].tolist()
        length = target_out[0].tolist().index(EOS_ID)  # the target's pieces, then </s>
        assert target_in[0, 0] == BOS_ID
        assert target_in[0, 1 : length + 1].tolist() == target_out[0, :length].tolist()
        assert target_in[0, length + 1 :].tolist() == [PAD_ID] * (len(target_in[0]) - length - 1)
    assert all(len(s) == 1 for s in shapes.values())  # padding rows fill the last batch
    assert set(shapes) <= set(BOUNDS) | {40}
    assert rows == 90  # evaluation keeps every pair


def test_training_batches_are_full_redrawn_each_epoch_and_split_evenly() -> None:
    batches = _batches(300, shuffle=True, multiple_of=4)
    count = len(batches)
    before = [batches[i][0][0].tolist() for i in range(count)]
    assert all(
        int(np.sum(b[0][0][:, 0] != PAD_ID)) == len(b[0][0])
        for b in map(batches.__getitem__, range(count))
    )
    assert all(batches[i][0][0].shape[0] % 4 == 0 for i in range(count))
    batches.on_epoch_end()
    assert len(batches) == count
    assert before != [batches[i][0][0].tolist() for i in range(count)]


@pytest.mark.slow
def test_the_tf_pipeline_takes_every_length_whatever_came_first() -> None:
    batches = _batches(90, shuffle=True)
    widths = {
        int(source.shape[1])
        for (source, _), _ in as_tf_dataset(batches, repeat=False).take(len(batches))
    }
    assert len(widths) > 2  # Keras would have fixed the first batches' width


@pytest.mark.slow
def test_a_skipped_stream_goes_on_with_the_batches_of_an_uninterrupted_one() -> None:
    count = len(_batches(90, shuffle=True))
    whole = [
        source.numpy().tolist()
        for (source, _), _ in as_tf_dataset(_batches(90, shuffle=True), repeat=True).take(
            2 * count + 3
        )
    ]
    skip = count + 2  # past a pass' end, where the order is drawn again
    resumed = [
        source.numpy().tolist()
        for (source, _), _ in as_tf_dataset(
            _batches(90, shuffle=True), repeat=True, skip=skip
        ).take(count + 1)
    ]
    assert resumed == whole[skip:]
    assert resumed[:count] != whole[:count]  # not the stream's beginning again
