"""Embedding: a lookup table of ``V`` rows of size ``D``, with a sparse backward.

The backward touches only the rows that the last forward used: token positions are
sorted by id, the gradients of equal ids are summed with one ``np.add.reduceat``, and
those sums are added into the used rows. No ``(V, D)`` buffer is built per step.
"""

from __future__ import annotations

import numpy as np

from .checks import check_positive_int
from .module import Module, as_rng, check_dtype


def check_token_ids(ids: np.ndarray, num_embeddings: int, name: str = "tokens") -> np.ndarray:
    """Return ``ids`` as an integer array, or raise naming ``name``.

    Raises ``TypeError`` for a non-integer dtype and ``ValueError`` for an id outside
    ``0..num_embeddings-1`` (giving the first bad value and its position).
    """
    ids = np.asarray(ids)
    if ids.dtype == np.bool_ or not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{name}: expected an integer array of token ids, found dtype {ids.dtype}")
    if ids.size:
        bad = (ids < 0) | (ids >= num_embeddings)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"{name}: expected ids in 0..{num_embeddings - 1}, "
                f"found {int(ids[where])} at index {where}"
            )
    return ids


class Embedding(Module):
    """``weight (V, D)``, initialised N(0, 1) as in ``torch.nn.Embedding``.

    ``padding_idx``, if given, is a row that starts at zero and never receives a
    gradient (as in PyTorch).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        dtype: np.dtype | type = np.float32,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        num_embeddings = check_positive_int("num_embeddings", num_embeddings)
        embedding_dim = check_positive_int("embedding_dim", embedding_dim)
        if padding_idx is not None and not 0 <= padding_idx < num_embeddings:
            raise ValueError(
                f"padding_idx: expected None or 0..{num_embeddings - 1}, found {padding_idx}"
            )
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.dtype = check_dtype(dtype)
        weight = as_rng(rng).standard_normal((num_embeddings, embedding_dim)).astype(self.dtype)
        if padding_idx is not None:
            weight[padding_idx] = 0
        self.add_param("weight", weight)
        self._ids: np.ndarray | None = None

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """Rows for ``ids`` of any shape ``(...)`` -> ``(..., D)``."""
        ids = check_token_ids(ids, self.num_embeddings, "ids")
        self._ids = ids
        return self.params["weight"][ids]

    def backward(self, dy: np.ndarray) -> None:
        """Add ``dy (..., D)`` into the gradient rows of the ids of the last forward."""
        if self._ids is None:
            raise RuntimeError("Embedding.backward called before a forward")
        D = self.embedding_dim
        if dy.shape != self._ids.shape + (D,):
            raise ValueError(f"dy: expected shape {self._ids.shape + (D,)}, found {dy.shape}")
        flat = self._ids.reshape(-1)
        if flat.size == 0:
            return None
        order = np.argsort(flat, kind="stable")
        sorted_ids = flat[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        row_sums = np.add.reduceat(dy.reshape(-1, D)[order], starts, axis=0)
        rows = sorted_ids[starts]
        if self.padding_idx is not None:
            keep = rows != self.padding_idx
            rows, row_sums = rows[keep], row_sums[keep]
        self.grads["weight"][rows] += row_sums  # rows are unique, so fancy += is exact
        return None
