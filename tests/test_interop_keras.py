"""Keras 3 in and out (torch backend): LSTM and Bidirectional(LSTM) parity within 1e-5
for every merge mode, go_backwards, return_sequences/return_state and initial states;
kioku -> Keras -> kioku keeps the weights; refusals name what Keras lacks."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
from keras_cases import CALL_CASES, DEPTH, compare_call, converted, to_numpy
from tolerance import assert_close

os.environ.setdefault("KERAS_BACKEND", "torch")
if os.environ["KERAS_BACKEND"] != "torch":  # pragma: no cover
    pytest.skip("these tests run Keras on the torch backend", allow_module_level=True)
pytest.importorskip("torch")
keras = pytest.importorskip("keras")  # slow import: once for the module

from kioku.interop import from_keras, to_keras  # noqa: E402
from kioku.nn import LSTMVariant  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # Keras' own __array__
]
B, T, I, H = 3, 6, 4, 5


LSTM_CASES = {
    **CALL_CASES,
    "no bias, state": dict(use_bias=False, return_state=True),
    "hard_sigmoid relu": dict(
        recurrent_activation="hard_sigmoid", activation="relu", return_sequences=True
    ),
}


@pytest.mark.parametrize("case", list(LSTM_CASES))
def test_lstm_layer_matches_keras(case):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    layer = keras.layers.LSTM(H, **LSTM_CASES[case])
    ours, x = converted(layer, from_keras, rng, (B, T, I))
    compare_call(keras, ours, layer, x)
    state = [rng.standard_normal((B, H)).astype(np.float32) for _ in range(2)]
    compare_call(keras, ours, layer, x, initial_state=state)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_matches_keras(merge_mode, return_sequences):
    rng = np.random.default_rng(7)
    layer = keras.layers.Bidirectional(
        keras.layers.LSTM(H, return_sequences=return_sequences, return_state=True),
        merge_mode=merge_mode,
    )
    ours, x = converted(layer, from_keras, rng, (B, T, I))
    assert ours.lstm.bidirectional
    compare_call(keras, ours, layer, x)


def test_float64_layer():
    rng = np.random.default_rng(3)
    layer = keras.layers.LSTM(H, return_sequences=True, dtype="float64")
    ours, x = converted(layer, from_keras, rng, (B, T, I), np.float64)
    assert ours.lstm.dtype == np.float64
    compare_call(keras, ours, layer, x)


@pytest.mark.parametrize(
    "config",
    [
        dict(),
        dict(bidirectional=True),
        dict(bidirectional=True, merge_mode="mean", bias=False),
        dict(activations=["HardSigmoid", "Tanh", "Tanh"]),
        dict(recurrent_dropout=0.2),
    ],
)
def test_kioku_to_keras_to_kioku_keeps_weights(config):
    if config.get("activations"):  # Keras' hard_sigmoid: relu6(x + 3) / 6
        config = {**config, "activations": [("HardSigmoid", 1 / 6, 0.5), "Tanh", "Tanh"]}
    kioku = LSTMVariant(I, H, rng=11, **config)
    kioku.eval()
    layer = to_keras(kioku, return_sequences=True, return_state=True)
    back = from_keras(layer)
    for name, value in kioku.params.items():
        if name.startswith("bias_hh"):
            np.testing.assert_array_equal(back.lstm.params[name], 0)  # folded into bias_ih
        elif name.startswith("bias_ih"):
            hh = kioku.params[name.replace("_ih", "_hh")]
            np.testing.assert_array_equal(back.lstm.params[name], value + hh)
        else:
            np.testing.assert_array_equal(back.lstm.params[name], value)
    assert to_keras(back).get_weights().__len__() == len(layer.get_weights())
    for a, b in zip(to_keras(back).get_weights(), layer.get_weights()):
        np.testing.assert_array_equal(a, b)  # Keras -> kioku -> Keras is exact
    x = np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32)
    y, (h, c) = kioku(x.transpose(1, 0, 2))
    outputs = to_numpy(keras, layer(x))
    assert_close("y", outputs[0], y.transpose(1, 0, 2), DEPTH)
    assert_close("h", outputs[1], h[0], DEPTH)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(num_layers=2), "num_layers"),
        (dict(proj_size=2), "proj_size"),
        (dict(peephole=True), "peephole"),
        (dict(layer_norm=True), "layer_norm"),
        (dict(activations=["Sigmoid", "Tanh", "Relu"]), "activations"),
    ],
)
def test_to_keras_refuses_what_keras_lacks(kwargs, name):
    with pytest.raises(ValueError, match=name):
        to_keras(LSTMVariant(I, H, **kwargs))


def test_from_keras_refusals():
    layer = keras.layers.LSTM(H, dropout=0.2)
    layer.build((None, None, I))
    with pytest.raises(ValueError, match="dropout"):
        from_keras(layer)
    assert from_keras(layer, ignore_dropout=True).lstm.hidden_size == H
    with pytest.raises(ValueError, match="activation"):
        gelu = keras.layers.LSTM(H, activation="gelu")
        gelu.build((None, None, I))
        from_keras(gelu)
    with pytest.raises(TypeError, match="layer"):
        from_keras(keras.layers.GRU(H))
