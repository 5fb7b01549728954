"""The checks and reshaping a recurrent stack applies to what a caller passes in.

:func:`to_time_major` takes the input ``x`` in the layout the layer was built for and
gives ``(T, B, I)``; :func:`stacked_state` takes the stacked initial state (or, for the
backward, its gradient) and gives one tuple per (layer, direction). Both raise
``ValueError`` naming the argument and what was expected, before anything runs.
"""

from __future__ import annotations

import numpy as np

from .checks import check_float_array, check_shape


def to_time_major(
    x: object, dtype: np.dtype, input_size: int, batch_first: bool
) -> tuple[np.ndarray, bool]:
    """``x`` as a C-contiguous ``(T, B, I)`` array of ``dtype`` and whether it came
    unbatched: ``x`` is ``(T, B, I)``, ``(B, T, I)`` with ``batch_first``, or ``(T, I)``
    (then ``B = 1``); ``I`` must be ``input_size``, ``T`` and ``B`` at least 1."""
    x = check_float_array("x", x, dtype)
    if x.ndim not in (2, 3):
        layout = "(B, T, I)" if batch_first else "(T, B, I)"
        raise ValueError(f"x: expected rank 3 {layout} or rank 2 (T, I), found shape {x.shape}")
    if x.shape[-1] != input_size:
        raise ValueError(
            f"x: expected {input_size} features (input_size) in the last axis, "
            f"found shape {x.shape}"
        )
    unbatched = x.ndim == 2
    if unbatched:
        x = x[:, None, :]
    elif batch_first:
        x = x.transpose(1, 0, 2)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x: expected at least one step and one sequence, found shape {x.shape}")
    return np.ascontiguousarray(x), unbatched


def stacked_state(
    state: object,
    count: int,
    state_names: tuple[str, ...],
    state_sizes: tuple[int, ...],
    dtype: np.dtype,
    batch: int,
    unbatched: bool,
    name: str,
) -> list[tuple[np.ndarray | None, ...]]:
    """Per (layer, direction) state tuples, ``count`` of them, from the caller's stacked
    ``state``: one array ``(count, B, size)`` per name in ``state_names`` (a tuple of
    them when there are several, e.g. ``(h0, c0)``; ``(count, size)`` when ``unbatched``;
    any part may be ``None``), or ``None`` for all. ``name`` is the argument's name in
    error messages."""
    if state is None:
        return [(None,) * len(state_names)] * count
    parts = state if len(state_sizes) > 1 else (state,)
    if not isinstance(parts, (tuple, list)) or len(parts) != len(state_sizes):
        raise ValueError(
            f"{name}: expected a tuple ({', '.join(s + '0' for s in state_names)}), "
            f"found {type(state).__name__}"
        )
    arrays = []
    for label, part, size in zip(state_names, parts, state_sizes):
        if part is None:
            arrays.append(None)
            continue
        array = check_float_array(f"{name}[{label}0]", part, dtype)
        expected = (count, size) if unbatched else (count, batch, size)
        check_shape(f"{name}[{label}0]", array, expected)
        arrays.append(array[:, None, :] if unbatched else array)
    return [tuple(None if a is None else a[i] for a in arrays) for i in range(count)]
