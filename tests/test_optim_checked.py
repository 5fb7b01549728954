"""The trainer's one-pass step (``Optimizer.step_checked``): the clipping's scale, the
update and the finiteness check of each block in one pass give, bit for bit, what
``clip_grad_norm``, ``step()`` and a separate check give; a non-finite update is
reported, by the built-in optimizers and by a subclass with its own ``step``."""

import warnings

import numpy as np
import pytest

from kioku.train import SGD, Adam, AdamW, clip_grad_norm
from kioku.train.finite import check_step
from kioku.train.optim import all_finite

# big enough for many cache-sized blocks on every thread, with a small one beside it
SHAPES = [(700, 300), (37,), (3, 5, 7)]
OPTIMIZERS = [
    (SGD, {"lr": 0.5}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3}),
    (SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    (Adam, {"lr": 1e-2, "weight_decay": 1e-2}),
    (AdamW, {"lr": 1e-2}),
]


def problem(dtype, seed=0, steps=3):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[(3 * rng.standard_normal(s)).astype(dtype) for s in SHAPES] for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, kwargs", OPTIMIZERS)
@pytest.mark.parametrize("clip", [None, 1.0, 1e6])
def test_one_pass_equals_clip_then_step(cls, kwargs, dtype, clip):
    params_a, steps = problem(dtype)
    params_b = [p.copy() for p in params_a]
    grads_a = [np.zeros_like(p) for p in params_a]
    grads_b = [np.zeros_like(p) for p in params_b]
    opt_a = cls(list(zip(params_a, grads_a)), **kwargs)
    opt_b = cls(list(zip(params_b, grads_b)), **kwargs)
    for step_grads in steps:
        for a, b, new in zip(grads_a, grads_b, step_grads):
            a[...] = new
            b[...] = new
        if clip:
            clip_grad_norm(grads_a, clip)
        opt_a.step()
        problem_, scale = check_step(1.0, grads_b, clip)
        assert problem_ is None
        assert (scale < 1.0) == (clip == 1.0)  # the big clip leaves the gradients alone
        assert opt_b.step_checked(scale) is True
        for a, b in zip(params_a + grads_a, params_b + grads_b):
            np.testing.assert_array_equal(a, b)  # parameters and clipped gradients
    assert opt_a.step_count == opt_b.step_count == len(steps)


def test_check_step_only_reads_the_gradients_and_returns_clip_grad_norms_factor():
    _, steps = problem(np.float32)
    grads = steps[0]
    before = [g.copy() for g in grads]
    problem_, scale = check_step(2.5, grads, 0.5)
    assert problem_ is None
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)
    total = clip_grad_norm(grads, 0.5)
    assert scale == pytest.approx(0.5 / total)
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b * np.float32(scale))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_check_step_names_a_non_finite_loss_or_gradient(bad):
    grads = [np.ones(4, np.float32), np.ones(3, np.float32)]
    assert check_step(bad, grads, 1.0)[0][0] == "loss"
    grads[1][2] = bad
    for clip in (1.0, None):
        (what, value), scale = check_step(0.5, grads, clip)
        assert what == "gradient norm" and not np.isfinite(value) and scale == 1.0


def test_finite_gradients_whose_norm_overflows_step_by_zero():
    grads = [np.full(10, 3e38, np.float32)]  # each finite, the sum of squares is not
    params = [np.ones(10, np.float32)]
    with np.errstate(over="ignore"):
        problem_, scale = check_step(1.0, grads, 1.0)
    assert problem_ is None and scale == 0.0
    assert SGD(list(zip(params, grads)), lr=1.0).step_checked(scale) is True
    np.testing.assert_array_equal(params[0], 1.0)


class OwnStep(SGD):
    """A subclass whose step does not go through update_blocks."""

    def step(self) -> None:
        for p, g in zip(self.params, self.grads):
            p -= self.lr * g


@pytest.mark.parametrize("cls", [SGD, Adam, OwnStep])
def test_an_update_that_overflows_is_reported(cls):
    params, steps = problem(np.float32)
    grads = steps[0]
    if cls is Adam:  # a step of about lr against the gradient's sign, from near the limit
        params[0][123, 45], grads[0][123, 45], lr = -3.4e38, 1.0, 1e37
    else:  # finite, but lr times it overflows the parameter
        grads[0][123, 45], lr = 3e38, 1e3
    opt = cls(list(zip(params, grads)), lr=lr)
    with np.errstate(over="ignore", invalid="ignore"):
        assert opt.step_checked(1.0) is False
    assert not np.isfinite(params[0][123, 45])
    assert np.isfinite(np.delete(params[0].reshape(-1), 123 * 300 + 45)).all()


@pytest.mark.parametrize("cls", [SGD, OwnStep])
def test_a_subclass_with_its_own_step_gets_the_same_result(cls):
    params_a, steps = problem(np.float64)
    params_b = [p.copy() for p in params_a]
    grads_a, grads_b = steps[0], [g.copy() for g in steps[0]]
    assert SGD(list(zip(params_a, grads_a)), lr=0.3).step_checked(0.25) is True
    assert cls(list(zip(params_b, grads_b)), lr=0.3).step_checked(0.25) is True
    for a, b in zip(params_a + grads_a, params_b + grads_b):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("scale", [-1.0, np.nan, np.inf])
def test_a_bad_grad_scale_is_refused_before_anything_changes(scale):
    params, steps = problem(np.float32)
    before = [p.copy() for p in params]
    opt = SGD(list(zip(params, steps[0])), lr=0.1)
    with pytest.raises(ValueError, match="grad_scale"):
        opt.step_checked(scale)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p, b)
    assert opt.step_count == 0


def test_all_finite_tells_overflow_from_infinity():
    big = np.full(100, 3e38, np.float32)  # its dot product overflows; every value is finite
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the check's own overflow warns nothing
        assert all_finite(big) and all_finite(np.empty(0, np.float32))
        assert all_finite(big[::3])  # not contiguous
        big[57] = np.inf
        assert not all_finite(big)
        big[57] = np.nan
        assert not all_finite(big)
