"""Report text readable at normal zoom: heatmap labels of at least 8 points that keep
their size on the page, and coloured text wrapped at word ends, never cut."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from kioku.inspect import plots  # noqa: E402
from kioku.inspect.report import HtmlReport  # noqa: E402
from kioku.inspect.trace import trace  # noqa: E402
from kioku.nn import LSTM  # noqa: E402


def test_heatmap_labels_are_readable_and_not_shrunk_on_the_page(tmp_path):
    lstm = LSTM(3, 20, rng=0)
    text = "x" * 120
    x = np.random.default_rng(0).standard_normal((len(text), 1, 3)).astype(np.float32)
    with trace(lstm) as traced:
        lstm(x)
    record = traced.get(0, 0)
    fig = plots.gate_heatmap(record, list(text))
    for ax in fig.axes[::2]:  # the heatmaps, not their colour bars
        sizes = [t.get_fontsize() for t in ax.get_yticklabels() + ax.get_xticklabels()]
        assert min(sizes) >= 8
        # rows at least one label high: 8 points with room to spare
        height_points = ax.get_position().height * fig.get_figheight() * 72
        assert height_points / len(ax.get_yticklabels()) >= 8
    report = HtmlReport("t")
    report.figure(fig, "wide")
    page = report.write(tmp_path / "r.html").read_text()
    assert "img { max-width: none; }" in page and "overflow-x: auto" in page


def test_coloured_text_wraps_at_word_ends():
    words = [f"word{i:02d}" for i in range(40)]
    tokens = list(" ".join(words))
    pieces = plots.wrap_at_words([(t, 0.0) for t in tokens], 30)
    assert "".join(t for piece in pieces for t, _ in piece) == "".join(tokens)
    for piece in pieces:
        assert len(piece) <= 30
        line = "".join(t for t, _ in piece).strip()
        assert all(word in words for word in line.split())  # whole words only
    long_word = [("x", 0.0)] * 45  # longer than a line: cut, nothing lost
    assert [len(p) for p in plots.wrap_at_words(long_word, 30)] == [30, 15]
    fig = plots.activation_text(tokens, np.arange(len(tokens), dtype=float), max_columns=30)
    shown = "".join(t.get_text() for t in fig.axes[0].texts)
    assert shown == "".join(tokens).replace(" ", "")
