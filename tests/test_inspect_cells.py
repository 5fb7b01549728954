"""Inspection of every gated cell: traces of the GRU (r, z, n, h) and the sLSTM
(i, f, z, o, c, n, m, h) equal the step equations and what :mod:`kioku.functional`
returns; saturation, heatmaps and cell search use the cell's own gate names; gradient
flow of the GRU and sLSTM matches central differences."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_grad, rel_error

from kioku import functional
from kioku.functional import sigmoid
from kioku.inspect import cell_search, gate_saturation, gradient_flow, record_gradients, trace
from kioku.nn import GRU, LSTM, SLSTM


def _gru_by_hand(gru: GRU, x: np.ndarray, direction: int) -> dict[str, np.ndarray]:
    """The GRU's four equations step by step (layer 0), as torch.nn.GRU states them."""
    sfx = gru.suffix(0, direction)
    p = gru.params
    W, U = p[f"weight_ih{sfx}"], p[f"weight_hh{sfx}"]
    b_i, b_h = p[f"bias_ih{sfx}"], p[f"bias_hh{sfx}"]
    T, B, _ = x.shape
    H = gru.hidden_size
    h = np.zeros((B, H))
    out = {k: np.zeros((T, B, H)) for k in "rznh"}
    for t in range(T - 1, -1, -1) if direction else range(T):
        gi, gh = x[t] @ W.T + b_i, h @ U.T + b_h
        r = sigmoid(gi[:, :H] + gh[:, :H])
        z = sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
        n = np.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
        h = (1 - z) * n + z * h
        for k, v in zip("rznh", (r, z, n, h)):
            out[k][t] = v
    return out


@pytest.mark.parametrize("direction", [0, 1])
def test_gru_trace_holds_r_z_n_h_of_the_equations_and_of_functional(direction):
    gru = GRU(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=0)
    x = np.random.default_rng(1).standard_normal((6, 2, 3))
    with trace(gru) as tr:
        gru(x)
    assert [(r.layer, r.direction) for r in tr] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    rec = tr.get(0, direction)
    assert rec.cell_type == "GRU" and [q.short for q in rec.quantities] == list("rznh")
    want = _gru_by_hand(gru, x, direction)
    for k in "rznh":
        np.testing.assert_allclose(rec.get(k), want[k], rtol=0, atol=1e-12)
    sfx = gru.suffix(0, direction)
    p = gru.params
    y, _, cache = functional.gru_forward(
        x, p[f"weight_ih{sfx}"], p[f"weight_hh{sfx}"], p[f"bias_ih{sfx}"], p[f"bias_hh{sfx}"],
        reverse=bool(direction),
    )  # fmt: skip
    assert np.array_equal(rec.get("r"), cache.gates[:, :, :4])
    assert np.array_equal(rec.update_gate, cache.gates[:, :, 4:8])
    assert np.array_equal(rec.new_state, cache.gates[:, :, 8:])
    assert np.array_equal(rec.hidden, y)
    with pytest.raises(ValueError, match="quantity: expected one of r, z, n, h.*GRU"):
        rec.get("c")
    with pytest.raises(AttributeError, match="cell"):
        rec.cell  # noqa: B018


def test_slstm_trace_holds_its_gates_and_states_as_functional_returns_them():
    slstm = SLSTM(3, 4, num_heads=2, forget_gate="exp", dtype=np.float64, rng=2)
    x = np.random.default_rng(3).standard_normal((5, 3, 3))
    lengths = np.array([5, 2, 4])
    with trace(slstm) as tr:
        slstm(x, lengths=lengths)
    rec = tr.get()
    assert rec.cell_type == "SLSTM" and [q.short for q in rec.quantities] == list("ifzocnmh")
    p = slstm.params
    bias = p["bias_l0"].transpose(1, 0, 2).reshape(-1)
    y, final, cache = functional.slstm_forward(
        x, p["weight_ih_l0"], p["recurrent_kernel_l0"], bias, None, lengths, False, "exp"
    )
    expected = {
        "i": np.minimum(cache.gates[:, :, :4], 1),
        "f": np.minimum(cache.gates[:, :, 4:8], 1),
        "z": cache.gates[:, :, 8:12],
        "o": cache.gates[:, :, 12:],
        "c": cache.c_out,
        "n": cache.n_out,
        "m": cache.m_out,
        "h": cache.h_out,
    }
    for k, want in expected.items():
        assert np.array_equal(rec.get(k), want), k
    np.testing.assert_array_equal(rec.mask, np.arange(5)[:, None] < lengths)
    assert np.array_equal(rec.hidden * rec.mask[:, :, None], y)
    assert np.all((rec.input_gate >= 0) & (rec.input_gate <= 1))
    assert np.array_equal(rec.stabilizer, cache.m_out) and np.array_equal(rec.cell, cache.c_out)


def test_trace_of_a_model_with_several_cells_and_joined_calls():
    lstm, gru = LSTM(3, 4, rng=0), GRU(3, 5, rng=1)
    x = np.random.default_rng(0).standard_normal((4, 2, 3)).astype(np.float32)
    with trace(gru) as tr:
        _, h = gru(x[:2])
        gru(x[2:], h)
    joined = tr.joined()
    assert joined.cell_type == "GRU" and joined.reset_gate.shape == (4, 2, 5)
    assert np.array_equal(joined.get("h")[:2], tr.get(call=0).hidden)
    assert np.array_equal(joined.window(3).get("n"), joined.get("n")[:3])
    with trace(lstm) as tr_lstm:
        lstm(x)
    with pytest.raises(AttributeError):
        tr_lstm.get().reset_gate  # noqa: B018


def test_saturation_and_cell_search_use_the_cells_own_gates():
    gru = GRU(2, 3, dtype=np.float64, rng=4)
    slstm = SLSTM(2, 4, num_heads=2, dtype=np.float64, rng=5)
    x = np.random.default_rng(6).standard_normal((30, 1, 2)) * 3
    with trace(gru) as tr:
        gru(x)
    saturation = gate_saturation(tr)
    assert [s.gate for s in saturation] == ["reset", "update"]
    reset = tr.get().reset_gate[:, 0, :]
    np.testing.assert_array_equal(saturation[0].low, (reset < 0.1).mean(axis=0))
    np.testing.assert_array_equal(saturation[0].high, (reset > 0.9).mean(axis=0))
    feature = x[:, 0, 0]
    best = cell_search(tr, feature, top=1)[0]
    assert best.quantity == "h"  # a GRU's memory is its hidden state
    r = np.corrcoef(tr.get().hidden[:, 0, best.cell], feature)[0, 1]
    assert best.correlation == pytest.approx(r, abs=1e-9)
    with trace(slstm) as tr_s:
        slstm(x)
    assert [s.gate for s in gate_saturation(tr_s)] == ["input", "forget", "output"]
    assert cell_search(tr_s, feature, top=1)[0].quantity == "c"


def test_heatmap_labels_panels_by_the_cells_gate_names():
    pytest.importorskip("matplotlib")
    from kioku.inspect import plots

    gru = GRU(2, 3, rng=0)
    with trace(gru) as tr:
        gru(np.ones((4, 1, 2), np.float32))
    fig = plots.gate_heatmap(tr.get(), list("abcd"))
    labels = [ax.get_ylabel().split("\n")[0] for ax in fig.axes if ax.get_ylabel()]
    assert labels == ["reset gate", "update gate", "new state"]
    with pytest.raises(ValueError, match="quantity"):
        plots.gate_heatmap(tr.get(), list("abcd"), quantities="ifgo")


def _loss_from_step(layer, x, start, state, dy_last):
    """sum(dy_last * y_T) of ``layer`` run over ``x[start:]`` from ``state``."""
    y, _ = layer(x[start:], state)
    return float(np.sum(dy_last * y[-1]))


def _slstm_step_from(cache, t, m):
    """The state leaving step ``t`` (forward, sigmoid forget gate) recomputed from the
    cached pre-activations with the stabiliser leaving it set to ``m``."""
    H = m.shape[-1]
    pre, gates = cache.pre[t], cache.gates[t]
    log_f = -np.log1p(np.exp(-pre[:, H : 2 * H]))
    input_gate = np.minimum(np.exp(pre[:, :H] - m), 1)
    forget_gate = np.minimum(np.exp(log_f + cache.m_state[t] - m), 1)
    c = forget_gate * cache.c_state[t] + input_gate * gates[:, 2 * H : 3 * H]
    n = forget_gate * cache.n_state[t] + input_gate
    return gates[:, 3 * H :] * c / n, c, n, m


@pytest.mark.parametrize("kind", ["gru", "slstm"])
def test_gradient_flow_matches_central_differences(kind):
    rng = np.random.default_rng(7)
    if kind == "gru":
        layer = GRU(2, 3, dtype=np.float64, rng=8)
    else:
        layer = SLSTM(2, 4, num_heads=2, dtype=np.float64, rng=8)
    x = rng.standard_normal((5, 1, 2))
    dy_last = rng.standard_normal((1, layer.hidden_size))
    records = gradient_flow(layer, x, dy_last)
    assert len(records) == 1
    rec = records[0]
    assert list(rec.states) == list(layer.state_names)
    with trace(layer) as tr:
        _, state_after_t = layer(x[:2])  # the state leaving step 1
    first_steps = layer.caches[0][0]
    states = list(state_after_t) if kind == "slstm" else [state_after_t]
    for k, (name, value) in enumerate(zip(layer.state_names, states)):
        value = value.copy()

        def loss(value=value, k=k, name=name):
            parts = [s.copy() for s in states]
            parts[k] = value
            if name == "m":  # m' sets step 1's own i' and f', so c, n and h follow it
                parts = [s[None] for s in _slstm_step_from(first_steps, 1, value[0])]
            elif name in ("c", "n"):  # the total gradient: h = o c / n follows c and n
                parts[0] = tr.get().output_gate[1] * parts[1] / parts[2]
            return _loss_from_step(layer, x, 2, tuple(parts) if kind == "slstm" else parts[0],
                                   dy_last)  # fmt: skip

        numeric = numeric_grad(loss, value)[0]
        assert rel_error(rec.states[name][1, 0], numeric) < 1e-6, name
    assert rec.dc is None if kind == "gru" else np.array_equal(rec.dc, rec.states["c"])
    with record_gradients(layer) as flow:
        y, _ = layer(x)
        layer.backward(np.ones_like(y))
    assert len(flow) == 1 and flow[0].dh.shape == (5, 1, layer.hidden_size)
