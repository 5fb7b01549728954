"""Shared by the PyTorch parity tests: a kioku layer and its torch twin (same weights) run
forward and backward on the same random case, every output, final state and gradient
compared within the rounding of float32 over the depth of the computation
(tests/tolerance.py). Import it after ``pytest.importorskip("torch")``."""

from __future__ import annotations

import numpy as np
import torch
from tolerance import assert_close, recurrent_depth

import kioku

pack = torch.nn.utils.rnn.pack_padded_sequence
unpack = torch.nn.utils.rnn.pad_packed_sequence

# kind -> (torch layer, kioku layer, the options of the config that only it takes)
LAYERS = {
    "lstm": (torch.nn.LSTM, kioku.nn.LSTM, ("proj_size",)),
    "rnn": (torch.nn.RNN, kioku.nn.RNN, ("nonlinearity",)),
    "gru": (torch.nn.GRU, kioku.nn.GRU, ()),
}
GATES = {"lstm": 4, "rnn": 1, "gru": 3}
LAYER_ARGS = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "bidirectional")


def load(module: kioku.nn.Module, peer: torch.nn.Module) -> None:
    """Copy the weights of ``peer`` into ``module`` (the names are PyTorch's)."""
    module.load_state_dict({k: v.detach().numpy() for k, v in peer.state_dict().items()})


def close(name: str, ours: np.ndarray, theirs: torch.Tensor, depth: int) -> float:
    """Assert ``ours`` equals the tensor ``theirs`` within the rounding of float32 through
    ``depth`` roundings (:func:`tolerance.recurrent_depth`); the largest difference."""
    return assert_close(name, ours, theirs.detach().numpy(), depth)


def random_config(seed: int, projection: bool = False) -> dict:
    """A random layer configuration and case: sizes, options, ``T``, ``B`` and whether to
    pass lengths and an initial state (with ``projection``, a ``proj_size`` too)."""
    r = np.random.default_rng(seed)
    hidden = int(r.integers(2 if projection else 1, 24))
    cfg = {
        "input_size": int(r.integers(1, 16)),
        "hidden_size": hidden,
        "num_layers": int(r.integers(1, 4)),
        "bias": bool(r.random() < 0.8),
        "batch_first": bool(r.random() < 0.5),
        "bidirectional": bool(r.random() < 0.5),
    }
    if projection:
        cfg["proj_size"] = int(r.integers(1, hidden)) if r.random() < 0.3 and hidden > 1 else 0
    cfg.update(
        T=int(r.integers(1, 12)),
        B=int(r.integers(1, 6)),
        lengths=bool(r.random() < 0.5),
        state=bool(r.random() < 0.5),
    )
    return cfg


def _states(kind: str, finals) -> tuple:
    """The final (or initial) states of a layer as a tuple: ``(h, c)`` or ``(h,)``."""
    return tuple(finals) if kind == "lstm" else (finals,)


def run_pair(cfg: dict, seed: int, kind: str = "lstm") -> float:
    """Forward and backward through torch and kioku; returns the largest difference."""
    torch.manual_seed(seed)
    r = np.random.default_rng(seed)
    T, B = cfg["T"], cfg["B"]
    peer_type, our_type, own = LAYERS[kind]
    layer_args = {k: cfg[k] for k in LAYER_ARGS + own if k in cfg}
    peer, ours = peer_type(**layer_args), our_type(**layer_args)
    load(ours, peer)
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
        state_t = [torch.tensor(s, requires_grad=True) for s in _states(kind, state_np)]
        state_t = tuple(state_t) if kind == "lstm" else state_t[0]
    inp = x_t
    if lengths is not None:
        inp = pack(x_t, torch.tensor(lengths), batch_first=cfg["batch_first"], enforce_sorted=False)
    out_t, final_t = peer(inp, state_t)
    if lengths is not None:
        out_t, _ = unpack(out_t, batch_first=cfg["batch_first"], total_length=T)
    finals_t = _states(kind, final_t)

    out, final = ours(x_np, state_np, lengths)
    finals = _states(kind, final)
    widest = max(cfg["input_size"], D * P if cfg["num_layers"] > 1 else 0)
    depth = recurrent_depth(T, widest, H, cfg["num_layers"], B, GATES[kind])
    worst = close("y", out, out_t, depth)
    for name, a, b in zip("hc", finals, finals_t):
        worst = max(worst, close(f"{name}_n", a, b, depth))

    dy = r.normal(size=out.shape).astype(np.float32)
    dfinal = [r.normal(size=f.shape).astype(np.float32) for f in finals]
    loss = (out_t * torch.tensor(dy)).sum()
    for f_t, d in zip(finals_t, dfinal):
        loss = loss + (f_t * torch.tensor(d)).sum()
    loss.backward()
    dx, dstart = ours.backward(dy, tuple(dfinal) if kind == "lstm" else dfinal[0])
    worst = max(worst, close("dx", dx, x_t.grad, depth))
    if state_t is not None:
        for name, a, b in zip("hc", _states(kind, dstart), _states(kind, state_t)):
            worst = max(worst, close(f"d{name}0", a, b.grad, depth))
    for name, param in peer.named_parameters():
        worst = max(worst, close(f"grad {name}", ours.grads[name], param.grad, depth))
    return worst


def run_edge(kind: str, T: int, B: int, lengths: str | None, bidirectional: bool) -> None:
    """A two-layer ``kind`` (3 inputs, 5 cells) against torch on an edge of the shapes:
    ``T`` and ``B`` as given, ``lengths`` None (no lengths), ``"full"`` (all ``T``) or
    ``"1,T"`` (``B = 2``; outputs past the first sequence's one step must be zero)."""
    torch.manual_seed(0)
    r = np.random.default_rng(0)
    peer_type, our_type, _ = LAYERS[kind]
    peer = peer_type(3, 5, 2, bidirectional=bidirectional)
    ours = our_type(3, 5, 2, bidirectional=bidirectional)
    load(ours, peer)
    x = r.normal(size=(T, B, 3)).astype(np.float32)
    lens = {None: None, "full": np.full(B, T), "1,T": np.array([1, T])}[lengths]
    x_t = torch.tensor(x, requires_grad=True)
    inp = x_t if lens is None else pack(x_t, torch.tensor(lens), enforce_sorted=False)
    out_t, final_t = peer(inp)
    if lens is not None:
        out_t, _ = unpack(out_t, total_length=T)
    out, final = ours(x, lengths=lens)
    depth = recurrent_depth(T, 10 if bidirectional else 5, 5, 2, B, GATES[kind])
    close("y", out, out_t, depth)
    for name, a, b in zip("hc", _states(kind, final), _states(kind, final_t)):
        close(f"{name}_n", a, b, depth)
    dy = r.normal(size=out.shape).astype(np.float32)
    (out_t * torch.tensor(dy)).sum().backward()
    dx, _ = ours.backward(dy)
    close("dx", dx, x_t.grad, depth)
    for name, p in peer.named_parameters():
        close(name, ours.grads[name], p.grad, depth)
    if lengths == "1,T":
        assert np.all(out[1:, 0] == 0), "outputs past a sequence's length are zero"
