"""Which implementation of the math the layers run: the fast kernels (default) or the
readable reference of :mod:`kioku.functional`, for code above ``nn`` that needs the
reference's caches as they are written there (gate traces) without reaching into
:mod:`kioku.kernels`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .. import kernels


@contextlib.contextmanager
def reference_math() -> Iterator[None]:
    """Inside the ``with`` block every layer runs :mod:`kioku.functional` (the reference
    backend), whatever ``KIOKU_KERNELS`` says; the previous choice is restored after."""
    with kernels.use("reference"):
        yield
