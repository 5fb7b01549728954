"""Helpers shared by the recurrent functions: step order and packed-sequence masks.

A direction's states live in one array of ``T + 1`` slots. The state entering step
``t`` is slot ``t + reverse`` and the state leaving it is slot ``t + 1 - reverse``, so
a forward run fills slots ``1..T`` from slot 0 and a reverse run fills ``T-1..0`` from
slot ``T``; the final state is slot ``T`` (forward) or slot 0 (reverse). A run that
keeps no cache (``keep_cache=False``) has two slots instead, which trade roles every step:
:func:`state_slots`, :func:`step_slots` and :func:`final_slot` say which is which.
"""

from __future__ import annotations

import numpy as np


def state_slots(
    start: np.ndarray | None, steps: int, shape: tuple[int, int], dtype, reverse: bool, keep: bool
) -> np.ndarray:
    """Slots for one state of shape ``(B, S)`` over ``steps`` steps: ``(T+1, B, S)`` with
    ``keep`` (every step's state kept), else ``(2, B, S)``; the slot the first step reads
    holds ``start`` (zeros if ``None``)."""
    slots = np.empty((steps + 1 if keep else 2, *shape), dtype)
    slots[steps * int(reverse) if keep else 0] = 0 if start is None else start
    return slots


def step_slots(step: int, t: int, reverse: bool, keep: bool) -> tuple[int, int]:
    """The slots that the ``step``-th step visited (time index ``t``) reads its state from
    and writes its state to (see :func:`state_slots`)."""
    if keep:
        r = int(reverse)
        return t + r, t + 1 - r
    return step % 2, 1 - step % 2


def final_slot(steps: int, reverse: bool, keep: bool) -> int:
    """The slot holding the state after the last of ``steps`` steps."""
    return steps * (1 - int(reverse)) if keep else steps % 2


def step_order(num_steps: int, reverse: bool) -> range:
    """Time indices in the order a direction visits them."""
    return range(num_steps - 1, -1, -1) if reverse else range(num_steps)


def entering(slots: np.ndarray, reverse: bool) -> np.ndarray:
    """``(T, B, S)`` view of ``slots (T+1, B, S)``: the state entering each step, time-indexed."""
    r = int(reverse)
    return slots[r : r + slots.shape[0] - 1]


def leaving(slots: np.ndarray, reverse: bool) -> np.ndarray:
    """``(T, B, S)`` view of ``slots (T+1, B, S)``: the state leaving each step, time-indexed."""
    r = 1 - int(reverse)
    return slots[r : r + slots.shape[0] - 1]


class StepStates:
    """A cache's attribute: the states of its slots field ``(T+1, B, S)`` (in step order)
    seen time-indexed as ``(T, B, S)``, those entering each step or those leaving it
    (:func:`entering`, :func:`leaving`, with the cache's ``reverse``)."""

    def __init__(self, field: str, when: str, doc: str) -> None:
        if when not in ("entering", "leaving"):
            raise ValueError(f"when: expected 'entering' or 'leaving', found {when!r}")
        self.field, self.__doc__ = field, doc
        self.view = entering if when == "entering" else leaving

    def __get__(self, cache: object, owner: type | None = None) -> np.ndarray:
        if cache is None:
            return self
        return self.view(getattr(cache, self.field), cache.reverse)


class HiddenSteps:
    """Base of a cache whose ``h_state (T+1, B, S)`` holds the hidden state in step order
    (``S``: ``H``, or ``P`` with a projection) and which has ``reverse``: the views of it
    that every cell's cache offers."""

    h_in = StepStates("h_state", "entering", "``(T, B, S)``: the hidden state entering each step.")
    h_out = StepStates("h_state", "leaving", "``(T, B, S)``: the hidden state leaving each step.")


def length_mask(lengths: np.ndarray | None, num_steps: int, batch: int) -> np.ndarray | None:
    """Boolean ``(T, B)`` mask, True where step ``t`` is inside sequence ``b`` (``t < lengths[b]``).

    ``lengths`` is ``(B,)`` of integers in ``1..T``; ``None`` (every sequence full)
    gives ``None``. Raises ``ValueError``/``TypeError`` naming ``lengths``.
    """
    if lengths is None:
        return None
    lengths = np.asarray(lengths)
    if lengths.dtype == np.bool_ or not np.issubdtype(lengths.dtype, np.integer):
        if np.issubdtype(lengths.dtype, np.floating) and np.all(np.mod(lengths, 1) == 0):
            lengths = lengths.astype(np.int64)
        else:
            raise TypeError(f"lengths: expected integers, found dtype {lengths.dtype}")
    if lengths.shape != (batch,):
        raise ValueError(
            f"lengths: expected shape ({batch},) (one per sequence), found {lengths.shape}"
        )
    if batch and (lengths.min() < 1 or lengths.max() > num_steps):
        bad = lengths[(lengths < 1) | (lengths > num_steps)][0]
        raise ValueError(f"lengths: expected every length in 1..{num_steps} (T), found {int(bad)}")
    if np.all(lengths == num_steps):
        return None
    return np.arange(num_steps)[:, None] < lengths[None, :]
