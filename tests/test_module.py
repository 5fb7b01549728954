"""Parameters: PyTorch names, shapes, order and initialisation; state dicts; modes."""

from __future__ import annotations

import numpy as np
import pytest

import kioku


@pytest.mark.torch
def test_parameter_names_and_shapes_follow_torch():
    torch = pytest.importorskip("torch")
    peer = torch.nn.LSTM(5, 8, 3, bidirectional=True, proj_size=3)
    ours = kioku.nn.LSTM(5, 8, 3, bidirectional=True, proj_size=3)
    theirs = {k: tuple(v.shape) for k, v in peer.state_dict().items()}
    assert list(ours.params) == list(theirs)
    assert {k: v.shape for k, v in ours.params.items()} == theirs


def test_default_initialisation_is_uniform_in_one_over_sqrt_h():
    lstm = kioku.nn.LSTM(10, 400, 1, rng=np.random.default_rng(0))
    bound = 1 / np.sqrt(400)
    w = lstm.params["weight_hh_l0"]
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound
    assert abs(w.std() - bound / np.sqrt(3)) < 1e-3  # the std of U(-k, k)
    again = kioku.nn.LSTM(10, 400, 1, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(w, again.params["weight_hh_l0"])


def test_unit_forget_bias():
    lstm = kioku.nn.LSTM(3, 4, 2, bidirectional=True, unit_forget_bias=True, rng=0)
    for name in ("_l0", "_l1_reverse"):
        total = lstm.params["bias_ih" + name] + lstm.params["bias_hh" + name]
        np.testing.assert_array_equal(total[4:8], 1)
        assert np.abs(total[:4]).max() <= 1  # the other gates keep their random init


def test_grads_accumulate_and_zero():
    lstm = kioku.nn.LSTM(2, 3, rng=0)
    x = np.ones((4, 1, 2), np.float32)
    y, _ = lstm(x)
    lstm.backward(np.ones_like(y))
    once = lstm.grads["weight_hh_l0"].copy()
    lstm(x)
    lstm.backward(np.ones_like(y))
    np.testing.assert_allclose(lstm.grads["weight_hh_l0"], 2 * once, rtol=1e-6)
    lstm.zero_grad()
    assert not any(g.any() for g in lstm.grads.values())


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_zero_fill_writes_positive_zeros_in_place_and_only_in_the_view(dtype):
    from kioku.nn.module import zero_fill

    whole = np.full((6, 8), np.nan, dtype)
    zero_fill(whole)
    assert (whole == 0).all() and not np.signbit(whole).any()
    grid = np.full((6, 8), -3.0, dtype)
    zero_fill(grid[:, ::3])  # not contiguous: element by element, the rest untouched
    assert (grid[:, ::3] == 0).all() and (np.delete(grid, [0, 3, 6], axis=1) == -3).all()
    zero_fill(grid[2:4])  # contiguous rows of a bigger array
    assert (grid[2:4] == 0).all() and (grid[4:, 1] == -3).all()
    zero_fill(np.empty((0, 3), dtype))


def test_state_dict_round_trip_writes_in_place():
    a = kioku.nn.LSTM(3, 4, 2, rng=0)
    b = kioku.nn.LSTM(3, 4, 2, rng=1)
    ref = b.params["weight_ih_l1"]
    b.load_state_dict(a.state_dict())
    assert b.params["weight_ih_l1"] is ref
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    x = np.ones((3, 2, 3), np.float32)
    np.testing.assert_array_equal(a(x)[0], b(x)[0])


def test_float64_everywhere():
    lstm = kioku.nn.LSTM(3, 4, 2, bidirectional=True, proj_size=2, dtype=np.float64, rng=0)
    y, (h, c) = lstm(np.ones((2, 1, 3)))
    dx, (dh, dc) = lstm.backward(np.ones_like(y))
    assert {a.dtype for a in (y, h, c, dx, dh, dc)} == {np.dtype(np.float64)}


def test_batch_first_is_a_transpose():
    a = kioku.nn.LSTM(3, 4, 2, bidirectional=True, rng=0)
    b = kioku.nn.LSTM(3, 4, 2, bidirectional=True, batch_first=True, rng=0)
    x = np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float32)
    ya, (ha, _) = a(x)
    yb, (hb, _) = b(x.transpose(1, 0, 2))
    np.testing.assert_array_equal(ya, yb.transpose(1, 0, 2))
    np.testing.assert_array_equal(ha, hb)


def test_eval_mode_restores_the_previous_mode():
    model = kioku.nn.Module()
    lstm = model.add_module("lstm", kioku.nn.LSTM(2, 3, rng=0))
    with model.eval_mode() as inside:
        assert inside is model and not model.training and not lstm.training
    assert model.training and lstm.training
    model.eval()
    with model.eval_mode():
        pass
    assert not model.training
    model.train()
    with pytest.raises(RuntimeError), model.eval_mode():
        raise RuntimeError("inside")
    assert model.training and lstm.training


def test_forward_and_backward_hooks_see_every_direction_until_removed():
    rng = np.random.default_rng(0)
    lstm = kioku.nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=0)
    forward, backward = [], []
    on_forward = lstm.register_forward_hook(
        lambda module, layer, direction, cache: forward.append((module, layer, direction, cache))
    )
    on_backward = lstm.register_backward_hook(
        lambda module, layer, direction, grads: backward.append((layer, direction, grads))
    )
    x = rng.standard_normal((5, 2, 3))
    y, _ = lstm(x)
    assert [(layer, d) for _, layer, d, _ in forward] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(m is lstm and cache is lstm.caches[k][d] for m, k, d, cache in forward)
    dy = rng.standard_normal(y.shape)
    dx, _ = lstm.backward(dy)
    assert [(layer, d) for layer, d, _ in backward] == [(1, 0), (1, 1), (0, 0), (0, 1)]
    for _, _, (dh, dc) in backward:
        assert dh.shape == (5, 2, 4) and dc.shape == (5, 2, 4)
    np.testing.assert_array_equal(backward[0][2][0][-1], dy[-1, :, :4])  # dL/dh_T is dy_T
    on_forward.remove()
    on_backward.remove()
    on_backward.remove()  # a second remove does nothing
    lstm(x)
    dx_again, _ = lstm.backward(dy)
    assert len(forward) == 4 and len(backward) == 4
    np.testing.assert_allclose(dx_again, dx, rtol=0, atol=1e-12)  # hooks change nothing
    with pytest.raises(TypeError, match="hook: expected a callable"):
        lstm.register_forward_hook(3)


class Scaled(kioku.nn.Module):
    """A custom model as the docs write it: children and a parameter by assignment, and
    a hand-written backward."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = kioku.nn.LSTM(3, 4, rng=0, dtype=np.float64)
        self.scale = kioku.nn.Parameter(np.full(4, 2.0))

    def forward(self, x):
        self.y, _ = self.lstm(x)
        return self.y * self.scale

    def backward(self, dout):
        self.grads["scale"] += (dout * self.y).sum(axis=(0, 1))
        dx, _ = self.lstm.backward(dout * self.scale)
        return dx


def test_assigning_registers_modules_and_parameters():
    from gradcheck import numeric_grad, rel_error

    from kioku.train.optim import SGD

    model = Scaled()
    names = [name for name, _, _ in model.named_parameters()]
    assert names == ["scale", *(f"lstm.{k}" for k in model.lstm.params)]
    assert model.scale is model.params["scale"] and model._children == {"lstm": model.lstm}
    assert model.state_dict().keys() == set(names)
    model.eval()
    assert model.lstm.training is False

    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    probe = np.random.default_rng(1).standard_normal((5, 2, 4))
    model(x)
    model.backward(probe)
    for name, value, grad in model.named_parameters():
        numeric = numeric_grad(lambda: float((model(x) * probe).sum()), value)
        assert rel_error(grad, numeric) < 1e-6, name

    SGD(model.parameters(), lr=0.1)  # the optimizer finds them
    model.lstm = None  # replacing a child with something else unregisters it
    assert [name for name, _, _ in model.named_parameters()] == ["scale"]


def test_assigning_before_init_and_non_float_parameters_are_refused():
    class Early(kioku.nn.Module):
        def __init__(self):
            self.lstm = kioku.nn.LSTM(2, 2)

    with pytest.raises(RuntimeError, match=r"Early.lstm: expected Module.__init__\(\) to have"):
        Early()
    with pytest.raises(TypeError, match=r"dtype: expected float32 or float64, found int64"):
        kioku.nn.Parameter(np.arange(3))


def test_backward_without_a_new_forward_is_refused():
    model = Scaled()
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    dout = np.ones((5, 2, 4))
    model(x)
    model.backward(dout)
    before = {name: grad.copy() for name, _, grad in model.named_parameters()}
    with pytest.raises(RuntimeError, match=r"Scaled.backward: expected a forward since the last"):
        model.backward(dout)
    after = {name: grad for name, _, grad in model.named_parameters()}
    assert all(np.array_equal(before[k], after[k]) for k in before)  # nothing added
    lstm = kioku.nn.LSTM(3, 4, rng=0)
    lstm(x.astype(np.float32))
    lstm.backward(dout.astype(np.float32))
    with pytest.raises(RuntimeError, match=r"LSTM.backward: expected a forward"):
        lstm.backward(dout.astype(np.float32))
    model(x)
    model.backward(dout)  # a new forward allows the next backward
