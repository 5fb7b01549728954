"""kioku view's new parts without a browser: two sentences side by side (the seed's lesson:
a bidirectional tagger's first forward layer is exactly the same in both runs up to the
first differing word, its reverse direction differs before it), a tagger that reads
characters, the ranking of cells that switch off, the strip of the picked cell, and the
Japanese page. The page's script runs under Node (tests/view_harness.js)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kioku.cli import main
from kioku.data.vocab import Vocabulary
from kioku.inspect import colours, trace
from kioku.inspect.view import (
    decode_counts,
    rank_cells,
    render_view,
    span_scores,
    view_data,
    view_script,
    write_view,
)
from kioku.inspect.view_text import TEXT
from kioku.models import LanguageModel, SequenceTagger

EAT = "Apple is something that I like to eat."  # the seed's sentence
USE = "Apple is something that I like to use every day."
HARNESS = Path(__file__).with_name("view_harness.js")


def char_tagger(hidden=32, layers=2):
    """A bidirectional tagger that reads characters, random weights; its vocabularies."""
    words = ["Apple is something that I like to eat .", "I use it every day ."]
    vocab = Vocabulary.build(words, "word", tokenizer="ud")
    chars = Vocabulary.build(words, "char")
    model = SequenceTagger(
        len(vocab), 16, hidden, num_tags=3, num_layers=layers, rng=5,
        char_vocab_size=len(chars), char_embed_size=6, char_hidden_size=5,
    )  # fmt: skip
    return model, vocab, chars


def values(data, group, q, start, stop):
    """The page's counts of quantity ``q`` of ``group`` at steps ``start..stop-1``."""
    return decode_counts(group, q, len(data["tokens"]))[start:stop]


def test_compare_shows_the_seeds_lesson():
    model, vocab, chars = char_tagger()
    data = view_data(model, vocab, EAT, char_vocab=chars, compare=USE, labels=["A", "B", "C"])
    words_a = ["Apple", "is", "something", "that", "I", "like", "to", "eat", "."]
    assert data["tokens"] == words_a + ["Apple", "is", "something", "that", "I", "like", "to"] + [
        "use",
        "every",
        "day",
        ".",
    ]
    assert data["starts"] == [0, 9] and data["char_encoder"] == 5
    (pair,) = data["compare"]["pairs"]
    assert (pair["a"], pair["b"], pair["length_a"], pair["length_b"]) == (0, 9, 9, 11)
    first = pair["first"]
    assert first == 7  # "eat" / "use"
    labels = [g["label"] for g in data["groups"]]
    assert labels == ["layer 0 forward", "layer 0 reverse", "layer 1 forward", "layer 1 reverse"]
    forward, reverse = pair["diff"][0], pair["diff"][1]
    # forward, first layer: every quantity exactly the same up to the differing word
    for q, diff in forward.items():
        assert diff[:first] == [0.0] * first, q
    assert forward["h"][first] > 0 and forward["c"][first] > 0
    # reverse: it has read the words after each step, so it differs before "eat", at "Apple"
    assert all(d > 0 for d in reverse["h"][:first])
    assert pair["first_change"][:2] == [first, 0]
    # the page's own values say the same: the forward rows of the two runs are equal
    group_f, group_r = data["groups"][0], data["groups"][1]
    for q in "ifgoch":
        np.testing.assert_array_equal(
            values(data, group_f, q, 0, first), values(data, group_f, q, 9, 9 + first)
        )
    assert not np.array_equal(values(data, group_r, "h", 0, 1), values(data, group_r, "h", 9, 10))
    # and A's values are those of the model run on A alone (to the page's 3 decimals)
    from kioku.data.chars import FormTable

    table = FormTable(chars)
    ids = np.array([vocab.index.get(w, 0) for w in words_a])
    with model.eval_mode(), trace(model) as tr:
        model(ids[:, None], None, table.char_batch(table.ids(words_a)[:, None]))
    word_layers = next(m for m in tr.modules if not m.startswith("char_encoder"))
    for group in data["groups"]:
        record = tr.get(group["layer"], group["direction"], word_layers)
        for q in "ifgoch":
            np.testing.assert_allclose(
                values(data, group, q, 0, 9), np.rint(record.get(q)[:, 0, :] * 1000), atol=1
            )


def test_the_lesson_holds_in_the_model_itself():
    """Without the view: the tagger run on each sentence alone (same length, so the same
    arithmetic), traced. Layer 0 forward: every state equal to the last bit up to "eat" /
    "use" and different there; reverse: different at every step before it, "Apple"
    included."""
    from kioku.data.chars import FormTable

    model, vocab, chars = char_tagger()
    table = FormTable(chars)
    runs = []
    for sentence in (EAT, "Apple is something that I like to use."):
        words = vocab.words(sentence)
        ids = np.array([vocab.index.get(w, 0) for w in words])
        with model.eval_mode(), trace(model) as tr:
            model(ids[:, None], None, table.char_batch(table.ids(words)[:, None]))
        module = next(m for m in tr.modules if not m.startswith("char_encoder"))
        runs.append({d: tr.get(0, d, module) for d in (0, 1)})
    eat, use = runs
    for q in "ifgoch":
        np.testing.assert_array_equal(eat[0].get(q)[:7], use[0].get(q)[:7])
    assert not np.array_equal(eat[0].hidden[7], use[0].hidden[7])
    for t in range(8):
        assert not np.array_equal(eat[1].hidden[t], use[1].hidden[t]), t
        assert not np.array_equal(eat[1].cell[t], use[1].cell[t]), t


def test_compare_with_a_language_model_is_the_same_up_to_the_first_difference():
    text = "def f(x):\n    return x\n"
    vocab = Vocabulary.build(text, "char")
    model = LanguageModel(len(vocab), 6, 24, num_layers=2, rng=3)
    data = view_data(model, vocab, "def f(x): return", compare="def g(x): return x")
    (pair,) = data["compare"]["pairs"]
    assert pair["first"] == 4
    for g in range(2):  # forward only: both layers equal up to "f" / "g", different at it
        for q, diff in pair["diff"][g].items():
            assert diff[:4] == [0.0] * 4, q
        assert pair["diff"][g]["h"][4] > 0
    assert pair["first_change"] == [4, 4]


def test_compare_refuses_unpaired_texts_and_writes_nothing(tmp_path):
    model, vocab, chars = char_tagger(hidden=4, layers=1)
    with pytest.raises(ValueError, match=r"compare: expected as many sentences as text \(2, "):
        write_view(
            model, vocab, EAT + "\nI like it", tmp_path / "v.html", char_vocab=chars, compare=USE
        )
    with pytest.raises(ValueError, match=r"compare: expected some text, found none"):
        write_view(model, vocab, EAT, tmp_path / "v.html", char_vocab=chars, compare=" \n ")
    with pytest.raises(ValueError, match=r"char_vocab: expected the run's character vocabulary"):
        write_view(model, vocab, EAT, tmp_path / "v.html")
    with pytest.raises(ValueError, match=r"lang: expected one of en, ja, found 'fr'"):
        write_view(model, vocab, EAT, tmp_path / "v.html", char_vocab=chars, lang="fr")
    assert list(tmp_path.iterdir()) == []


def test_rank_cells_off():
    scores = np.array([0.5, 2.0, -0.5, -1.0, -1.0])
    assert rank_cells(scores, 3) == [1, 0, 2]
    assert rank_cells(scores, 3, "off") == [3, 4, 2]
    with pytest.raises(ValueError, match="way: expected 'on' or 'off', found 'up'"):
        rank_cells(scores, 3, "up")


def run_page(data: dict, tmp_path: Path, actions: str):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the page's script cannot be run outside a browser")
    render_view(data)
    (tmp_path / "payload.json").write_text(json.dumps(data), "utf-8")
    (tmp_path / "view.js").write_text(view_script(), "utf-8")
    (tmp_path / "actions.js").write_text(actions, "utf-8")
    files = [str(tmp_path / n) for n in ("payload.json", "view.js", "actions.js")]
    out = subprocess.run(
        [node, str(HARNESS), *files],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_page_ranks_off_cells_draws_the_strip_and_the_comparison(tmp_path):
    model, vocab, chars = char_tagger(hidden=12)
    data = view_data(model, vocab, EAT, char_vocab=chars, compare=USE, window=2)
    actions = """(() => {
      rankQ.value = "f";
      select(3, 5);
      const ranked = byId.ranking.children.map((block) => ({
        g: Number(block.dataset.g),
        lists: block.children.filter((c) => c.tagName === "ol").map((ol) =>
          ({way: ol.className, cells: ol.children.map((li) => Number(li.dataset.cell))})),
      }));
      pick(1, "c", 3);
      const strip = byId.strip.children.slice(1).map((row) =>
        ({q: row.dataset.q, colours: row.children.slice(1).map((td) => td.style.background)}));
      const compare = byId.compare.children.map((pair) => {
        const table = pair.children[1];
        return table.children.slice(2).map((row) =>
          ({g: Number(row.dataset.g), shown: row.children.slice(1).map((td) => td.textContent)}));
      });
      return {ranked, strip, compare, legend: byId["strip-legend"].textContent,
              note: byId["char-note"].textContent, hidden: byId["compare-panel"].hidden};
    })()"""
    result = run_page(data, tmp_path, actions)
    T = len(data["tokens"])
    # the off list is the cells whose forget gate drops most inside tokens 3..5
    assert len(result["ranked"]) == 4
    for block in result["ranked"]:
        group = data["groups"][block["g"]]
        scores = span_scores(decode_counts(group, "f", T), 3, 6, 2)
        assert block["lists"] == [
            {"way": "rank-on", "cells": rank_cells(scores, 10, "on")},
            {"way": "rank-off", "cells": rank_cells(scores, 10, "off")},
        ]
    # the strip: one row per quantity of cell 3 of layer 0 reverse, coloured as the plots are
    group = data["groups"][1]
    assert [row["q"] for row in result["strip"]] == list("ifgoch")
    for row, rule in zip(result["strip"], group["quantities"]):
        decimals = group["values"][row["q"]]["decimals"]
        vals = decode_counts(group, row["q"], T)[:, 3] / 10**decimals
        scale = colours.colour_scale(rule["kind"], vals)
        for css, value in zip(row["colours"], vals, strict=True):
            want = colours.colour(value, scale)
            got = tuple(int(v) for v in re.findall(r"\d+", css))
            assert max(abs(a - int(want[k : k + 2], 16)) for a, k in zip(got, (1, 3, 5))) <= 1
    assert "closed 0" in result["legend"] and "1 open" in result["legend"]
    assert "c: negative −" in result["legend"] and "positive" in result["legend"]
    # the comparison: "=" exactly where the two runs are equal
    (rows,) = result["compare"]
    pair = data["compare"]["pairs"][0]
    for row in rows:
        diff = pair["diff"][row["g"]]["h"]
        assert [s == "=" for s in row["shown"]] == [d == 0 for d in diff]
    assert rows[0]["shown"][:7] == ["="] * 7 and "=" not in rows[1]["shown"][:7]
    assert "character encoder is left out" in result["note"] and result["hidden"] is False


def test_japanese_page_says_everything_in_japanese(tmp_path):
    model, vocab, chars = char_tagger(hidden=6, layers=1)
    data = view_data(model, vocab, EAT, char_vocab=chars, compare=USE, lang="ja")
    assert set(TEXT["ja"]) == set(TEXT["en"]) and data["text"] == TEXT["ja"]
    assert [g["label"] for g in data["groups"]] == ["第0層 順方向", "第0層 逆方向"]
    names = {r["short"]: r["label"] for r in data["groups"][0]["quantities"]}
    assert names["f"] == "forgetゲート(忘却ゲート)" and names["c"] == "記憶セル"
    assert names["h"] == "隠れ状態" and names["i"] == "inputゲート(入力ゲート)"
    page = render_view(data)
    assert page.startswith('<!DOCTYPE html>\n<html lang="ja">')
    actions = """(() => {
      select(0, 1);
      const ids = ["help", "colour-help", "howto-title", "step-title", "selection-title",
        "score-help", "strip-title", "compare-title", "compare-help", "compare-lesson",
        "label-colour-by", "label-rank-by", "summary", "legend", "strip-legend", "char-note",
        "strip-info", "sel-info"];
      const shown = {};
      for (const id of ids) shown[id] = byId[id].textContent;
      const body = byId["howto-body"].children;
      shown.howto = body.filter((e) => e.tagName === "p").map((p) => p.textContent);
      shown.diagram_alt = body.filter((e) => e.tagName === "img").map((e) => e.alt);
      shown.ranking = byId.ranking.children[0].children[0].textContent;
      return shown;
    })()"""
    shown = run_page(data, tmp_path, actions)
    japanese = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    for key, text in shown.items():
        texts = text if isinstance(text, list) else [text]
        assert all(japanese.search(t) for t in texts), (key, text)
    assert shown["howto"] == TEXT["ja"]["howto"]
    if data["diagram"] is not None:  # drawn where matplotlib and a Japanese font are
        assert shown["diagram_alt"] == [TEXT["ja"]["diagram_alt"]]
    assert shown["legend"].startswith("第0層 順方向 セル ")
    assert "閉 0" in shown["strip-legend"] and "1 開" in shown["strip-legend"]
    assert shown["step-title"].startswith('ステップ 0 / 20: "Apple"')


TAGS = [("Apple", "PROPN"), ("is", "AUX"), ("something", "PRON"), ("that", "PRON")]
TAGS += [("I", "PRON"), ("like", "VERB"), ("to", "PART"), ("eat", "VERB"), (".", "PUNCT")]


def test_cli_compare_on_a_trained_char_tagger(tmp_path, capsys):
    rows = []
    for s in range(20):
        rows.append(f"# sent_id = {s}")
        rows += [f"{i}\t{w}\t{w}\t{t}\t_\t_\t0\tdep\t_\t_" for i, (w, t) in enumerate(TAGS, 1)]
        rows.append("")
    data = tmp_path / "tags.conllu"
    data.write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    argv = ["train", "--task", "tag", "--data", str(data), "--out", str(run), "--max-steps", "3"]
    argv += ["--hidden", "8", "--embed", "8", "--batch-size", "4", "--no-progress"]
    assert main(argv) == 0  # the tag preset's default: words and their characters
    capsys.readouterr()
    (tmp_path / "a.txt").write_text(EAT + "\n")
    (tmp_path / "b.txt").write_text("Apple is something that I like to use.\n")
    out = tmp_path / "cmp.html"
    command = ["view", str(run), "--text", str(tmp_path / "a.txt"), "--out", str(out)]
    assert main([*command, "--compare", str(tmp_path / "b.txt"), "--lang", "ja"]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith(f"wrote {out} (18 tokens, 2 sentences, ")
    assert said[1:] == [
        "the character encoder is left out: the page shows the word-level layers",
        "compared sentence 1: first difference at word 7",
    ]
    page = out.read_text("utf-8")
    payload = json.loads(re.search(r'id="kioku-data">(.*?)</script>', page, re.S).group(1))
    assert payload["lang"] == "ja" and payload["char_encoder"] is not None
    (pair,) = payload["compare"]["pairs"]
    assert all(d == 0 for d in pair["diff"][0]["h"][:7]) and pair["diff"][0]["h"][7] > 0
    assert all(d > 0 for d in pair["diff"][1]["h"][:7])

    bad = tmp_path / "bad.html"
    (tmp_path / "two.txt").write_text("I like it\nI eat it\n")
    assert main(["view", str(run), "--text", str(tmp_path / "a.txt"), "--out", str(bad),
                 "--compare", str(tmp_path / "two.txt")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (
        "compare: expected as many sentences as text (1, line k compared with line k), found 2"
        in err
    )
    assert not bad.exists()
