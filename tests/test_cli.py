"""The ``kioku`` command in-process: train, resume, eval, sample, info, and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kioku.cli import main

SMALL = [
    "--hidden",
    "16",
    "--embed",
    "8",
    "--layers",
    "1",
    "--bptt",
    "16",
    "--batch-size",
    "4",
    "--eval-tokens",
    "400",
    "--no-progress",
]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "code.py"
    path.write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(200)))
    return path


# SMALL without --bptt and --eval-tokens, which only a language model reads (and other
# tasks refuse)
LABELED = ["--hidden", "16", "--embed", "8", "--layers", "1", "--batch-size", "4", "--no-progress"]


def small_for(argv) -> list[str]:
    argv = list(argv)
    task = argv[argv.index("--task") + 1] if "--task" in argv else "lm"
    if task == "forecast":  # no embedding either
        return [*LABELED[:2], *LABELED[4:]]
    return SMALL if task == "lm" else LABELED


def train(out, *argv):
    """``kioku train`` of a small model into ``out``; returns the exit status."""
    return main(["train", "--out", str(out), *argv, *small_for(argv)])


def files_of(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_train_resume_eval_sample_info(tmp_path, text_file, capsys):
    run = tmp_path / "run"
    argv = [
        "train",
        "--data",
        str(text_file),
        "--out",
        str(run),
        "--max-steps",
        "6",
        "--eval-every",
        "3",
        "--sample-every",
        "3",
        *SMALL,
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "test bits per character:" in out and "unigram baseline:" in out
    assert "sample at step 3" in out and "def " in out
    assert f"checkpoint: {run}" in out
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["split"] for r in records] == ["valid", "valid", "test"]

    assert main(["train", "--resume", str(run), "--max-steps", "9", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "ckpt-000000009" in out

    assert main(["eval", str(run), "--split", "valid", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["split"] == "valid" and result["bpc"] > 0

    assert main(["sample", str(run), "--length", "30", "--prefix", "def f"]) == 0
    assert capsys.readouterr().out.startswith("def f")

    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "LanguageModel" in out and "step/epoch:  9" in out and "tensors." in out


def test_training_twice_in_one_folder_is_refused(tmp_path, text_file, capsys):
    argv = [
        "train",
        "--data",
        str(text_file),
        "--out",
        str(tmp_path / "r"),
        "--max-steps",
        "1",
        *SMALL,
    ]
    assert main(argv) == 0
    before = files_of(tmp_path / "r")
    assert main(argv) == 1
    assert "holds a run already" in capsys.readouterr().err
    assert files_of(tmp_path / "r") == before


def test_bad_data_files_are_named(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "a"), *SMALL]) == 1
    assert "empty.txt: empty file" in capsys.readouterr().err
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    assert main(["train", "--data", str(binary), "--out", str(tmp_path / "b"), *SMALL]) == 1
    assert "model.bin: binary file" in capsys.readouterr().err
    csv = tmp_path / "series.csv"
    csv.write_text("a,b\n1,2\n3,x\n" + "".join(f"{i},{i}\n" for i in range(50)))
    assert train(tmp_path / "c", "--task", "forecast", "--data", str(csv)) == 1
    assert "series.csv: line 3, column 2 ('b')" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "abc")


def test_resume_with_other_data_and_broken_checkpoints(tmp_path, text_file, capsys):
    run = tmp_path / "run"
    argv = ["train", "--data", str(text_file), "--out", str(run), "--max-steps", "2", *SMALL]
    assert main(argv) == 0
    capsys.readouterr()
    before = files_of(run)
    other = tmp_path / "other.txt"
    other.write_text("completely different characters: QZJ!?\n" * 50)
    assert main(["train", "--resume", str(run), "--data", str(other), "--max-steps", "4"]) == 1
    err = capsys.readouterr().err
    assert f"--data {other}: a resumed run keeps the data it started with" in err
    assert files_of(run) == before

    tensors = next(run.glob("ckpt-*/tensors.*"))
    tensors.write_bytes(tensors.read_bytes()[:100])
    for command in (["eval", str(run)], ["info", str(run)], ["sample", str(run)]):
        assert main(command) == 1
        assert f"{tensors.name}: truncated" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--max-steps", "4"]) == 1
    assert f"{tensors.name}: truncated" in capsys.readouterr().err


def test_classify_tag_forecast_runs(tmp_path, capsys):
    labeled = tmp_path / "labels.tsv"
    labeled.write_text(
        "".join(
            f"{'pos' if i % 2 else 'neg'}\t{'good fine nice' if i % 2 else 'bad awful'} item {i}\n"
            for i in range(60)
        )
    )
    argv = [
        "train",
        "--task",
        "classify",
        "--data",
        str(labeled),
        "--out",
        str(tmp_path / "cls"),
        "--epochs",
        "4",
        *LABELED,
    ]
    assert main(argv) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "cls"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == 1.0  # separable by words

    rows = []
    for s in range(30):
        rows.append(f"# sent_id = {s}")
        for i, (word, tag) in enumerate([("the", "DET"), ("cat", "NOUN"), ("runs", "VERB")], 1):
            rows.append(f"{i}\t{word}\t{word}\t{tag}\t_\t_\t0\tdep\t_\t_")
        rows.append("")
    conllu = tmp_path / "tags.conllu"
    conllu.write_text("\n".join(rows) + "\n")
    assert train(tmp_path / "tag", "--task", "tag", "--data", str(conllu), "--max-steps", "4") == 0
    assert "test after 4 steps" in capsys.readouterr().out

    csv = tmp_path / "series.csv"
    csv.write_text("t,y\n" + "".join(f"{i},{(i % 7) / 7}\n" for i in range(200)))
    argv = ["--task", "forecast", "--data", str(csv), "--window", "8", "--horizon", "2"]
    assert train(tmp_path / "fc", *argv, "--max-steps", "4") == 0
    assert "rmse" in capsys.readouterr().out
    assert main(["sample", str(tmp_path / "fc")]) == 1
    assert "not a language model" in capsys.readouterr().err


def test_default_corpus_runs(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "std"), "--max-steps", "2", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "char-level" in out and "test bits per character" in out


def test_cli_resume_reproduces_the_uninterrupted_run(tmp_path, text_file, capsys):
    from kioku.train.checkpoint import load_checkpoint

    common = [
        "--data",
        str(text_file),
        "--eval-every",
        "2",
        "--dropout",
        "0.3",
        "--optimizer",
        "sgd",
        "--lr",
        "1",
        "--momentum",
        "0.9",
        "--lr-decay",
        "0.5",
        "--decay-start",
        "0",
        *SMALL,
    ]
    assert main(["train", "--out", str(tmp_path / "full"), "--max-steps", "6", *common]) == 0
    assert main(["train", "--out", str(tmp_path / "part"), "--max-steps", "3", *common]) == 0
    assert main(["train", "--resume", str(tmp_path / "part"), "--max-steps", "6"]) == 0
    capsys.readouterr()
    full, _ = load_checkpoint(tmp_path / "full")
    part, _ = load_checkpoint(tmp_path / "part")
    assert full["step"] == part["step"] == 6
    for name, value in full["model"]["params"].items():
        assert np.array_equal(value, part["model"]["params"][name]), name
    for key in ("optimizer", "schedule"):
        assert full[key].keys() == part[key].keys()
    logs = [
        [json.loads(line) for line in (tmp_path / run / "log.jsonl").read_text().splitlines()]
        for run in ("full", "part")
    ]
    # the resumed run's log also keeps the test line its first session ended with
    strip = [
        [{k: v for k, v in r.items() if k != "elapsed"} for r in log if r["split"] == "valid"]
        for log in logs
    ]
    assert strip[0] == strip[1] and len(strip[0]) == 3
