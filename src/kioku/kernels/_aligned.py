"""Packed panels that start on a cache line.

The packed kernel (:mod:`._packed`) loads each row of a panel as whole vectors: with
AVX-512 one 64-byte vector is one cache line only if the panel starts on a line.
NumPy allocates on 16-byte boundaries and Numba on 32, so three panels in four were
read with every vector load split across two lines. A Zen 4 runs its 512-bit loads as
two 256-bit halves and loses little (one thread, ``(B, 64) x (64, 256)`` per step:
31.2 GFLOP/s from a line, 30.2 and 29.5 at 16 and 32 bytes past one; 113 at every
offset for ``(20, 200) x (200, 800)``); Intel's cores take a load that splits a line
at half the rate of one that does not. Every panel buffer comes from here.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit

ALIGN = 64  # bytes: a cache line, one AVX-512 vector


@njit(cache=True, nogil=True)
def aligned_floats(count):
    """An uninitialised float32 array of ``count`` elements whose first element is on
    an :data:`ALIGN`-byte boundary (a view of a slightly longer allocation)."""
    raw = np.empty(count + ALIGN // 4, np.float32)
    skip = (ALIGN - np.int64(raw.ctypes.data) % ALIGN) % ALIGN // 4
    return raw[skip : skip + count]


@njit(cache=True, nogil=True)
def aligned_panels(panels, k, width):
    """An uninitialised float32 ``(panels, k, width)`` C-contiguous array starting on an
    :data:`ALIGN`-byte boundary: with ``width`` a multiple of 16 every row of every panel
    does too."""
    return aligned_floats(panels * k * width).reshape((panels, k, width))
