"""kioku.nn.SLSTM and kioku.functional.slstm: backprop through time against central
differences in float64 (relative error <= 1e-6 for every parameter, the input and the
four initial states), the stabilised recurrence against the paper's unstabilised
equations, packed-sequence and stateful semantics, and argument checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from cases import check_case_gradients, check_stacked_dropout_gradients
from gradcheck import numeric_grad, rel_error
from tolerance import assert_close, recurrent_depth

import kioku
from kioku.functional import slstm_backward, slstm_forward

TOL = 1e-6

CONFIGS = [
    # heads, hidden, forget gate, layers, bidirectional, bias, lengths, state, merge
    (1, 3, "sigmoid", 1, False, True, False, False, "concat"),
    (2, 4, "sigmoid", 1, True, True, True, True, "concat"),
    (4, 4, "exp", 1, False, True, True, True, "concat"),
    (2, 6, "exp", 2, True, False, False, True, "concat"),
    (1, 2, "sigmoid", 3, False, True, True, False, "concat"),
    (2, 4, "sigmoid", 2, True, True, True, True, "sum"),
    (4, 8, "exp", 2, True, True, False, False, "mean"),
    (2, 2, "sigmoid", 2, True, True, True, True, "mul"),
    (1, 4, "exp", 2, False, False, True, True, "concat"),
]


def _randomise(slstm: kioku.nn.SLSTM, rng: np.random.Generator) -> None:
    """Weights at a moderate scale and random biases, so that both branches of the
    stabiliser's max and clipped and unclipped gates all occur."""
    for name, value in slstm.params.items():
        scale = 1.0 if name.startswith("bias") else 1 / np.sqrt(value.shape[1])
        value[...] = rng.normal(scale=scale, size=value.shape)


def _state(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """A reachable state: n > 0 and |c| <= n."""
    n0 = rng.uniform(0.3, 3.0, size=shape)
    return rng.normal(size=shape), n0 * rng.uniform(-1, 1, shape), n0, rng.normal(size=shape)


def _layer_state(layer, rng: np.random.Generator, batch: int) -> tuple[np.ndarray, ...]:
    """:func:`_state` for every layer and direction of ``layer``."""
    return _state(rng, (layer.num_layers * layer.num_directions, batch, layer.hidden_size))


def _functional_case(
    rng: np.random.Generator, T: int, B: int, I: int, K: int, D: int, kernel_scale: float
) -> tuple[np.ndarray, ...]:
    """Random arguments of ``slstm_forward`` with K heads of D cells each (H = K*D):
    ``weight_ih (4H, I)``, ``recurrent_kernel (K, D, 4, D)``, ``bias (4H,)`` and
    ``x (T, B, I)``."""
    H = K * D
    weight_ih = rng.normal(size=(4 * H, I))
    kernel = rng.normal(scale=kernel_scale, size=(K, D, 4, D))
    return weight_ih, kernel, rng.normal(size=4 * H), rng.normal(size=(T, B, I))


@pytest.mark.slow
@pytest.mark.parametrize(
    "heads,hidden,forget,layers,bidir,bias,use_lengths,use_state,merge", CONFIGS
)
def test_slstm_gradients_match_central_differences(
    heads, hidden, forget, layers, bidir, bias, use_lengths, use_state, merge
):
    check_case_gradients(
        kioku.nn.SLSTM, heads * 100 + layers * 10 + hidden, hidden, use_lengths, use_state,
        _randomise, _layer_state, TOL, num_heads=heads, num_layers=layers, bias=bias,
        bidirectional=bidir, merge_mode=merge, forget_gate=forget,
    )  # fmt: skip


def test_gradients_from_a_zero_normaliser_with_a_given_cell():
    """n0 = 0 selects m' = ĩ at the first step, where f' = min(exp(log f + m - ĩ), 1) may
    be clipped; c0 != 0 makes the clip matter. (n0 itself sits on that switch: no check.)"""
    rng = np.random.default_rng(11)
    T, B, I, K, D = 4, 6, 2, 2, 2
    H = K * D
    weight_ih, kernel, bias, x = _functional_case(rng, T, B, I, K, D, kernel_scale=0.7)
    h0, c0, m0 = rng.normal(size=(B, H)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    n0 = np.zeros((B, H))
    _, _, cache = slstm_forward(x, weight_ih, kernel, bias, (h0, c0, n0, m0))
    first_forget = cache.gates[0, :, H : 2 * H]
    assert (first_forget > 1).any() and (first_forget < 1).any()  # both sides of the clip
    wy = rng.normal(size=(T, B, H))

    def loss() -> float:
        y, _, _ = slstm_forward(x, weight_ih, kernel, bias, (h0, c0, n0, m0))
        return float((y * wy).sum())

    grads = slstm_backward(wy, cache)
    for name, analytic, array in (
        ("x", grads.dx, x),
        ("weight_ih", grads.dweight_ih, weight_ih),
        ("recurrent_kernel", grads.drecurrent_kernel, kernel),
        ("bias", grads.dbias, bias),
        ("h0", grads.dstate0[0], h0),
        ("c0", grads.dstate0[1], c0),
        ("m0", grads.dstate0[3], m0),
    ):
        err = rel_error(analytic, numeric_grad(loss, array))
        assert err <= TOL, f"{name}: relative error {err:.2e}"


@pytest.mark.slow
def test_slstm_gradients_with_dropout_between_layers():
    check_stacked_dropout_gradients(kioku.nn.SLSTM, _randomise, TOL, num_heads=2)


@pytest.mark.parametrize("forget", ["sigmoid", "exp"])
def test_stabilised_recurrence_equals_the_unstabilised_equations(forget):
    """The paper's equations without m: i = exp(ĩ), f = sigmoid(f̃) or exp(f̃), c̄ = f c̄ + i z,
    n̄ = f n̄ + i, h = o c̄ / n̄, from c̄0 = c0 e^m0, n̄0 = n0 e^m0; and c = c̄ e^-m, n = n̄ e^-m."""
    rng = np.random.default_rng(2)
    T, B, I, K, D = 6, 3, 2, 2, 3
    H = K * D
    weight_ih, kernel, bias, x = _functional_case(rng, T, B, I, K, D, kernel_scale=0.5)
    for state in (None, _state(rng, (B, H))):
        y, (h_n, c_n, n_n, m_n), _ = slstm_forward(
            x, weight_ih, kernel, bias, state, forget_gate=forget
        )
        h, c, n, m = (np.zeros((B, H)),) * 4 if state is None else state
        c_bar, n_bar = c * np.exp(m), n * np.exp(m)
        dense = np.zeros((H, 4 * H))  # the block-diagonal recurrent matrix, written out
        for k in range(K):
            for g in range(4):
                rows, cols = slice(k * D, (k + 1) * D), slice(g * H + k * D, g * H + (k + 1) * D)
                dense[rows, cols] = kernel[k, :, g, :]
        for t in range(T):
            a = x[t] @ weight_ih.T + bias + h @ dense
            i_raw, f_raw, z_raw, o_raw = np.split(a, 4, axis=1)
            f = np.exp(f_raw) if forget == "exp" else 1 / (1 + np.exp(-f_raw))
            c_bar = f * c_bar + np.exp(i_raw) * np.tanh(z_raw)
            n_bar = f * n_bar + np.exp(i_raw)
            h = c_bar / n_bar / (1 + np.exp(-o_raw))
            np.testing.assert_allclose(y[t], h, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(c_n, c_bar * np.exp(-m_n), rtol=1e-10)
        np.testing.assert_allclose(n_n, n_bar * np.exp(-m_n), rtol=1e-10)


def test_first_step_from_zero_sets_the_stabiliser_to_the_input_preactivation():
    rng = np.random.default_rng(4)
    weight_ih, kernel = rng.normal(size=(16, 3)), rng.normal(size=(2, 2, 4, 2))
    bias = rng.normal(size=16)
    x = rng.normal(size=(3, 5, 3))
    _, _, cache = slstm_forward(x, weight_ih, kernel, bias)
    np.testing.assert_array_equal(cache.m_out[0], cache.pre[0, :, :4])
    np.testing.assert_array_equal(cache.input_gate[0], 1)
    log_f_m = -np.logaddexp(0, -cache.pre[1:, :, 4:8]) + cache.m_out[:-1]
    np.testing.assert_array_equal(cache.m_out[1:], np.maximum(cache.pre[1:, :, :4], log_f_m))
    assert (cache.input_gate <= 1).all() and (cache.forget_gate <= 1).all()


def test_packed_batch_equals_each_sequence_alone():
    rng = np.random.default_rng(6)
    slstm = kioku.nn.SLSTM(3, 4, num_heads=2, num_layers=2, bidirectional=True, rng=0)
    T, lengths = 7, np.array([7, 3, 1, 5])
    x = rng.normal(size=(T, 4, 3)).astype(np.float32)
    x[T - 1, 1:3] = 1e30  # past a length, never read
    y, finals = slstm(x, lengths=lengths)
    dy = rng.normal(size=y.shape).astype(np.float32)
    slstm.zero_grad()
    dx, _ = slstm.backward(dy)
    grads = {k: v.copy() for k, v in slstm.grads.items()}
    slstm.zero_grad()
    depth = recurrent_depth(T, 8, 4, layers=2, batch=4)
    for b, length in enumerate(lengths):
        y_b, finals_b = slstm(x[:length, b : b + 1])
        assert_close("y", y[:length, b : b + 1], y_b, depth)
        assert not y[length:, b].any()
        for final, final_b in zip(finals, finals_b):
            assert_close("final state", final[:, b : b + 1], final_b, depth)
        dx_b, _ = slstm.backward(np.ascontiguousarray(dy[:length, b : b + 1]))
        assert_close("dx", dx[:length, b : b + 1], dx_b, depth)
        assert not dx[length:, b].any()
    for name, value in slstm.grads.items():
        assert_close(name, grads[name], value, depth)


def test_carried_state_continues_the_sequence():
    rng = np.random.default_rng(7)
    slstm = kioku.nn.SLSTM(2, 6, num_heads=3, num_layers=2, rng=1)
    x = rng.normal(size=(8, 3, 2)).astype(np.float32)
    y, finals = slstm(x)
    y_a, state = slstm(x[:5])
    y_b, finals_b = slstm(x[5:], state)
    depth = recurrent_depth(8, 6, 6, layers=2, batch=3)
    assert_close("y in two parts", np.concatenate([y_a, y_b]), y, depth)
    for final, final_b in zip(finals, finals_b):
        assert_close("final state", final_b, final, depth)


def test_batch_first_and_unbatched_layouts():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(5, 2, 3)).astype(np.float32)
    time_major = kioku.nn.SLSTM(3, 4, num_heads=2, rng=0)
    batch_first = kioku.nn.SLSTM(3, 4, num_heads=2, batch_first=True, rng=0)
    y, finals = time_major(x)
    y_bf, finals_bf = batch_first(np.ascontiguousarray(x.transpose(1, 0, 2)))
    np.testing.assert_array_equal(y_bf, y.transpose(1, 0, 2))
    y_one, finals_one = time_major(x[:, 0])
    np.testing.assert_array_equal(y_one, y[:, 0])
    for final, final_one in zip(finals, finals_one):
        np.testing.assert_array_equal(final_one, final[:, 0])
    assert [f.shape for f in finals_bf] == [(1, 2, 4)] * 4


def test_state_dict_round_trip_and_parameter_layout():
    slstm = kioku.nn.SLSTM(3, 8, num_heads=4, num_layers=2, bidirectional=True, rng=0)
    shapes = {k: v.shape for k, v in slstm.params.items()}
    assert shapes["weight_ih_l0"] == (32, 3)
    assert shapes["weight_ih_l1_reverse"] == (32, 16)
    assert shapes["recurrent_kernel_l1"] == (4, 2, 4, 2)
    assert shapes["bias_l0_reverse"] == (4, 4, 2)
    np.testing.assert_array_equal(slstm.params["bias_l0"][:, 1], [[3.0, 6.0]] * 4)
    copy = kioku.nn.SLSTM(3, 8, num_heads=4, num_layers=2, bidirectional=True, rng=1)
    copy.load_state_dict(slstm.state_dict())
    x = np.random.default_rng(9).normal(size=(4, 2, 3)).astype(np.float32)
    for a, b in zip(slstm(x)[1], copy(x)[1]):
        np.testing.assert_array_equal(a, b)
    assert kioku.nn.SLSTM(**copy.config()).config() == copy.config()


def test_huge_inputs_stay_finite_and_quiet():
    slstm = kioku.nn.SLSTM(2, 4, num_heads=2, bidirectional=True, forget_gate="exp", rng=0)
    x = np.random.default_rng(10).normal(scale=1e4, size=(6, 3, 2)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, finals = slstm(x, lengths=[6, 2, 4])
        dx, dstate = slstm.backward(np.ones_like(y))
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    assert all(np.isfinite(f).all() for f in finals)


@pytest.mark.parametrize(
    "kwargs,error,words",
    [
        ({"num_heads": 3}, ValueError, ["num_heads", "divisor", "4", "3"]),
        ({"num_heads": 0}, ValueError, ["num_heads", ">= 1", "0"]),
        ({"num_heads": 2.0}, TypeError, ["num_heads", "integer", "float"]),
        ({"forget_gate": "tanh"}, ValueError, ["forget_gate", "sigmoid", "exp", "'tanh'"]),
        ({"merge_mode": "max"}, ValueError, ["merge_mode", "concat", "'max'"]),
    ],
)
def test_bad_constructor_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        kioku.nn.SLSTM(3, 4, **kwargs)
    for word in words:
        assert word in str(info.value)


def test_bad_state_names_the_component_and_changes_nothing():
    slstm = kioku.nn.SLSTM(3, 4, num_heads=2, rng=0)
    x = np.zeros((5, 2, 3), np.float32)
    good = tuple(np.zeros((1, 2, 4), np.float32) for _ in range(4))
    slstm(x, good)
    before = {k: v.copy() for k, v in slstm.params.items()}
    caches = slstm.caches
    with pytest.raises(ValueError) as info:
        slstm(x, good[:3] + (np.zeros((1, 2, 5), np.float32),))
    assert all(w in str(info.value) for w in ["state[m0]", "(1, 2, 4)", "(1, 2, 5)"])
    with pytest.raises(ValueError) as info:
        slstm(x, good[:2])
    assert all(w in str(info.value) for w in ["state", "(h0, c0, n0, m0)"])
    with pytest.raises(TypeError) as info:
        slstm(x, good[:3] + (np.zeros((1, 2, 4)),))
    assert all(w in str(info.value) for w in ["state[m0]", "float32", "float64"])
    assert slstm.caches is caches
    for name, value in slstm.params.items():
        np.testing.assert_array_equal(value, before[name])


def test_functional_rejects_an_unknown_forget_gate():
    with pytest.raises(ValueError, match="forget_gate"):
        slstm_forward(
            np.zeros((1, 1, 1)),
            np.zeros((4, 1)),
            np.zeros((1, 1, 4, 1)),
            None,
            None,
            forget_gate="relu",
        )
