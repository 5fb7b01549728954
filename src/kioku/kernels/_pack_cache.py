"""Packed float32 weights kept across inference calls while the weights stay unchanged.

Packing the recurrent weights costs a read and a write of the whole matrix per call
(0.39 ms at H = 650); ONNX Runtime packs once per session. kioku's parameters are plain
arrays written in place, so a packed copy is reused only when all of these hold:

1. the same array object (a weak reference: a new array with a recycled ``id`` does
   not match), with the same shape and strides, its data at the same address;
2. no weight was written through kioku's API since it was packed: every such path
   (optimizer steps, ``Module.load_state_dict`` and what is built on it: interop
   loaders, checkpoint restore; the MPI parameter broadcast) calls
   :func:`~kioku.kernels.weights_changed`, which moves one global counter on and so
   makes every packed copy stale at once;
3. a sample of :data:`SAMPLES` elements evenly spread over the array (the first and
   the last among them) still equals the sample taken when it was packed: a guard
   against in-place writes by user code that did not say so, checked inside the same
   compiled call that would otherwise pack.

Code that writes into a parameter array by other means must call
:func:`~kioku.kernels.weights_changed` (or ``Module.weights_changed()``) before the
next forward; the sample catches most such writes, not all. Only the nn layers'
inference calls (``keep_cache=False``) reuse packed copies: a training step changes
the weights anyway.
"""

from __future__ import annotations

import weakref

import numpy as np

from . import _threads, _weights_epoch
from ._aligned import aligned_panels
from ._gate_order import gate_panels_shape, pack_gate_panel_range, pack_gate_panels
from ._jit import njit
from ._packed import NR, pack_panels, panels_shape

SAMPLES = 64
# Weights with fewer elements are packed afresh on every call: packing them costs less
# than checking a kept copy (under a microsecond at 32 x 8).
MIN_ELEMENTS = 4096

# Fresh copies of weights from this many bytes on are packed by every thread of the
# budget, each its own panels: a training call packs its weights afresh, and on one
# thread that took 3.6 ms of a 73 ms step at (35, 20, 650) while the other core waited
# (the whole step split: 72.2-73.9 ms against 72.7-74.6 in five pairs of fresh
# processes, idle AMD EPYC: about 1 %, the size of the noise). At 1 MiB (H = 256) no
# gain showed.
SPLIT_PACK_BYTES = 2 << 20

# (id(array), transposed, gate order)
#     -> (weak reference, shape, strides, epoch, sample, address, panels)
_entries: dict[tuple[int, bool, bool], tuple] = {}


@njit(cache=True, nogil=True)
def sample_holds(source, sample, address):
    """Whether ``source (K, N)``'s data is still at ``address[0]`` and its sample (see
    :func:`take_sample`) still equals ``sample (SAMPLES,)`` (a NaN differs)."""
    K, N = source.shape
    last = K * N - 1
    count = sample.shape[0]
    if source.ctypes.data != address[0]:
        return False
    for s in range(count):
        flat = s * last // (count - 1)  # the first and the last element among them
        if source[flat // N, flat % N] != sample[s]:
            return False
    return True


@njit(cache=True, nogil=True)
def take_sample(source, sample, address):
    """Fill ``sample (SAMPLES,)`` with elements of ``source (K, N)`` evenly spread over it
    (the first and the last among them) and ``address[0]`` with its data's address."""
    K, N = source.shape
    last = K * N - 1
    count = sample.shape[0]
    for s in range(count):
        flat = s * last // (count - 1)
        sample[s] = source[flat // N, flat % N]
    address[0] = source.ctypes.data


@njit(cache=True, nogil=True)
def _sample_or_pack(source, sample, address, panels, repack, gates=False):
    """Pack ``source (K, N)`` into ``panels`` (:func:`pack_gate_panels` with ``gates``),
    take its sample and its address when ``repack``, when the sample differs from
    ``sample (SAMPLES,)`` or when its data moved from ``address[0]``; returns whether it
    packed."""
    repack = repack or not sample_holds(source, sample, address)
    if repack:
        if gates:
            pack_gate_panels(source, panels)
        else:
            pack_panels(source, panels)
        take_sample(source, sample, address)
    return repack


def _pack_fresh(source: np.ndarray, panels: np.ndarray, gates: bool) -> None:
    """Pack ``source`` into ``panels`` as :func:`packed` does, the panels shared among
    the threads of the budget from :data:`SPLIT_PACK_BYTES` on (the same array: each
    panel is written by one thread from its own columns)."""
    count = panels.shape[0]
    parts = 1
    if source.nbytes >= SPLIT_PACK_BYTES and count > 1:
        parts = min(_threads.max_threads(), count)
    if parts == 1:
        if gates:
            pack_gate_panels(source, panels)
        else:
            pack_panels(source, panels)
        return
    N = source.shape[1]

    def share(part: int) -> None:
        q0, q1 = count * part // parts, count * (part + 1) // parts
        if gates:
            pack_gate_panel_range(source, panels, q0, q1)
        else:
            pack_panels(source[:, q0 * NR : min(q1 * NR, N)], panels[q0:q1])

    _threads.run_parts(share, parts, single_blas=False)


def _forget(key: tuple[int, bool, bool]) -> None:
    _entries.pop(key, None)


def packed(weight: np.ndarray, transposed: bool, reuse: bool, gates: bool = False) -> np.ndarray:
    """``weight`` (C-contiguous float32 ``(N, K)``) packed as :func:`pack_panels` packs
    ``weight.T`` (``transposed``) or ``weight``, or with ``gates`` as
    :func:`pack_gate_panels` packs ``weight (4H, K)`` (``transposed`` then not read); the
    copy kept from an earlier call when ``reuse`` and the rules of this module say it is
    still current, else a fresh one (kept for the next call when ``reuse``)."""
    source = weight if gates else weight.T if transposed else weight
    shape = gate_panels_shape(weight.shape[1], weight.shape[0] // 4) if gates else None
    if not reuse or weight.size < MIN_ELEMENTS:
        panels = aligned_panels(*(shape or panels_shape(*source.shape)))
        _pack_fresh(source, panels, gates)
        return panels
    key = (id(weight), transposed and not gates, gates)
    entry = _entries.get(key)
    epoch = _weights_epoch._epoch
    if (
        entry is not None
        and entry[0]() is weight
        and entry[1] == weight.shape
        and entry[2] == weight.strides
        and entry[3] == epoch
    ):
        _sample_or_pack(source, entry[4], entry[5], entry[6], False, gates)
        return entry[6]
    panels = aligned_panels(*(shape or panels_shape(*source.shape)))
    sample = np.empty(SAMPLES, weight.dtype)
    address = np.zeros(1, np.int64)
    _sample_or_pack(source, sample, address, panels, True, gates)
    ref = weakref.ref(weight, lambda _, key=key: _forget(key))
    _entries[key] = (ref, weight.shape, weight.strides, epoch, sample, address, panels)
    return panels


# kept()'s answer for weights it keeps no copy of: an empty sample says "pack afresh"
NOT_KEPT = (np.empty((0, 0, 0), np.float32), np.empty(0, np.float32), np.zeros(1, np.int64))


def kept(weight: np.ndarray, transposed: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For compiled callers that check a kept copy themselves: ``(panels, sample (SAMPLES,),
    address (1,))`` of ``weight``'s entry, brought up to date now (as :func:`packed` with
    ``reuse``), for :func:`_sample_or_pack` to check on each later call while the weights
    epoch stays where it is now; :data:`NOT_KEPT` (an empty sample) for weights under
    :data:`MIN_ELEMENTS`, which are packed afresh on every call."""
    if weight.size < MIN_ELEMENTS:
        return NOT_KEPT
    packed(weight, transposed, True)
    entry = _entries[(id(weight), transposed, False)]
    return entry[6], entry[4], entry[5]
