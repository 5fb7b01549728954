"""What the compiled backends share around their loops: which calls they take, the
lengths the loops read, and the shape checks the loops (which do not check bounds)
need first."""

from __future__ import annotations

import numpy as np

from ..functional import LSTMGrads

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def compiled_dtype(*arrays: np.ndarray | None) -> np.dtype | None:
    """The common float dtype of ``arrays`` (``None`` entries skipped) when the compiled
    loops handle them, else ``None`` (the call goes to the reference)."""
    dtype = arrays[0].dtype if isinstance(arrays[0], np.ndarray) else None
    if dtype not in _FLOATS:
        return None
    for array in arrays[1:]:
        if array is not None and (not isinstance(array, np.ndarray) or array.dtype != dtype):
            return None
    return dtype


def steps_per_sequence(mask: np.ndarray | None, steps: int, batch: int) -> np.ndarray:
    """``(batch,)`` int64: each sequence's length from a ``(steps, batch)`` mask, or all
    ``steps`` without one."""
    if mask is None:
        lengths = np.empty(batch, np.int64)
        lengths.fill(steps)  # a third of np.full's cost, which counts at batch 1
        return lengths
    return mask.sum(axis=0).astype(np.int64)


def check_shape(name: str, array: np.ndarray | None, *shapes: tuple[int, ...]) -> None:
    """``ValueError`` naming ``name`` unless ``array`` is ``None`` or has one of ``shapes``."""
    if array is None:
        return
    found = array.shape if isinstance(array, np.ndarray) else np.shape(array)
    if found not in shapes:
        expected = " or ".join(str(shape) for shape in shapes)
        raise ValueError(f"{name}: expected shape {expected}, found {found}")


def fits(arrays: tuple[np.ndarray, ...], shapes: tuple[tuple[int, ...], ...], dtype) -> bool:
    """Whether the compiled code can add into ``arrays`` in place: C-contiguous writable
    arrays of ``dtype`` with these ``shapes``."""
    return len(arrays) == len(shapes) and all(
        isinstance(a, np.ndarray) and a.dtype == dtype and a.shape == shape
        and a.flags.c_contiguous and a.flags.writeable
        for a, shape in zip(arrays, shapes)
    )  # fmt: skip


def added_into(grads: LSTMGrads, into: tuple[np.ndarray, np.ndarray] | None) -> LSTMGrads:
    """``grads`` with its weight gradients added into ``into`` (when given) and replaced
    by those arrays: the same result as the in-place path, for the calls it cannot take."""
    if into is None:
        return grads
    gw_ih, gw_hh = into
    gw_ih += grads.dweight_ih
    gw_hh += grads.dweight_hh
    return grads._replace(dweight_ih=gw_ih, dweight_hh=gw_hh)
