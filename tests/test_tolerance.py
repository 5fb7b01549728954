"""The derived tolerances of tests/tolerance.py: their formula, and that they still tell a
wrong result from a right one (a weight off by 1e-3 fails the comparison it passed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tolerance import EPS32, SPREAD, assert_close, recurrent_depth, tolerance

import kioku


def test_tolerance_follows_eps_depth_and_scale():
    assert tolerance(np.array([0.5, -0.25]), 100) == pytest.approx(SPREAD * EPS32 * 10)
    assert tolerance(np.array([[-3.0]]), 100) == pytest.approx(SPREAD * EPS32 * 10 * 3)
    eps64 = float(np.finfo(np.float64).eps)
    assert tolerance(np.zeros(0), 4, np.float64) == pytest.approx(SPREAD * eps64 * 2)
    # 2 layers of 5 steps, then the longest sum: 4 gates x 6 cells beats 3 + 6 and 5 x 2
    assert recurrent_depth(5, 3, 6, layers=2, batch=2) == 2 * 5 + 24
    assert recurrent_depth(50, 3, 6, batch=2) == 50 + 100


def test_assert_close_names_the_array_and_the_bound():
    with pytest.raises(AssertionError, match=r"w: max \|difference\| 0.001 > .* \(depth 9\)"):
        assert_close("w", np.array([1.001]), np.array([1.0]), 9)
    with pytest.raises(AssertionError, match=r"w: shape \(2,\) vs \(1,\)"):
        assert_close("w", np.zeros(2), np.zeros(1), 9)


def _lstm_against_torch(perturb: np.ndarray | float) -> dict[str, float]:
    """A 2-layer LSTM, (T, B, I, H) = (20, 4, 8, 16), forward and backward in kioku and
    torch with the same weights but kioku's ``weight_hh_l0`` plus ``perturb``; every
    comparison's difference over its tolerance."""
    torch = pytest.importorskip("torch", reason="torch==2.13.0 is the peer (test extra)")
    T, B, I, H = 20, 4, 8, 16
    torch.manual_seed(0)
    peer = torch.nn.LSTM(I, H, 2)
    ours = kioku.nn.LSTM(I, H, 2)
    ours.load_state_dict({k: v.detach().numpy() for k, v in peer.state_dict().items()})
    ours.params["weight_hh_l0"][...] += perturb
    ours.weights_changed()
    r = np.random.default_rng(0)
    x = r.normal(size=(T, B, I)).astype(np.float32)
    dy = r.normal(size=(T, B, H)).astype(np.float32)
    x_t = torch.tensor(x, requires_grad=True)
    y_t, _ = peer(x_t)
    (y_t * torch.from_numpy(dy)).sum().backward()
    y, _ = ours(x)
    dx, _ = ours.backward(dy)
    pairs = {"y": (y, y_t), "dx": (dx, x_t.grad)}
    pairs.update({name: (ours.grads[name], p.grad) for name, p in peer.named_parameters()})
    depth = recurrent_depth(T, H, H, layers=2, batch=B)
    return {
        name: float(np.abs(mine - theirs.detach().numpy()).max())
        / tolerance(theirs.detach().numpy(), depth)
        for name, (mine, theirs) in pairs.items()
    }


def test_weights_off_by_1e_3_fail_the_comparison_that_passes_without_them():
    right = _lstm_against_torch(0.0)
    assert max(right.values()) <= 1, right
    one = np.zeros((64, 16), np.float32)
    one[0, 0] = 1e-3  # one weight: its gradient and its neighbours' tell
    wrong = _lstm_against_torch(one)
    assert max(wrong.values()) > 1 and wrong["weight_hh_l0"] > 1, wrong
    signs = np.random.default_rng(1).choice([-1e-3, 1e-3], size=(64, 16)).astype(np.float32)
    wrong = _lstm_against_torch(signs)  # every weight: every comparison tells, by far
    assert min(wrong.values()) > 1 and wrong["y"] > 10 and math.isfinite(wrong["y"]), wrong


def test_float32_against_float64_passes_and_a_perturbed_weight_fails():
    """Without torch: the float32 reference LSTM against the same in float64 is within the
    derived tolerance; the same with ``weight_hh`` off by 1e-3 (random signs) is not."""
    from kioku import functional

    r = np.random.default_rng(3)
    T, B, I, H = 20, 4, 8, 16
    x = r.normal(size=(T, B, I))
    weight_ih, weight_hh = r.normal(size=(4 * H, I)) / 4, r.normal(size=(4 * H, H)) / 4
    want = functional.lstm_forward(x, weight_ih, weight_hh)[0]
    depth = recurrent_depth(T, I, H, batch=B)
    as32 = [a.astype(np.float32) for a in (x, weight_ih, weight_hh)]
    assert_close("y", functional.lstm_forward(*as32)[0], want, depth)
    off = as32[2] + r.choice([-1e-3, 1e-3], size=as32[2].shape).astype(np.float32)
    with pytest.raises(AssertionError, match=r"y: max \|difference\|"):
        assert_close("y", functional.lstm_forward(as32[0], as32[1], off)[0], want, depth)
