"""The plain LSTM step (the seed's six equations, ``kioku.functional.lstm_step``) against the
hooked step the variants run (``LSTMHooks.step`` with every hook at its default) and against
``torch.nn.LSTMCell``, forward and backward.

The two kioku steps perform the same NumPy operations in the same order, so they must agree
bit for bit; PyTorch computes the same functions its own way, so it agrees to rounding."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from tolerance import assert_close, recurrent_depth

from kioku.functional import LSTMHooks, lstm_backward, lstm_forward
from kioku.functional.lstm import lstm_step, lstm_step_backward

T, B, I, H = 5, 3, 4, 6


def _case(seed: int, dtype, proj: int = 0):
    """Weights, inputs, initial state and output gradients of one direction."""
    rng = np.random.default_rng(seed)
    P = proj or H
    arrays = {
        "x": rng.standard_normal((T, B, I)),
        "weight_ih": rng.standard_normal((4 * H, I)) * 0.5,
        "weight_hh": rng.standard_normal((4 * H, P)) * 0.5,
        "bias": rng.standard_normal(4 * H) * 0.3,
        "h0": rng.standard_normal((B, P)),
        "c0": rng.standard_normal((B, H)),
        "weight_hr": rng.standard_normal((P, H)) * 0.5 if proj else None,
    }
    arrays = {k: None if v is None else v.astype(dtype) for k, v in arrays.items()}
    grads = {
        "dy": rng.standard_normal((T, B, P)).astype(dtype),
        "dh_n": rng.standard_normal((B, P)).astype(dtype),
        "dc_n": rng.standard_normal((B, H)).astype(dtype),
    }
    return arrays, grads


def _run(arrays, grads, hooks, lengths=None, reverse=False):
    a = dict(arrays)
    x = a.pop("x")
    y, h_n, c_n, cache = lstm_forward(
        x, a["weight_ih"], a["weight_hh"], a["bias"], a["h0"], a["c0"], lengths, reverse,
        a["weight_hr"], hooks=hooks,
    )  # fmt: skip
    dh_trace = np.empty_like(grads["dh_n"], shape=(T,) + grads["dh_n"].shape)
    dc_trace = np.empty_like(grads["dc_n"], shape=(T,) + grads["dc_n"].shape)
    g = lstm_backward(grads["dy"], cache, grads["dh_n"], grads["dc_n"], True, dh_trace, dc_trace)
    return {
        "y": y, "h_n": h_n, "c_n": c_n, "gates": cache.gates, "tanh_c": cache.tanh_c,
        "c_state": cache.c_state, "h_state": cache.h_state, "dh_trace": dh_trace,
        "dc_trace": dc_trace, **{k: v for k, v in g._asdict().items() if v is not None},
    }  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("proj", [0, 4])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("ragged", [False, True])
def test_plain_step_is_the_hooked_step_bit_for_bit(dtype, proj, reverse, ragged):
    arrays, grads = _case(7 + proj, dtype, proj)
    lengths = np.array([5, 2, 4]) if ragged else None
    plain = _run(arrays, grads, None, lengths, reverse)
    hooked = _run(arrays, grads, LSTMHooks(), lengths, reverse)
    assert plain.keys() == hooked.keys()
    for name in plain:
        assert plain[name].dtype == dtype, name
        np.testing.assert_array_equal(plain[name], hooked[name], err_msg=name)


def test_hooked_run_really_takes_the_hooked_step(monkeypatch):
    """The comparison above means something only if ``hooks=`` changes the path taken."""
    arrays, grads = _case(3, np.float64)
    calls = []
    original = LSTMHooks.step

    def counting(self, cache, t, work):
        calls.append(t)
        return original(self, cache, t, work)

    monkeypatch.setattr(LSTMHooks, "step", counting)
    _run(arrays, grads, None)
    assert calls == []
    _run(arrays, grads, LSTMHooks())
    assert calls == list(range(T))


def test_plain_step_is_the_six_equations_alone():
    """No hooks in the plain step: its source names none, and it is about as short as
    Equinox's cell (a dozen lines of math, each derivative beside its line)."""
    for fn, most in ((lstm_step, 20), (lstm_step_backward, 36)):
        source = inspect.getsource(fn)
        assert "hooks" not in source, fn.__name__
        body = source.split('"""')[2]  # after the docstring
        lines = [s for s in body.splitlines() if s.strip() and not s.strip().startswith("#")]
        assert len(lines) <= most, (fn.__name__, len(lines))
    step = inspect.getsource(lstm_step)
    for equation in ("f_t = σ", "i_t = σ", "g_t = tanh", "o_t = σ", "c_t = f_t ⊙ c_{t-1}",
                     "h_t = o_t ⊙ tanh(c_t)"):  # fmt: skip
        assert equation in step, equation


@pytest.mark.torch
@pytest.mark.parametrize("hooks", [None, "hooked"])
def test_step_equals_torch_lstm_cell(hooks):
    """``T`` steps of ``torch.nn.LSTMCell`` from the same state, the same weights: outputs,
    final cell, and the gradients of every weight, the input and the initial state."""
    torch = pytest.importorskip("torch")
    arrays, grads = _case(11, np.float64)
    ours = _run(arrays, grads, None if hooks is None else LSTMHooks())

    cell = torch.nn.LSTMCell(I, H, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(arrays["weight_ih"]))
        cell.weight_hh.copy_(torch.from_numpy(arrays["weight_hh"]))
        cell.bias_ih.copy_(torch.from_numpy(arrays["bias"]))
        cell.bias_hh.zero_()
    x = torch.from_numpy(arrays["x"]).requires_grad_()
    h0 = torch.from_numpy(arrays["h0"]).requires_grad_()
    c0 = torch.from_numpy(arrays["c0"]).requires_grad_()
    h, c, ys = h0, c0, []
    for t in range(T):
        h, c = cell(x[t], (h, c))
        ys.append(h)
    y = torch.stack(ys)
    loss = (
        (y * torch.from_numpy(grads["dy"])).sum()
        + (h * torch.from_numpy(grads["dh_n"])).sum()
        + (c * torch.from_numpy(grads["dc_n"])).sum()
    )
    loss.backward()

    def close(name, theirs):
        np.testing.assert_allclose(ours[name], theirs.detach().numpy(), atol=1e-12, err_msg=name)

    close("y", y)
    close("h_n", h)
    close("c_n", c)
    close("dx", x.grad)
    close("dh0", h0.grad)
    close("dc0", c0.grad)
    close("dweight_ih", cell.weight_ih.grad)
    close("dweight_hh", cell.weight_hh.grad)
    close("dbias", cell.bias_ih.grad)
    close("dbias", cell.bias_hh.grad)


@pytest.mark.torch
def test_float32_step_equals_torch_lstm_cell_to_rounding():
    torch = pytest.importorskip("torch")
    arrays, grads = _case(5, np.float32)
    ours = _run(arrays, grads, None)
    cell = torch.nn.LSTMCell(I, H)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(arrays["weight_ih"]))
        cell.weight_hh.copy_(torch.from_numpy(arrays["weight_hh"]))
        cell.bias_ih.copy_(torch.from_numpy(arrays["bias"]))
        cell.bias_hh.zero_()
    x = torch.from_numpy(arrays["x"]).requires_grad_()
    h, c, ys = torch.from_numpy(arrays["h0"]), torch.from_numpy(arrays["c0"]), []
    for t in range(T):
        h, c = cell(x[t], (h, c))
        ys.append(h)
    y = torch.stack(ys)
    (y * torch.from_numpy(grads["dy"])).sum().backward()
    depth = recurrent_depth(T, I, H, batch=B)
    assert_close("y", ours["y"], y.detach().numpy(), depth)
    ours_dx = _run(arrays, {**grads, "dh_n": 0 * grads["dh_n"], "dc_n": 0 * grads["dc_n"]}, None)
    assert_close("dx", ours_dx["dx"], x.grad.numpy(), depth)
    assert_close("dweight_hh", ours_dx["dweight_hh"], cell.weight_hh.grad.numpy(), depth)
