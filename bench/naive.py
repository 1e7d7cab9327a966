"""The teaching texts' decoding loop, kept as the baseline the cached decoder must beat.

Batch 1; every step runs the whole model over the source and the whole target prefix and
takes the argmax of the last position. The model call is one tf.function with a relaxed
input signature (one trace for every length), so the baseline is slow only by algorithm,
not by running eagerly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from model.decoding import DecodeOptions
from model.transformer import Seq2SeqTransformer
from tokenizers import BOS_ID, EOS_ID, PAD_ID


def length_limit(source_len: int, model_max_length: int, options: DecodeOptions) -> int:
    """Tokens a sentence may generate, </s> included; source_len counts its </s>.

    The cached Decoder's rule: the source's length times a ratio plus an offset, capped.
    """
    cap = min(options.max_length, model_max_length - 1)
    return min(cap, int(source_len * options.max_length_ratio) + options.max_length_offset)


class NaiveGreedy:
    """Greedy decoding without a cache: O(length^2) decoder work per sentence."""

    def __init__(self, model: Seq2SeqTransformer, options: DecodeOptions = DecodeOptions()):
        self.model = model
        self.options = options
        self.traces = 0
        ids = tf.TensorSpec([None, None], tf.int32)
        self._last_log_probs = tf.function(self._forward, input_signature=[ids, ids])

    def _forward(self, source: tf.Tensor, prefix: tf.Tensor) -> tf.Tensor:
        self.traces += 1  # runs only while tracing
        logits = self.model((source, prefix), training=False)  # (batch, prefix_len, vocab)
        return tf.nn.log_softmax(logits[:, -1])  # (batch, vocab)

    def translate(self, source_ids: Sequence[int]) -> list[int]:
        """Subword ids without specials -> generated ids, the final </s> included."""
        max_length = self.model.model_config.max_length
        src = [*list(source_ids)[: max_length - 1], EOS_ID]  # the Decoder's truncation
        limit = length_limit(len(src), max_length, self.options)
        source = tf.constant([src], tf.int32)
        prefix = [BOS_ID]
        for step in range(limit):
            if step == limit - 1:
                # At the limit </s> is forced; the baseline skips the pointless forward pass.
                token = EOS_ID
            else:
                log_probs = self._last_log_probs(source, tf.constant([prefix], tf.int32))
                allowed = log_probs[0].numpy()
                allowed[[PAD_ID, BOS_ID]] = -np.inf  # never emitted, as in the Decoder
                token = int(np.argmax(allowed))
            prefix.append(token)
            if token == EOS_ID:
                break
        return prefix[1:]
