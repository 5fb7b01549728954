"""One colour language: gates on 0..1 (closed .. open), candidate, cell and hidden state on a
scale centred on zero, the same rules in the plots (matplotlib) and in the view (view.js,
which reads them from its page)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from importlib import resources

import numpy as np
import pytest

from kioku.data.vocab import Vocabulary
from kioku.inspect import colours, trace
from kioku.inspect.trace import CELL_QUANTITIES
from kioku.inspect.view import render_view, view_data, view_script
from kioku.models import LanguageModel

TEXT = "def f(x):\n    return x + 1\n"


def test_a_gate_is_exactly_zero_to_one_whatever_its_values():
    for values in (None, np.array([0.2, 0.3]), np.array([0.9999]), np.array([3.0, -2.0])):
        assert colours.limits("gate", values) == (0.0, 1.0)
    scale = colours.colour_scale("gate", np.array([0.4, 0.6]), "f")
    assert (scale.low, scale.high) == (0.0, 1.0)
    assert scale.stops == colours.GATE_STOPS
    assert colours.colour(0.0, scale) == colours.GATE_STOPS[0]  # closed: white
    assert colours.colour(1.0, scale) == colours.GATE_STOPS[-1]  # open: the darkest green


def test_signed_and_free_quantities_are_centred_on_zero():
    rng = np.random.default_rng(0)
    positive = 0.5 + 0.4 * rng.random(50)  # all above zero: the centre stays at 0 anyway
    assert colours.limits("signed", np.tanh(rng.standard_normal(50))) == (-1.0, 1.0)
    assert colours.limits("signed", np.array([0.1, 1.7])) == (-1.7, 1.7)  # a projected h
    low, high = colours.limits("free", positive)
    assert low == -high == -positive.max()
    assert colours.limits("free", np.zeros(3)) == (-1.0, 1.0)
    scale = colours.colour_scale("free", positive, "c")
    assert colours.colour(0.0, scale) == colours.SIGNED_STOPS[4]  # white in the middle
    assert colours.colour(high, scale) == colours.SIGNED_STOPS[-1]
    assert colours.colour(low, scale) == colours.SIGNED_STOPS[0]
    with pytest.raises(ValueError, match="kind: expected one of gate, signed, free, found 'bad'"):
        colours.limits("bad")


def test_legends_say_what_the_colours_mean():
    assert colours.legend("gate", 0, 1) == "closed 0 … 1 open"
    assert colours.legend("gate", 0, 1, "f").startswith("closed 0 … 1 open (f: closed: erases")
    assert colours.legend("signed", -1, 1) == "negative −1 … 0 … +1 positive"
    assert colours.legend("free", -2.5, 2.5, "c") == (
        "negative content −2.5 … 0 … +2.5 positive content (white: empty)"
    )
    assert colours.legend("gate", 0, 1, lang="ja") == "閉 0 … 1 開"
    assert colours.legend("signed", -1, 1, "h", lang="ja").startswith(
        "負の出力 −1 … 0 … +1 正の出力"
    )
    with pytest.raises(ValueError, match="lang: expected one of en, ja, found 'fr'"):
        colours.legend("gate", 0, 1, lang="fr")


def test_every_traced_quantity_has_a_kind():
    for quantities in CELL_QUANTITIES.values():
        for q in quantities:
            assert q.scale in colours.KINDS, q
            if q.name.endswith("_gate"):
                assert q.scale == "gate", q


def _model():
    vocab = Vocabulary.build(TEXT, "char")
    return LanguageModel(len(vocab), 6, 8, num_layers=1, rng=3), vocab


def test_heatmap_and_coloured_text_use_the_rules():
    pytest.importorskip("matplotlib")
    from kioku.inspect import plots

    model, vocab = _model()
    ids = np.array([vocab.index[c] for c in TEXT])
    with model.eval_mode(), trace(model) as tr:
        model(ids[:, None])
    record = tr.get()
    fig = plots.gate_heatmap(record, list(TEXT), quantities="ifgoch")
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 6
    for short, image in zip("ifgoch", images):
        low, high = image.get_clim()
        if short in "ifo":
            assert (low, high) == (0.0, 1.0)
            assert image.cmap(0.0)[:3] == pytest.approx(_rgb(colours.GATE_STOPS[0]), abs=1e-6)
        else:
            assert high == -low > 0
            assert image.cmap(0.5)[:3] == pytest.approx(_rgb(colours.SIGNED_STOPS[4]), abs=0.01)
    bars = [ax for ax in fig.axes if not ax.images and ax.get_yticklabels()]
    labels = [[t.get_text() for t in bar.get_yticklabels()] for bar in bars]
    assert labels[0] == ["0 closed", "0.5", "1 open"]
    assert labels[2][0].endswith("negative") and labels[2][2].endswith("positive")

    gate = record.forget_gate[:, 0, 0]
    fig = plots.activation_text(list(TEXT), gate, kind="gate", quantity="f")
    image = fig.axes[0].images[0]
    assert image.get_clim() == (0.0, 1.0)
    assert (
        fig.axes[0]
        .get_title()
        .endswith("closed 0 … 1 open (f: closed: erases the cell / open: keeps it)")
    )
    shifted = 0.5 + 0.1 * gate  # all positive: the old plot centred this on its mean
    fig = plots.activation_text(list(TEXT), shifted, quantity="c")
    low, high = fig.axes[0].images[0].get_clim()
    assert high == -low == pytest.approx(shifted.max())
    fig = plots.activation_text(list(TEXT), shifted, kind="signed")
    assert fig.axes[0].images[0].get_clim() == (-1.0, 1.0)


def _rgb(hex_colour):
    return tuple(int(hex_colour[k : k + 2], 16) / 255 for k in (1, 3, 5))


def test_the_view_carries_the_python_rules():
    model, vocab = _model()
    data = view_data(model, vocab, TEXT)
    assert data["colours"] == colours.page_rules()
    kinds = {r["short"]: r["kind"] for r in data["groups"][0]["quantities"]}
    assert kinds == {
        "i": "gate",
        "f": "gate",
        "g": "signed",
        "o": "gate",
        "c": "free",
        "h": "signed",
    }
    page = render_view(data)
    found = re.search(r'<script type="application/json" id="kioku-data">(.*?)</script>', page, re.S)
    assert json.loads(found.group(1))["colours"]["gate_stops"] == list(colours.GATE_STOPS)
    script = view_script()  # every part of the page's script
    for stop in colours.GATE_STOPS + colours.SIGNED_STOPS:
        assert stop not in script  # no copy of the stops that could drift from the Python ones
    assert "rgb(255," not in script  # nor the old hand-made red and blue


def test_view_js_draws_the_colours_python_computes():
    """The page's colour functions, run by Node on the page's rules, give the colours of
    :func:`kioku.inspect.colours.colour` (to rounding of the last unit)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the page's script cannot be run outside a browser")
    script = resources.files("kioku.inspect").joinpath("view.js").read_text("utf-8")
    start = script.index("const RULES = DATA.colours;")
    stop = script.index("function tableLimits")
    values = (-1.3, -0.5, 0.0, 0.25, 0.5, 0.93)
    cases = [(k, v, peak) for k in colours.KINDS for v in values for peak in (0.7, 2.0)]
    program = (
        f"const DATA = {{colours: {json.dumps(colours.page_rules())}}};\n"
        + script[start:stop]
        + f"\nconst cases = {json.dumps(cases)};\n"
        + "console.log(JSON.stringify(cases.map(([kind, v, peak]) => {"
        + " const lim = limits(kind, peak);"
        + " return [lim, colour(kind, v, lim), ink(kind, v, lim)]; })));"
    )
    out = subprocess.run(
        [node, "-e", program], capture_output=True, text=True, timeout=60, check=True
    )
    for (kind, value, peak), (lim, css, ink) in zip(cases, json.loads(out.stdout), strict=True):
        scale = colours.colour_scale(kind, np.array([peak]))
        assert tuple(lim) == (scale.low, scale.high), (kind, peak)
        want = colours.colour(value, scale)
        got = tuple(int(c) for c in re.findall(r"\d+", css))
        assert max(abs(a - b * 255) for a, b in zip(got, _rgb(want))) <= 1, (kind, value, css, want)
        assert (ink == "#fff") == colours.dark(value, scale), (kind, value)


def test_the_report_colours_text_on_the_same_signed_scale():
    from kioku.inspect.report import activation_html

    page = activation_html(["a", "b", "c"], np.array([-2.0, 0.0, 2.0]))
    backgrounds = re.findall(r"background:(#[0-9a-f]{6})", page)
    assert backgrounds == [
        colours.SIGNED_STOPS[0],
        colours.SIGNED_STOPS[4],
        colours.SIGNED_STOPS[-1],
    ]
    assert page.count("color:#fff") == 2  # white text on the darkest blue and red
