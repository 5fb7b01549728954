"""The GRU: backprop through time against central differences in float64 (relative
error <= 1e-6), parity with torch.nn.GRU / nn.GRUCell (torch==2.13.0) within float32 rounding
over the depth of the computation (tests/tolerance.py) on random configurations,
packed-sequence semantics, and errors that name the argument."""

from __future__ import annotations

import numpy as np
import pytest
from cases import check_case_gradients, check_stacked_dropout_gradients
from gradcheck import numeric_grad, rel_error
from tolerance import recurrent_depth

import kioku
from kioku import functional

TOL = 1e-6

GRAD_CONFIGS = [
    # layers, bidirectional, bias, lengths, state, merge, reset_after
    (1, False, True, False, False, "concat", True),
    (1, True, True, True, True, "concat", True),
    (2, False, False, False, True, "concat", True),
    (2, True, True, True, True, "sum", True),
    (3, True, True, False, False, "mean", True),
    (2, True, False, True, True, "mul", True),
    (1, False, True, False, True, "concat", False),
    (2, True, True, True, True, "concat", False),
    (2, True, False, False, True, "mul", False),
    (3, False, True, True, False, "concat", False),
]


pytestmark = pytest.mark.torch


@pytest.mark.parametrize("layers,bidir,bias,use_lengths,use_state,merge,reset_after", GRAD_CONFIGS)
def test_gru_gradients_match_central_differences(
    layers, bidir, bias, use_lengths, use_state, merge, reset_after
):
    check_case_gradients(
        kioku.nn.GRU, layers * 100 + bidir * 10 + reset_after, 4, use_lengths, use_state,
        tol=TOL, num_layers=layers, bias=bias, bidirectional=bidir, merge_mode=merge,
        reset_after=reset_after,
    )  # fmt: skip


def test_gru_gradients_with_dropout_between_layers():
    check_stacked_dropout_gradients(kioku.nn.GRU, tol=TOL)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_cell_gradients_over_a_loop_of_steps(reset_after):
    rng = np.random.default_rng(6)
    cell = kioku.nn.GRUCell(3, 4, reset_after=reset_after, dtype=np.float64, rng=rng)
    xs = rng.normal(size=(3, 2, 3))
    h0 = rng.normal(size=(2, 4))
    wh = rng.normal(size=(2, 4))

    def loss() -> float:
        h = h0
        for x in xs:
            h = cell(x, h)
        cell._stack.clear()
        return float((h * wh).sum())

    loss()
    cell.zero_grad()
    h = h0
    for x in xs:
        h = cell(x, h)
    dh, dxs = wh, []
    for _ in xs:
        dx, dh = cell.backward(dh)
        dxs.append(dx)
    for name, param in cell.params.items():
        assert rel_error(cell.grads[name], numeric_grad(loss, param)) <= TOL, name
    assert rel_error(np.stack(dxs[::-1]), numeric_grad(loss, xs)) <= TOL
    assert rel_error(dh, numeric_grad(loss, h0)) <= TOL


def test_functional_state_trace_is_the_gradient_of_the_states():
    rng = np.random.default_rng(8)
    T, B, I, H = 4, 2, 3, 3
    x = rng.normal(size=(T, B, I))
    w_ih, w_hh = rng.normal(size=(3 * H, I)), rng.normal(size=(3 * H, H))
    wy = rng.normal(size=(T, B, H))
    _, _, cache = functional.gru_forward(x, w_ih, w_hh)
    trace = np.empty((T, B, H))
    functional.gru_backward(wy, cache, dh_trace=trace)
    np.testing.assert_allclose(trace[-1], wy[-1])  # dL/dh_{T-1} is the last output's weight
    # one step back: h_{T-1} = n + z (h_{T-2} - n) reaches h_{T-2} through z directly too
    h_prev = cache.h_state[T - 1]
    for b in range(B):
        for j in range(H):
            bump = np.zeros((B, H))
            bump[b, j] = 1e-6
            up = functional.gru_forward(x[-1:], w_ih, w_hh, h0=h_prev + bump)[0]
            down = functional.gru_forward(x[-1:], w_ih, w_hh, h0=h_prev - bump)[0]
            numeric = ((up - down) * wy[-1:]).sum() / 2e-6 + wy[-2, b, j]
            assert abs(numeric - trace[-2, b, j]) < 1e-6


# -- parity with PyTorch ------------------------------------------------------------------
torch = pytest.importorskip("torch", reason="torch==2.13.0 is the parity reference (test extra)")
from torch_pairs import close as _close  # noqa: E402
from torch_pairs import load as _load  # noqa: E402
from torch_pairs import random_config, run_edge, run_pair  # noqa: E402


@pytest.mark.parametrize("seed", range(36))
def test_gru_matches_torch_on_random_configurations(seed):
    run_pair(random_config(seed), seed, kind="gru")


@pytest.mark.parametrize(
    "T,B,lengths", [(1, 3, None), (6, 1, None), (1, 1, None), (5, 3, "full"), (7, 2, "1,T")]
)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_gru_edge_cases_match_torch(T, B, lengths, bidirectional):
    run_edge("gru", T, B, lengths, bidirectional)


def test_unbatched_gru_matches_torch():
    torch.manual_seed(1)
    peer = torch.nn.GRU(4, 6, 2, bidirectional=True)
    ours = kioku.nn.GRU(4, 6, 2, bidirectional=True)
    _load(ours, peer)
    x = np.random.default_rng(1).normal(size=(7, 4)).astype(np.float32)
    h0 = np.random.default_rng(2).normal(size=(4, 6)).astype(np.float32)
    x_t = torch.tensor(x, requires_grad=True)
    h0_t = torch.tensor(h0, requires_grad=True)
    out_t, h_t = peer(x_t, h0_t)
    out, h = ours(x, h0)
    depth = recurrent_depth(7, 12, 6, layers=2, gates=3)
    _close("y", out, out_t, depth)
    _close("h_n", h, h_t, depth)
    out_t.sum().backward()
    dx, dh0 = ours.backward(np.ones_like(out))
    assert dh0.shape == (4, 6)
    _close("dx", dx, x_t.grad, depth)
    _close("dh0", dh0, h0_t.grad, depth)


def test_gru_cell_matches_torch_grucell():
    torch.manual_seed(2)
    peer, ours = torch.nn.GRUCell(5, 7), kioku.nn.GRUCell(5, 7)
    _load(ours, peer)
    r = np.random.default_rng(2)
    xs = r.normal(size=(4, 3, 5)).astype(np.float32)
    h0 = r.normal(size=(3, 7)).astype(np.float32)
    xs_t, h_t = torch.tensor(xs, requires_grad=True), torch.tensor(h0, requires_grad=True)
    state_t, state = h_t, h0
    depth = recurrent_depth(4, 5, 7, batch=3, gates=3)
    for k in range(4):
        state_t = peer(xs_t[k], state_t)
        state = ours(xs[k], state)
        _close(f"h after step {k}", state, state_t, depth)
    dh_out = r.normal(size=(3, 7)).astype(np.float32)
    (state_t * torch.tensor(dh_out)).sum().backward()
    dh, dxs = dh_out, []
    for _ in range(4):
        dx, dh = ours.backward(dh)
        dxs.append(dx)
    _close("dx", np.stack(dxs[::-1]), xs_t.grad, depth)
    _close("dh0", dh, h_t.grad, depth)
    for name, p in peer.named_parameters():
        _close(name, ours.grads[name], p.grad, depth)
    unbatched = ours(xs[0, 0])
    assert unbatched.shape == (7,)
    _close("unbatched", unbatched, peer(torch.tensor(xs[0, 0])), depth)


def test_state_dict_uses_torch_names():
    peer = torch.nn.GRU(3, 4, 2, bidirectional=True)
    ours = kioku.nn.GRU(3, 4, 2, bidirectional=True)
    assert sorted(ours.state_dict()) == sorted(peer.state_dict())
    for name, value in peer.state_dict().items():
        assert ours.state_dict()[name].shape == tuple(value.shape)


# -- behaviour and errors -----------------------------------------------------------------
def test_lengths_give_packed_sequence_semantics():
    gru = kioku.nn.GRU(3, 4, bidirectional=True, dtype=np.float64, rng=0)
    x = np.random.default_rng(0).normal(size=(6, 2, 3))
    y, h_n = gru(x, lengths=[3, 6])
    alone, h_alone = gru(x[:3, :1])  # the short sequence run on its own
    assert np.all(y[3:, 0] == 0)
    np.testing.assert_allclose(y[:3, :1], alone, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_n[:, :1], h_alone, rtol=0, atol=1e-12)


def test_dropout_is_off_in_eval_mode_and_changes_training_outputs():
    gru = kioku.nn.GRU(3, 4, 2, dropout=0.5, rng=0)
    x = np.random.default_rng(0).normal(size=(5, 2, 3)).astype(np.float32)
    train_y = gru(x)[0]
    gru.eval()
    eval_a, eval_b = gru(x)[0], gru(x)[0]
    assert np.array_equal(eval_a, eval_b)
    assert not np.allclose(train_y, eval_a)


@pytest.mark.parametrize(
    "call,error,words",
    [
        (lambda g: g(np.zeros((5, 2, 4), np.float32)), ValueError, ["x", "3 features"]),
        (lambda g: g(np.zeros((5,), np.float32)), ValueError, ["x", "rank 3"]),
        (lambda g: g(np.zeros((5, 2, 3), np.float64)), TypeError, ["x", "float32"]),
        (lambda g: g(np.zeros((5, 2, 3), np.float32), np.zeros((1, 2, 4), np.float32)),
         ValueError, ["state[h0]", "(2, 2, 4)"]),
        (lambda g: g(np.zeros((5, 2, 3), np.float32), lengths=[6, 1]), ValueError,
         ["lengths", "1..5"]),
        (lambda g: g(np.zeros((5, 2, 3), np.float32), lengths=[1]), ValueError,
         ["lengths", "(2,)"]),
        (lambda g: g.backward(np.zeros((5, 2, 8), np.float32)), RuntimeError, ["forward"]),
        (lambda g: g.load_state_dict({"weight_ih_l0": np.zeros((3, 3))}, strict=False),
         ValueError, ["weight_ih_l0", "(12, 3)"]),
    ],
)  # fmt: skip
def test_bad_input_names_the_argument_and_changes_nothing(call, error, words):
    gru = kioku.nn.GRU(3, 4, 2, rng=0)
    before = gru.state_dict()
    with pytest.raises(error) as info:
        call(gru)
    for word in words:
        assert word in str(info.value)
    for name, value in gru.state_dict().items():
        assert np.array_equal(value, before[name])


def test_constructor_errors():
    with pytest.raises(ValueError, match="merge_mode"):
        kioku.nn.GRU(3, 4, merge_mode="max")
    with pytest.raises(TypeError, match="reset_after"):
        kioku.nn.GRU(3, 4, reset_after="yes")
    with pytest.raises(ValueError, match="hidden_size"):
        kioku.nn.GRU(3, 0)
    with pytest.raises(ValueError, match="dropout"):
        kioku.nn.GRU(3, 4, dropout=1.0)
    cell = kioku.nn.GRUCell(3, 4)
    with pytest.raises(ValueError, match="x: expected shape"):
        cell(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"h: expected shape \(2, 4\)"):
        cell(np.zeros((2, 3), np.float32), np.zeros((2, 5), np.float32))
    with pytest.raises(RuntimeError, match="no forward"):
        cell.backward(np.zeros((2, 4), np.float32))
