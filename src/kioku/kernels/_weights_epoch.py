"""One counter that moves on whenever parameter arrays are written through kioku's API.

Kept apart from the compiled code (no Numba import), so that ``kioku.nn`` and
``kioku.train`` can mark weights changed in an install without the ``fast`` extra.
"""

from __future__ import annotations

_epoch = 0


def weights_changed() -> None:
    """Mark every packed copy of every weight stale (see :mod:`kioku.kernels._pack_cache`):
    call after writing into parameter arrays in place by any means other than kioku's
    optimizers and ``Module.load_state_dict``, which call it themselves."""
    global _epoch
    _epoch += 1


def epoch() -> int:
    """How many times :func:`weights_changed` was called in this process."""
    return _epoch
