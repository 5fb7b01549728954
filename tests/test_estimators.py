"""kioku.Classifier, Tagger and LanguageModel: the example of issue 26 end to end on tiny
data in memory, save -> kioku.load -> predict equal to the estimator's own, every
command reading a saved estimator, settings checked as the command checks them."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

import kioku
from kioku.cli import main

POSITIVE = ["good fine great", "lovely nice film", "great acting good", "a fine film"]
NEGATIVE = ["bad awful poor", "terrible boring film", "poor plot bad", "an awful film"]
TINY = {"hidden": 8, "embed": 8, "batch_size": 8}


def reviews(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        texts.append(rng.choice(POSITIVE if label == "pos" else NEGATIVE))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """The issue's example: fit with validation data, evaluate, save."""
    train, dev, test = reviews(80, 0), reviews(20, 1), reviews(20, 2)
    clf = kioku.Classifier(cell="lstm", **TINY)
    history = clf.fit(*train, validation_data=dev, epochs=4, verbose=0)
    folder = tmp_path_factory.mktemp("est") / "runs" / "clf"
    clf.save(folder)
    return clf, history, folder, test


def test_fit_returns_a_keras_history_that_reads_as_the_estimator(fitted):
    clf, history, _, _ = fitted
    assert history.epoch == [1, 2, 3, 4]
    for key in ("loss", "val_loss", "val_accuracy", "lr"):
        assert len(history.history[key]) == 4, key
    assert history.model is clf
    assert history.predict(["a fine film"]) == clf.predict(["a fine film"])  # reads as clf
    # the figures are those of the run's log (one validation per epoch)
    log = [json.loads(line) for line in (clf.out_ / "log.jsonl").read_text().splitlines()]
    valid = [r for r in log if r["split"] == "valid"]
    assert history.history["val_loss"] == [r["loss"] for r in valid]
    assert history.history["loss"] == [r["train_loss"] for r in valid]


def test_evaluate_gives_accuracy_and_loss_as_measured_by_hand(fitted):
    clf, _, _, (texts, labels) = fitted
    figures = clf.evaluate(texts, labels)
    assert list(figures)[:2] == ["accuracy", "loss"]
    probs = clf.predict_proba(texts)
    truth = np.array([clf.labels.index(y) for y in labels])
    assert figures["accuracy"] == pytest.approx(float((probs.argmax(1) == truth).mean()))
    nll = -np.log(probs[np.arange(len(truth)), truth]).mean()
    assert figures["loss"] == pytest.approx(nll, rel=1e-4)
    assert figures["accuracy"] >= 0.8  # the two kinds of review are told apart


def test_saved_estimator_loads_and_predicts_the_same(fitted):
    clf, _, folder, (texts, _) = fitted
    loaded = kioku.load(folder)
    assert loaded.predict(["a new review"]) == clf.predict(["a new review"])
    assert loaded.predict(texts) == clf.predict(texts)
    np.testing.assert_array_equal(loaded.predict_proba(texts), clf.predict_proba(texts))
    assert (folder / "settings.toml").is_file() and (folder / "best.json").is_file()


def test_every_command_reads_a_saved_estimator(fitted, tmp_path, capsys):
    clf, _, folder, (texts, labels) = fitted
    assert main(["info", str(folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == clf.model.num_parameters()
    data = tmp_path / "test.tsv"
    data.write_text("".join(f"{y}\t{x}\n" for x, y in zip(texts, labels)))
    assert main(["eval", str(folder), "--data", str(data), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["accuracy"] == pytest.approx(clf.evaluate(texts, labels)["accuracy"])
    assert record["loss"] == pytest.approx(clf.evaluate(texts, labels)["loss"], rel=1e-6)


def test_save_refuses_an_existing_folder_unless_told(fitted, tmp_path):
    clf, _, _, _ = fitted
    target = tmp_path / "taken"
    target.mkdir()
    with pytest.raises(FileExistsError, match="path .*taken: exists"):
        clf.save(target)
    clf.save(target, overwrite=True)
    assert kioku.load(target).predict(["a fine film"]) == clf.predict(["a fine film"])


def test_summary_lists_layers_shapes_and_the_parameter_count(fitted, capsys):
    clf, _, _, _ = fitted
    text = clf.summary()
    assert text == capsys.readouterr().out.rstrip("\n")
    assert f"Total params: {clf.model.num_parameters():,}" in text
    assert "lstm (LSTM)" in text and "(T, B, 8)" in text and "(B, 2)" in text
    counts = [int(line.split()[-1].replace(",", "")) for line in text.splitlines()[4:9]]
    assert sum(counts) == clf.model.num_parameters()


def test_settings_are_checked_as_the_command_checks_them():
    # the command's words: "kioku train: --hidden: expected an integer >= 1, found 0"
    with pytest.raises(ValueError, match=r"^hidden: expected an integer >= 1, found 0$"):
        kioku.Classifier(hidden=0)
    with pytest.raises(ValueError, match=r"^dropout: expected \[0, 1\), found 1$"):
        kioku.Tagger(dropout=1)
    with pytest.raises(ValueError, match="window 5: applies to task forecast, not to task class"):
        kioku.Classifier(window=5)
    with pytest.raises(TypeError, match=r"Classifier: expected fields of TrainSettings.*'hiden'"):
        kioku.Classifier(hiden=8)
    with pytest.raises(ValueError, match="cell: expected one of .*found 'lstmm'"):
        kioku.Classifier(cell="lstmm")


def test_bad_data_is_refused_naming_the_argument():
    clf = kioku.Classifier(**TINY)
    with pytest.raises(ValueError, match="y: expected 3 labels"):
        clf.fit(["a", "b", "c"], ["x", "y"], verbose=0)
    with pytest.raises(TypeError, match=r"x\[1\]: expected str, found int"):
        clf.fit(["a", 2], ["x", "y"], verbose=0)
    with pytest.raises(ValueError, match=r"x\[1\]: expected finite numbers"):
        clf.fit(np.array([[[0.0]], [[np.nan]], [[1.0]]]), ["a", "b", "a"], verbose=0)
    with pytest.raises(RuntimeError, match="call fit"):
        clf.predict(["a"])


def test_tagger_from_token_lists_or_raw_text_with_per_token_probabilities(tmp_path):
    words = [["the", "cat", "sat", "."], ["a", "dog", "ran", "."], ["the", "dog", "sat", "."]]
    tags = [["DET", "NOUN", "VERB", "PUNCT"]] * 3
    tiny = {"hidden": 8, "embed": 8, "char_embed": 4, "char_hidden": 4, "batch_size": 4}
    tagger = kioku.Tagger(**tiny, lr=0.03).fit(words * 8, tags * 8, epochs=6, verbose=0)
    assert tagger.predict("the cat ran.") == ["DET", "NOUN", "VERB", "PUNCT"]
    probs = tagger.predict_proba(["the cat ran.", ["a", "dog"]])
    assert [p.shape for p in probs] == [(4, 4), (2, 4)]
    for p, tagged in zip(probs, tagger.predict(["the cat ran.", ["a", "dog"]])):
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
        assert [tagger.labels[k] for k in p.argmax(axis=1)] == tagged
    figures = tagger.evaluate(words, tags)  # the share of words tagged right, by hand:
    hits = [p == g for s, t in zip(tagger.predict(words), tags) for p, g in zip(s, t)]
    assert figures["accuracy"] == pytest.approx(np.mean(hits)) and np.mean(hits) >= 0.75
    raw = kioku.Tagger(**tiny).fit(["the cat sat.", "a dog ran."] * 6, tags[:2] * 6, epochs=1,
                                   verbose=0)  # fmt: skip
    assert raw.task_.vocab.index.get("sat") is not None  # the raw text split into words
    tagger.save(tmp_path / "tagger")
    loaded = kioku.load(tmp_path / "tagger")
    assert loaded.predict("the cat ran.") == tagger.predict("the cat ran.")
    np.testing.assert_array_equal(loaded.predict_proba("the cat ran."), probs[0])
    with pytest.raises(ValueError, match=r"y\[0\]: expected 4 tags"):
        kioku.Tagger(**tiny).fit(words, [["DET"]] * 3, verbose=0)


def test_language_model_from_a_string_or_a_list_of_strings(tmp_path):
    text = "hello world\n" * 40
    tiny = {"hidden": 16, "embed": 8, "batch_size": 4, "bptt": 16}
    lm = kioku.LanguageModel(level="char", **tiny).fit(text, epochs=2, verbose=0)
    figures = lm.evaluate("hello world\n")
    scores = lm.predict("hello world\n")  # the same tokens, the same state carried
    assert figures["bpc"] == pytest.approx(scores.bits_per_token, rel=1e-5)
    assert isinstance(lm.sample("he", 10), str)
    from_list = kioku.LanguageModel(level="char", **tiny).fit(["hello world"] * 40, epochs=1,
                                                              verbose=0)  # fmt: skip
    assert from_list.task_.vocab.level == "char"
    lm.save(tmp_path / "lm")
    assert main(["sample", str(tmp_path / "lm"), "--length", "5", "--prefix", "he"]) == 0
    assert kioku.LanguageModel is not kioku.models.LanguageModel  # the estimator, not the model


def test_a_fit_resumes_from_its_run_folder(tmp_path):
    train = reviews(40, 3)
    clf = kioku.Classifier(**TINY, seed=4)
    clf.fit(*train, epochs=2, verbose=0, out=tmp_path / "run")
    clf.fit(*train, epochs=4, verbose=0, out=tmp_path / "run", resume=True)
    whole = kioku.Classifier(**TINY, seed=4)
    whole.fit(*train, epochs=4, verbose=0, out=tmp_path / "whole")
    for name, value in whole.model.state_dict().items():  # 2 + resume + 2 == 4 epochs
        np.testing.assert_array_equal(clf.model.state_dict()[name], value, err_msg=name)


def test_a_classifier_of_float_sequences(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 10, 3)) * [1, 5, 0.1] + [5, -3, 0]  # (N, T, F), uneven scales
    y = np.where(X[:, :, 0].mean(axis=1) > 5, "up", "down")
    clf = kioku.Classifier(hidden=8, batch_size=16)
    clf.fit(X, y, epochs=10, verbose=0, out=tmp_path / "run")
    assert clf.model.config()["input_size"] == 3 and clf.model.config()["vocab_size"] is None
    # the scaling is the training sequences' (the 90 % fitted on), kept in the checkpoint
    train = clf.task_.splits["train"]
    steps = np.concatenate([e.tokens for e in train]).astype(np.float64)
    np.testing.assert_allclose(steps.mean(axis=0), 0, atol=1e-6)
    figures = clf.evaluate(X, y)
    probs = clf.predict_proba(X)
    truth = np.array([clf.labels.index(label) for label in y])
    assert figures["accuracy"] == pytest.approx(float((probs.argmax(1) == truth).mean()))
    assert figures["accuracy"] > 0.8  # the first feature's mean decides
    loaded = kioku.load(tmp_path / "run")
    np.testing.assert_array_equal(loaded.predict_proba(X), probs)
    assert loaded.predict(X[0]) == clf.predict(X[:1])[0]  # one sequence (T, F)
    ragged = [X[0][:4], X[1]]  # sequences of different lengths
    assert loaded.predict(ragged) == clf.predict(ragged)
    with pytest.raises(ValueError, match=r"sequences\[0\]: expected 3 features, found 2"):
        loaded.predict_proba(X[:, :, :2])
    (tmp_path / "x.tsv").write_text("up\tsome text\n")
    assert main(["eval", str(tmp_path / "run"), "--data", str(tmp_path / "x.tsv")]) == 2
    assert "reads arrays from Python" in capsys.readouterr().err


def test_a_temporary_run_folder_goes_with_the_estimator(tmp_path):
    import gc

    clf = kioku.Classifier(hidden=4, embed=4, batch_size=4)
    clf.fit(*reviews(12, 5), epochs=1, verbose=0)
    first = clf.out_
    clf.save(tmp_path / "kept")
    clf.fit(*reviews(12, 5), epochs=1, verbose=0)  # a new fit replaces the first folder
    second = clf.out_
    assert not first.exists() and second.exists()
    del clf
    gc.collect()
    assert not second.exists()
    assert kioku.load(tmp_path / "kept").predict(["a fine film"])  # what save kept stays


def test_a_regressor_of_float_sequences(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 8, 2)) * [1, 10] + [0, 50]
    y = X[:, -3:, 0].sum(axis=1) * 2 + 7  # the last three steps of the first feature
    reg = kioku.Regressor(hidden=16, batch_size=16)
    reg.fit(X, y, epochs=15, verbose=0, out=tmp_path / "run")
    predicted = reg.predict(X)
    assert predicted.shape == (160, 1) and reg.predict(X[0]).shape == (1,)
    figures = reg.evaluate(X, y)
    assert figures["rmse_units"] == pytest.approx(np.sqrt(((predicted[:, 0] - y) ** 2).mean()))
    mean = reg.task_.y_mean  # the training targets' mean, by hand
    assert figures["mean_rmse_units"] == pytest.approx(np.sqrt(((y - mean) ** 2).mean()))
    assert figures["rmse_units"] < 0.5 * figures["mean_rmse_units"]  # it learned the sum
    loaded = kioku.load(tmp_path / "run")
    assert loaded.kind == "regress"
    np.testing.assert_array_equal(loaded.predict(X), predicted)
    two = kioku.Regressor(hidden=8, batch_size=16).fit(X, np.stack([y, -y], 1), epochs=1,
                                                       verbose=0)  # fmt: skip
    assert two.predict(X[:5]).shape == (5, 2)
    (tmp_path / "x.tsv").write_text("up\tsome text\n")
    assert main(["eval", str(tmp_path / "run"), "--data", str(tmp_path / "x.tsv")]) == 2
    assert "a model of float sequences (2 features) reads arrays" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"y: expected \(160,\) or \(160, K\) numbers"):
        kioku.Regressor().fit(X, y[:5], verbose=0)


def test_validation_split_holds_out_that_share_stratified(tmp_path):
    texts, labels = reviews(100, 6)
    clf = kioku.Classifier(**TINY)
    clf.fit(texts, labels, validation_split=0.3, epochs=1, verbose=0)
    valid = clf.task_.splits["valid"]
    assert len(valid) == 30 and len(clf.task_.splits["train"]) == 70
    held = [clf.task_.labels[e.label] for e in valid]
    for label in ("pos", "neg"):  # each label's share kept, to rounding
        assert held.count(label) == round(0.3 * labels.count(label))
    with pytest.raises(ValueError, match=r"validation_split: expected a number in \(0, 1\)"):
        clf.fit(texts, labels, validation_split=1, verbose=0)


def test_a_failed_fit_leaves_the_fitted_model_and_no_folder(tmp_path):
    clf = kioku.Classifier(**TINY)
    clf.fit(*reviews(20, 7), epochs=1, verbose=0)
    before, answer = clf.out_, clf.predict(["a fine film"])
    with pytest.raises(ValueError, match="y: expected 2 labels"):
        clf.fit(["a", "b"], ["x"], verbose=0)  # refused before any folder is made
    assert clf.out_ == before and before.exists() and clf.predict(["a fine film"]) == answer
