"""The unigram baseline a language model must beat: token frequencies, no context."""

from __future__ import annotations

import numpy as np


def unigram_loss(train_ids: np.ndarray, test_ids: np.ndarray, vocab_size: int) -> float:
    """Mean cross-entropy in nats per token of ``test_ids (N,)`` under the add-one
    smoothed unigram distribution of ``train_ids (M,)`` over ``vocab_size`` tokens."""
    counts = np.bincount(train_ids, minlength=vocab_size).astype(np.float64) + 1.0
    log_prob = np.log(counts) - np.log(counts.sum())
    return float(-log_prob[test_ids].mean())
