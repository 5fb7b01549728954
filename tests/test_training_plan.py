"""The planned training step behind the numba backend (kernels/_training_plan.py),
reached through nn.LSTM: taken where it applies (a small float32 batch of a forward
direction without projection, whatever the layer's class or stack), bit for bit the
general path's outputs, caches and gradients over several optimizer steps, and never
used once anything it was planned on has changed (the weight arrays, the input, the
state, the gradient buffers); what it does not cover runs the general path on the same
call."""

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


class General(nn.LSTM):
    """An LSTM whose steps run the numba backend's general path (no plan)."""

    def __call__(self, *args, **kwargs):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_training_plan, "planned_forward", lambda *args: None)
            return super().__call__(*args, **kwargs)

    def backward(self, *args, **kwargs):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_training_plan, "planned_backward", lambda *args: None)
            return super().backward(*args, **kwargs)


def twins(features: int, hidden: int, **kwargs) -> tuple[nn.LSTM, nn.LSTM]:
    """Two equal layers; the second never plans (the general path throughout)."""
    planned = nn.LSTM(features, hidden, rng=3, **kwargs)
    general = General(features, hidden, rng=3, **kwargs)
    return planned, general


def plan_of(layer: nn.LSTM, batch: int, suffix: str = "_l0"):
    """The training plan kept for one direction's weights at ``batch``, or ``None``
    (``path`` ``None``: weighed and refused)."""
    w_ih, w_hh = layer.params[f"weight_ih{suffix}"], layer.params[f"weight_hh{suffix}"]
    return _training_plan._plans.get((id(w_ih), id(w_hh), batch))


def inputs(steps: int, batch: int, features: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((steps, batch, features)).astype(np.float32)


def step(layer: nn.LSTM, x, state=None, need_dx=True, dstate=None, seed=2):
    """One forward and backward: what the caller sees, and copies of the gradients."""
    layer.zero_grad()
    with kernels.use("numba"):
        y, (h_n, c_n) = layer(x, state)
        dy = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
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
@pytest.mark.parametrize("one_entry", [True, False])  # weights packed in the entries or not
def test_planned_steps_match_the_general_path_bit_for_bit(
    taken, monkeypatch, batch, bias, one_entry
) -> None:
    if not one_entry:  # weights as big as those packed by every thread
        monkeypatch.setattr(_training_plan, "SPLIT_PACK_BYTES", 0)
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
    assert plan_of(planned, batch).path is not None and plan_of(general, batch) is None
    assert taken == {"forward": 4, "backward": 4}  # planned on first use
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
    assert taken == {"forward": 2, "backward": 2}


def test_final_state_is_not_a_view_of_the_cache(taken) -> None:
    planned, general = twins(64, 64)
    x = inputs(4, 1, 64)
    step(planned, x)
    with kernels.use("numba"):
        y, (h_n, c_n) = planned(x)
    assert taken["forward"] == 2
    h_n[...] = 7
    c_n[...] = 7
    assert not np.shares_memory(h_n, planned.caches[0][0].h_state)
    assert not (planned.caches[0][0].c_state == 7).any()


def test_a_state_gradient_or_a_hook_runs_the_general_backward(taken) -> None:
    x = inputs(5, 1, 64)
    planned, general = stepped_twins(x)
    dstate = tuple(np.full((1, 1, 64), 0.5, np.float32) for _ in range(2))
    assert_same_step(step(planned, x, dstate=dstate), step(general, x, dstate=dstate))
    assert taken == {"forward": 2, "backward": 1}  # the stepped twin's, then a forward

    seen = []
    planned.register_backward_hook(lambda *args: seen.append(1))
    general.register_backward_hook(lambda *args: None)
    assert_same_step(step(planned, x), step(general, x))
    assert seen and taken == {"forward": 3, "backward": 1}


def test_widths_off_the_packed_panels_plan_the_forward_only(taken) -> None:
    # I and H not multiples of the packed kernel's panel width: lstm_backward's weight
    # gradients go to BLAS, so the planned forward's cache goes to the general backward
    planned, general = twins(10, 16)
    for k in range(3):
        x = inputs(6, 1, 10, seed=k)
        assert_same_step(step(planned, x, seed=k), step(general, x, seed=k))
    assert taken == {"forward": 3, "backward": 0}


def test_replaced_arrays_are_planned_anew(taken) -> None:
    x = inputs(5, 1, 64)
    planned, general = stepped_twins(x)
    old = plan_of(planned, 1)
    for layer in (planned, general):
        layer.params["weight_hh_l0"] = layer.params["weight_hh_l0"] * 0.5
    assert_same_step(step(planned, x), step(general, x))
    assert taken == {"forward": 2, "backward": 2}  # a plan of its own for the new array
    assert plan_of(planned, 1) is not old
    for layer in (planned, general):  # the bias gradients are the layer's to add
        layer.grads["bias_hh_l0"] = np.zeros(256, np.float32)
    assert_same_step(step(planned, x), step(general, x))
    assert taken == {"forward": 3, "backward": 3}


def test_other_inputs_are_planned_as_the_layer_hands_them_on(taken) -> None:
    x = inputs(5, 1, 64)
    planned, general = stepped_twins(x)
    cases = [  # the layer makes each a C-contiguous (T, B, I) array before the backend
        np.concatenate([x, x], axis=2)[:, :, :64],  # a strided view
        np.asfortranarray(x),
        inputs(5, 2, 64),  # another batch size: a plan of its own
        x[:, 0, :],  # unbatched
    ]
    for case in cases:
        assert_same_step(step(planned, case), step(general, case))
    assert taken == {"forward": 5, "backward": 5}
    with pytest.raises(TypeError, match="x: expected dtype float32"):
        planned(x.astype(np.float64))
    with pytest.raises(ValueError, match="x: expected 64 features"):
        planned(inputs(5, 1, 63))
    with pytest.raises(ValueError, match="state"):
        planned(x, (np.zeros((1, 2, 64), np.float32), np.zeros((1, 2, 64), np.float32)))


def test_no_grad_and_the_reference_backend_are_not_planned(taken) -> None:
    x = inputs(5, 1, 64)
    planned, _ = stepped_twins(x)
    with nn.no_grad():
        planned(x)
    with kernels.use("reference"):
        y, _ = planned(x)
        planned.backward(np.ones_like(y))
    assert taken == {"forward": 1, "backward": 1}  # the stepped twin's only


def test_a_forward_hook_sees_the_planned_cache(taken) -> None:
    x = inputs(5, 1, 64)
    planned, general = stepped_twins(x)
    seen = {}
    planned.register_forward_hook(lambda *args: seen.setdefault("planned", args[3]))
    general.register_forward_hook(lambda *args: seen.setdefault("general", args[3]))
    assert_same_step(step(planned, x), step(general, x))
    assert taken == {"forward": 2, "backward": 2}
    for field in ("gates", "h_state", "c_state", "tanh_c"):
        got, want = getattr(seen["planned"], field), getattr(seen["general"], field)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "kwargs, batch, planned_directions",
    [
        ({"num_layers": 2}, 1, ["_l0", "_l1"]),  # each layer's direction is a plain call
        ({"bidirectional": True}, 1, ["_l0"]),  # the reverse direction is not planned
        ({"proj_size": 8}, 1, []),
        ({"dtype": np.float64}, 1, []),
        ({"batch_first": True}, 1, ["_l0"]),  # time-major inside the layer
        ({}, 4, []),  # each step projects its own inputs (fused) from batch 4 at this size
    ],
)
def test_what_each_direction_call_plans(taken, kwargs, batch, planned_directions) -> None:
    planned = nn.LSTM(64, 64, rng=0, **kwargs)
    general = General(64, 64, rng=0, **kwargs)
    x = inputs(5, batch, 64).astype(planned.dtype)
    if kwargs.get("batch_first"):
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    for _ in range(2):
        assert_same_step(step(planned, x), step(general, x))
    for suffix in ("_l0", "_l1", "_l0_reverse"):
        if f"weight_ih{suffix}" in planned.params:
            plan = plan_of(planned, batch, suffix)
            is_planned = plan is not None and plan.path is not None
            assert is_planned == (suffix in planned_directions), suffix
    assert taken["forward"] == 2 * len(planned_directions)


def test_subclasses_overriding_the_general_path_run_it_and_are_planned(taken) -> None:
    calls = []

    class Logged(nn.LSTM):
        def backward_direction(self, *args):
            calls.append(args[2:4])
            return super().backward_direction(*args)

    class LoggedGeneral(General):
        def backward_direction(self, *args):
            return super().backward_direction(*args)

    layer, general = Logged(64, 64, rng=0), LoggedGeneral(64, 64, rng=0)
    x = inputs(5, 1, 64)
    assert_same_step(step(layer, x), step(general, x))
    assert calls == [(0, 0)] and taken == {"forward": 1, "backward": 1}


def test_a_second_backward_is_still_refused() -> None:
    layer = nn.LSTM(64, 64, rng=0)
    x = inputs(5, 1, 64)
    for _ in range(2):
        y, _ = layer(x)
        layer.backward(np.ones_like(y))
    assert plan_of(layer, 1) is not None
    with pytest.raises(RuntimeError, match="expected a forward since the last backward"):
        layer.backward(np.ones_like(y))


def test_calls_whose_gemms_the_general_path_splits_are_not_planned(taken, monkeypatch) -> None:
    """Planned at its first (short) call, a layer's later calls long enough that the
    general path splits the GEMMs around its loop over the threads (GEMM_SPLIT_FLOPS) run
    the general path, forward and backward; the plan holds for the short calls still."""
    from kioku.kernels import _threads

    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    monkeypatch.setattr(_threads, "GEMM_SPLIT_FLOPS", 8.0 * 2 * 64 * 64 * 10)  # 10 steps
    monkeypatch.setattr(_threads, "UNITS_MIN_FLOPS", float("inf"))
    planned, general = twins(64, 64)
    assert_same_step(step(planned, inputs(3, 2, 64)), step(general, inputs(3, 2, 64)))
    assert plan_of(planned, 2).solo_steps == 9 and taken == {"forward": 1, "backward": 1}
    long = inputs(10, 2, 64, seed=5)
    assert_same_step(step(planned, long), step(general, long))
    assert taken == {"forward": 1, "backward": 1}  # the general path, which splits
    short = inputs(9, 2, 64, seed=6)
    assert_same_step(step(planned, short), step(general, short))
    assert taken == {"forward": 2, "backward": 2}
