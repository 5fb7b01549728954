"""Elementwise work on big arrays in cache-sized blocks, the blocks split over kioku's
threads: for the layers above :mod:`kioku.nn` (an optimizer's update) that may not reach
into :mod:`kioku.kernels` themselves.

An update such as Adam's makes a dozen NumPy passes over each parameter, most with a
temporary array; over a whole 7 MB embedding each pass goes to memory. Over a block of a
few hundred kilobytes the passes stay in cache, and NumPy releases the GIL inside its
loops, so the blocks of two threads run at once. Every element goes through the same
operations in the same order as over the whole array: the results are the same, bit for
bit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..kernels._threads import over_rows


def blockwise(update: Callable[..., object], *arrays: np.ndarray) -> None:
    """``update(*blocks)`` for consecutive blocks of the flattened ``arrays`` (all of one
    size, any shapes), each block the same span of every array, on every thread
    (:func:`kioku.kernels._threads.over_rows`); ``update`` must work element by element,
    in place. Where an array is not C-contiguous (its flat view would be a copy), one
    call with the whole arrays."""
    if not arrays:
        raise ValueError("arrays: expected at least one array, found none")
    size = arrays[0].size
    for k, array in enumerate(arrays):
        if array.size != size:
            raise ValueError(
                f"arrays[{k}]: expected {size} elements (as arrays[0]), found {array.size}"
            )
    if not all(array.flags.c_contiguous for array in arrays):
        update(*arrays)
        return
    flats = [array.reshape(-1) for array in arrays]

    def block(start: int, stop: int) -> None:
        update(*(flat[start:stop] for flat in flats))

    over_rows(block, size, sum(array.itemsize for array in arrays))
