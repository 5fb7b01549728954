"""Contiguous-stream batching for truncated backprop through time.

The token stream is cut into ``B`` equal parallel streams (the tail that does not fit
is dropped); batch ``k`` holds steps ``k*T .. k*T+T-1`` of every stream, and its
targets are the same steps shifted by one. The recurrent state at the end of batch
``k`` is the right initial state for batch ``k+1``, so models carry it across batches
(detached: gradients stop at batch boundaries). The position (epoch, next batch) is
plain data, saved in checkpoints so that a resumed run sees the same batches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .position import EpochPosition


class StreamBatcher(EpochPosition):
    """Batches ``(x (T, B), y (T, B))`` of int64 ids, time-major, in a fixed order.

    ``ids (N,)`` is the token stream. The last batch of an epoch may be shorter than
    ``bptt`` unless ``drop_last``.
    """

    def __init__(self, ids: np.ndarray, batch_size: int, bptt: int, drop_last: bool = False):
        ids = np.asarray(ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids: expected a 1-D integer array, found {ids.dtype} {ids.shape}")
        if batch_size < 1 or bptt < 1:
            raise ValueError(f"batch_size, bptt: expected >= 1, found {batch_size}, {bptt}")
        length = ids.size // batch_size
        if length < 2:
            raise ValueError(
                f"ids: expected at least {2 * batch_size} tokens for batch_size {batch_size}, "
                f"found {ids.size}"
            )
        self.batch_size = batch_size
        self.bptt = bptt
        self.drop_last = drop_last
        # (L, B): column b is stream b, contiguous in the original text
        self.data = ids[: length * batch_size].reshape(batch_size, length).T.copy()
        self.epoch = 0
        self.batch = 0  # index of the next batch in the epoch

    def __len__(self) -> int:
        """Batches per epoch."""
        steps = self.data.shape[0] - 1
        return steps // self.bptt if self.drop_last else -(-steps // self.bptt)

    @property
    def tokens_per_epoch(self) -> int:
        return (
            len(self) * self.bptt * self.batch_size
            if self.drop_last
            else ((self.data.shape[0] - 1) * self.batch_size)
        )

    def get(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``k``: inputs ``(T, B)`` and targets ``(T, B)``."""
        start = k * self.bptt
        stop = min(start + self.bptt, self.data.shape[0] - 1)
        return self.data[start:stop], self.data[start + 1 : stop + 1]

    def batch_source(self) -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
        return self.get

    @property
    def at_epoch_start(self) -> bool:
        return self.batch == 0
