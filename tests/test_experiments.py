"""kioku.experiments: the generated tasks, the forget-gate hook, and the quick mode's
claims (one run of ``kioku experiments --quick``, under a minute here; deselect with
``-k 'not quick_mode'``)."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest

from kioku.experiments import claims, run_experiments
from kioku.experiments.adding import (
    CONTENDERS,
    TOLERANCE,
    LastStepRegressor,
    adding_batch,
    gradient_curves,
)
from kioku.experiments.common import Budget
from kioku.experiments.direction import AMBIGUOUS, COMPANY, THING, ambiguous_sentences
from kioku.experiments.direction import run as run_direction
from kioku.experiments.forgetting import (
    SYMBOLS,
    StreamTagger,
    hold_forget_gate_open,
    recall_stream,
)
from kioku.inspect import trace
from kioku.nn.loss import mse, softmax_cross_entropy
from kioku.train import Adam


def test_adding_batch_follows_the_1997_definition(rng):
    x, target = adding_batch(rng, 200, 30)
    assert x.shape == (30, 200, 2) and target.shape == (200,)
    marks = x[:, :, 1]
    np.testing.assert_array_equal(marks.sum(axis=0), 2)
    first = marks.argmax(axis=0)
    second = 29 - marks[::-1].argmax(axis=0)
    assert first.max() < 10 and second.min() >= 15
    values = x[:, :, 0]
    assert values.min() >= -1 and values.max() <= 1
    expected = 0.5 + (values[first, np.arange(200)] + values[second, np.arange(200)]) / 4
    np.testing.assert_allclose(target, expected, rtol=1e-6)
    assert TOLERANCE == 0.04


def test_last_step_regressor_gradients(rng):
    """The regressor's backward puts the head's gradient on the last step only."""
    model = LastStepRegressor("rnn", 2, 5, rng)
    x, _ = adding_batch(rng, 3, 8)
    pred = model(x)
    model.backward(np.ones_like(pred))
    w = model.head.params["weight"]
    grad = model.recurrent.grads["weight_ih_l0"].copy()
    eps = 1e-2
    w_ih = model.recurrent.params["weight_ih_l0"]
    w_ih[0, 0] += eps
    up = model(x).sum()
    w_ih[0, 0] -= 2 * eps
    down = model(x).sum()
    w_ih[0, 0] += eps
    assert grad[0, 0] == pytest.approx((up - down) / (2 * eps), rel=1e-2, abs=1e-4)
    assert w.shape == (1, 5)
    with pytest.raises(ValueError, match="kind: expected one of rnn, gru, lstm, slstm"):
        LastStepRegressor("transformer", 2, 5, rng)


@pytest.mark.parametrize("kind", sorted(CONTENDERS))
def test_every_contender_regresses_and_reports_the_gradient_at_every_step(rng, kind):
    """The input gradient that the table's "reaching step 0" column reads is the true
    dL/dx (central differences on one input), for every kind of layer."""
    model = LastStepRegressor(kind, 2, 6, rng)
    x, target = adding_batch(rng, 4, 12)
    _, dpred = mse(model(x), target)
    dx = model.backward(dpred, need_dx=True)
    model.zero_grad()
    assert dx.shape == x.shape
    eps = 1e-2
    for t in (0, 11):
        x[t, 1, 0] += eps
        up = mse(model(x), target)[0]
        x[t, 1, 0] -= 2 * eps
        down = mse(model(x), target)[0]
        x[t, 1, 0] += eps
        assert dx[t, 1, 0] == pytest.approx((up - down) / (2 * eps), rel=2e-2, abs=1e-7)
    curves = gradient_curves(model, 12, 0)
    assert len(curves["dx"]) == 12 and all(v > 0 for v in curves["dx"])
    if kind in ("rnn", "lstm"):  # layers kioku.inspect hooks (the GRU and sLSTM: on main)
        assert len(curves["dh"]) == 12
    if kind == "lstm":
        assert len(curves["dc"]) == 12
    if kind in ("rnn", "gru"):  # no cell state
        assert "dc" not in curves


def test_recall_stream_targets_are_the_stored_symbols(rng):
    x, targets, query = recall_stream(rng, 3, 300)
    assert x.shape == (300, 3, SYMBOLS + 2)
    for b in range(3):
        stored = None
        for t in range(300):
            if x[t, b, SYMBOLS]:
                stored = int(x[t, b, :SYMBOLS].argmax())
            if query[t, b]:
                assert x[t, b, SYMBOLS + 1] == 1 and targets[t, b] == stored
                stored = None
    assert query.sum() >= 3 * (300 // 24)


def test_forget_gate_held_open_stays_exactly_one(rng):
    model = StreamTagger(6, rng)
    hold_forget_gate_open(model.lstm)
    opt = Adam(model.parameters(), lr=0.05)
    x, targets, query = recall_stream(rng, 4, 60)
    for _ in range(3):
        logits, _ = model(x)
        _, dlogits = softmax_cross_entropy(logits, targets, mask=query)
        model.backward(dlogits.astype(np.float32))
        # sigmoid's slope at the pinned bias is 0 (or ~1e-9 with a fast kernel's tanh)
        assert np.abs(model.lstm.grads["bias_ih_l0"][6:12]).max() < 1e-6
        opt.step()
        model.zero_grad()
        hold_forget_gate_open(model.lstm)
    with trace(model) as tr:
        model(x)
    assert (tr.get().forget_gate == 1.0).all()
    assert (tr.get().input_gate < 1.0).any()


def test_ambiguous_sentences_tag_by_the_later_context(rng):
    for words, tags in ambiguous_sentences(rng, 200):
        (position,) = [k for k, t in enumerate(tags) if t]
        assert words[position] in AMBIGUOUS and position <= 2
        later = words[position + 1 :]
        sense = 1 if any(w in COMPANY for w in later) else 2
        assert tags[position] == sense
        assert any(w in (COMPANY if sense == 1 else THING) for w in later)


CONLLU = """# sent_id = {k}
1\t{a}\t{a}\tDET\t_\t_\t2\tdet\t_\t_
2\t{b}\t{b}\tNOUN\t_\t_\t3\tnsubj\t_\t_
3\truns\trun\tVERB\t_\t_\t0\troot\t_\t_

"""


def test_direction_on_a_conllu_file(tmp_path):
    pytest.importorskip("conllu")
    path = tmp_path / "tiny.conllu"
    words = [("the", "dog"), ("a", "cat"), ("the", "bird")]
    path.write_text("".join(CONLLU.format(k=k, a=a, b=b) for k, (a, b) in enumerate(words * 10)))
    result = run_direction(Budget(True), 0, str(path), log=lambda s: None)["conllu"]
    assert result["tags"] == ["DET", "NOUN", "VERB"]
    assert result["train_sentences"] == 27 and result["test_sentences"] == 3
    for model in result["models"].values():
        assert model["token_accuracy"] == 1.0  # a trivially learnable treebank


def test_claims_and_bad_arguments(tmp_path):
    runs = [{"model": "lstm", "T": 50, "test_accuracy": 0.94}]
    results = {
        "adding": {"runs": runs},
        "direction": {
            "generated": {
                "models": {
                    "unidirectional": {"ambiguous_word_accuracy": 0.5},
                    "bidirectional": {"ambiguous_word_accuracy": 0.9},
                }
            }
        },
    }
    assert list(claims(results).values()) == [False, True]
    reach = {"rnn": 1e-12, "gru": 1e-9, "lstm": 1e-6, "slstm": 2e-9}
    runs[:] = [
        {"model": k, "T": 50, "test_accuracy": 0.96, "dx_step0": v} for k, v in reach.items()
    ]
    assert list(claims(results).values()) == [True, True, True]
    runs[3]["dx_step0"] = 9e-10  # the sLSTM's gradient only 900x the RNN's
    assert list(claims(results).values()) == [True, False, True]
    with pytest.raises(ValueError, match="only: expected names"):
        run_experiments(tmp_path, only=("adding", "colour"))
    with pytest.raises(FileNotFoundError, match="conllu"):
        run_experiments(tmp_path, conllu=tmp_path / "none.conllu")


def test_experiments_command_bad_arguments(tmp_path, capsys):
    from kioku.cli import main

    assert main(["experiments", "--quick", "--out", str(tmp_path), "--only", "colour"]) == 2
    assert "kioku experiments: error: only: expected names" in capsys.readouterr().err
    argv = ["experiments", "--out", str(tmp_path), "--conllu", str(tmp_path / "x.conllu")]
    assert main(argv) == 2
    assert "conllu: " in capsys.readouterr().err
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\tword\n\n")  # 2 columns, not 10
    argv = ["experiments", "--quick", "--out", str(tmp_path), "--only", "direction"]
    assert main(argv + ["--conllu", str(bad)]) == 2
    assert "bad.conllu" in capsys.readouterr().err


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.open = [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    pytest.importorskip("matplotlib")
    from kioku.cli import main

    out = tmp_path_factory.mktemp("quick")
    status = main(["experiments", "--quick", "--out", str(out)])
    return status, out


@pytest.mark.slow
def test_quick_mode_claims_and_report(quick_results):
    import base64
    import io

    from PIL import Image

    status, out = quick_results
    results = json.loads((out / "results.json").read_text())
    assert status == 0 and all(results["claims"].values()), results["claims"]
    runs = {r["model"]: r for r in results["adding"]["runs"]}
    assert sorted(runs) == ["gru", "lstm", "rnn", "slstm"]
    assert runs["lstm"]["T"] == 50 and runs["lstm"]["test_accuracy"] >= 0.95
    assert runs["rnn"]["test_accuracy"] < 0.5  # near the 16% of guessing 0.5
    for kind in ("gru", "slstm"):  # the other gated cells learn it too, on a quick budget
        assert runs[kind]["test_accuracy"] > 0.8, runs[kind]
        assert runs[kind]["dx_step0"] > 1e6 * runs["rnn"]["dx_step0"]
        recurrent = runs[kind]["parameters"] - runs[kind]["hidden_size"] - 1  # less the head
        assert 4400 <= recurrent <= 4600  # sizes comparable with the LSTM's 4,608
    gen = results["direction"]["generated"]["models"]
    assert (
        gen["bidirectional"]["ambiguous_word_accuracy"]
        > gen["unidirectional"]["ambiguous_word_accuracy"]
    )
    grads = results["adding"]["gradients"]
    # the gradient of the last step's loss reaching step 0: the LSTM keeps far more of it
    assert grads["lstm trained"]["dh"][0] > 100 * grads["rnn trained"]["dh"][0]
    assert [r["layers"] for r in results["depth"]["runs"]] == [1, 2, 3]
    assert results["seconds"] < 180
    page = Page()
    page.feed((out / "report.html").read_text())
    page.close()
    assert len(page.images) == 7  # adding (4), forgetting, depth, direction
    html = (out / "report.html").read_text()
    assert "only the later words tell the fruit from the company" in html  # each study explained
    assert "Caveat: depth (quick): 100 updates of 48-cell models are too short" in html
    for src in page.images:
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        image.load()
        assert image.size[0] > 100
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quick_depth_figures_carry_a_caveat_and_full_ones_none():
    from kioku.experiments.report import caveats

    runs = [
        {"layers": n, "updates": 100, "hidden_size": 48, "valid_bits_per_char": bits}
        for n, bits in [(1, 3.35), (2, 3.856), (3, 4.161)]
    ]
    (line,) = caveats({"quick": True, "depth": {"runs": runs}})
    assert "too short to carry the stacking claim" in line
    assert "3.350 / 3.856 / 4.161 for 1/2/3 layers" in line
    assert caveats({"quick": False, "depth": {"runs": runs}}) == []
    assert caveats({"quick": True}) == []  # no depth runs: nothing to say
