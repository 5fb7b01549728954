"""``kioku.load(path).predict(...)``: raw texts, words and series in, labels, tags and
values out, from the run's best checkpoint; wrong input refused naming the argument."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from tolerance import assert_close, recurrent_depth
from trained_runs import train_all

import kioku
from kioku.data.atomic import read_json
from kioku.train.checkpoint import CheckpointError

OLD_RUNS = Path(__file__).parent / "fixtures" / "main_checkpoints"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_all(tmp_path_factory.mktemp("api"))


@pytest.mark.slow
def test_load_takes_the_best_checkpoint(trained):
    _, runs = trained
    for task, run in runs.items():
        predictor = kioku.load(run)
        best = run / read_json(run / "best.json")["checkpoint"]
        assert predictor.checkpoint == best and predictor.kind == task
        latest = run / read_json(run / "latest.json")["checkpoint"]
        assert kioku.load(run, "latest").checkpoint == latest
        assert kioku.load(best).checkpoint == best  # a checkpoint folder itself
    with pytest.raises(ValueError, match=r"which: expected 'best' or 'latest', found 'last'"):
        kioku.load(runs["lm"], "last")


@pytest.mark.slow
def test_classifier_labels_texts_batched_or_one(trained):
    data, runs = trained
    classifier = kioku.load(runs["classify"])
    pairs = [line.split("\t") for line in data["classify"].read_text().splitlines()]
    texts, gold = [t for _, t in pairs], [label for label, _ in pairs]
    labels = classifier.predict(texts, batch_size=7)
    assert labels == classifier.predict(texts, batch_size=200)  # batching changes nothing
    assert np.mean(np.array(labels) == gold) > 0.9  # the words decide the label
    assert classifier.predict(texts[0]) == labels[0]
    assert classifier.predict_proba(texts[0]).shape == (1, 2)
    probs = classifier.predict_proba(texts[:5])
    assert probs.shape == (5, 2) and np.allclose(probs.sum(1), 1)
    with pytest.raises(TypeError, match=r"texts\[1\]: expected str, found int"):
        classifier.predict(["fine", 3])
    with pytest.raises(ValueError, match=r"horizon: applies to forecasts, not to task classify"):
        classifier.predict("fine", horizon=2)
    with pytest.raises(TypeError, match=r"needs a tag model, found a classify model"):
        classifier.tag("fine")


@pytest.mark.slow
def test_tagger_tags_words_one_per_word(trained):
    data, runs = trained
    tagger = kioku.load(runs["tag"])
    sentences = [line for line in data["tag"].read_text().split("\n\n") if line.strip()]
    words, gold = [], []
    for block in sentences:
        rows = [r.split("\t") for r in block.splitlines() if not r.startswith("#")]
        words.append([r[1] for r in rows])
        gold.append([r[3] for r in rows])
    tags = tagger.predict(words)
    assert [len(t) for t in tags] == [len(w) for w in words]
    flat = [t == g for ts, gs in zip(tags, gold) for t, g in zip(ts, gs)]
    assert np.mean(flat) > 0.8
    assert tagger.predict(" ".join(words[0])) == tags[0]
    with pytest.raises(ValueError, match=r"sentences\[0\]: expected at least one word"):
        tagger.predict([""])
    with pytest.raises(TypeError, match=r"sentences\[1\]: expected a str or a list of words"):
        tagger.predict(["the cat", 7])


@pytest.mark.slow
def test_language_model_scores_texts(trained):
    _, runs = trained
    model = kioku.load(runs["lm"])
    one, two = model.predict(["def f1(x):\n", "    return x\n"])
    assert len(one.tokens) == len("def f1(x):\n") - 1 and one.bits.shape == (10,)
    assert one.perplexity == pytest.approx(2**one.bits_per_token)
    alone = model.predict("    return x\n")
    config = model.model.config()  # padding changes nothing, to float32 rounding:
    E, H, L = config["embed_size"], config["hidden_size"], config["num_layers"]
    depth = recurrent_depth(len(one.tokens) + 1, max(E, H), H, L, batch=2)
    depth += H + config["vocab_size"]  # the output layer, the softmax's sum
    assert_close("bits", alone.bits, two.bits, depth)


@pytest.mark.slow
def test_forecaster_in_units_and_longer_horizons(trained):
    data, runs = trained
    forecaster = kioku.load(runs["forecast"])
    values = np.loadtxt(data["forecast"], delimiter=",", skiprows=1)[:, 1]
    assert forecaster.columns == ["units"] and forecaster.window == 14
    out = forecaster.predict(values)  # (N,) for one column
    assert out.shape == (3, 1) and 60 < out.min() and out.max() < 140
    longer = forecaster.predict(values[:, None], horizon=7)
    np.testing.assert_allclose(longer[:3], out, rtol=1e-6)
    both = forecaster.predict([values[:-5], values], batch_size=2)
    np.testing.assert_allclose(both[1], out, rtol=1e-6)
    with pytest.raises(ValueError, match=r"series\[0\]: expected shape \(N, 1\)"):
        forecaster.predict(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"series\[0\]: expected finite numbers"):
        forecaster.predict(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"horizon: expected an integer >= 1, found 0"):
        forecaster.predict(values, horizon=0)


def test_old_forecast_checkpoint_without_scaling_is_named(tmp_path):
    run = tmp_path / "forecast"
    shutil.copytree(OLD_RUNS / "forecast", run)
    with pytest.raises(CheckpointError, match=r"checkpoint.json: field 'task.mean': missing"):
        kioku.load(run)
    assert kioku.load(shutil.copytree(OLD_RUNS / "tag", tmp_path / "tag")).kind == "tag"
