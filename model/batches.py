"""Compact token storage and the length-bucketed batches of the translation training job.

A corpus of a few hundred thousand pairs held as one small array per sentence (or as
tf.data elements) costs gigabytes in object overhead; `Ragged` keeps every sequence of a
side in one flat int32 array with offsets, so memory is the tokens themselves (4 bytes
each) plus 8 bytes a sentence, and encoding streams through it in chunks.
`TranslationBatches` plans each epoch's batches from the lengths alone and pads only the
batch it is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from tokenizers import BOS_ID, EOS_ID, PAD_ID

if TYPE_CHECKING:
    from model.data import PaddedBatches

# Batch lengths are padded up to one of these bounds: few shapes (one trace or compilation
# each), and little padding. Compiled backends (JAX) need fixed shapes; TensorFlow too
# retraces less with them.
BOUNDS = (8, 12, 16, 20, 24, 32, 40, 48, 64, 96, 128, 192, 256)


def plan_batches(
    buckets: list[tuple[int, int, np.ndarray]], rng: np.random.Generator, shuffle: bool
) -> list[tuple[int, int, np.ndarray]]:
    """(bound, size, member indices) of an epoch's batches from (bound, size, members)
    buckets: in training (`shuffle`) each bucket reshuffled, its incomplete last batch left
    out (one shape per bound) and the batches in random order; else every example, in order.
    """
    batches = []
    for bound, size, members in buckets:
        order = rng.permutation(members) if shuffle else members
        stop = len(order) - len(order) % size if shuffle else len(order)
        batches += [(bound, size, order[i : i + size]) for i in range(0, stop, size)]
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


class Ragged:
    """Variable-length int32 sequences in one flat array, appended in chunks."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._lengths: list[np.ndarray] = []
        self.flat = np.zeros(0, np.int32)
        self.offsets = np.zeros(1, np.int64)

    def extend(self, sequences: Iterable[Sequence[int]]) -> None:
        rows = list(sequences)
        self._lengths.append(np.fromiter((len(r) for r in rows), np.int64, len(rows)))
        self._chunks.append(np.fromiter((i for r in rows for i in r), np.int32))

    def freeze(self) -> Ragged:
        """Joins the appended chunks; call once, after the last `extend`."""
        self.flat = np.concatenate([self.flat, *self._chunks])
        lengths = np.concatenate([np.diff(self.offsets), *self._lengths])
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])
        self._chunks, self._lengths = [], []
        return self

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        return self.flat[self.offsets[index] : self.offsets[index + 1]]

    @property
    def nbytes(self) -> int:
        return int(self.flat.nbytes + self.offsets.nbytes)


def encode_pairs(
    pairs: Iterable[tuple[str, str]],
    encode: Callable[[list[str]], list[list[int]]],
    keep: Callable[[int, int], bool],
    chunk: int = 20_000,
) -> tuple[Ragged, Ragged, int]:
    """Encodes pairs `chunk` at a time into compact arrays; pairs whose (source, target)
    piece counts `keep` refuses are dropped. Returns sources, targets and the drop count."""
    sources, targets = Ragged(), Ragged()
    dropped = 0
    batch: list[tuple[str, str]] = []

    def flush() -> None:
        nonlocal dropped
        src = encode([s for s, _ in batch])
        tgt = encode([t for _, t in batch])
        kept = [(s, t) for s, t in zip(src, tgt, strict=True) if keep(len(s), len(t))]
        dropped += len(batch) - len(kept)
        sources.extend(s for s, _ in kept)
        targets.extend(t for _, t in kept)
        batch.clear()

    for pair in pairs:
        batch.append(pair)
        if len(batch) >= chunk:
            flush()
    if batch:
        flush()
    return sources.freeze(), targets.freeze(), dropped


class TranslationBatches(keras.utils.PyDataset):
    """((source + </s>, <s> + target), target + </s>) batches of about `batch_tokens`
    tokens. Pairs go to the smallest bound of BOUNDS that holds both sides, and every batch
    of a bound has the same shape: one compilation per bound (Keras compiles the train step
    with XLA, and each new shape costs a compilation and its memory). Training order is
    redrawn every epoch and leaves out each bound's incomplete last batch (other pairs next
    epoch); evaluation keeps every pair, its last batches filled up with padding rows, which
    the masked loss and metrics ignore. Under a distribution strategy the batch size is a
    multiple of `multiple_of`, so that batches split evenly over the replicas.
    """

    def __init__(
        self,
        sources: Ragged,
        targets: Ragged,
        *,
        batch_tokens: int,
        max_length: int,
        shuffle: bool,
        seed: int,
        multiple_of: int = 1,
    ) -> None:
        super().__init__()
        self.sources, self.targets = sources, targets
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        bounds = np.array([b for b in BOUNDS if b < max_length] + [max_length])
        longest = np.maximum(sources.lengths, targets.lengths) + 1  # </s> or <s>
        slots = np.searchsorted(bounds, longest)  # first bound >= length

        def size_for(bound: int) -> int:
            size = max(1, batch_tokens // bound)
            return max(multiple_of, size - size % multiple_of)

        self.buckets = [
            (int(bound), size_for(int(bound)), np.flatnonzero(slots == i))
            for i, bound in enumerate(bounds)
            if np.any(slots == i)
        ]
        self.batches: list[tuple[int, int, np.ndarray]] = []
        self._plan()

    @property
    def target_tokens(self) -> int:
        """Target tokens (</s> included) of one epoch: what a progress estimate counts."""
        return int(self.targets.lengths.sum() + len(self.targets))

    def _plan(self) -> None:
        self.batches = plan_batches(self.buckets, self.rng, self.shuffle)

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> Any:
        bound, size, members = self.batches[index]
        source = np.full((size, bound), PAD_ID, np.int32)
        target_in = np.full((size, bound), PAD_ID, np.int32)
        target_out = np.full((size, bound), PAD_ID, np.int32)
        for row, i in enumerate(members):
            s, t = self.sources[i], self.targets[i]
            source[row, : len(s)] = s
            source[row, len(s)] = EOS_ID
            target_in[row, 0] = BOS_ID
            target_in[row, 1 : len(t) + 1] = t
            target_out[row, : len(t)] = t
            target_out[row, len(t)] = EOS_ID
        return (source, target_in), target_out

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._plan()


def as_tf_dataset(
    batches: TranslationBatches | PaddedBatches, *, repeat: bool, skip: int = 0
) -> Any:
    """The batches ((ids, ids), ids): a translation pair, or masked-LM inputs, positions and
    targets) as a tf.data pipeline with their real signature, every dimension free
    (Keras would infer one from the first batches it peeks at, and refuse another length
    later). With `repeat`, an endless stream that redraws the order after every pass:
    epochs of `steps_per_epoch` updates then draw from the whole corpus in turn. `skip`
    batches are passed over unbuilt (the orders redrawn as they would have been), so that a
    resumed run goes on with the batches an uninterrupted one would have seen next."""
    import tensorflow as tf

    ids = tf.TensorSpec([None, None], tf.int32)

    def generate() -> Any:
        left = skip
        while True:
            for index in range(len(batches)):
                if left:
                    left -= 1
                    continue
                yield batches[index]
            batches.on_epoch_end()
            if not repeat:
                return

    return tf.data.Dataset.from_generator(generate, output_signature=((ids, ids), ids)).prefetch(2)
