"""kioku.inspect.view and ``kioku view`` without a browser: the page's payload against the
trace, a page that loads nothing from outside, the selection score, and bad inputs."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from kioku.cli import main
from kioku.data.tokenize import sentence_words
from kioku.data.vocab import Vocabulary
from kioku.inspect import trace
from kioku.inspect.view import (
    MAX_VIEW_TOKENS,
    decode_counts,
    quantize,
    rank_cells,
    render_view,
    span_scores,
    view_data,
    write_view,
)
from kioku.models import LanguageModel, SequenceTagger

TEXT = 'def f(x):\n    return "</script>" + x  # <b>&amp;\n'


def reference(model, ids):
    """Every (layer, direction)'s quantities as ``(T, H)`` float64, traced here."""
    with trace(model) as tr:
        model(ids[:, None])
    return {
        (layer, direction): {
            q: tr.get(layer, direction, module).get(q)[:, 0, :].astype(np.float64) for q in "ifgoch"
        }
        for module, layer, direction in tr.keys()
    }


def char_model(proj_size=0):
    vocab = Vocabulary.build(TEXT, "char")
    model = LanguageModel(len(vocab), 6, 8, num_layers=2, proj_size=proj_size, rng=3)
    return model, vocab


def page_payload(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="kioku-data">(.*?)</script>', page, re.S)
    assert found is not None
    return json.loads(found.group(1))


@pytest.mark.parametrize("proj_size", [0, 5])
def test_payload_is_the_trace_rounded(proj_size):
    model, vocab = char_model(proj_size)
    data = view_data(model.train(), vocab, TEXT)
    assert model.training  # left as it was
    model.eval()
    ids = np.array([vocab.index[c] for c in TEXT])
    ref = reference(model, ids)
    assert data["tokens"] == list(TEXT) and data["unknown"] == []
    assert [(g["layer"], g["direction"]) for g in data["groups"]] == [(0, 0), (1, 0)]
    for group in data["groups"]:
        assert group["size"] == 8 and group["hidden_size"] == (proj_size or 8)
        for q in "ifgoch":
            assert group["values"][q]["decimals"] == 3
            counts = decode_counts(group, q, len(TEXT))
            expected = np.rint(ref[group["layer"], group["direction"]][q] * 1000)
            assert counts.shape == expected.shape
            np.testing.assert_array_equal(counts, expected)
    # the model's own next-token predictions, in order
    logits, _ = model(ids[:, None])
    top = np.argsort(-logits[:, 0, :], axis=1, kind="stable")[:, :3]
    assert data["outputs"]["kind"] == "next token"
    np.testing.assert_array_equal(data["outputs"]["top"], top)


def test_bidirectional_tagger_reads_each_sentence_alone_as_predict_does():
    """One sentence per line, split by the run's tokenizer as kioku predict splits it
    (``sleeps.`` -> ``sleeps`` ``.``), each run alone from a zero state: no ``<eos>``."""
    vocab = Vocabulary.build(["the cat runs .", "a dog sleeps ."], "word", tokenizer="ud")
    model = SequenceTagger(len(vocab), 5, 6, num_tags=3, num_layers=2, rng=4)
    text = "the cat sleeps.\n\n  a zebra runs\n"
    data = view_data(model, vocab, text, labels=["DET", "NOUN", "VERB"])
    lines = [line for line in text.splitlines() if line.strip()]
    sentences = sentence_words(lines, vocab.words)  # what Predictor.tag reads
    assert sentences == [["the", "cat", "sleeps", "."], ["a", "zebra", "runs"]]
    assert data["tokens"] == sentences[0] + sentences[1] and data["starts"] == [0, 4]
    assert data["unknown"] == [5]  # read as <unk>, as the tagger was trained
    assert [g["label"] for g in data["groups"]][:2] == ["layer 0 forward", "layer 0 reverse"]
    refs, tags = [], []
    for words in sentences:
        ids = np.array([vocab.index.get(w, 0) for w in words])
        refs.append(reference(model, ids))
        tags.append(model(ids[:, None])[:, 0, :].argmax(axis=1))
    keys = [(g["layer"], g["direction"]) for g in data["groups"]]
    assert keys == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for group in data["groups"]:
        for q in "ifgoch":
            expected = np.concatenate([ref[group["layer"], group["direction"]][q] for ref in refs])
            np.testing.assert_array_equal(
                decode_counts(group, q, len(data["tokens"])), np.rint(expected * 1000)
            )
    assert data["outputs"]["kind"] == "tag" and data["outputs"]["labels"] == ["DET", "NOUN", "VERB"]
    np.testing.assert_array_equal([top[0] for top in data["outputs"]["top"]], np.concatenate(tags))
    # the joined text would give other states: the reverse direction at "sleeps" reads "a ..."
    joined = reference(
        model, np.array([vocab.index.get(w, 0) for w in sentences[0] + sentences[1]])
    )
    assert not np.allclose(joined[0, 1]["h"][:4], refs[0][0, 1]["h"])


def test_page_is_self_contained(tmp_path):
    model, vocab = char_model()
    summary = write_view(model, vocab, TEXT, tmp_path / "view.html", title="a <title>")
    page = (tmp_path / "view.html").read_text("utf-8")
    assert summary["bytes"] == len(page.encode()) and summary["tokens"] == len(TEXT)
    for banned in ("http://", "https://", "src=", "href=", "url(", "@import", "//cdn"):
        assert banned not in page.lower(), banned
    assert "default-src 'none'" in page  # the browser itself refuses any load
    assert "KIOKU_VIEW" not in page  # every part put in its place
    assert '<meta charset="utf-8">' in page  # file:// has no server to name the encoding
    # the text's own "</script>" cannot end the data element early
    assert page.count("</script>") == 2
    payload = page_payload(page)
    assert payload == view_data(model, vocab, TEXT, title="a <title>")
    assert "".join(payload["tokens"]) == TEXT


def test_page_size_stays_small():
    model, vocab = char_model()
    text = TEXT * 20
    data = view_data(model, vocab, text, max_tokens=len(text))
    page = render_view(data)
    # 2 bytes per value in base64 (x4/3): 6 quantities x 8 cells x 2 layers per token;
    # the token and the model's top 3 predictions with 3-decimal odds: < 60 bytes a token;
    # and, once per page, the drawing of the cell (where matplotlib draws it)
    values_bytes = len(text) * 6 * 8 * 2 * 2 * 4 / 3
    drawing = len(data["diagram"] or "")
    assert len(page.encode()) < values_bytes + 20_000 + 60 * len(text) + drawing


def test_the_page_shows_its_cells_drawing():
    pytest.importorskip("matplotlib")
    from kioku.inspect.diagrams import svg_data_uri

    model, vocab = char_model()
    data = view_data(model, vocab, TEXT)
    assert data["diagram"] == svg_data_uri("lstm_step", "en")
    assert data["diagram"].startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(data["diagram"].split(",", 1)[1]).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "forget" in svg.lower()
    assert 'id="cell-diagram"' not in render_view(data)  # the script adds it, not the HTML


def test_max_tokens_cuts_the_text():
    model, vocab = char_model()
    data = view_data(model, vocab, TEXT, max_tokens=7)
    assert data["tokens"] == list(TEXT[:7])
    assert decode_counts(data["groups"][1], "c", 7).shape == (7, 8)


@pytest.mark.parametrize(
    "value, error",
    [
        (0, ValueError),
        (-3, ValueError),
        (MAX_VIEW_TOKENS + 1, ValueError),
        (1.5, TypeError),
        (True, TypeError),
        ("10", TypeError),
    ],
)
def test_bad_max_tokens_is_refused_and_writes_nothing(tmp_path, value, error):
    model, vocab = char_model()
    with pytest.raises(error, match=r"max_tokens: expected an integer.*found"):
        write_view(model, vocab, TEXT, tmp_path / "view.html", max_tokens=value)
    assert list(tmp_path.iterdir()) == []


def test_a_page_too_large_is_refused(tmp_path, monkeypatch):
    import kioku.inspect.view as view

    model, vocab = char_model()
    per_token = 2 * (5 * 8 + 8) * 8 // 3  # two layers of 8 cells: 128 bytes a token
    monkeypatch.setattr(view, "MAX_PAGE_BYTES", 20 * per_token)
    assert len(view_data(model, vocab, TEXT, max_tokens=20)["tokens"]) == 20
    with pytest.raises(ValueError, match=r"max_tokens: 30 tokens .* expected at most 20, found 30"):
        write_view(model, vocab, TEXT, tmp_path / "view.html", max_tokens=30)
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_are_named(tmp_path):
    model, vocab = char_model()
    seen = view_data(model, vocab, "def\nf é")  # unseen: read as <unk>, marked
    assert seen["tokens"][-1] == "é" and seen["unknown"] == [len(seen["tokens"]) - 1]
    with pytest.raises(ValueError, match="text: expected some text"):
        view_data(model, vocab, "")
    with pytest.raises(ValueError, match="window: expected an integer between 1 and"):
        view_data(model, vocab, TEXT, window=0)
    with pytest.raises(ValueError, match="out: expected a file path"):
        write_view(model, vocab, TEXT, tmp_path)
    with pytest.raises(ValueError, match="model: expected a model that reads token ids"):
        from kioku.models import Forecaster

        view_data(Forecaster(1, 4, rng=0), vocab, TEXT)
    assert list(tmp_path.iterdir()) == []


def test_quantize_keeps_large_cells_in_16_bits():
    counts, decimals = quantize(np.array([0.25, -0.0005, 0.0015, 1.0]))
    assert decimals == 3 and counts.tolist() == [250, 0, 2, 1000]  # half to even
    counts, decimals = quantize(np.array([[-40.123, 3.14159]]))
    assert decimals == 2 and counts.tolist() == [[-4012, 314]]
    with pytest.raises(ValueError, match="too large"):
        quantize(np.array([40000.0]))
    with pytest.raises(ValueError, match="finite"):
        quantize(np.array([np.nan]))


def test_span_scores_against_a_loop(rng):
    counts = rng.integers(-1000, 1000, size=(30, 7)).astype(np.int16)
    for start, stop, window in [(10, 15, 3), (0, 4, 5), (25, 30, 2), (0, 30, 4), (3, 4, 1)]:
        expected = np.zeros(7)
        for j in range(7):
            inside = [int(counts[t, j]) for t in range(start, stop)]
            outside = [
                int(counts[t, j])
                for t in range(start - window, stop + window)
                if 0 <= t < 30 and not start <= t < stop
            ]
            expected[j] = np.mean(inside) - (np.mean(outside) if outside else 0.0)
        np.testing.assert_allclose(span_scores(counts, start, stop, window), expected, rtol=1e-12)
    assert rank_cells(np.array([0.5, 2.0, 0.5, -1.0]), 3) == [1, 0, 2]
    with pytest.raises(ValueError, match="start/stop"):
        span_scores(counts, 5, 5, 2)


SMALL = ["--hidden", "8", "--embed", "6", "--layers", "2", "--bptt", "16", "--batch-size", "4"]
SMALL += ["--eval-tokens", "200", "--no-progress"]


def test_cli_view(tmp_path, capsys):
    data = tmp_path / "code.py"
    data.write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(40)))
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--max-steps", "2", *SMALL]) == 0
    capsys.readouterr()
    text = tmp_path / "text.py"
    text.write_text("def f1(x):\n    return x + 1\n")
    out = tmp_path / "view.html"
    assert main(["view", str(run), "--text", str(text), "--out", str(out)]) == 0
    assert f"wrote {out} (28 tokens, layer 0 forward, layer 1 forward;" in capsys.readouterr().out
    assert "".join(page_payload(out.read_text("utf-8"))["tokens"]) == text.read_text()

    bad = tmp_path / "bad.html"
    assert (
        main(["view", str(run), "--text", str(text), "--out", str(bad), "--max-tokens", "0"]) == 2
    )
    assert "max_tokens: expected an integer between 1 and 20000, found 0" in capsys.readouterr().err
    assert main(["view", str(tmp_path / "nope"), "--text", str(text), "--out", str(bad)]) == 2
    assert "is not a readable kioku checkpoint" in capsys.readouterr().err
    assert main(["view", str(run), "--text", str(tmp_path / "none.txt"), "--out", str(bad)]) == 2
    assert "none.txt: no such file" in capsys.readouterr().err
    assert not bad.exists()
