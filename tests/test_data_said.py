"""Data read as the user meant it, and said, through the commands: which file fed which
split, headers never a class, labelled input to predict, the run's tokenizer in every
command, data paths from any folder, predict and eval agreeing, a validation at the end
of every run, and the share of <unk>."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conllu_text import conllu_text

import kioku
from kioku.cli import main
from kioku.train.settings import TrainSettings
from kioku.train.setup import build_task

PTB = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ptb"
TINY = ["--hidden", "8", "--embed", "8", "--layers", "1", "--batch-size", "4", "--no-progress"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def labelled(path: Path, count: int = 40, header: str = "") -> Path:
    words = {"pos": "good fine nice", "neg": "bad awful dull"}
    lines = [header] if header else []
    lines += [f"{'pos' if i % 2 else 'neg'}\t{words['pos' if i % 2 else 'neg']} {i}" for i in
              range(count)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_one_classify_file_split_stratified_and_said(tmp_path, capsys):
    data = labelled(tmp_path / "alternating.tsv")
    status, out, _ = run(
        capsys, "train", "--task", "classify", "--data", str(data), "--out",
        str(tmp_path / "r"), "--epochs", "1", *TINY,
    )  # fmt: skip
    assert status == 0
    assert f"data: {data.resolve()}" in out
    assert "train <- 80% of alternating.tsv (32 lines: neg 16, pos 16)" in out
    assert "valid <- 10% of alternating.tsv (4 lines: neg 2, pos 2)" in out
    assert "test  <- 10% of alternating.tsv (4 lines: neg 2, pos 2)" in out
    assert "shuffled with seed 0, stratified by label" in out


def test_header_is_never_a_class_and_predict_keeps_labels_apart(tmp_path, capsys, monkeypatch):
    data = labelled(tmp_path / "with_header.tsv", header="label\ttext")
    out_dir = tmp_path / "r"
    status, out, _ = run(
        capsys, "train", "--task", "classify", "--data", str(data), "--out", str(out_dir),
        "--epochs", "2", *TINY,
    )  # fmt: skip
    assert status == 0 and "line 1 read as a header ('label\\ttext')" in out
    predictor = kioku.load(out_dir)
    assert predictor.labels == ["neg", "pos"]
    # labelled input: each label kept apart from its text, the accuracy reported
    lines = data.read_text().splitlines()
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    status, out, err = run(capsys, "predict", str(out_dir), "--format", "jsonl")
    records = [json.loads(line) for line in out.splitlines()]
    texts = [line.split("\t", 1)[1] for line in lines[1:]]
    assert status == 0 and [r["text"] for r in records] == texts
    probs = predictor.predict_proba(texts)
    np.testing.assert_allclose([r["probability"] for r in records], probs.max(1), atol=1e-6)
    hits = np.mean([r["gold"] == r["label"] for r in records])
    assert f"accuracy {hits:.4f} over 40 labelled lines" in err
    # --no-header reads the first line as an example: a third label
    status, out, _ = run(
        capsys, "train", "--task", "classify", "--data", str(data), "--out",
        str(tmp_path / "n"), "--epochs", "1", "--no-header", *TINY,
    )  # fmt: skip
    assert status == 0 and kioku.load(tmp_path / "n").labels == ["label", "neg", "pos"]


def tag_data(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    lexicon = {"PRON": ["I", "it", "that"], "VERB": ["like", "eat", "is"], "NOUN": ["apple"]}
    sentences = []
    for _ in range(30):
        words = [(lexicon[t][rng.integers(len(lexicon[t]))], t) for t in ("PRON", "VERB")]
        sentences.append([*words, ("apple", "NOUN"), (".", "PUNCT")])
    folder.mkdir()
    for name in ("en-ud-train.conllu", "en-ud-dev.conllu", "en-ud-test.conllu"):
        (folder / name).write_text(conllu_text(sentences), encoding="utf-8")
    (folder / "en-ud-train.txt").write_text("raw text", encoding="utf-8")
    (folder / "README.md").write_text("# toy", encoding="utf-8")
    return folder


def test_tagger_tokenizes_plain_text_as_recorded(tmp_path, capsys, monkeypatch):
    folder = tag_data(tmp_path / "ud")
    flags = ["--task", "tag", "--data", str(folder), "--epochs", "1", "--char-embed", "0", *TINY]
    status, out, _ = run(capsys, "train", *flags, "--out", str(tmp_path / "ud-run"))
    assert status == 0
    assert "train <- en-ud-train.conllu (30 sentences, 120 words)" in out
    assert "ignored: README.md (documentation), en-ud-train.txt (not a .conllu file)" in out
    sentence = "Apple is something that I like to eat."
    tags = kioku.load(tmp_path / "ud-run").predict(sentence)
    assert len(tags) == 9  # eat . apart
    monkeypatch.setattr("sys.stdin", io.StringIO(sentence + "\n"))
    status, out, err = run(capsys, "predict", str(tmp_path / "ud-run"))
    assert status == 0 and [row.split("\t")[0] for row in out.split("\n\n")[0].splitlines()] == [
        "Apple", "is", "something", "that", "I", "like", "to", "eat", ".",
    ]  # fmt: skip
    assert "<unk> 33.3% of tokens" in err  # Apple, something, to (3 of 9)
    status, _, _ = run(capsys, "train", *flags, "--out", str(tmp_path / "ws"), "--tokenizer",
                       "whitespace")  # fmt: skip
    assert status == 0 and len(kioku.load(tmp_path / "ws").predict(sentence)) == 8


def test_eval_from_another_folder_and_missing_data_in_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "work").mkdir()
    text = "".join(f"the cat {i % 7} sat on the mat .\n" for i in range(300))
    (tmp_path / "work" / "book.txt").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path / "work")
    status, out, _ = run(
        capsys, "train", "--data", "book.txt", "--level", "word", "--out", "run", "--bptt",
        "8", "--max-steps", "2", *TINY,
    )  # fmt: skip
    assert status == 0 and f"data: {tmp_path / 'work' / 'book.txt'}" in out
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "eval", "work/run", "--split", "valid", "--json")
    assert status == 0, err
    assert json.loads(out)["data"] == str(tmp_path / "work" / "book.txt")
    (tmp_path / "work" / "book.txt").unlink()
    status, out, err = run(capsys, "eval", "work/run", "--split", "valid")
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "the run's data cannot be read from here" in err and "book.txt" in err


def test_eval_of_a_ptb_run_without_its_files_is_one_line(tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "ptb").mkdir(parents=True)
    line = " the cat sat on the mat\n the dog sat\n"
    for split in ("train", "valid", "test"):
        (cache / "ptb" / f"ptb.{split}.txt").write_text(line * 30, encoding="utf-8")
    monkeypatch.setenv("KIOKU_DATA", str(cache))
    status, out, _ = run(
        capsys, "train", "--data", "ptb", "--out", str(tmp_path / "r"), "--max-steps", "1",
        "--epochs", "1", "--bptt", "4", *TINY,
    )  # fmt: skip
    assert status == 0 and "whitespace tokenizer" in out
    monkeypatch.setenv("KIOKU_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr("kioku.data.ptb.PTB_URL", "file:///nonexistent/ptb.{split}.txt")
    status, out, err = run(capsys, "eval", str(tmp_path / "r"), "--split", "valid")
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "ptb.train.txt: missing" in err and "Traceback" not in err


@pytest.mark.parametrize("level", ["char", "word"])
def test_predict_and_eval_data_agree(tmp_path, capsys, monkeypatch, level):
    text = "".join(f"def f{i}(x):\n    return x + {i % 9}\n" for i in range(120))
    (tmp_path / "code.txt").write_text(text, encoding="utf-8")
    out_dir = tmp_path / "r"
    status, _, _ = run(
        capsys, "train", "--data", str(tmp_path / "code.txt"), "--level", level, "--out",
        str(out_dir), "--bptt", "16", "--max-steps", "3", *TINY,
    )  # fmt: skip
    assert status == 0
    probe = tmp_path / "probe.txt"
    probe.write_text(text[:400], encoding="utf-8")
    status, out, _ = run(capsys, "eval", str(out_dir), "--data", str(probe), "--json")
    bits_eval = json.loads(out)["loss"] / math.log(2)
    status, out, _ = run(capsys, "predict", str(out_dir), str(probe), "--format", "jsonl")
    record = json.loads(out)
    assert record["bits_per_token"] == pytest.approx(bits_eval, rel=1e-4)
    tokens = kioku.load(out_dir).vocab.tokenize(text[:400])
    assert len(record["bits"]) == (len(text[:400]) - 1 if level == "char" else len(tokens))


def test_a_run_shorter_than_an_epoch_validates_at_its_end(tmp_path, capsys):
    text = "".join(f"line {i} of a text\n" for i in range(400))
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    status, out, _ = run(
        capsys, "train", "--data", str(tmp_path / "t.txt"), "--out", str(tmp_path / "r"),
        "--max-steps", "2", "--eval-every", "0", "--bptt", "8", *TINY,
    )  # fmt: skip
    assert status == 0
    assert "none was validated" not in out and "(best on valid)" in out
    log = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert [r["split"] for r in log if "split" in r] == ["valid", "test"]


def test_unknown_share_reported_and_warned(tmp_path, capsys, monkeypatch):
    text = "".join(f"the cat sat on the mat {i % 5}\n" for i in range(200))
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    out_dir = tmp_path / "r"
    status, _, _ = run(
        capsys, "train", "--data", str(tmp_path / "t.txt"), "--level", "word", "--out",
        str(out_dir), "--max-steps", "1", "--bptt", "8", *TINY,
    )  # fmt: skip
    assert status == 0
    status, out, err = run(capsys, "eval", str(out_dir), "--split", "test")
    assert status == 0 and "<unk> 0.0% of tokens" in out and "warning" not in err
    other = tmp_path / "other.txt"
    other.write_text("zebras jump over lazy foxes quickly\n", encoding="utf-8")
    status, out, err = run(capsys, "eval", str(out_dir), "--data", str(other))
    assert status == 0 and "<unk> 85.7% of tokens" in out  # 6 words of 7 tokens (<eos>)
    assert "warning: 86% of the tokens of" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("zebras jump over lazy cat\n"))  # 4 of 6
    status, _, err = run(capsys, "predict", str(out_dir))
    assert status == 0 and "<unk> 66.7% of tokens" in err and "warning: 67%" in err


@pytest.mark.skipif(not PTB.is_dir(), reason="../shared/data/ptb absent (the PTB files)")
def test_ptb_from_its_folder_says_its_files_and_sizes():
    settings = TrainSettings(data=str(PTB), level="word", bptt=20, batch_size=20)
    header = build_task(settings).header()
    assert "train <- ptb.train.txt (887,521 words + 42,068 <eos> = 929,589 tokens)" in header
    assert "valid <- ptb.valid.txt (70,390 words + 3,370 <eos> = 73,760 tokens)" in header
    assert "test  <- ptb.test.txt (78,669 words + 3,761 <eos> = 82,430 tokens)" in header
    assert "ignored: README.md (documentation)" in header
    assert "vocabulary 10000 (<unk> and <eos> included)" in header


def test_ambiguous_folder_refused_by_train_in_one_line(tmp_path, capsys):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name in ("a.train.txt", "b.train.txt", "valid.txt", "test.txt"):
        (folder / name).write_text("some text\n" * 20, encoding="utf-8")
    status, out, err = run(capsys, "train", "--data", str(folder), "--out", str(tmp_path / "r"))
    assert status == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "2 train files (a.train.txt, b.train.txt); expected one file per split" in err
    assert not (tmp_path / "r").exists()


def test_forecast_without_a_header_row(tmp_path, capsys, monkeypatch):
    values = [100 + 20 * math.sin(2 * math.pi * i / 7) for i in range(120)]
    series = tmp_path / "plain.csv"
    series.write_text("".join(f"{v:.3f},{v / 2:.3f}\n" for v in values), encoding="utf-8")
    status, out, _ = run(
        capsys, "train", "--task", "forecast", "--data", str(series), "--out",
        str(tmp_path / "r"), "--window", "7", "--epochs", "1", "--hidden", "8", "--no-progress",
    )  # fmt: skip
    assert status == 0 and "train <- 80% of plain.csv (96 rows" in out
    assert "test  <- 10% of plain.csv (12 rows" in out and "in time order" in out
    assert kioku.load(tmp_path / "r").columns == ["column1", "column2"]
    monkeypatch.setattr("sys.stdin", io.StringIO(series.read_text()))
    status, out, err = run(capsys, "predict", str(tmp_path / "r"))
    assert status == 0, err
    assert out.splitlines()[0] == "step,column1,column2" and len(out.splitlines()) == 2
    # declared: the first row is a header, its numbers the names of the columns
    status, out, _ = run(
        capsys, "train", "--task", "forecast", "--data", str(series), "--out",
        str(tmp_path / "h"), "--window", "7", "--epochs", "1", "--hidden", "8", "--header",
        "--no-progress",
    )  # fmt: skip
    names = [f"{values[0]:.3f}", f"{values[0] / 2:.3f}"]
    assert status == 0 and kioku.load(tmp_path / "h").columns == names


def test_a_tokenizer_for_characters_is_refused(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("some text\n" * 50, encoding="utf-8")
    argv = ["train", "--data", str(tmp_path / "t.txt"), "--out", str(tmp_path / "r")]
    status, out, err = run(capsys, *argv, "--tokenizer", "ud")
    assert status == 2 and out == "" and not (tmp_path / "r").exists()
    assert err == (
        "kioku train: --tokenizer ud: applies to word-level text, not to characters "
        "(--level char)\n"
    )
