"""Random draws that do not depend on how a batch is split across processes.

Data-parallel training (:mod:`kioku.train.distributed`) gives each process a slice
``start:stop`` of a global batch of ``total`` examples. Inside :func:`batch_shard`, a
module that draws per-example noise (dropout masks, zoneout) through
:func:`batch_random` draws it for the whole global batch from its generator and keeps
its own slice: every example gets the mask it would get in one process, and every
process's generator advances alike, whichever examples it holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

_SHARD: ContextVar[tuple[int, int, int] | None] = ContextVar("batch_shard", default=None)


@contextmanager
def batch_shard(start: int, stop: int, total: int) -> Iterator[None]:
    """Within the block, batches hold examples ``start:stop`` of a global ``total``."""
    if not 0 <= start < stop <= total:
        raise ValueError(
            f"start, stop, total: expected 0 <= start < stop <= total, "
            f"found {start}, {stop}, {total}"
        )
    token = _SHARD.set((int(start), int(stop), int(total)))
    try:
        yield
    finally:
        _SHARD.reset(token)


def batch_random(rng: np.random.Generator, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """``rng.random(shape)`` (uniform on [0, 1)), ``axis`` of ``shape`` being the batch.
    Inside :func:`batch_shard`, the slice along ``axis`` of a draw for the global batch."""
    shard = _SHARD.get()
    if shard is None:
        return rng.random(shape)
    start, stop, total = shard
    if shape[axis] != stop - start:
        raise ValueError(
            f"shape: expected {stop - start} examples on axis {axis} (the batch shard "
            f"{start}:{stop} of {total}), found shape {tuple(shape)}"
        )
    full = list(shape)
    full[axis] = total
    index = [slice(None)] * len(shape)
    index[axis] = slice(start, stop)
    return rng.random(tuple(full))[tuple(index)]
