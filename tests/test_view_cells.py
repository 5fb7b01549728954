"""kioku view for every cell: the payload of an LSTM, a GRU and an sLSTM model holds each
cell's own quantities (i f g o c h; r z n h; i f z o c n m h) as the trace rounded, with
their colour kinds and legend words; and the page's script, run by Node on a stand-in DOM
(tests/view_harness.js), builds a table per layer with those columns and colours the text
of every picked quantity exactly as kioku.inspect.colours says."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kioku.data.vocab import Vocabulary
from kioku.inspect import colours, trace
from kioku.inspect.trace import CELL_QUANTITIES
from kioku.inspect.view import decode_counts, render_view, view_data, view_script
from kioku.models import LanguageModel, SequenceTagger

TEXT = 'def f(x):\n    return x + "s7"\n'
HARNESS = Path(__file__).with_name("view_harness.js")
CELLS = {"lstm": "LSTM", "gru": "GRU", "slstm": "SLSTM"}


def _language_model(cell: str):
    vocab = Vocabulary.build(TEXT, "char")
    heads = {"num_heads": 2} if cell == "slstm" else {}
    model = LanguageModel(len(vocab), 6, 8, num_layers=2, cell=cell, rng=3, **heads)
    return model, vocab


@pytest.mark.parametrize("cell", list(CELLS))
def test_payload_holds_each_cells_own_quantities(cell):
    model, vocab = _language_model(cell)
    data = view_data(model, vocab, TEXT)
    ids = np.array([vocab.index[c] for c in TEXT])
    with model.eval_mode(), trace(model) as tr:
        model(ids[:, None])
    T = len(TEXT)
    expected = CELL_QUANTITIES[CELLS[cell]]
    assert [(g["layer"], g["direction"]) for g in data["groups"]] == [(0, 0), (1, 0)]
    for group in data["groups"]:
        assert group["cell_type"] == CELLS[cell]
        assert group["quantities"] == colours.quantity_rules(expected)
        assert list(group["values"]) == [q.short for q in expected]
        record = tr.get(group["layer"], group["direction"])
        for q in expected:
            values = record.get(q.short)[:, 0, :].astype(np.float64)
            decimals = group["values"][q.short]["decimals"]
            got = decode_counts(group, q.short, T) / 10**decimals
            np.testing.assert_allclose(got, values, atol=0.5 * 10**-decimals + 1e-9)
    assert data["colours"] == colours.page_rules()
    kinds = {r["short"]: r["kind"] for r in data["groups"][0]["quantities"]}
    if cell == "gru":
        assert kinds == {"r": "gate", "z": "gate", "n": "signed", "h": "signed"}
    if cell == "slstm":
        assert kinds["z"] == "signed" and kinds["i"] == kinds["f"] == kinds["o"] == "gate"


def _run_page(data: dict, tmp_path: Path, actions: str) -> dict:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the page's script cannot be run outside a browser")
    render_view(data)  # the page itself is made without complaint
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps(data), "utf-8")
    script = tmp_path / "view.js"
    script.write_text(view_script(), "utf-8")  # every part of the page's script, in order
    action_file = tmp_path / "actions.js"
    action_file.write_text(actions, "utf-8")
    out = subprocess.run(
        [node, str(HARNESS), str(payload), str(script), str(action_file)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


PICK_EVERYTHING = """(() => {
  const out = {ready: document.body.dataset.ready, heads: [], picks: []};
  for (const block of byId["step-grid"].children)
    out.heads.push(block.parts["thead tr"].children.map((th) => th.textContent));
  for (const g of groups) for (const q of g.Q) {
    pick(g.index, q, 1);
    out.picks.push({g: g.index, q, legend: byId.legend.textContent,
                    colours: tokenSpans.map((span) => span.style.background)});
  }
  return out;
})()"""


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(v) for v in css[4:-1].split(","))


@pytest.mark.parametrize("cell", list(CELLS))
def test_page_script_shows_and_colours_every_quantity(cell, tmp_path):
    model, vocab = _language_model(cell)
    data = view_data(model, vocab, TEXT)
    result = _run_page(data, tmp_path, PICK_EVERYTHING)
    assert result["ready"] == "1"
    shorts = [q.short for q in CELL_QUANTITIES[CELLS[cell]]]
    assert result["heads"] == [shorts, shorts]
    assert len(result["picks"]) == 2 * len(shorts)
    T = len(TEXT)
    for picked in result["picks"]:
        group = data["groups"][picked["g"]]
        rule = next(r for r in group["quantities"] if r["short"] == picked["q"])
        decimals = group["values"][picked["q"]]["decimals"]
        values = decode_counts(group, picked["q"], T)[:, 1] / 10**decimals
        scale = colours.colour_scale(rule["kind"], values)
        for css, value in zip(picked["colours"], values, strict=True):
            want = colours.colour(value, scale)
            want_rgb = tuple(int(want[k : k + 2], 16) for k in (1, 3, 5))
            assert max(abs(a - b) for a, b in zip(_rgb(css), want_rgb)) <= 1, (picked["q"], value)
        assert f"{rule['label']} {picked['q']} of cell 1, {group['label']}: " in picked["legend"]
        assert rule["words"][0] in picked["legend"] and rule["words"][1] in picked["legend"]
        if rule["kind"] == "gate":
            assert "closed 0" in picked["legend"] and "1 open" in picked["legend"]


def test_gru_tagger_page_ranks_and_falls_back_to_h(tmp_path):
    """A bidirectional GRU tagger: four groups, the start picks h (no cell c), and asking a
    GRU layer for an LSTM-only quantity colours by its hidden state instead of failing."""
    vocab = Vocabulary.build(["the cat runs", "a dog sleeps"], "word")
    model = SequenceTagger(len(vocab), 5, 6, num_tags=3, num_layers=2, cell="gru", rng=4)
    data = view_data(model, vocab, "the cat runs\na dog sleeps\n", labels=["A", "B", "C"])
    actions = """(() => {
      const start = byId.legend.textContent;
      pick(1, "c", 2);
      const fallback = byId.legend.textContent;
      select(1, 2);
      const picker = byId["pick-quantity"].options.map((o) => o.value);
      return {start, fallback, ranked: byId.ranking.children.length, picker,
              labels: groups.map((g) => g.label)};
    })()"""
    result = _run_page(data, tmp_path, actions)
    assert result["labels"] == [
        "layer 0 forward",
        "layer 0 reverse",
        "layer 1 forward",
        "layer 1 reverse",
    ]
    assert result["start"].startswith("hidden h of cell ")
    assert result["fallback"].startswith("hidden h of cell 2, layer 0 reverse")
    assert result["ranked"] == 4
    assert result["picker"] == ["r", "z", "n", "h"]
