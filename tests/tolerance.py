"""Tolerances for comparing two floating-point computations of the same quantity, derived
from the arithmetic rather than from the worst difference seen on one CPU.

Two correct implementations of a recurrent layer (kioku and PyTorch, a compiled kernel and
the NumPy reference, one thread and two) differ by rounding alone: they order their sums
differently (BLAS blocking, SIMD width and the use of FMA depend on the CPU), and their
``exp``/``tanh`` differ by an ulp or two (the numba kernels' rational tanh is within 2.6e-7,
about 2 ulp of float32). Each rounding of a value of magnitude at most ``scale`` moves it
by at most ``eps * scale`` (``eps`` = 2^-23 in float32, 2^-52 in float64), with a sign
independent of the others'; ``K`` of them on the path to one result add up like a random
walk, to an error of order ``eps * sqrt(K) * scale`` (the worst case, ``eps * K * scale``,
is never approached).

``K``, the depth (:func:`recurrent_depth`), counts two kinds of roundings on the path to one
output or gradient of a recurrent layer: those of the ``L T`` steps it passes through one
after the other (each rounds its gate pre-activations, cell and output, which the recurrence
does not amplify: the sigmoid and tanh have slopes at most 1, and a forget gate below 1
damps what goes back through time), and those of the longest sum that forms it: the gate
pre-activation over ``I + H`` inputs, the backward's ``dh`` over ``G H`` gate rows, a weight
gradient over ``T B`` steps and sequences. So ``K = L T + max(I + H, G H, T B)``.
``scale`` is the largest ``|reference|``, at least 1: the gate pre-activations and cells that
every result passes through are of order 1 (unit-variance inputs, weights of fan-in
variance), so a smaller result (a gradient near zero) still carries their rounding.

:data:`SPREAD` = 4 is where the largest of many results lies: about 4 standard deviations
out for the ~10^4 outputs and gradients of one test case, each rounding's standard deviation
taken as ``eps`` (a correctly rounded operation's is ``eps / sqrt(12)``; a transcendental
function within 2 ulp, about ``1.2 eps``). A wrong result (a weight off by 1e-3, a step
missed) differs by orders of magnitude more: ``tests/test_tolerance.py`` checks that it fails.
"""

from __future__ import annotations

import math

import numpy as np

SPREAD = 4.0
EPS32 = float(np.finfo(np.float32).eps)  # 2^-23, about 1.19e-7


def recurrent_depth(
    steps: int, input_size: int, hidden_size: int, layers: int = 1, batch: int = 1, gates: int = 4
) -> int:
    """Roundings on the path to one output or gradient of a recurrent layer (see the module
    docstring): ``layers * steps + max(input_size + hidden_size, gates * hidden_size,
    steps * batch)``. ``input_size`` is the widest input of any layer (``D H`` above the
    first of a bidirectional stack)."""
    longest_sum = max(input_size + hidden_size, gates * hidden_size, steps * batch)
    return layers * steps + longest_sum


def direction_depth(x: np.ndarray, weight_hh: np.ndarray) -> int:
    """:func:`recurrent_depth` of one direction of one layer from its arrays: the input
    ``x (T, B, I)`` and the recurrent weights ``weight_hh (G H, P)``: ``T + max(I + P,
    G H, T B)``."""
    steps, batch, input_size = x.shape
    gate_rows, recurrent_size = weight_hh.shape
    return steps + max(input_size + recurrent_size, gate_rows, steps * batch)


def tolerance(reference: np.ndarray, depth: int, dtype: np.dtype | type = np.float32) -> float:
    """``SPREAD * eps(dtype) * sqrt(depth) * max(max |reference|, 1)``: the largest difference
    rounding explains between two computations of ``reference`` (any shape) whose results
    each pass through ``depth`` roundings in ``dtype``."""
    reference = np.asarray(reference, dtype=np.float64)
    scale = max(float(np.abs(reference).max()) if reference.size else 0.0, 1.0)
    return SPREAD * float(np.finfo(dtype).eps) * math.sqrt(depth) * scale


def assert_close(
    name: str,
    actual: np.ndarray,
    expected: np.ndarray,
    depth: int,
    dtype: np.dtype | type = np.float32,
) -> float:
    """Assert that ``actual`` equals ``expected`` (same shape) within :func:`tolerance` of
    ``expected``; returns the largest difference."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} vs {expected.shape}"
    difference = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    diff = float(difference.max()) if actual.size else 0.0
    tol = tolerance(expected, depth, dtype)
    assert diff <= tol, f"{name}: max |difference| {diff:.3g} > {tol:.3g} (depth {depth})"
    return diff
