"""How the two directions of a bidirectional layer become one output, and back.

``forward`` and ``backward`` are one direction's outputs, ``(..., P)`` each (``(T, B, P)``
sequences, or ``(B, P)`` final states). ``concat`` joins them to ``(..., 2P)`` (PyTorch,
the seed's default); ``sum``, ``mean`` and ``mul`` keep ``(..., P)`` (Keras' other modes).
"""

from __future__ import annotations

import numpy as np

MERGE_MODES = ("concat", "sum", "mean", "mul")


def merge_directions(forward: np.ndarray, backward: np.ndarray, mode: str) -> np.ndarray:
    """The merged output, ``(..., 2P)`` for ``concat``, else ``(..., P)``."""
    if mode == "concat":
        return np.concatenate([forward, backward], axis=-1)
    if mode == "sum":
        return forward + backward
    if mode == "mean":
        return (forward + backward) * forward.dtype.type(0.5)
    return forward * backward


def merge_directions_backward(
    dmerged: np.ndarray, forward: np.ndarray, backward: np.ndarray, mode: str
) -> tuple[np.ndarray, np.ndarray]:
    """dL/d(forward), dL/d(backward) ``(..., P)`` each, from ``dmerged`` shaped like
    :func:`merge_directions`' result (``forward`` and ``backward`` are needed by ``mul``)."""
    if mode == "concat":
        size = forward.shape[-1]
        return (
            np.ascontiguousarray(dmerged[..., :size]),
            np.ascontiguousarray(dmerged[..., size:]),
        )
    if mode == "sum":
        return dmerged, dmerged
    if mode == "mean":
        half = dmerged * dmerged.dtype.type(0.5)
        return half, half
    return dmerged * backward, dmerged * forward


def merge_backward_inputs(
    forward: np.ndarray, backward: np.ndarray, mode: str
) -> tuple[np.ndarray, np.ndarray]:
    """What :func:`merge_directions_backward` reads of ``forward`` and ``backward``
    ``(..., P)``: the arrays themselves for ``mul``, else empty ``(0, P)`` stand-ins that
    carry only their width, so that a layer keeping them for its backward keeps no copy
    (a 2 x 256 bidirectional stack kept 2.7 MiB that only the width was read from)."""
    if mode == "mul":
        return forward, backward
    return np.empty((0, forward.shape[-1]), forward.dtype), np.empty(
        (0, backward.shape[-1]), backward.dtype
    )
