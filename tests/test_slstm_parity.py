"""Parity of kioku.nn.SLSTM with the vanilla (PyTorch, non-CUDA) sLSTM cell of the pinned
``xlstm`` package (2.0.6) in float32: outputs, the four final states, and the gradients
(torch autograd) of the input, the initial states and every parameter, within the rounding
of float32 (or float64) arithmetic over the depth of the computation (tests/tolerance.py).

The reference cell reads pre-projected inputs ``(T, B, 4H)``; the input weights, the
stacking, the reverse direction and the merges are composed around it here in torch.
It has no lengths, so a packed batch is compared with each sequence run alone."""

from __future__ import annotations

import numpy as np
import pytest
from tolerance import assert_close, recurrent_depth

import kioku

torch = pytest.importorskip("torch", reason="torch==2.13.0 runs the reference (test extra)")
xlstm_cell = pytest.importorskip(
    "xlstm.blocks.slstm.cell", reason="xlstm==2.0.6 is the sLSTM reference (test extra)"
)
xlstm_pointwise = pytest.importorskip("xlstm.blocks.slstm.src.vanilla.slstm")

NAMES = ("h", "c", "n", "m")
MERGE = {
    "concat": lambda a, b: torch.cat([a, b], dim=2),
    "sum": lambda a, b: a + b,
    "mean": lambda a, b: (a + b) * 0.5,
    "mul": lambda a, b: a * b,
}


pytestmark = pytest.mark.torch


def _random_config(seed: int) -> dict:
    r = np.random.default_rng(seed)
    heads = int(r.choice([1, 2, 4]))
    return {
        "input_size": int(r.integers(1, 9)),
        "hidden_size": heads * int(r.integers(1, 6)),
        "num_heads": heads,
        "num_layers": int(r.integers(1, 4)),
        "bias": bool(r.random() < 0.8),
        "batch_first": bool(r.random() < 0.5),
        "bidirectional": bool(r.random() < 0.5),
        "merge_mode": str(r.choice(list(MERGE))),
        "T": int(r.integers(1, 12)),
        "B": int(r.integers(1, 6)),
        "lengths": bool(r.random() < 0.5),
        "state": bool(r.random() < 0.6),
    }


def _reference_cell(ours: kioku.nn.SLSTM, sfx: str) -> torch.nn.Module:
    config = xlstm_cell.sLSTMCellConfig(
        hidden_size=ours.hidden_size,
        num_heads=ours.num_heads,
        backend="vanilla",
        dtype="float32",
        bias_init="standard",
        recurrent_weight_init="standard",
        input_shape="SBGNH",
        output_shape="SBH",
        enable_automatic_mixed_precision=False,
    )
    # the config knows no float64; the vanilla step computes in the dtype it is given
    cell = xlstm_cell.sLSTMCell(config).to(getattr(torch, ours.dtype.name))
    cell.recurrent_kernel[...] = torch.from_numpy(ours.params[f"recurrent_kernel{sfx}"])
    if ours.bias:
        cell.bias[...] = torch.from_numpy(ours.params[f"bias{sfx}"])
    else:
        cell.bias[...] = 0
        cell._bias_.requires_grad_(False)
    return cell


def _reference_run(ours, cells, weights, x, state):
    """The stack in torch around the xlstm cells: ``x (T, B, I)``, ``state (4, L*D, B, H)``."""
    layer_input, finals = x, []
    for layer in range(ours.num_layers):
        outputs = []
        for direction in range(ours.num_directions):
            index = layer * ours.num_directions + direction
            pre = layer_input @ weights[index].T
            if direction:
                pre = pre.flip(0)
            y, final = cells[index](pre, None if state is None else state[:, index])
            outputs.append(y.flip(0) if direction else y)
            finals.append(final)
        layer_input = outputs[0] if len(outputs) == 1 else MERGE[ours.merge_mode](*outputs)
    return layer_input, torch.stack(finals, dim=1)


def run_pair(cfg: dict, seed: int, dtype: type = np.float32) -> float:
    """Forward and backward through kioku and the reference; returns the largest difference."""
    r = np.random.default_rng(seed)
    T, B = cfg["T"], cfg["B"]
    args = {k: cfg[k] for k in ("input_size", "hidden_size", "num_heads", "num_layers", "bias")}
    args.update(batch_first=cfg["batch_first"], bidirectional=cfg["bidirectional"])
    forget_gate = cfg.get("forget_gate", "sigmoid")
    ours = kioku.nn.SLSTM(
        **args, merge_mode=cfg["merge_mode"], forget_gate=forget_gate, dtype=dtype, rng=seed
    )
    for name, value in ours.params.items():  # random biases: both branches of the max occur
        scale = 1.0 if name.startswith("bias") else 1 / np.sqrt(value.shape[1])  # fan-in: I or D_h
        value[...] = r.normal(scale=scale, size=value.shape)
    LD, H = ours.num_layers * ours.num_directions, ours.hidden_size
    x = r.normal(size=(T, B, cfg["input_size"])).astype(dtype)
    lengths = r.integers(1, T + 1, size=B) if cfg["lengths"] else None
    state = None
    if cfg["state"]:  # a reachable state: n > 0 and |c| <= n
        n0 = r.uniform(0.3, 3.0, size=(LD, B, H))
        parts = (
            r.normal(size=n0.shape),
            n0 * r.uniform(-1, 1, n0.shape),
            n0,
            r.normal(size=n0.shape),
        )
        state = tuple(p.astype(dtype) for p in parts)

    x_in = np.ascontiguousarray(x.transpose(1, 0, 2)) if cfg["batch_first"] else x
    y, finals = ours(x_in, state, lengths)
    if cfg["batch_first"]:
        y = y.transpose(1, 0, 2)
    wy = r.normal(size=y.shape).astype(dtype)
    wf = r.normal(size=(4, LD, B, H)).astype(dtype)
    ours.zero_grad()
    dx, dstate = ours.backward(
        np.ascontiguousarray(wy.transpose(1, 0, 2)) if cfg["batch_first"] else wy, tuple(wf)
    )
    if cfg["batch_first"]:
        dx = dx.transpose(1, 0, 2)

    cells, weights = [], []
    for layer in range(ours.num_layers):
        for direction in range(ours.num_directions):
            sfx = ours.suffix(layer, direction)
            cells.append(_reference_cell(ours, sfx))
            weights.append(torch.tensor(ours.params[f"weight_ih{sfx}"], requires_grad=True))
    xt = torch.tensor(x, requires_grad=True)
    st = torch.tensor(np.stack(state), requires_grad=True) if state is not None else None
    if lengths is None:
        yt, ft = _reference_run(ours, cells, weights, xt, st)
    else:  # packed semantics: each sequence as if alone
        ys, fs = [], []
        for b, length in enumerate(lengths):
            y_b, f_b = _reference_run(
                ours,
                cells,
                weights,
                xt[:length, b : b + 1],
                None if st is None else st[:, :, b : b + 1],
            )
            ys.append(torch.nn.functional.pad(y_b, (0, 0, 0, 0, 0, T - int(length))))
            fs.append(f_b)
        yt, ft = torch.cat(ys, dim=1), torch.cat(fs, dim=2)
    ((yt * torch.from_numpy(wy)).sum() + (ft * torch.from_numpy(wf)).sum()).backward()

    diffs = {"y": (y, yt), "dx": (dx, xt.grad)}
    for i, name in enumerate(NAMES):
        diffs[f"{name}_n"] = (finals[i], ft[i])
        if state is not None:
            diffs[f"d{name}0"] = (dstate[i], st.grad[i])
    for index, cell in enumerate(cells):
        sfx = ours.suffix(index // ours.num_directions, index % ours.num_directions)
        diffs[f"weight_ih{sfx}"] = (ours.grads[f"weight_ih{sfx}"], weights[index].grad)
        diffs[f"recurrent_kernel{sfx}"] = (
            ours.grads[f"recurrent_kernel{sfx}"],
            cell.recurrent_kernel.grad,
        )
        if ours.bias:
            diffs[f"bias{sfx}"] = (ours.grads[f"bias{sfx}"], cell.bias.grad)
    layer_input = max(cfg["input_size"], ours.num_directions * H if ours.num_layers > 1 else 0)
    depth = recurrent_depth(T, layer_input, H, ours.num_layers, B)
    worst = 0.0
    for name, (mine, theirs) in diffs.items():
        diff = assert_close(f"{name} (config {cfg})", mine, theirs.detach().numpy(), depth, dtype)
        worst = max(worst, diff)
    return worst


@pytest.mark.parametrize("seed", range(30))
def test_slstm_matches_xlstm_vanilla(seed):
    run_pair(_random_config(seed), seed)


@pytest.mark.parametrize("seed", range(100, 110))
def test_exponential_forget_gate_matches_xlstm_with_log_f_identity(seed, monkeypatch):
    """The reference's own step with logsigmoid(f~) replaced by f~: the paper's exp forget gate."""
    monkeypatch.setattr(xlstm_pointwise, "logsigmoid", lambda raw: raw)
    run_pair({**_random_config(seed), "forget_gate": "exp"}, seed)


@pytest.mark.parametrize("seed", range(200, 210))
def test_slstm_matches_xlstm_vanilla_in_float64(seed):
    run_pair(_random_config(seed), seed, np.float64)
