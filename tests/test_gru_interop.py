"""The GRU in and out of Keras 3 (torch backend) and ONNX: parity within 1e-5 with Keras
(reset_after True and False, every Bidirectional merge mode, go_backwards,
return_sequences/return_state, initial states) and with ONNX Runtime
(linear_before_reset 0 and 1, every direction, sequence_lens, initial_h, layout), the
ONNX backend suite's GRU cases, round trips that keep the weights, and refusals."""

from __future__ import annotations

import os
import warnings
import zlib

import numpy as np
import pytest
from keras_cases import CALL_CASES, DEPTH, compare, compare_call, converted, to_numpy
from tolerance import assert_close

os.environ.setdefault("KERAS_BACKEND", "torch")

import kioku  # noqa: E402
from kioku.nn import GRU  # noqa: E402

B, T, I, H = 3, 6, 4, 5


# -- Keras -------------------------------------------------------------------------------
def _keras():
    if os.environ["KERAS_BACKEND"] != "torch":  # pragma: no cover
        pytest.skip("these tests run Keras on the torch backend")
    pytest.importorskip("torch")
    return pytest.importorskip("keras")


GRU_CASES = {
    **CALL_CASES,
    "no bias, state": dict(use_bias=False, return_state=True),
}


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("case", list(GRU_CASES))
def test_gru_layer_matches_keras(case, reset_after):
    keras = _keras()
    from kioku.interop import from_keras_gru

    rng = np.random.default_rng(zlib.crc32(case.encode()) + reset_after)
    layer = keras.layers.GRU(H, reset_after=reset_after, **GRU_CASES[case])
    ours, x = converted(layer, from_keras_gru, rng, (B, T, I))
    assert ours.gru.reset_after == reset_after
    compare_call(keras, ours, layer, x)
    state = [rng.standard_normal((B, H)).astype(np.float32)]
    compare_call(keras, ours, layer, x, initial_state=state)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_gru_matches_keras(merge_mode, return_sequences, reset_after):
    keras = _keras()
    from kioku.interop import from_keras_gru

    rng = np.random.default_rng(7)
    layer = keras.layers.Bidirectional(
        keras.layers.GRU(
            H, return_sequences=return_sequences, return_state=True, reset_after=reset_after
        ),
        merge_mode=merge_mode,
    )
    ours, x = converted(layer, from_keras_gru, rng, (B, T, I))
    assert ours.gru.bidirectional
    compare_call(keras, ours, layer, x)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_float64_keras_gru():
    keras = _keras()
    from kioku.interop import from_keras_gru

    rng = np.random.default_rng(3)
    layer = keras.layers.GRU(H, return_sequences=True, dtype="float64")
    ours, x = converted(layer, from_keras_gru, rng, (B, T, I), np.float64)
    assert ours.gru.dtype == np.float64
    compare_call(keras, ours, layer, x)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize(
    "config",
    [
        dict(),
        dict(reset_after=False),
        dict(bidirectional=True),
        dict(bidirectional=True, merge_mode="mean", bias=False),
        dict(bidirectional=True, reset_after=False, merge_mode="mul"),
    ],
)
@pytest.mark.torch
def test_kioku_to_keras_gru_and_back(config):
    keras = _keras()
    from kioku.interop import from_keras_gru, to_keras_gru

    ours = GRU(I, H, rng=11, **config).eval()
    layer = to_keras_gru(ours, return_sequences=True, return_state=True)
    x = np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32)
    y, h_n = ours(x.transpose(1, 0, 2))
    expected = [y.transpose(1, 0, 2)] + list(h_n)
    compare(to_numpy(keras, layer(x)), expected)
    back = from_keras_gru(layer)
    for name, value in ours.params.items():
        if not ours.reset_after and name.startswith("bias"):
            # Keras keeps one bias there (every bias sits outside r): kioku's two are summed
            expected = (
                ours.params[name.replace("_hh", "_ih")] + ours.params[name.replace("_ih", "_hh")]
            )
            value = expected if name.startswith("bias_ih") else np.zeros_like(value)
            assert_close(name, back.gru.params[name], value, depth=1)  # one addition
        else:
            assert np.array_equal(back.gru.params[name], value), name


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_keras_gru_refusals_name_the_option():
    keras = _keras()
    from kioku.interop import from_keras_gru, to_keras_gru

    with pytest.raises(ValueError, match="num_layers"):
        to_keras_gru(GRU(I, H, 2))
    with pytest.raises(TypeError, match="module"):
        to_keras_gru(kioku.nn.LSTM(I, H))
    layer = keras.layers.GRU(H, recurrent_dropout=0.2)
    layer.build((None, None, I))
    with pytest.raises(ValueError, match="recurrent_dropout"):
        from_keras_gru(layer)
    assert from_keras_gru(layer, ignore_dropout=True).gru.hidden_size == H
    layer = keras.layers.GRU(H, activation="relu")
    layer.build((None, None, I))
    with pytest.raises(ValueError, match="activation"):
        from_keras_gru(layer)
    with pytest.raises(TypeError, match="layer"):
        from_keras_gru(keras.layers.Dense(3))


# -- ONNX --------------------------------------------------------------------------------
def _onnx():
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    return onnx, ort


def _session(ort, model):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _gru_model(rng, direction="forward", bias=True, lens=False, state=False, layout=0,
               linear_before_reset=0, Tn=T, Bn=B):  # fmt: skip
    """A one-node ONNX GRU model with random constant weights, and its feeds."""
    from onnx import TensorProto, helper, numpy_helper

    D = 2 if direction == "bidirectional" else 1
    inits = [
        numpy_helper.from_array(rng.uniform(-0.6, 0.6, (D, 3 * H, I)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.uniform(-0.6, 0.6, (D, 3 * H, H)).astype(np.float32), "R"),
    ]
    inputs = ["X", "W", "R", "", "", ""]
    x_shape = [Bn, Tn, I] if layout else [Tn, Bn, I]
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)]
    feeds = {"X": rng.standard_normal(x_shape).astype(np.float32)}
    if bias:
        inits.append(
            numpy_helper.from_array(rng.uniform(-0.5, 0.5, (D, 6 * H)).astype(np.float32), "B")
        )
        inputs[3] = "B"
    if lens:
        inputs[4] = "sequence_lens"
        graph_inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [Bn]))
        lengths = rng.integers(1, Tn + 1, Bn).astype(np.int32)
        lengths[0] = Tn
        feeds["sequence_lens"] = lengths
    if state:
        inputs[5] = "initial_h"
        shape = [Bn, D, H] if layout else [D, Bn, H]
        graph_inputs.append(helper.make_tensor_value_info("initial_h", TensorProto.FLOAT, shape))
        feeds["initial_h"] = rng.standard_normal(shape).astype(np.float32)
    while inputs[-1] == "":
        inputs.pop()
    node = helper.make_node(
        "GRU", inputs, ["Y", "Y_h"], name="gru", hidden_size=H, direction=direction,
        layout=layout, linear_before_reset=linear_before_reset,
    )  # fmt: skip
    y_shape = [Bn, Tn, D, H] if layout else [Tn, D, Bn, H]
    h_shape = [Bn, D, H] if layout else [D, Bn, H]
    outputs = [
        helper.make_tensor_value_info("Y", TensorProto.FLOAT, y_shape),
        helper.make_tensor_value_info("Y_h", TensorProto.FLOAT, h_shape),
    ]
    graph = helper.make_graph([node], "g", graph_inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model, feeds


ONNX_CASES = [
    dict(),
    dict(direction="reverse"),
    dict(direction="bidirectional"),
    dict(bias=False, state=True),
    dict(lens=True),
    dict(direction="bidirectional", lens=True, state=True),
    dict(direction="reverse", lens=True, state=True),
    dict(layout=1, state=True, direction="bidirectional"),  # onnx.reference, as ORT refuses
    dict(layout=1),
]


@pytest.mark.parametrize("linear_before_reset", [0, 1])
@pytest.mark.parametrize("case", range(len(ONNX_CASES)))
def test_onnx_gru_node_matches_onnxruntime(case, linear_before_reset):
    _, ort = _onnx()
    from kioku.interop import from_onnx_gru

    spec = ONNX_CASES[case]
    model, feeds = _gru_model(
        np.random.default_rng(case * 2 + linear_before_reset),
        linear_before_reset=linear_before_reset,
        **spec,
    )
    if spec.get("layout"):  # ONNX Runtime refuses layout=1; onnx.reference runs it
        from onnx.reference import ReferenceEvaluator

        expected = ReferenceEvaluator(model).run(None, feeds)
    else:
        expected = _session(ort, model).run(None, feeds)
    found = from_onnx_gru(model).run(feeds)
    compare(found, expected)
    if spec.get("lens"):
        Y = found[0] if not spec.get("layout") else found[0].transpose(1, 2, 0, 3)
        for b, length in enumerate(feeds["sequence_lens"]):
            assert np.all(Y[length:, :, b] == 0), "outputs past a length are zero"


def _backend_cases():
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [c for c in load_model_tests(kind="node") if c.name.startswith("test_gru")]


@pytest.mark.slow
def test_onnx_backend_suite_gru_cases():
    _onnx()
    from kioku.interop import from_onnx_gru

    cases = _backend_cases()
    assert {"test_gru_defaults", "test_gru_with_initial_bias", "test_gru_batchwise"} <= {
        c.name for c in cases
    }
    for case in cases:
        runner = from_onnx_gru(case.model)
        for inputs, outputs in case.data_sets:
            results = runner.run(dict(zip(runner.input_names, inputs)))
            assert len(results) == len(outputs), case.name
            for found, expected in zip(results, outputs):
                assert found.shape == expected.shape, case.name
                assert_close(case.name, found, expected, DEPTH, expected.dtype)


EXPORT_CASES = [
    dict(),
    dict(reset_after=False),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=2, bidirectional=True, reset_after=False, merge_mode="sum"),
    dict(bidirectional=True, merge_mode="mean", bias=False),
    dict(num_layers=3, bidirectional=True, merge_mode="mul", batch_first=True),
]


@pytest.mark.parametrize("case", range(len(EXPORT_CASES)))
def test_exported_gru_runs_in_onnxruntime_like_kioku(case, tmp_path):
    onnx, ort = _onnx()
    from kioku.interop import to_onnx_gru

    gru = GRU(I, H, rng=case, **EXPORT_CASES[case]).eval()
    path = tmp_path / "gru.onnx"
    to_onnx_gru(gru, path, sequence_lens=True, initial_state=True)
    model = onnx.load(str(path))
    rng = np.random.default_rng(case)
    shape = (B, T, I) if gru.batch_first else (T, B, I)
    x = rng.standard_normal(shape).astype(np.float32)
    lengths = np.array([T, 2, 4], np.int32)
    h0 = rng.standard_normal((gru.num_layers * gru.num_directions, B, H)).astype(np.float32)
    y_ort, h_ort = _session(ort, model).run(None, {"input": x, "sequence_lens": lengths, "h0": h0})
    y, h_n = gru(x, h0, lengths)
    compare([y_ort, h_ort], [y, h_n])


@pytest.mark.parametrize("reset_after", [True, False])
def test_onnx_round_trip_keeps_the_weights(reset_after):
    _onnx()
    from onnx import TensorProto, helper

    from kioku.interop import from_onnx_gru, to_onnx_gru

    gru = GRU(I, H, bidirectional=True, reset_after=reset_after, rng=4)
    exported = to_onnx_gru(gru, sequence_lens=False)
    node = next(n for n in exported.graph.node if n.op_type == "GRU")
    assert node.input[0] == "input"
    inits = [i for i in exported.graph.initializer if i.name in node.input]
    value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, None)  # noqa: E731
    graph = helper.make_graph(
        [node], "one_gru", [value("input")], [value(o) for o in node.output], initializer=inits
    )
    back = from_onnx_gru(helper.make_model(graph)).to_gru()
    assert back.reset_after == reset_after
    for name, array in gru.params.items():
        assert np.array_equal(back.params[name], array), name


def test_onnx_gru_refusals_name_the_node_and_attribute():
    _onnx()
    from onnx import helper

    from kioku.interop import from_onnx_gru

    model, _ = _gru_model(np.random.default_rng(0))
    model.graph.node[0].attribute.append(helper.make_attribute("clip", 2.0))
    with pytest.raises(ValueError, match="node 'gru': attribute 'clip'"):
        from_onnx_gru(model)
    model, _ = _gru_model(np.random.default_rng(0))
    model.graph.node[0].attribute.append(helper.make_attribute("activations", ["Relu", "Tanh"]))
    with pytest.raises(ValueError, match="'activations'"):
        from_onnx_gru(model)
    model, _ = _gru_model(np.random.default_rng(0), direction="reverse")
    with pytest.raises(ValueError, match="'direction'"):
        from_onnx_gru(model).to_gru()
    with pytest.raises(TypeError, match="path_or_model"):
        from_onnx_gru(3)
