"""Parity with torch.nn.LSTM / nn.RNN / nn.LSTMCell (torch==2.13.0) in float32: outputs,
final states, the input gradient, initial-state gradients and every parameter
gradient within the rounding of float32 over the depth of the computation
(tests/tolerance.py)."""

from __future__ import annotations

import numpy as np
import pytest
from tolerance import assert_close, recurrent_depth

import kioku

torch = pytest.importorskip("torch", reason="torch==2.13.0 is the parity reference (test extra)")
from torch_pairs import close as _close  # noqa: E402
from torch_pairs import load as _load  # noqa: E402
from torch_pairs import random_config, run_edge, run_pair  # noqa: E402

pytestmark = pytest.mark.torch


def _random_config(seed: int) -> dict:
    return random_config(seed, projection=True)


@pytest.mark.parametrize("seed", range(40))
def test_lstm_matches_torch_on_random_configurations(seed):
    run_pair(_random_config(seed), seed)


@pytest.mark.parametrize("seed", range(12))
def test_rnn_matches_torch_on_random_configurations(seed):
    cfg = _random_config(1000 + seed)
    cfg["nonlinearity"] = "relu" if seed % 3 == 0 else "tanh"
    run_pair(cfg, seed, kind="rnn")


EDGE = {
    "T=1": (1, 3, None),
    "B=1": (6, 1, None),
    "T=1,B=1": (1, 1, None),
    "all lengths T": (5, 3, "full"),
    "length 1 beside T": (7, 2, "1,T"),
}


@pytest.mark.parametrize("case", list(EDGE))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_edge_cases(case, bidirectional):
    run_edge("lstm", *EDGE[case], bidirectional)


def test_unbatched_input_matches_torch():
    torch.manual_seed(1)
    peer = torch.nn.LSTM(4, 6, 2, bidirectional=True, proj_size=3)
    ours = kioku.nn.LSTM(4, 6, 2, bidirectional=True, proj_size=3)
    _load(ours, peer)
    x = np.random.default_rng(1).normal(size=(7, 4)).astype(np.float32)
    h0 = np.random.default_rng(2).normal(size=(4, 3)).astype(np.float32)
    c0 = np.random.default_rng(3).normal(size=(4, 6)).astype(np.float32)
    x_t = torch.tensor(x, requires_grad=True)
    out_t, (h_t, c_t) = peer(x_t, (torch.tensor(h0), torch.tensor(c0)))
    out, (h, c) = ours(x, (h0, c0))
    depth = recurrent_depth(7, 6, 6, layers=2)
    _close("y", out, out_t, depth)
    _close("h_n", h, h_t, depth)
    _close("c_n", c, c_t, depth)
    out_t.sum().backward()
    dx, (dh0, dc0) = ours.backward(np.ones_like(out))
    assert dh0.shape == (4, 3) and dc0.shape == (4, 6)
    _close("dx", dx, x_t.grad, depth)


def test_cell_matches_torch_lstmcell():
    torch.manual_seed(2)
    peer = torch.nn.LSTMCell(5, 7)
    ours = kioku.nn.LSTMCell(5, 7)
    _load(ours, peer)
    r = np.random.default_rng(2)
    xs = r.normal(size=(4, 3, 5)).astype(np.float32)
    xs_t = torch.tensor(xs, requires_grad=True)
    state_t, state = None, None
    for t in range(4):
        state_t = peer(xs_t[t], state_t)
        state = ours(xs[t], state)
    depth = recurrent_depth(4, 5, 7, batch=3)
    _close("h", state[0], state_t[0], depth)
    _close("c", state[1], state_t[1], depth)
    (state_t[0].sum() + 2 * state_t[1].sum()).backward()
    dh, dc = np.ones((3, 7), np.float32), np.full((3, 7), 2, np.float32)
    dxs = []
    for _ in range(4):
        dx, (dh, dc) = ours.backward(dh, dc)
        dxs.append(dx)
    _close("dx", np.stack(dxs[::-1]), xs_t.grad, depth)
    for name, p in peer.named_parameters():
        _close(name, ours.grads[name], p.grad, depth)


def test_truncated_bptt_state_carry_matches_torch_detach():
    """Feeding the last (h_n, c_n) as the next state continues the sequence exactly;
    no gradient crosses the cut (torch: state.detach())."""
    torch.manual_seed(3)
    peer = torch.nn.LSTM(3, 4, 2)
    ours = kioku.nn.LSTM(3, 4, 2)
    _load(ours, peer)
    x = np.random.default_rng(3).normal(size=(10, 2, 3)).astype(np.float32)
    whole, _ = ours(x)
    first, state = ours(x[:6])
    second, _ = ours(x[6:], state)
    depth = recurrent_depth(10, 4, 4, layers=2, batch=2)
    assert_close("y in two parts", np.concatenate([first, second]), whole, depth)
    ours.zero_grad()
    ours(x[6:], state)
    ours.backward(np.ones((4, 2, 4), np.float32))
    _, state_t = peer(torch.tensor(x[:6]))
    out_t, _ = peer(torch.tensor(x[6:]), tuple(s.detach() for s in state_t))
    out_t.sum().backward()
    for name, p in peer.named_parameters():
        _close(name, ours.grads[name], p.grad, depth)


def test_dropout_between_layers_only_in_train_mode():
    lstm = kioku.nn.LSTM(3, 8, 2, dropout=0.5, rng=0)
    x = np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float32)
    lstm.eval()
    a, _ = lstm(x)
    b, _ = lstm(x)
    np.testing.assert_array_equal(a, b)
    lstm.train()
    c, _ = lstm(x)
    assert not np.allclose(a, c), "train mode drops units between layers"
    single = kioku.nn.LSTM(3, 8, 1, dropout=0.5, rng=0)
    # nothing to drop after the last layer
    np.testing.assert_array_equal(single(x)[0], single.eval()(x)[0])
