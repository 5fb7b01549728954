"""``kioku predict`` and ``kioku eval --data`` on each task: predictions read from a file
or standard input agree with the model run by hand, and files with unseen words are
scored with the checkpoint's vocabulary, labels and scaling."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from trained_runs import train_all

import kioku
from kioku.cli import main
from kioku.data.conllu_io import read_conllu


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_all(tmp_path_factory.mktemp("predict"))


def predict(capsys, monkeypatch, run, stdin=None, *argv):
    """Exit status, standard output and standard error of ``kioku predict``."""
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    status = main(["predict", str(run), *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_lm_bits_per_token_from_standard_input(trained, capsys, monkeypatch):
    _, runs = trained
    text = "def f7(x):\n    return x + 7\n"
    status, out, err = predict(capsys, monkeypatch, runs["lm"], text, "--format", "jsonl")
    assert status == 0 and "tokens in" in err and "checkpoint" in err
    record = json.loads(out)
    predictor = kioku.load(runs["lm"])
    ids = predictor.vocab.encode(text)
    logits, _ = predictor.model(ids[:, None])
    logits = logits[:-1, 0].astype(np.float64)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    expected = -logp[np.arange(ids.size - 1), ids[1:]] / math.log(2)
    np.testing.assert_allclose(record["bits"], expected, atol=1e-4)
    assert record["tokens"] == list(text[1:])
    assert record["perplexity"] == pytest.approx(2 ** np.mean(record["bits"]), rel=1e-3)

    status, out, _ = predict(capsys, monkeypatch, runs["lm"], text)
    lines = out.splitlines()
    assert status == 0 and lines[0] == "token\tbits" and len(lines) == len(text) + 1
    assert lines[-1].startswith("# perplexity ") and "\\n\t" in out  # newline escaped


def test_classify_one_label_per_line(trained, capsys, monkeypatch, tmp_path):
    _, runs = trained
    texts = ["great fine film 1", "awful dull film 2", "nice good film zzz-unseen"]
    status, out, _ = predict(capsys, monkeypatch, runs["classify"], "\n".join(texts) + "\n")
    assert status == 0
    rows = [line.split("\t") for line in out.splitlines()]
    assert [label for label, _ in rows] == ["pos", "neg", "pos"]
    probs = kioku.load(runs["classify"]).predict_proba(texts)
    np.testing.assert_allclose([float(p) for _, p in rows], probs.max(1), atol=1e-4)

    source = tmp_path / "texts.txt"
    source.write_text("\n".join(texts))
    out_file = tmp_path / "labels.jsonl"
    args = [str(source), "--format", "jsonl", "--out", str(out_file)]
    status, out, _ = predict(capsys, monkeypatch, runs["classify"], None, *args)
    records = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert status == 0 and out == "" and [r["text"] for r in records] == texts
    assert [r["label"] for r in records] == ["pos", "neg", "pos"]


def test_tag_fills_upos_and_keeps_every_other_column(trained, capsys, monkeypatch, tmp_path):
    data, runs = trained
    lines = [
        "# text = the zebra sings",
        "1\tthe\tthe\t_\t_\t_\t2\tdet\t_\t_",
        "2-3\tzebra\t_\t_\t_\t_\t_\t_\t_\t_",  # a range line: left alone
        "2\tzebra\tzebra\t_\t_\t_\t0\troot\t_\t_",
        "3\tsings\tsing\t_\t_\t_\t2\tnsubj\t_\t_",
        "",
    ]
    status, out, _ = predict(capsys, monkeypatch, runs["tag"], "\n".join(lines) + "\n")
    assert status == 0
    got = out.splitlines()
    assert len(got) == len(lines)
    for before, after in zip(lines, got):
        a, b = before.split("\t"), after.split("\t")
        if len(a) == 10 and a[0].isdigit():
            assert b[:3] + b[4:] == a[:3] + a[4:]
        else:
            assert a == b
    tagger = kioku.load(runs["tag"])
    assert [got[i].split("\t")[3] for i in (1, 3, 4)] == tagger.predict("the zebra sings")

    status, out, _ = predict(capsys, monkeypatch, runs["tag"], "a dog swims\nthis fish\n")
    tags = tagger.predict(["a dog swims", ["this", "fish"]])  # one tag per word, no <eos>
    assert [len(t) for t in tags] == [3, 2]
    expected = "".join(
        "".join(f"{w}\t{t}\n" for w, t in zip(s.split(), ts)) + "\n"
        for s, ts in zip(["a dog swims", "this fish"], tags)
    )
    assert status == 0 and out == expected


def test_forecast_in_the_datas_units(trained, capsys, monkeypatch):
    data, runs = trained
    csv_text = data["forecast"].read_text()
    status, out, err = predict(capsys, monkeypatch, runs["forecast"], csv_text)
    assert status == 0 and "steps in" in err
    rows = [line.split(",") for line in out.splitlines()]
    assert rows[0] == ["day", "units"] and len(rows) == 4  # the input's count goes on
    last_day = int(csv_text.splitlines()[-1].split(",")[0])
    assert [int(r[0]) for r in rows[1:]] == [last_day + 1, last_day + 2, last_day + 3]
    predictor = kioku.load(runs["forecast"])
    values = np.array([float(r.split(",")[1]) for r in csv_text.splitlines()[1:]])
    window = ((values[-14:, None] - predictor.mean) / predictor.std).astype(np.float32)
    by_hand = predictor.model(window[:, None, :])[0] * predictor.std + predictor.mean
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], by_hand[:, 0], rtol=1e-5)
    assert 60 < by_hand.min() and by_hand.max() < 140  # data units, not standardised

    status, out, _ = predict(capsys, monkeypatch, runs["forecast"], csv_text, "--horizon", "8")
    longer = [line.split(",") for line in out.splitlines()[1:]]
    assert status == 0 and len(longer) == 8
    assert [r[1] for r in longer[:3]] == [r[1] for r in rows[1:]]  # fed back after 3


def test_predict_refuses_what_does_not_apply(trained, capsys, monkeypatch):
    _, runs = trained
    status, _, err = predict(capsys, monkeypatch, runs["classify"], "x\n", "--horizon", "3")
    assert status == 2 and "--horizon: applies to forecast, not to classify" in err
    status, _, err = predict(capsys, monkeypatch, runs["lm"], "x\n", "--format", "conllu")
    assert status == 2 and "--format conllu: a lm model writes tsv or jsonl" in err
    status, _, err = predict(capsys, monkeypatch, runs["forecast"], "day,price\n1,2\n")
    assert status == 2 and "columns ['units'] not in header ['day', 'price']" in err


def test_eval_on_files_with_unseen_words(trained, capsys, tmp_path):
    data, runs = trained
    conllu = tmp_path / "new.conllu"
    rows = []
    for s, words in enumerate([["the", "zebra", "runs"], ["a", "cat", "flies"]]):
        rows.append(f"# sent_id = {s}")
        for i, (word, tag) in enumerate(zip(words, ["DET", "NOUN", "VERB"]), 1):
            rows.append(f"{i}\t{word}\t{word}\t{tag}\t_\t_\t0\tdep\t_\t_")
        rows.append("")
    conllu.write_text("\n".join(rows) + "\n")
    assert main(["eval", str(runs["tag"]), "--data", str(conllu), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    gold = read_conllu(conllu)
    predicted = kioku.load(runs["tag"]).predict([w for w, _ in gold])
    hits = sum(p == g for (_, tags), pred in zip(gold, predicted) for p, g in zip(pred, tags))
    assert record["split"] == "all" and record["data"] == str(conllu)
    assert record["accuracy"] == pytest.approx(hits / 6)
    assert "majority_accuracy" in record

    reviews = tmp_path / "new.tsv"
    reviews.write_text("pos\tsplendid good film\nneg\tdreadful bad film\n")
    assert main(["eval", str(runs["classify"]), "--data", str(reviews), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    labels = kioku.load(runs["classify"]).predict(["splendid good film", "dreadful bad film"])
    assert record["accuracy"] == pytest.approx(np.mean(np.array(labels) == ["pos", "neg"]))

    text = tmp_path / "new.py"
    text.write_text("def g(y):\n    return y * 2  # unseen characters\n")
    assert main(["eval", str(runs["lm"]), "--data", str(text)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"all ({text}): loss ") and "bpc" in out

    # the checkpoint's scaling: the whole copied file, scored in the data's units
    copy = tmp_path / "sales.csv"
    copy.write_text(data["forecast"].read_text())
    assert main(["eval", str(runs["forecast"]), "--data", str(copy), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    predictor = kioku.load(runs["forecast"])
    values = np.loadtxt(copy, delimiter=",", skiprows=1)[:, 1:]
    starts = range(values.shape[0] - 14 - 3 + 1)
    guesses = predictor.predict([values[s : s + 14] for s in starts], batch_size=32)
    truth = np.stack([values[s + 14 : s + 17] for s in starts])
    rmse = np.sqrt(np.mean((np.stack(guesses) - truth) ** 2))
    assert record["rmse_units"] == pytest.approx(rmse, rel=1e-4)
    assert record["naive_rmse_units"] > record["seasonal_naive_rmse_units"] > 0

    assert main(["eval", str(runs["tag"]), "--data", str(conllu), "--split", "valid"]) == 2
    assert "--split valid: a file given with --data is scored whole" in capsys.readouterr().err
