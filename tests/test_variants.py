"""LSTM variants: peepholes, coupled input-forget gate, clipping, ONNX activations, layer
norm, zoneout, recurrent dropout. Float64 central-difference gradient checks of the
functional backward and of ``kioku.nn.LSTM``, and the behaviour of the random variants."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from cases import assert_all_close, check_gradients, parameter_pairs, weighted_loss
from gradcheck import numeric_grad, rel_error

from kioku.functional import lstm_backward, lstm_forward
from kioku.functional.lstm_variants import LayerNormParams, VariantHooks
from kioku.functional.onnx_activations import (
    ACTIVATION_NAMES,
    activation,
    onnx_activation_attributes,
    parse_onnx_activations,
)
from kioku.nn import LSTMVariant as LSTM

T, B, I, H, P = 4, 3, 5, 4, 3
LENGTHS = np.array([4, 2, 3])


def _setup(rng, proj=False, peephole=False, layer_norm=False, zoneout=None, dropout=False):
    """Weights, inputs and variant keyword arrays of one direction (float64)."""
    p = P if proj else H
    arrays = {
        "x": rng.standard_normal((T, B, I)),
        "weight_ih": rng.standard_normal((4 * H, I)) * 0.5,
        "weight_hh": rng.standard_normal((4 * H, p)) * 0.5,
        "bias": rng.standard_normal(4 * H) * 0.3,
        "h0": rng.standard_normal((B, p)),
        "c0": rng.standard_normal((B, H)),
    }
    if proj:
        arrays["weight_hr"] = rng.standard_normal((p, H)) * 0.5
    if peephole:
        arrays["weight_peephole"] = rng.standard_normal(3 * H)
    if layer_norm:
        for field in LayerNormParams._fields:
            size = H if field.endswith("_c") else 4 * H
            base = 1.0 if field.startswith("gamma") else 0.0
            arrays["ln_" + field] = base + 0.5 * rng.standard_normal(size)
    fixed = {}
    if zoneout == "train":
        fixed["zoneout_h"] = (rng.random((T, B, p)) < 0.3).astype(np.float64)
        fixed["zoneout_c"] = (rng.random((T, B, H)) < 0.3).astype(np.float64)
    elif zoneout == "eval":
        fixed["zoneout_h"], fixed["zoneout_c"] = 0.2, 0.4
    if dropout:
        fixed["recurrent_mask"] = (rng.random((B, p)) >= 0.3) / 0.7
    return arrays, fixed


PLAIN_ARGS = ("weight_ih", "weight_hh", "bias", "h0", "c0", "lengths", "reverse", "weight_hr")


def lstm_variant_forward(*args, layer_norm_params=None, **kwargs):
    """The plain forward with the variants as hooks."""
    plain = {k: kwargs.pop(k) for k in PLAIN_ARGS if k in kwargs}
    hooks = VariantHooks(layer_norm=layer_norm_params, **kwargs)
    return lstm_forward(*args, **plain, hooks=hooks)


def _run(arrays, fixed, **kwargs):
    args = {k: v for k, v in arrays.items() if not k.startswith("ln_")}
    norms = None
    if "ln_gamma_ih" in arrays:
        norms = LayerNormParams(*(arrays["ln_" + f] for f in LayerNormParams._fields))
    x = args.pop("x")
    return lstm_variant_forward(x, layer_norm_params=norms, **args, **fixed, **kwargs)


CASES = {
    "peephole": dict(setup=dict(peephole=True)),
    "peephole reverse lengths": dict(
        setup=dict(peephole=True), run=dict(reverse=True, lengths=LENGTHS)
    ),
    "input_forget": dict(run=dict(input_forget=True)),
    "input_forget peephole": dict(setup=dict(peephole=True), run=dict(input_forget=True)),
    "clip": dict(run=dict(clip=0.7)),
    "layer_norm": dict(setup=dict(layer_norm=True)),
    "layer_norm projection lengths": dict(
        setup=dict(layer_norm=True, proj=True), run=dict(lengths=np.array([2, 4, 1]))
    ),
    "zoneout train": dict(setup=dict(zoneout="train")),
    "zoneout eval reverse lengths": dict(
        setup=dict(zoneout="eval"), run=dict(reverse=True, lengths=np.array([2, 4, 1]))
    ),
    "recurrent dropout": dict(setup=dict(dropout=True)),
    "recurrent dropout projection": dict(setup=dict(dropout=True, proj=True)),
    "everything": dict(
        setup=dict(peephole=True, layer_norm=True, zoneout="train", dropout=True, proj=True),
        run=dict(clip=1.5, reverse=True, lengths=np.array([2, 4, 3])),
    ),
}
for _name in ACTIVATION_NAMES:
    CASES[f"activation {_name}"] = dict(
        run=dict(
            activations=(
                activation("HardSigmoid", 0.3, 0.4),
                activation(_name, 0.7, 0.4),
                activation(_name, 0.6, 0.9),
            )
        )
    )


@pytest.mark.parametrize("case", list(CASES))
def test_variant_gradients_match_central_differences(case):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    spec = CASES[case]
    arrays, fixed = _setup(rng, **spec.get("setup", {}))
    kwargs = spec.get("run", {})
    p = arrays["h0"].shape[1]
    dy, dh_n, dc_n = (rng.standard_normal(s) for s in ((T, B, p), (B, p), (B, H)))

    def loss() -> float:
        y, h_n, c_n, _ = _run(arrays, fixed, **kwargs)
        return float((y * dy).sum() + (h_n * dh_n).sum() + (c_n * dc_n).sum())

    _, _, _, cache = _run(arrays, fixed, **kwargs)
    grads = lstm_backward(dy, cache, dh_n, dc_n)
    analytic = {
        "x": grads.dx,
        "weight_ih": grads.dweight_ih,
        "weight_hh": grads.dweight_hh,
        "bias": grads.dbias,
        "h0": grads.dh0,
        "c0": grads.dc0,
        "weight_hr": grads.dweight_hr,
        "weight_peephole": grads.dweight_peephole,
    }
    if grads.dlayer_norm is not None:
        analytic.update(zip(("ln_" + f for f in LayerNormParams._fields), grads.dlayer_norm))
    for name, array in arrays.items():
        err = rel_error(analytic[name], numeric_grad(loss, array))
        assert err <= 1e-6, f"{case}: d{name} relative error {err:.2e}"


@pytest.mark.parametrize("reverse", [False, True])
def test_no_variant_equals_plain_lstm(rng, reverse):
    arrays, _ = _setup(rng, proj=True)
    plain = lstm_forward(
        arrays["x"], arrays["weight_ih"], arrays["weight_hh"], arrays["bias"], arrays["h0"],
        arrays["c0"], LENGTHS, reverse, arrays["weight_hr"],
    )  # fmt: skip
    variant = _run(arrays, {}, lengths=LENGTHS, reverse=reverse)
    assert_all_close(("y", "h_n", "c_n"), plain[:3], variant[:3], 1e-12)
    dy = rng.standard_normal(plain[0].shape)
    g_plain = lstm_backward(dy, plain[3])
    g_variant = lstm_backward(dy, variant[3])
    assert_all_close(g_plain._fields, g_plain, g_variant, 1e-12)


def test_peephole_semantics_one_step(rng):
    """One step by hand: i and f read c_{t-1}, o reads c_t, with the coupled gate."""
    arrays, _ = _setup(rng, peephole=True)
    x, w, r, b = arrays["x"][:1], arrays["weight_ih"], arrays["weight_hh"], arrays["bias"]
    h0, c0, peep = arrays["h0"], arrays["c0"], arrays["weight_peephole"]
    y, h1, c1, _ = lstm_variant_forward(
        x, w, r, b, h0, c0, weight_peephole=peep, input_forget=True, clip=0.5
    )
    a = x[0] @ w.T + h0 @ r.T + b
    sig = lambda v: 1 / (1 + np.exp(-np.clip(v, -0.5, 0.5)))  # noqa: E731
    i = sig(a[:, :H] + peep[:H] * c0)
    c_new = (1 - i) * c0 + i * np.tanh(np.clip(a[:, 2 * H : 3 * H], -0.5, 0.5))
    o = sig(a[:, 3 * H :] + peep[2 * H :] * c_new)
    np.testing.assert_allclose(c1, c_new, atol=1e-12)
    np.testing.assert_allclose(h1, o * np.tanh(c_new), atol=1e-12)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_activation_derivative(rng, name):
    act = activation(name, 0.7, 0.4)
    x = rng.standard_normal(50) * 2
    x = x[np.abs(x - 0.7) > 1e-3]  # keep off ThresholdedRelu's kink
    y = act(x, np.empty_like(x))
    numeric = (act(x + 1e-6, np.empty_like(x)) - act(x - 1e-6, np.empty_like(x))) / 2e-6
    np.testing.assert_allclose(act.grad(x, y, np.empty_like(x)), numeric, atol=1e-7)


def test_onnx_activation_attributes_round_trip():
    acts = parse_onnx_activations(["leakyrelu", "Tanh", "ScaledTanh"], [0.2, 1.5], [0.5])
    assert acts == [
        activation("LeakyRelu", 0.2),
        activation("Tanh"),
        activation("ScaledTanh", 1.5, 0.5),
    ]
    assert parse_onnx_activations(*onnx_activation_attributes(acts)) == acts
    assert parse_onnx_activations(["HardSigmoid"]) == [activation("HardSigmoid", 0.2, 0.5)]
    with pytest.raises(ValueError, match="activation: expected one of"):
        parse_onnx_activations(["Gelu"])


# -- the module ------------------------------------------------------------------------
MODULE_VARIANTS = dict(
    peephole=True,
    input_forget=True,
    clip=2.0,
    layer_norm=True,
    activations=["Sigmoid", "Tanh", ("ScaledTanh", 1.1, 0.9)],
    zoneout=(0.2, 0.3),
    recurrent_dropout=0.25,
)


@pytest.mark.slow
def test_module_gradients_in_eval_mode(rng):
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2, dtype=np.float64, rng=0,
                **MODULE_VARIANTS).eval()  # fmt: skip
    for _, param, _ in lstm.named_parameters():
        param += 0.1 * rng.standard_normal(param.shape)
    x = rng.standard_normal((5, 2, 3))
    lengths = np.array([5, 3])
    y, (h_n, c_n) = lstm(x, lengths=lengths)
    dy, dh, dc = (rng.standard_normal(a.shape) for a in (y, h_n, c_n))
    loss = weighted_loss(lambda: lstm(x, lengths=lengths), (dy, dh, dc))

    lstm(x, lengths=lengths)
    lstm.zero_grad()
    dx, _ = lstm.backward(dy, (dh, dc))
    # the GEMM weights are checked through the functional tests; time
    params = parameter_pairs(lstm, skip=lambda name: name.startswith(("weight_ih", "weight_hh")))
    check_gradients(loss, {"x": (x, dx), **params}, 1e-6)


def test_module_config_round_trip_and_names():
    lstm = LSTM(3, 4, bidirectional=True, rng=0, **MODULE_VARIANTS)
    config = lstm.config()
    assert LSTM(**config).config() == config
    names = set(lstm.params)
    for sfx in ("_l0", "_l0_reverse"):
        assert f"weight_peephole{sfx}" in names
        for part in ("ih", "hh", "c"):
            assert {f"layernorm_gamma_{part}{sfx}", f"layernorm_beta_{part}{sfx}"} <= names
    assert lstm.params["layernorm_gamma_c_l0"].shape == (4,)
    twin = LSTM(**config)
    twin.load_state_dict(lstm.state_dict())
    x = np.random.default_rng(1).standard_normal((4, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(lstm.eval()(x)[0], twin.eval()(x)[0])


def test_module_plain_parameters_unchanged_by_variants():
    """Variant parameters are drawn after the plain ones: same seed, same plain weights."""
    plain, variant = LSTM(3, 4, num_layers=2, rng=7), LSTM(3, 4, num_layers=2, rng=7, peephole=True)
    for name, value in plain.params.items():
        np.testing.assert_array_equal(value, variant.params[name])


def test_zoneout_keeps_previous_units_at_its_rate(rng):
    lstm = LSTM(6, 200, zoneout=0.3, dtype=np.float64, rng=0)
    x = rng.standard_normal((30, 8, 6))
    y, _ = lstm(x)
    kept_h = np.mean(y[1:] == y[:-1])
    cache = lstm.caches[0][0]
    kept_c = np.mean(cache.c_state[2:] == cache.c_state[1:-1])
    assert abs(kept_h - 0.3) < 0.02 and abs(kept_c - 0.3) < 0.02
    lstm.eval()
    y_eval_1, _ = lstm(x)
    y_eval_2, _ = lstm(x)
    np.testing.assert_array_equal(y_eval_1, y_eval_2)  # the expectation, no randomness


def test_recurrent_dropout_one_mask_per_sequence(rng):
    lstm = LSTM(3, 50, recurrent_dropout=0.4, dtype=np.float64, rng=0)
    lstm(rng.standard_normal((6, 4, 3)))
    cache = lstm.caches[0][0]
    mask = cache.hooks.recurrent_mask
    assert mask.shape == (4, 50)
    assert set(np.unique(mask)) <= {0.0, 1 / 0.6}
    np.testing.assert_array_equal(cache.hooks.h_rec, cache.h_in * mask)  # same mask at every step
    lstm.eval()
    lstm(rng.standard_normal((6, 4, 3)))
    assert lstm.caches[0][0].hooks.recurrent_mask is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(clip=-1.0), "clip: expected None or a positive"),
        (dict(zoneout=1.0), "zoneout: expected a probability"),
        (dict(zoneout=(0.1, 0.2, 0.3)), "zoneout: expected a probability"),
        (dict(recurrent_dropout=1.5), "recurrent_dropout: expected a probability"),
        (dict(activations=["Sigmoid", "Tanh"]), "activations: expected 3 entries"),
        (dict(activations=["Sigmoid", "Tanh", "Gelu"]), "activation: expected one of"),
    ],
)
def test_bad_variant_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LSTM(3, 4, **kwargs)
