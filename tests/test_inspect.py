"""kioku.inspect: traces against the equations, gradient flow against finite differences,
saturation, features, cell search, plots and reports."""

from __future__ import annotations

import base64
import io
import json
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

from kioku import functional, kernels
from kioku.inspect import (
    cell_search,
    correlations,
    gate_saturation,
    get_feature,
    gradient_flow,
    record_gradients,
    step_norms,
    trace,
)
from kioku.inspect.features import bracket_depth, indentation, inside_string, line_position
from kioku.nn import LSTM, RNN, Module


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def recompute(lstm: LSTM, layer: int, direction: int, x: np.ndarray):
    """The seed's equations step by step: returns dict of (T, B, H) arrays."""
    sfx = lstm.suffix(layer, direction)
    p = lstm.params
    W, U = p[f"weight_ih{sfx}"], p[f"weight_hh{sfx}"]
    b = p[f"bias_ih{sfx}"] + p[f"bias_hh{sfx}"]
    T, B, _ = x.shape
    H = lstm.hidden_size
    h, c = np.zeros((B, H)), np.zeros((B, H))
    out = {k: np.zeros((T, B, H)) for k in "ifgoch"}
    steps = range(T - 1, -1, -1) if direction else range(T)
    for t in steps:
        a = x[t] @ W.T + h @ U.T + b
        i, f = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H])
        g, o = np.tanh(a[:, 2 * H : 3 * H]), sigmoid(a[:, 3 * H :])
        c = f * c + i * g
        h = o * np.tanh(c)
        for k, v in zip("ifgoch", (i, f, g, o, c, h)):
            out[k][t] = v
    return out


class Holder(Module):
    def __init__(self):
        super().__init__()
        self.add_module(
            "encoder", LSTM(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, rng=0)
        )

    def __call__(self, x):
        return self.encoder(x)


def test_trace_equals_equations_stacked_bidirectional(rng):
    model = Holder()
    x = rng.normal(size=(6, 2, 3))
    with trace(model) as tr:
        y, _ = model(x)
    assert tr.keys() == [("encoder", l, d) for l in range(2) for d in range(2)]
    lstm = model.encoder
    layer_input = x
    for layer in range(2):
        outs = []
        for direction in range(2):
            ref = recompute(lstm, layer, direction, layer_input)
            rec = tr.get(layer, direction)
            for k in "ifgoch":
                np.testing.assert_allclose(rec.get(k), ref[k], rtol=1e-12, atol=1e-12)
            outs.append(ref["h"])
        layer_input = np.concatenate(outs, axis=2)
    np.testing.assert_allclose(y, layer_input, rtol=1e-12, atol=1e-12)
    assert "forward_direction" not in lstm.__dict__  # nothing left patched


def test_trace_lengths_calls_and_backend(rng):
    lstm = LSTM(2, 3, dtype=np.float64, rng=1)
    x = rng.normal(size=(5, 2, 2))
    lengths = np.array([5, 3])
    with kernels.use("auto"):
        with trace(lstm) as tr:
            assert kernels.backend_name() == "reference"
            lstm(x, lengths=lengths)
            lstm(x[:2])
    assert [r.call for r in tr] == [0, 1]
    lstm(x)  # outside the block: nothing recorded, the fast backend again
    assert len(tr) == 2 and "forward_direction" not in lstm.__dict__
    rec = tr.get(call=0)
    np.testing.assert_array_equal(rec.mask, np.arange(5)[:, None] < lengths)
    ref = recompute(lstm, 0, 0, x)
    np.testing.assert_allclose(rec.cell[:3], ref["c"][:3], atol=1e-12)  # both sequences valid
    np.testing.assert_allclose(rec.cell[:, 0], ref["c"][:, 0], atol=1e-12)
    joined = tr.joined()
    assert joined.cell.shape == (7, 2, 3) and joined.mask.shape == (7, 2)
    with pytest.raises(ValueError, match="quantity"):
        rec.get("z")
    with pytest.raises(ValueError, match="model"):
        with trace(RNN(2, 3)):
            pass


def _fd_future_loss(x, params, dy, t, h_t, c_t, reverse):
    """sum(dy * y) over the steps after t (in the direction's order), plus dy[t] . h_t."""
    w_ih, w_hh, b = params
    rest = x[:t] if reverse else x[t + 1 :]
    dy_rest = dy[:t] if reverse else dy[t + 1 :]
    total = float((dy[t] * h_t).sum())
    if rest.shape[0]:
        y, _, _, _ = functional.lstm_forward(rest, w_ih, w_hh, b, h_t, c_t, reverse=reverse)
        total += float((dy_rest * y).sum())
    return total


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_gradient_flow_matches_finite_differences(rng, bidirectional):
    lstm = LSTM(3, 4, bidirectional=bidirectional, dtype=np.float64, rng=2)
    T, B, eps = 5, 2, 1e-6
    x = rng.normal(size=(T, B, 3))
    y, _ = lstm(x)
    dy = rng.normal(size=y.shape)
    with record_gradients(lstm) as records:
        lstm.backward(dy)
    assert len(records) == lstm.num_directions
    for rec in records:
        d = rec.direction
        sfx = lstm.suffix(0, d)
        p = lstm.params
        params = (
            p[f"weight_ih{sfx}"],
            p[f"weight_hh{sfx}"],
            p[f"bias_ih{sfx}"] + p[f"bias_hh{sfx}"],
        )
        cache = lstm.caches[0][d]
        dy_dir = dy[:, :, 4 * d : 4 * d + 4]
        for t in range(T):
            h_t, c_t = cache.h_out[t].copy(), cache.c_out[t].copy()
            o_t = cache.gates[t, :, 12:]
            fd_h, fd_c = np.zeros_like(h_t), np.zeros_like(c_t)
            for idx in np.ndindex(h_t.shape):
                for sign in (1, -1):
                    hp = h_t.copy()
                    hp[idx] += sign * eps
                    fd_h[idx] += sign * _fd_future_loss(x, params, dy_dir, t, hp, c_t, bool(d))
                    cp = c_t.copy()
                    cp[idx] += sign * eps  # h_t = o_t tanh(c_t) moves with c_t
                    loss = _fd_future_loss(x, params, dy_dir, t, o_t * np.tanh(cp), cp, bool(d))
                    fd_c[idx] += sign * loss
            np.testing.assert_allclose(rec.dh[t], fd_h / (2 * eps), rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(rec.dc[t], fd_c / (2 * eps), rtol=1e-6, atol=1e-8)
    assert "backward" not in lstm.__dict__


def test_rnn_gradient_flow_matches_finite_differences(rng):
    rnn = RNN(3, 4, dtype=np.float64, rng=3)
    T, eps = 6, 1e-6
    x = rng.normal(size=(T, 2, 3))
    (rec,) = gradient_flow(rnn, x)
    assert rec.dc is None
    cache = rnn.caches[0][0]
    p = rnn.params
    b = p["bias_ih_l0"] + p["bias_hh_l0"]
    dy = np.zeros((T, 2, 4))
    dy[-1] = 1
    for t in range(T):
        h_t = cache.h_out[t].copy()
        fd = np.zeros_like(h_t)
        for idx in np.ndindex(h_t.shape):
            for sign in (1, -1):
                hp = h_t.copy()
                hp[idx] += sign * eps
                loss = float((dy[t] * hp).sum())
                if t + 1 < T:
                    y, _, _ = functional.rnn_forward(
                        x[t + 1 :], p["weight_ih_l0"], p["weight_hh_l0"], b, hp
                    )
                    loss += float((dy[t + 1 :] * y).sum())
                fd[idx] += sign * loss
        np.testing.assert_allclose(rec.dh[t], fd / (2 * eps), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(rec.dh_norm, np.linalg.norm(rec.dh, axis=2).mean(axis=1))


def test_gradient_flow_last_step_and_errors(rng):
    lstm = LSTM(2, 3, batch_first=True, dtype=np.float64, rng=4)
    x = rng.normal(size=(2, 7, 2))
    (rec,) = gradient_flow(lstm, x)
    assert rec.dh.shape == (7, 2, 3) and rec.dc_norm.shape == (7,)
    np.testing.assert_allclose(rec.dh[-1], 1.0)  # the loss sits on the last step only
    with pytest.raises(ValueError, match="dy_last"):
        gradient_flow(lstm, x, dy_last=np.ones(3))
    with pytest.raises(TypeError, match="layer"):
        gradient_flow(Module(), x)
    with pytest.raises(ValueError, match="grad"):
        step_norms(np.ones(3))


def test_gate_saturation_counts(rng):
    lstm = LSTM(2, 5, dtype=np.float64, rng=5)
    lstm.params["bias_ih_l0"][5:10] = 50.0  # forget gate pinned open
    x = rng.normal(size=(8, 3, 2))
    lengths = np.array([8, 4, 2])
    with trace(lstm) as tr:
        lstm(x, lengths=lengths)
    sats = {s.gate: s for s in gate_saturation(tr)}
    np.testing.assert_array_equal(sats["forget"].high, 1.0)
    np.testing.assert_array_equal(sats["forget"].low, 0.0)
    rec = tr.get()
    valid = rec.mask
    expected_low = (rec.input_gate[valid] < 0.1).mean(axis=0)
    np.testing.assert_allclose(sats["input"].low, expected_low)
    assert sats["output"].summary()["gate"] == "output"
    with pytest.raises(ValueError, match="low, high"):
        gate_saturation(tr, 0.9, 0.1)


SOURCE = "x = \"a(b\"  # c(\nif (y[0]):\n    z = '\\'q'\n"


def test_features_on_python_source():
    s = inside_string(SOURCE)
    inside = "".join(ch for ch, v in zip(SOURCE, s) if v)
    assert inside == "a(b" + "\\'q"
    depth = bracket_depth(SOURCE)
    k = SOURCE.index("[")
    assert depth[k] == 2 and depth[SOURCE.index("(b")] == 0  # the paren in the string ignored
    assert depth[SOURCE.index(":")] == 0 and depth.min() == 0
    ind = indentation(SOURCE)
    assert ind[SOURCE.index("z")] == 4 and ind[0] == 0
    col = line_position(SOURCE)
    assert col[SOURCE.index("z")] == 4 and col[SOURCE.index("if")] == 0
    assert get_feature("indentation") is indentation
    with pytest.raises(ValueError, match="feature: expected one of .*found 'quotes'"):
        get_feature("quotes")


def test_cell_search_ranks_the_matching_cell(rng):
    lstm = LSTM(2, 6, dtype=np.float64, rng=6)
    x = rng.normal(size=(40, 1, 2))
    with trace(lstm) as tr:
        lstm(x)
    cell3 = tr.get().cell[:, 0, 3]
    best = cell_search(tr, 2 * cell3 + 1, top=3)
    assert best[0].cell == 3 and best[0].correlation == pytest.approx(1.0)
    assert len(best) == 3 and abs(best[1].correlation) < 1
    text = "ab(c)" * 8
    matches = cell_search(tr, "bracket_depth", text=text)
    direct = correlations(tr.get().cell[:, 0], bracket_depth(text))
    assert matches[0].correlation == pytest.approx(direct[np.abs(direct).argmax()])
    with pytest.raises(ValueError, match="feature: expected one value per step"):
        cell_search(tr, np.ones(3))
    with pytest.raises(ValueError, match="feature: expected one of"):
        cell_search(tr, "nope", text=text)
    np.testing.assert_array_equal(correlations(np.ones((4, 2)), np.arange(4.0)), 0.0)


class Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def decode_images(page: str) -> list:
    from PIL import Image

    parser = Images()
    parser.feed(page)
    parser.close()
    images = []
    for src in parser.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        image = Image.open(io.BytesIO(base64.b64decode(src[len(prefix) :])))
        image.load()
        assert image.size[0] > 50 and image.size[1] > 50
        images.append(image)
    return images


@pytest.mark.slow
def test_plots_and_report(tmp_path, rng):
    pytest.importorskip("matplotlib")
    from kioku.inspect import plots
    from kioku.inspect.report import HtmlReport, activation_html

    lstm = LSTM(2, 4, bidirectional=True, rng=7)
    text = 'a = "x"\n'
    x = rng.normal(size=(len(text), 1, 2)).astype(np.float32)
    with trace(lstm) as tr:
        lstm(x)
    heat = plots.gate_heatmap(tr.get(0, 1), list(text))
    flows = {"lstm": gradient_flow(LSTM(2, 4, rng=1), x)[0].dh_norm}
    report = HtmlReport("Test <report>")
    report.figure(heat, "heatmap")
    report.figure(plots.gradient_flow_plot(flows), "flow")
    report.figure(plots.saturation_scatter(gate_saturation(tr)), "saturation")
    report.table(["a", "b"], [[1, 0.5], ["<x>", 2]])
    report.raw(activation_html(list(text), tr.get().cell[:, 0, 0]))
    path = report.write(tmp_path / "r.html")
    page = path.read_text()
    assert "Test &lt;report&gt;" in page and "&lt;x&gt;" in page
    assert len(decode_images(page)) == 3
    png = plots.save_figure(heat, tmp_path / "h.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    svg = plots.save_figure(heat, tmp_path / "h.svg").read_text()
    import xml.etree.ElementTree as ET

    assert ET.fromstring(svg).tag.endswith("svg")
    with pytest.raises(ValueError, match="path"):
        plots.save_figure(heat, tmp_path / "h.jpg")
    with pytest.raises(ValueError, match="tokens"):
        plots.gate_heatmap(tr.get(), ["a"])
    with pytest.raises(ValueError, match="values"):
        activation_html(["a", "b"], np.ones(3))
    coloured = plots.activation_text(list(text), tr.get().cell[:, 0, 1], "cell 1")
    assert plots.figure_bytes(coloured).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="values"):
        plots.activation_text(["a", "b"], np.ones(3))


def test_plots_without_matplotlib_name_it(monkeypatch):
    from kioku.inspect import plots

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="matplotlib"):
        plots.line_plot({}, "x", "y", "t")


# -- the kioku inspect report -------------------------------------------------------------
SAMPLE = 'def f(x):\n    return [x, "a(b)", (x + 1)]  # done\n\nclass C:\n    y = {"k": 2}\n'


def _checkpoint(tmp_path, model, vocab):
    from kioku.train.checkpoint import save_checkpoint

    state = {
        "model": {
            "kind": type(model).__name__,
            "config": model.config(),
            "params": model.state_dict(),
        },
        "task": {"vocab": vocab.to_dict()},
    }
    save_checkpoint(tmp_path / "run", state, step=1)
    return tmp_path / "run"


@pytest.fixture
def lm_checkpoint(tmp_path):
    from kioku.data.vocab import Vocabulary
    from kioku.models import LanguageModel

    vocab = Vocabulary.build(SAMPLE)
    model = LanguageModel(len(vocab), embed_size=8, hidden_size=12, num_layers=2, rng=0)
    return _checkpoint(tmp_path, model, vocab)


@pytest.mark.slow
def test_inspect_command_writes_a_self_contained_report(tmp_path, lm_checkpoint, capsys):
    pytest.importorskip("matplotlib")
    import json
    import xml.etree.ElementTree as ET

    from kioku.cli import main

    text = tmp_path / "sample.py"
    text.write_text(SAMPLE * 3)
    out = tmp_path / "report"
    argv = ["inspect", str(lm_checkpoint), "--text", str(text), "--out", str(out), "--svg"]
    assert main(argv) == 0
    page = (out / "report.html").read_text()
    images = decode_images(page)  # heatmaps of 2 layers, saturation, gradient flow
    assert len(images) == 4
    assert page.count('<pre class="act">') == 5  # one coloured text per built-in feature
    assert (out / "cell_bracket_depth.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list(out.glob("*.svg"))) == len(list(out.glob("*.png"))) == 9
    for svg in out.glob("*.svg"):
        assert ET.fromstring(svg.read_text()).tag.endswith("svg")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tokens"] == len(SAMPLE) * 3
    assert set(summary["cells"]) == {
        "inside_string",
        "bracket_depth",
        "indentation",
        "line_position",
        "in_comment",
    }
    assert len(summary["gradient_flow"]["layer 0 ‖dL/dc_t‖"]) == 199  # the first 200 tokens
    only = tmp_path / "only"
    argv = ["inspect", str(lm_checkpoint), "--text", str(text), "--out", str(only)]
    assert main(argv + ["--feature", "indentation"]) == 0
    assert json.loads((only / "summary.json").read_text())["cells"].keys() == {"indentation"}


@pytest.mark.slow
def test_inspect_report_for_a_bidirectional_tagger(tmp_path):
    pytest.importorskip("matplotlib")
    from kioku.data.vocab import Vocabulary
    from kioku.inspect.model_report import inspect_model
    from kioku.models import SequenceTagger

    vocab = Vocabulary.build("the apple is red\nthe apple shares rose\n", level="word")
    model = SequenceTagger(len(vocab), embed_size=4, hidden_size=5, num_tags=3, rng=1)
    summary = inspect_model(model, vocab, "the apple is red\n", tmp_path)
    assert summary["cells"] == {}  # word model: no per-character features
    assert {s["direction"] for s in summary["saturation"]} == {0, 1}
    assert any("reverse" in k for k in summary["gradient_flow"])
    decode_images((tmp_path / "report.html").read_text())
    with pytest.raises(ValueError, match="per character"):
        inspect_model(model, vocab, "the apple\n", tmp_path, features=["indentation"])
    # an unseen word reads as <unk>, as predict and eval read it, and is counted
    summary = inspect_model(model, vocab, "the apple\nbanana banana kiwi\n", tmp_path)
    assert summary["unknown"] == 3 and summary["unknown_tokens"] == {"banana": 2, "kiwi": 1}
    assert (
        "3 of them outside the vocabulary, read as &lt;unk&gt;: &#x27;banana&#x27;"
        in (tmp_path / "report.html").read_text()
    )


@pytest.mark.slow
def test_inspect_command_bad_inputs(tmp_path, lm_checkpoint, capsys):
    from kioku.cli import main

    text = tmp_path / "t.py"
    text.write_text(SAMPLE)
    out = str(tmp_path / "o")
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "checkpoint.json").write_text('{"weights": [1, 2]}')
    cases = [
        (str(fake), str(text), [], "is not a readable kioku checkpoint"),
        (str(tmp_path / "missing"), str(text), [], "is not a readable kioku checkpoint"),
        (str(lm_checkpoint), str(text), ["--feature", "quotes"], "feature: expected one of"),
    ]
    for checkpoint, text_path, extra, message in cases:
        assert main(["inspect", checkpoint, "--text", text_path, "--out", out] + extra) == 2
        err = capsys.readouterr().err
        assert "kioku inspect: error:" in err and message in err, err
    unseen = tmp_path / "unseen.py"  # characters unseen in training: read as <unk>, counted
    unseen.write_text("x = 1\ny = 'é€'\n")
    assert main(["inspect", str(lm_checkpoint), "--text", str(unseen), "--out", out]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["unknown_tokens"]["é"] == summary["unknown_tokens"]["€"] == 1
    assert summary["unknown"] == sum(summary["unknown_tokens"].values())
    shown = f"({summary['unknown']} of 15 tokens unseen in training, read as <unk>)"
    assert shown in capsys.readouterr().out
