"""ONNX in and out: the backend test suite's LSTM cases, random-weight parity against ONNX
Runtime (and onnx.reference where ONNX Runtime refuses), exports run by ONNX Runtime,
torch -> kioku -> ONNX round trips, and refusals naming the node and attribute."""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest
from tolerance import assert_close, recurrent_depth

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from kioku.interop import from_onnx, from_torch, to_onnx  # noqa: E402
from kioku.nn import LSTMVariant  # noqa: E402

# the deepest comparison here: 2 layers of 6 cells (12 inputs above a bidirectional first
# layer), 7 steps, 3 sequences, then an output layer over 6: within the rounding of that depth
DEPTH = recurrent_depth(7, 12, 6, layers=2, batch=3) + 6


def _session(model) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _backend_cases():
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [c for c in load_model_tests(kind="node") if c.name.startswith("test_lstm")]


BACKEND_CASES = _backend_cases()


def test_backend_suite_has_the_lstm_cases():
    names = {c.name for c in BACKEND_CASES}
    assert {"test_lstm_defaults", "test_lstm_with_peepholes", "test_lstm_batchwise"} <= names


@pytest.mark.parametrize("case", BACKEND_CASES, ids=lambda c: c.name)
def test_backend_suite_lstm_case(case):
    runner = from_onnx(case.model)
    assert case.data_sets, f"{case.name}: no stored data"
    for inputs, outputs in case.data_sets:
        feeds = dict(zip(runner.input_names, inputs))
        results = runner.run(feeds)
        assert len(results) == len(outputs)
        for found, expected in zip(results, outputs):
            assert found.shape == expected.shape
            assert_close(case.name, found, expected, DEPTH, expected.dtype)


# -- random ONNX LSTM nodes ------------------------------------------------------------
def _lstm_model(rng, T=5, B=3, I=4, H=6, direction="forward", bias=True, peephole=False,
                lens=False, state=False, layout=0, **attributes):  # fmt: skip
    """A one-node ONNX model with random constant weights; returns it and its feeds."""
    D = 2 if direction == "bidirectional" else 1
    inits = [
        numpy_helper.from_array(rng.uniform(-0.6, 0.6, (D, 4 * H, I)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.uniform(-0.6, 0.6, (D, 4 * H, H)).astype(np.float32), "R"),
    ]
    inputs = ["X", "W", "R", "", "", "", "", ""]
    x_shape = [B, T, I] if layout else [T, B, I]
    graph_inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)]
    feeds = {"X": rng.standard_normal(x_shape).astype(np.float32)}
    if bias:
        b = rng.uniform(-0.5, 0.5, (D, 8 * H)).astype(np.float32)
        inits.append(numpy_helper.from_array(b, "B"))
        inputs[3] = "B"
    if lens:
        inputs[4] = "sequence_lens"
        graph_inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [B]))
        feeds["sequence_lens"] = rng.integers(1, T + 1, B).astype(np.int32)
        feeds["sequence_lens"][0] = T
    if state:
        s_shape = [B, D, H] if layout else [D, B, H]
        for slot, name in ((5, "initial_h"), (6, "initial_c")):
            inputs[slot] = name
            graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, s_shape))
            feeds[name] = rng.standard_normal(s_shape).astype(np.float32)
    if peephole:
        inits.append(
            numpy_helper.from_array(rng.uniform(-1, 1, (D, 3 * H)).astype(np.float32), "P")
        )
        inputs[7] = "P"
    while inputs[-1] == "":
        inputs.pop()
    node = helper.make_node(
        "LSTM", inputs, ["Y", "Y_h", "Y_c"], name="lstm_node", hidden_size=H,
        direction=direction, layout=layout, **attributes,
    )  # fmt: skip
    outputs = [
        helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("Y", "Y_h", "Y_c")
    ]
    graph = helper.make_graph([node], "g", graph_inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model, feeds


ORT_CASES = {
    "forward": dict(),
    "reverse lengths state": dict(direction="reverse", lens=True, state=True),
    "bidirectional lengths state": dict(direction="bidirectional", lens=True, state=True),
    "no bias": dict(bias=False, state=True),
    "peepholes": dict(peephole=True, direction="bidirectional", lens=True),
    "clip": dict(clip=0.8, direction="bidirectional"),
    "input_forget": dict(input_forget=1, peephole=True, lens=True),
    "activations": dict(
        activations=["HardSigmoid", "LeakyRelu", "ScaledTanh"],
        activation_alpha=[0.3, 0.05, 1.2],
        activation_beta=[0.45, 0.8],
    ),
    "activations defaults": dict(activations=["HardSigmoid", "Elu", "Softsign"]),
    "activations bidirectional": dict(
        direction="bidirectional",
        activations=["Sigmoid", "Affine", "Tanh", "HardSigmoid", "Softplus", "ThresholdedRelu"],
        activation_alpha=[0.9, 0.25, 0.1],
        activation_beta=[0.05, 0.5],
        lens=True,
    ),
    "relu everything": dict(
        activations=["Sigmoid", "Relu", "Relu"], clip=2.5, peephole=True, input_forget=1
    ),
}


@pytest.mark.parametrize("case", list(ORT_CASES))
def test_random_node_matches_onnxruntime(case):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    model, feeds = _lstm_model(rng, **ORT_CASES[case])
    expected = _session(model).run(None, feeds)
    found = from_onnx(model).run(feeds)
    for a, b in zip(found, expected):
        assert_close("output", a, b, DEPTH)


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_layout_1_matches_onnx_reference(direction):
    """ONNX Runtime refuses layout=1; onnx.reference runs it (defaults, no lengths)."""
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(5)
    model, feeds = _lstm_model(rng, direction=direction, layout=1, state=True, peephole=True)
    expected = ReferenceEvaluator(model).run(None, feeds)
    found = from_onnx(model).run(feeds)
    assert found[0].shape == (3, 5, 2 if direction == "bidirectional" else 1, 6)
    for a, b in zip(found, expected):
        assert_close("output", a, b, DEPTH)


def test_onnx_file_and_to_lstm(tmp_path):
    rng = np.random.default_rng(2)
    model, feeds = _lstm_model(
        rng, direction="bidirectional", peephole=True, clip=3.0,
        activations=["Sigmoid", "Tanh", "Softsign"] * 2,
    )  # fmt: skip
    onnx.save(model, tmp_path / "node.onnx")
    runner = from_onnx(tmp_path / "node.onnx")
    Y, Y_h, Y_c = runner.run(feeds)
    lstm = runner.to_lstm()
    y, (h_n, c_n) = lstm(feeds["X"])
    assert_close("y", y, np.concatenate([Y[:, 0], Y[:, 1]], axis=-1), DEPTH)
    assert_close("h_n", h_n, Y_h, DEPTH)
    assert_close("c_n", c_n, Y_c, DEPTH)


# -- kioku -> ONNX ---------------------------------------------------------------------
EXPORT_CASES = {
    "one layer": dict(),
    "stacked bidirectional": dict(num_layers=2, bidirectional=True),
    "batch_first no bias": dict(batch_first=True, bias=False, num_layers=2),
    "merge sum": dict(num_layers=2, bidirectional=True, merge_mode="sum"),
    "merge mean": dict(num_layers=2, bidirectional=True, merge_mode="mean"),
    "merge mul": dict(num_layers=2, bidirectional=True, merge_mode="mul"),
    "variants": dict(
        bidirectional=True,
        num_layers=2,
        peephole=True,
        input_forget=True,
        clip=1.5,
        activations=["HardSigmoid", ("ScaledTanh", 1.1, 0.8), "Softsign"],
        recurrent_dropout=0.3,
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", list(EXPORT_CASES))
def test_export_runs_in_onnxruntime(case, tmp_path):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    lstm = LSTMVariant(4, 5, rng=rng, **EXPORT_CASES[case]).eval()
    model = to_onnx(lstm, tmp_path / "lstm.onnx", initial_state=True)
    assert [n.op_type for n in model.graph.node].count("LSTM") == lstm.num_layers
    B, T, L = 3, 6, lstm.num_layers * lstm.num_directions
    x = rng.standard_normal((B, T, 4) if lstm.batch_first else (T, B, 4)).astype(np.float32)
    lengths = np.array([6, 2, 4], np.int32)
    h0 = rng.standard_normal((L, B, 5)).astype(np.float32)
    c0 = rng.standard_normal((L, B, 5)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "lstm.onnx"), providers=["CPUExecutionProvider"])
    out = session.run(None, {"input": x, "sequence_lens": lengths, "h0": h0, "c0": c0})
    y, (h_n, c_n) = lstm(x, (h0, c0), lengths=lengths)
    for found, expected in zip(out, (y, h_n, c_n)):
        assert_close("output", found, expected, DEPTH)


@pytest.mark.torch
def test_torch_to_kioku_to_onnx_equals_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True)
    kioku = from_torch(module).eval()
    session = _session(to_onnx(kioku))
    x = np.random.default_rng(0).standard_normal((3, 7, 4)).astype(np.float32)
    lengths = np.array([7, 3, 5])
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x), torch.from_numpy(lengths), batch_first=True, enforce_sorted=False
    )
    with torch.no_grad():
        y_packed, (h_t, c_t) = module(packed)
    y_t, _ = torch.nn.utils.rnn.pad_packed_sequence(y_packed, batch_first=True, total_length=7)
    out = session.run(None, {"input": x, "sequence_lens": lengths.astype(np.int32)})
    for found, expected in zip(out, (y_t, h_t, c_t)):
        assert_close("output", found, expected.numpy(), DEPTH)


@pytest.mark.parametrize("tie_weights", [False, True])
def test_language_model_export(tie_weights, tmp_path):
    from kioku.models import LanguageModel

    lm = LanguageModel(40, 6, 6, num_layers=2, tie_weights=tie_weights, rng=0).eval()
    to_onnx(lm, tmp_path / "lm.onnx", initial_state=True)
    session = ort.InferenceSession(str(tmp_path / "lm.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 40, (7, 3))
    h0, c0 = (rng.standard_normal((2, 3, 6)).astype(np.float32) for _ in range(2))
    out = session.run(None, {"tokens": tokens, "h0": h0, "c0": c0})
    logits, (h_n, c_n) = lm(tokens, (h0, c0))
    for found, expected in zip(out, (logits, h_n, c_n)):
        assert_close("output", found, expected, DEPTH)


@pytest.mark.parametrize("features", [False, True])
def test_sequence_tagger_export(features):
    from kioku.models import SequenceTagger

    sizes = dict(input_size=4) if features else dict(vocab_size=30)
    tagger = SequenceTagger(**sizes, embed_size=5, hidden_size=6, num_tags=4, rng=1).eval()
    session = _session(to_onnx(tagger))
    rng = np.random.default_rng(1)
    inputs = (
        rng.standard_normal((6, 3, 4)).astype(np.float32)
        if features
        else rng.integers(0, 30, (6, 3))
    )
    lengths = np.array([6, 2, 4])
    (logits,) = session.run(None, {"inputs": inputs, "sequence_lens": lengths.astype(np.int32)})
    assert_close("logits", logits, tagger(inputs, lengths), DEPTH)


# -- refusals --------------------------------------------------------------------------
def test_unsupported_op_is_refused_naming_the_node():
    rng = np.random.default_rng(0)
    model, _ = _lstm_model(rng)
    model.graph.node.append(helper.make_node("Relu", ["Y"], ["Z"], name="activation_after"))
    with pytest.raises(ValueError, match=r"node 'activation_after': unsupported op 'Relu'"):
        from_onnx(model)


@pytest.mark.parametrize(
    "attributes, attribute",
    [
        (dict(direction="sideways"), "direction"),
        (dict(layout=2), "layout"),
        (dict(input_forget=3), "input_forget"),
        (dict(activations=["Sigmoid", "Gelu", "Tanh"]), "activations"),
        (dict(activations=["Sigmoid", "Tanh"]), "activations"),
        (dict(clip=-1.0), "clip"),
        (dict(speed=2), "speed"),
    ],
)
def test_unsupported_attribute_value_is_refused(attributes, attribute):
    rng = np.random.default_rng(0)
    model, _ = _lstm_model(rng)
    node = model.graph.node[0]
    for name, value in attributes.items():
        for existing in list(node.attribute):
            if existing.name == name:
                node.attribute.remove(existing)
        node.attribute.append(helper.make_attribute(name, value))
    with pytest.raises(ValueError, match=f"node 'lstm_node': attribute '{attribute}'"):
        from_onnx(model)


@pytest.mark.parametrize(
    "kwargs, name", [(dict(proj_size=2), "proj_size"), (dict(layer_norm=True), "layer_norm")]
)
def test_export_refuses_what_onnx_lacks(kwargs, name):
    with pytest.raises(ValueError, match=name):
        to_onnx(LSTMVariant(3, 4, **kwargs))
