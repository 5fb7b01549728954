"""The planned training step of nn.LSTM (kernels/_training_plan.py): taken where it
applies, bit for bit the general path's outputs, caches and gradients over several
optimizer steps, and never used once anything it was planned on has changed (the
parameter or gradient arrays, the input's layout, the state, hooks, grad mode, the
backend); what it does not cover runs the general path on the same call."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from kioku import kernels, nn  # noqa: E402
from kioku.kernels import _training_plan  # noqa: E402
from kioku.train import SGD  # noqa: E402


@pytest.fixture
def taken(monkeypatch) -> dict[str, int]:
    """Counts the plan's forwards and backwards that ran (did not return None)."""
    seen = {"forward": 0, "backward": 0}
    plan_class = _training_plan.TrainingPlan
    forward, backward = plan_class.forward, plan_class.backward

    def counted_forward(self, *args):
        out = forward(self, *args)
        seen["forward"] += out is not None
        return out

    def counted_backward(self, *args):
        out = backward(self, *args)
        seen["backward"] += out is not None
        return out

    monkeypatch.setattr(plan_class, "forward", counted_forward)
    monkeypatch.setattr(plan_class, "backward", counted_backward)
    return seen


def twins(features: int, hidden: int, **kwargs) -> tuple[nn.LSTM, nn.LSTM]:
    """Two equal layers; the second never plans (the general path throughout)."""
    planned = nn.LSTM(features, hidden, rng=3, **kwargs)
    general = nn.LSTM(features, hidden, rng=3, **kwargs)
    general._plan_training = lambda y: None
    return planned, general


def inputs(steps: int, batch: int, features: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((steps, batch, features)).astype(np.float32)


def step(layer: nn.LSTM, x, state=None, need_dx=True, dstate=None, seed=2):
    """One forward and backward: what the caller sees, and copies of the gradients."""
    layer.zero_grad()
    with kernels.use("numba"):
        y, (h_n, c_n) = layer(x, state)
        dy = np.random.default_rng(seed).standard_normal(y.shape).astype(np.float32)
        dx, (dh0, dc0) = layer.backward(dy, dstate, need_dx=need_dx)
    grads = {name: g.copy() for name, g in layer.grads.items()}
    return (y, h_n, c_n, dx, dh0, dc0), grads


def stepped_twins(x: np.ndarray) -> tuple[nn.LSTM, nn.LSTM]:
    """:func:`twins` (64 -> 64) after one step on ``x``: the first has planned its next."""
    planned, general = twins(64, 64)
    step(planned, x)
    step(general, x)
    return planned, general


def assert_same_step(got, want) -> None:
    (outs, grads), (outs_w, grads_w) = got, want
    for a, b in zip(outs, outs_w):
        if b is None:
            assert a is None
        else:
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    assert grads.keys() == grads_w.keys()
    for name in grads:
        np.testing.assert_array_equal(grads[name], grads_w[name], err_msg=name)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("bias", [True, False])
def test_planned_steps_match_the_general_path_bit_for_bit(taken, batch, bias) -> None:
    planned, general = twins(64, 64, bias=bias)
    opt_p = SGD(planned, lr=0.1)
    opt_g = SGD(general, lr=0.1)
    for k in range(4):
        x = inputs(7 + k, batch, 64, seed=k)
        assert_same_step(step(planned, x, seed=k), step(general, x, seed=k))
        # the caches too (inspection reads them)
        for field in ("gates", "h_state", "c_state", "tanh_c"):
            np.testing.assert_array_equal(
                getattr(planned.caches[0][0], field), getattr(general.caches[0][0], field)
            )
        opt_p.step()  # the weights change in place: every step packs them afresh
        opt_g.step()
    assert planned._training_plan is not None and general._training_plan is None
    assert taken == {"forward": 3, "backward": 3}  # the first step planned the others
    for name in planned.params:
        np.testing.assert_array_equal(planned.params[name], general.params[name])


def test_state_and_no_dx_are_planned(taken) -> None:
    planned, general = twins(64, 64)
    x = inputs(5, 2, 64)
    rng = np.random.default_rng(4)
    state = tuple(rng.standard_normal((1, 2, 64)).astype(np.float32) for _ in range(2))
    for _ in range(2):
        assert_same_step(
            step(planned, x, state, need_dx=False), step(general, x, state, need_dx=False)
        )
    assert taken == {"forward": 1, "backward": 1}


def test_final_state_is_not_a_view_of_the_cache(taken) -> None:
    planned, general = twins(64, 64)
    x = inputs(4, 1, 64)
    step(planned, x)
    with kernels.use("numba"):
        y, (h_n, c_n) = planned(x)
    assert taken["forward"] == 1
    h_n[...] = 7
    c_n[...] = 7
    assert not np.shares_memory(h_n, planned.caches[0][0].h_state)
    assert not (planned.caches[0][0].c_state == 7).any()


def test_a_state_gradient_or_a_hook_runs_the_general_backward(taken) -> None:
    x = inputs(5, 1, 64)
    planned, general = stepped_twins(x)
    dstate = tuple(np.full((1, 1, 64), 0.5, np.float32) for _ in range(2))
    assert_same_step(step(planned, x, dstate=dstate), step(general, x, dstate=dstate))
    assert taken == {"forward": 1, "backward": 0}

    seen = []
    planned.register_backward_hook(lambda *args: seen.append(1))
    general.register_backward_hook(lambda *args: None)
    assert_same_step(step(planned, x), step(general, x))
    assert seen and taken == {"forward": 2, "backward": 0}


def test_widths_off_the_packed_panels_plan_the_forward_only(taken) -> None:
    # I and H not multiples of the packed kernel's panel width: lstm_backward's weight
    # gradients go to BLAS, so the planned forward's cache goes to the general backward
    planned, general = twins(10, 16)
    for k in range(3):
        x = inputs(6, 1, 10, seed=k)
        assert_same_step(step(planned, x, seed=k), step(general, x, seed=k))
    assert taken == {"forward": 2, "backward": 0}


def test_replaced_arrays_are_not_used_and_are_planned_anew(taken) -> None:
    x = inputs(5, 1, 64)
    planned, general = stepped_twins(x)
    for layer in (planned, general):
        layer.params["weight_hh_l0"] = layer.params["weight_hh_l0"] * 0.5
    assert_same_step(step(planned, x), step(general, x))
    assert taken == {"forward": 0, "backward": 0}  # that step ran the general path
    assert_same_step(step(planned, x), step(general, x))
    assert taken == {"forward": 1, "backward": 1}  # and planned the new array
    for layer in (planned, general):
        layer.grads["bias_hh_l0"] = np.zeros(256, np.float32)
    assert_same_step(step(planned, x), step(general, x))
    assert taken == {"forward": 1, "backward": 1}


def test_other_inputs_run_the_general_path(taken) -> None:
    x = inputs(5, 1, 64)
    planned, general = stepped_twins(x)
    cases = [
        np.concatenate([x, x], axis=2)[:, :, :64],  # a strided view
        np.asfortranarray(x),
        inputs(5, 2, 64),  # another batch size: planned anew after it
        x[:, 0, :],  # unbatched
    ]
    for case in cases:
        assert_same_step(step(planned, case), step(general, case))
    assert taken == {"forward": 0, "backward": 0}
    with pytest.raises(TypeError, match="x: expected dtype float32"):
        planned(x.astype(np.float64))
    with pytest.raises(ValueError, match="x: expected 64 features"):
        planned(inputs(5, 1, 63))
    with pytest.raises(ValueError, match="state"):
        planned(x, (np.zeros((1, 2, 64), np.float32), np.zeros((1, 2, 64), np.float32)))


@pytest.mark.parametrize("case", ["no_grad", "reference", "forward hook"])
def test_no_grad_the_reference_backend_and_hooks_are_not_planned(taken, case) -> None:
    x = inputs(5, 1, 64)
    planned, _ = stepped_twins(x)
    assert planned._training_plan is not None
    if case == "no_grad":
        with nn.no_grad():
            planned(x)
    elif case == "reference":
        with kernels.use("reference"):
            y, _ = planned(x)
            planned.backward(np.ones_like(y))
    else:
        planned.register_forward_hook(lambda *args: None)
        step(planned, x)
    assert taken == {"forward": 0, "backward": 0}


@pytest.mark.parametrize(
    "kwargs, batch",
    [
        ({"num_layers": 2}, 1),
        ({"bidirectional": True}, 1),
        ({"proj_size": 8}, 1),
        ({"dtype": np.float64}, 1),
        ({"batch_first": True}, 1),
        ({}, 4),  # each step projects its own inputs (fused) from batch 4 at this size
    ],
)
def test_layers_and_batches_the_plan_does_not_cover(kwargs, batch) -> None:
    layer = nn.LSTM(64, 64, rng=0, **kwargs)
    x = inputs(5, batch, 64).astype(layer.dtype)
    with kernels.use("numba"):
        layer(x)
    assert layer._training_plan is None


def test_subclasses_overriding_the_general_path_are_not_planned() -> None:
    class Logged(nn.LSTM):
        def backward_direction(self, *args):
            return super().backward_direction(*args)

    layer = Logged(64, 64, rng=0)
    with kernels.use("numba"):
        layer(inputs(5, 1, 64))
    assert layer._training_plan is None


def test_a_second_backward_is_still_refused() -> None:
    layer = nn.LSTM(64, 64, rng=0)
    x = inputs(5, 1, 64)
    for _ in range(2):
        y, _ = layer(x)
        layer.backward(np.ones_like(y))
    assert layer._training_plan is not None
    with pytest.raises(RuntimeError, match="expected a forward since the last backward"):
        layer.backward(np.ones_like(y))
