"""The rows of a padded batch that the gradients after the backward loop need.

A batch of sequences of unequal lengths is padded to the longest: ``T B`` rows of which
``sum(lengths)`` are valid. The backward loop writes zero gate gradients at the padded
rows, so they add nothing to the weight gradients and give zero input gradients, yet the
GEMMs after the loop go over all ``T B`` rows. In a batch of random sentences (the word
tagger's, UD English-GUM, batch 32) 68 % of the rows are padding. Where at least
:data:`MIN_PADDED` of them are, the valid rows of the gate gradients, the inputs and the
previous hidden states are gathered into dense arrays first (a copy of ``4H + I + P``
floats a valid row), the GEMMs run on those, and the input gradient is scattered back
with zeros at the padded rows. Every sum is the same set of products, without the zeros.
"""

from __future__ import annotations

import numpy as np

from . import _tuning

# The share of padded rows from which gathering pays, measured on the machine (kioku
# tune; probe `padded`). A gathered row costs a copy of 4H + I + P floats; a padded row
# skipped saves three GEMM rows, 8 H (I + P) + 8 H I flops. On an AMD EPYC (2026-12-07)
# the probe found gathering faster at every share it times, 0.2 to 0.65; the hand-set
# half leaves room for a CPU whose FMAs run twice as fast against the same memory.
MIN_PADDED = _tuning.current("MIN_PADDED")  # by hand: 0.5


def valid_rows(mask: np.ndarray | None, project: bool) -> np.ndarray | None:
    """The flat indices (into ``T B``, time-major) of the valid rows of ``mask (T, B)``, or
    ``None`` to keep every row: no mask, a projection (its own gradients read ``T B``
    rows of their own), or less than :data:`MIN_PADDED` of the rows padded."""
    if mask is None or project:
        return None
    flat = mask.reshape(-1)
    count = int(np.count_nonzero(flat))
    if flat.size - count < MIN_PADDED * flat.size:
        return None
    return np.flatnonzero(flat)


def gather(rows: np.ndarray, *arrays: np.ndarray) -> list[np.ndarray]:
    """Each ``(T B, width)`` array's ``rows``, as a C-contiguous ``(len(rows), width)``."""
    return [np.take(array, rows, axis=0) for array in arrays]


def scatter(rows: np.ndarray, dense: np.ndarray, into: np.ndarray) -> None:
    """``into (T B, width)``: ``dense (len(rows), width)`` at ``rows``, zeros elsewhere."""
    into.fill(0)
    into[rows] = dense
