"""Parity with torch.nn.LSTM / nn.RNN / nn.LSTMCell (torch==2.13.0) in float32: outputs,
final states, the input gradient, initial-state gradients and every parameter
gradient within 1e-5 absolute."""

from __future__ import annotations

import numpy as np
import pytest
from cases import max_abs_diff

import kioku

torch = pytest.importorskip("torch", reason="torch==2.13.0 is the parity reference (test extra)")
pack = torch.nn.utils.rnn.pack_padded_sequence
unpack = torch.nn.utils.rnn.pad_packed_sequence

ATOL = 1e-5


def _load(module: kioku.nn.Module, peer: torch.nn.Module) -> None:
    module.load_state_dict({k: v.detach().numpy() for k, v in peer.state_dict().items()})


def _close(name: str, ours: np.ndarray, theirs: torch.Tensor) -> float:
    return max_abs_diff(name, ours, theirs.detach().numpy(), ATOL)


def _random_config(seed: int) -> dict:
    r = np.random.default_rng(seed)
    hidden = int(r.integers(2, 24))
    return {
        "input_size": int(r.integers(1, 16)),
        "hidden_size": hidden,
        "num_layers": int(r.integers(1, 4)),
        "bias": bool(r.random() < 0.8),
        "batch_first": bool(r.random() < 0.5),
        "bidirectional": bool(r.random() < 0.5),
        "proj_size": int(r.integers(1, hidden)) if r.random() < 0.3 and hidden > 1 else 0,
        "T": int(r.integers(1, 12)),
        "B": int(r.integers(1, 6)),
        "lengths": bool(r.random() < 0.5),
        "state": bool(r.random() < 0.5),
    }


def run_pair(cfg: dict, seed: int, kind: str = "lstm") -> float:
    """Forward and backward through torch and kioku; returns the largest difference."""
    torch.manual_seed(seed)
    r = np.random.default_rng(seed)
    T, B = cfg["T"], cfg["B"]
    layer_args = {
        k: cfg[k]
        for k in ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "bidirectional")
    }
    if kind == "lstm":
        peer = torch.nn.LSTM(**layer_args, proj_size=cfg["proj_size"])
        ours = kioku.nn.LSTM(**layer_args, proj_size=cfg["proj_size"])
    else:
        peer = torch.nn.RNN(**layer_args, nonlinearity=cfg.get("nonlinearity", "tanh"))
        ours = kioku.nn.RNN(**layer_args, nonlinearity=cfg.get("nonlinearity", "tanh"))
    _load(ours, peer)
    D = 2 if cfg["bidirectional"] else 1
    H = cfg["hidden_size"]
    P = (cfg.get("proj_size") if kind == "lstm" else 0) or H
    shape = (B, T, cfg["input_size"]) if cfg["batch_first"] else (T, B, cfg["input_size"])
    x_np = r.normal(size=shape).astype(np.float32)
    lengths = None
    if cfg["lengths"]:
        lengths = r.integers(1, T + 1, size=B)
        lengths[r.integers(B)] = T  # pad_packed_sequence keeps T only if some sequence has it
    state_np = None
    if cfg["state"]:
        h0 = r.normal(size=(cfg["num_layers"] * D, B, P)).astype(np.float32)
        c0 = r.normal(size=(cfg["num_layers"] * D, B, H)).astype(np.float32)
        state_np = (h0, c0) if kind == "lstm" else h0

    x_t = torch.tensor(x_np, requires_grad=True)
    state_t = None
    if state_np is not None:
        if kind == "lstm":
            state_t = tuple(torch.tensor(s, requires_grad=True) for s in state_np)
        else:
            state_t = torch.tensor(state_np, requires_grad=True)
    inp = x_t
    if lengths is not None:
        inp = pack(x_t, torch.tensor(lengths), batch_first=cfg["batch_first"], enforce_sorted=False)
    out_t, final_t = peer(inp, state_t)
    if lengths is not None:
        out_t, _ = unpack(out_t, batch_first=cfg["batch_first"], total_length=T)
    finals_t = final_t if kind == "lstm" else (final_t,)

    out, final = ours(x_np, state_np, lengths)
    finals = final if kind == "lstm" else (final,)
    worst = _close("y", out, out_t)
    for name, a, b in zip("hc", finals, finals_t):
        worst = max(worst, _close(f"{name}_n", a, b))

    dy = r.normal(size=out.shape).astype(np.float32)
    dfinal = [r.normal(size=f.shape).astype(np.float32) for f in finals]
    loss = (out_t * torch.tensor(dy)).sum()
    for f_t, d in zip(finals_t, dfinal):
        loss = loss + (f_t * torch.tensor(d)).sum()
    loss.backward()
    dx, dstart = ours.backward(dy, tuple(dfinal) if kind == "lstm" else dfinal[0])
    dstarts = dstart if kind == "lstm" else (dstart,)
    worst = max(worst, _close("dx", dx, x_t.grad))
    if state_t is not None:
        for name, a, b in zip("hc", dstarts, state_t if kind == "lstm" else (state_t,)):
            worst = max(worst, _close(f"d{name}0", a, b.grad))
    for name, param in peer.named_parameters():
        worst = max(worst, _close(f"grad {name}", ours.grads[name], param.grad))
    return worst


@pytest.mark.parametrize("seed", range(40))
def test_lstm_matches_torch_on_random_configurations(seed):
    run_pair(_random_config(seed), seed)


@pytest.mark.parametrize("seed", range(12))
def test_rnn_matches_torch_on_random_configurations(seed):
    cfg = _random_config(1000 + seed)
    cfg["nonlinearity"] = "relu" if seed % 3 == 0 else "tanh"
    run_pair(cfg, seed, kind="rnn")


EDGE = {
    "T=1": {"T": 1, "B": 3, "lengths": False},
    "B=1": {"T": 6, "B": 1, "lengths": False},
    "T=1,B=1": {"T": 1, "B": 1, "lengths": False},
    "all lengths T": {"T": 5, "B": 3, "lengths": "full"},
    "length 1 beside T": {"T": 7, "B": 2, "lengths": "1,T"},
}


@pytest.mark.parametrize("case", list(EDGE))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_edge_cases(case, bidirectional):
    spec = EDGE[case]
    T, B = spec["T"], spec["B"]
    torch.manual_seed(0)
    r = np.random.default_rng(0)
    peer = torch.nn.LSTM(3, 5, 2, bidirectional=bidirectional)
    ours = kioku.nn.LSTM(3, 5, 2, bidirectional=bidirectional)
    _load(ours, peer)
    x = r.normal(size=(T, B, 3)).astype(np.float32)
    lengths = None
    if spec["lengths"] == "full":
        lengths = np.full(B, T)
    elif spec["lengths"] == "1,T":
        lengths = np.array([1, T])
    x_t = torch.tensor(x, requires_grad=True)
    inp = x_t if lengths is None else pack(x_t, torch.tensor(lengths), enforce_sorted=False)
    out_t, (h_t, c_t) = peer(inp)
    if lengths is not None:
        out_t, _ = unpack(out_t, total_length=T)
    out, (h, c) = ours(x, lengths=lengths)
    for name, a, b in (("y", out, out_t), ("h_n", h, h_t), ("c_n", c, c_t)):
        _close(name, a, b)
    dy = r.normal(size=out.shape).astype(np.float32)
    (out_t * torch.tensor(dy)).sum().backward()
    dx, _ = ours.backward(dy)
    _close("dx", dx, x_t.grad)
    for name, p in peer.named_parameters():
        _close(name, ours.grads[name], p.grad)
    if lengths is not None and spec["lengths"] == "1,T":
        assert np.all(out[1:, 0] == 0), "outputs past a sequence's length are zero"


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
    _close("y", out, out_t)
    _close("h_n", h, h_t)
    _close("c_n", c, c_t)
    out_t.sum().backward()
    dx, (dh0, dc0) = ours.backward(np.ones_like(out))
    assert dh0.shape == (4, 3) and dc0.shape == (4, 6)
    _close("dx", dx, x_t.grad)


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
    _close("h", state[0], state_t[0])
    _close("c", state[1], state_t[1])
    (state_t[0].sum() + 2 * state_t[1].sum()).backward()
    dh, dc = np.ones((3, 7), np.float32), np.full((3, 7), 2, np.float32)
    dxs = []
    for _ in range(4):
        dx, (dh, dc) = ours.backward(dh, dc)
        dxs.append(dx)
    _close("dx", np.stack(dxs[::-1]), xs_t.grad)
    for name, p in peer.named_parameters():
        _close(name, ours.grads[name], p.grad)


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
    np.testing.assert_allclose(np.concatenate([first, second]), whole, atol=1e-6)
    ours.zero_grad()
    ours(x[6:], state)
    ours.backward(np.ones((4, 2, 4), np.float32))
    _, state_t = peer(torch.tensor(x[:6]))
    out_t, _ = peer(torch.tensor(x[6:]), tuple(s.detach() for s in state_t))
    out_t.sum().backward()
    for name, p in peer.named_parameters():
        _close(name, ours.grads[name], p.grad)


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
