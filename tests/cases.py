"""Shared by the tests: random cases of one LSTM direction and of a float64 layer,
closeness checks, the central-difference checks of a whole layer's backward (with and
without dropout between layers), and the peak memory of a call."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterable, Mapping

import numpy as np
from gradcheck import numeric_grad, rel_error
from tolerance import assert_close


def lstm_direction_case(seed: int, dtype=None, batch=None, steps=None, lengths=None, project=None):
    """Random arguments of one LSTM direction (``functional.lstm_forward``'s keywords),
    the gradients for its backward, and the dtype: directions, lengths, initial state,
    projection and bias each on or off at random (``lengths``/``project`` True or False
    force theirs)."""
    rng = np.random.default_rng(seed)
    dtype = dtype or (np.float32, np.float64)[seed % 2]
    T = steps or int(rng.choice([1, 2, 5, 7]))
    B = batch or int(rng.choice([1, 2, 3, 9]))
    I, H = int(rng.integers(1, 6)), int(rng.integers(1, 9))
    if project is None:
        project = rng.random() < 0.4
    P = int(rng.integers(1, H + 1)) if project else None
    if lengths is None:
        lengths = rng.random() < 0.5

    def arr(*shape, scale=0.5):
        return (rng.standard_normal(shape) * scale).astype(dtype)

    args = dict(
        x=arr(T, B, I, scale=1.0),
        weight_ih=arr(4 * H, I),
        weight_hh=arr(4 * H, P or H),
        bias=arr(4 * H) if rng.random() < 0.8 else None,
        h0=arr(B, P or H) if rng.random() < 0.5 else None,
        c0=arr(B, H) if rng.random() < 0.5 else None,
        lengths=rng.integers(1, T + 1, B) if lengths else None,
        reverse=bool(rng.random() < 0.5),
        weight_hr=arr(P, H) if P else None,
    )
    grads = dict(
        dy=arr(T, B, P or H, scale=1.0),
        dh_n=arr(B, P or H, scale=1.0) if rng.random() < 0.5 else None,
        dc_n=arr(B, H, scale=1.0) if rng.random() < 0.5 else None,
        need_dx=bool(rng.random() < 0.7),
    )
    return args, grads, dtype


def max_abs_diff(name: str, ours: np.ndarray, theirs: np.ndarray, atol: float) -> float:
    """Assert equal shapes and ``max |ours - theirs| <= atol``; return that maximum."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, f"{name}: shape {ours.shape} vs {theirs.shape}"
    diff = float(np.abs(ours - theirs).max()) if ours.size else 0.0
    assert diff <= atol, f"{name}: max |difference| {diff:.2e}"
    return diff


def assert_all_close(
    names: Iterable[str],
    actual: Iterable,
    expected: Iterable,
    atol: float | None = None,
    dtype=False,
    depth: int | None = None,
) -> None:
    """Pairwise :func:`max_abs_diff` of two sequences in which ``None`` must meet ``None``,
    within ``atol``, or with ``depth`` within the rounding of the arrays' dtype through
    ``depth`` roundings (:func:`tolerance.assert_close`); with ``dtype``, the dtypes must
    match too."""
    assert (atol is None) != (depth is None), "give atol or depth"
    for name, a, e in zip(names, actual, expected, strict=True):
        assert (a is None) == (e is None), f"{name}: {a is None=} but {e is None=}"
        if a is not None:
            if dtype:
                assert a.dtype == e.dtype, f"{name}: dtype {a.dtype} vs {e.dtype}"
            if depth is None:
                max_abs_diff(name, a, e, atol)
            else:
                assert_close(name, a, e, depth, e.dtype)


def flatten(outputs) -> list[np.ndarray]:
    """The arrays of a (nested) tuple such as ``(y, (h_n, c_n))``, in order."""
    if isinstance(outputs, np.ndarray):
        return [outputs]
    return [array for part in outputs for array in flatten(part)]


def weighted_loss(forward: Callable[[], object], weights: Iterable) -> Callable[[], float]:
    """``L = sum_k sum(out_k * w_k)`` over the arrays ``forward()`` returns (flattened),
    as a function of nothing (what :func:`gradcheck.numeric_grad` perturbs around)."""
    weights = list(weights)

    def loss() -> float:
        pairs = zip(flatten(forward()), weights, strict=True)
        return float(sum((out * w).sum() for out, w in pairs))

    return loss


def check_gradients(
    loss: Callable[[], float],
    analytic: Mapping[str, tuple[np.ndarray, np.ndarray]],
    tol: float = 1e-6,
) -> None:
    """For each ``name: (array, gradient)``, the relative error between ``gradient`` and
    the central-difference dL/d(array) is at most ``tol``."""
    for name, (array, grad) in analytic.items():
        err = rel_error(grad, numeric_grad(loss, array))
        assert err <= tol, f"{name}: relative error {err:.2e}"


def parameter_pairs(module, skip: Callable[[str], bool] = lambda name: False) -> dict:
    """``{name: (parameter, gradient)}`` of ``module`` for :func:`check_gradients`."""
    return {name: (p, g) for name, p, g in module.named_parameters() if not skip(name)}


def normal_like(outputs, rng: np.random.Generator):
    """Standard normal draws shaped and nested like ``outputs`` (drawn in flattened order)."""
    if isinstance(outputs, np.ndarray):
        return rng.normal(size=outputs.shape)
    return tuple(normal_like(part, rng) for part in outputs)


def check_layer_gradients(
    layer, rng: np.random.Generator, x: np.ndarray, state=None, lengths=None, tol: float = 1e-6
) -> None:
    """A recurrent layer's backward against central differences: for the loss
    ``L = sum(outputs * w)`` over everything ``layer(x (T, B, I), state, lengths)``
    returns (``w`` random, drawn from ``rng``), every parameter's gradient, ``dx`` and,
    when ``state`` is given, the gradient of each of its arrays."""
    weights = normal_like(layer(x, state, lengths), rng)
    loss = weighted_loss(lambda: layer(x, state, lengths), flatten(weights))
    loss()
    layer.zero_grad()
    dx, dstate = layer.backward(*weights)
    analytic = {**parameter_pairs(layer), "x": (x, dx)}
    if state is not None:
        for k, pair in enumerate(zip(flatten(state), flatten(dstate), strict=True)):
            analytic[f"state[{k}]"] = pair
    check_gradients(loss, analytic, tol)


def check_dropout_gradients(layer, x: np.ndarray, wy: np.ndarray, tol: float = 1e-6) -> None:
    """As :func:`check_layer_gradients` for ``L = sum(y * wy)`` of a layer that drops
    out between its layers: its generator is reset before every forward, so that every
    evaluation draws the same masks."""

    def loss() -> float:
        layer.rng = np.random.default_rng(99)
        return float((layer(x)[0] * wy).sum())

    loss()
    layer.zero_grad()
    dx, _ = layer.backward(wy)
    check_gradients(loss, {**parameter_pairs(layer), "x": (x, dx)}, tol)


def check_stacked_dropout_gradients(layer_type, prepare=None, tol: float = 1e-6, **options) -> None:
    """:func:`check_dropout_gradients` on a float64 ``layer_type(3, 4, num_layers=3,
    dropout=0.4, bidirectional=True, **options)`` (``prepare(layer, rng)`` run on it when
    given), ``x (4, 2, 3)`` and ``wy (4, 2, 8)``."""
    rng = np.random.default_rng(5)
    layer = layer_type(
        3, 4, num_layers=3, dropout=0.4, bidirectional=True, dtype=np.float64, rng=1, **options
    )
    if prepare is not None:
        prepare(layer, rng)
    x = rng.normal(size=(4, 2, 3))
    check_dropout_gradients(layer, x, rng.normal(size=(4, 2, 8)), tol)


def layer_case(
    layer_type,
    rng: np.random.Generator,
    hidden_size: int,
    use_lengths: bool,
    prepare=None,
    **options,
):
    """A float64 ``layer_type(3, hidden_size, **options)`` (``prepare(layer, rng)`` run on
    it when given) and a batch for it: ``x (5, 3, 3)`` and ``lengths`` (5, 2, 1) with
    ``use_lengths``, else ``None``; everything drawn from ``rng``."""
    layer = layer_type(3, hidden_size, dtype=np.float64, rng=rng, **options)
    if prepare is not None:
        prepare(layer, rng)
    x = rng.normal(size=(5, 3, 3))
    return layer, x, (np.array([5, 2, 1]) if use_lengths else None)


def normal_state(layer, rng: np.random.Generator, batch: int):
    """A standard normal initial state for ``layer``: one ``(L*D, B, S)`` array per
    component of its state (the array alone for a one-component state)."""
    shapes = [(layer.num_layers * layer.num_directions, batch, s) for s in layer.state_sizes]
    parts = tuple(rng.normal(size=shape) for shape in shapes)
    return parts if len(parts) > 1 else parts[0]


def check_case_gradients(
    layer_type,
    seed: int,
    hidden_size: int,
    use_lengths: bool,
    use_state: bool,
    prepare=None,
    draw_state=normal_state,
    tol: float = 1e-6,
    **options,
) -> None:
    """:func:`check_layer_gradients` on a :func:`layer_case` drawn from ``seed``, with the
    initial state ``draw_state(layer, rng, batch)`` when ``use_state``."""
    rng = np.random.default_rng(seed)
    layer, x, lengths = layer_case(layer_type, rng, hidden_size, use_lengths, prepare, **options)
    state = draw_state(layer, rng, x.shape[1]) if use_state else None
    check_layer_gradients(layer, rng, x, state, lengths, tol)


def peak_bytes(fn: Callable[[], object]) -> int:
    """The peak of the memory that Python allocations held (tracemalloc) while ``fn()`` ran."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
