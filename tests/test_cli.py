"""The ``kioku`` command in-process: train, resume, eval, sample, info, and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conllu_text import conllu_text

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
    assert main(argv) == 2
    assert "holds a run already" in capsys.readouterr().err
    assert files_of(tmp_path / "r") == before


def test_bad_data_files_are_named(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "a"), *SMALL]) == 2
    assert "empty.txt: empty file" in capsys.readouterr().err
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    assert main(["train", "--data", str(binary), "--out", str(tmp_path / "b"), *SMALL]) == 2
    assert "model.bin: binary file" in capsys.readouterr().err
    csv = tmp_path / "series.csv"
    csv.write_text("a,b\n1,2\n3,x\n" + "".join(f"{i},{i}\n" for i in range(50)))
    assert train(tmp_path / "c", "--task", "forecast", "--data", str(csv)) == 2
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
    assert main(["train", "--resume", str(run), "--data", str(other), "--max-steps", "4"]) == 2
    err = capsys.readouterr().err
    assert f"--data {other}: a resumed run keeps the data it started with" in err
    assert files_of(run) == before

    tensors = next(run.glob("ckpt-*/tensors.*"))
    tensors.write_bytes(tensors.read_bytes()[:100])
    for command in (["eval", str(run)], ["info", str(run)], ["sample", str(run)]):
        assert main(command) == 2
        assert f"{tensors.name}: truncated" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--max-steps", "4"]) == 2
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

    conllu = tmp_path / "tags.conllu"
    conllu.write_text(conllu_text([[("the", "DET"), ("cat", "NOUN"), ("runs", "VERB")]] * 30))
    assert train(tmp_path / "tag", "--task", "tag", "--data", str(conllu), "--max-steps", "4") == 0
    assert "test after 4 steps" in capsys.readouterr().out

    csv = tmp_path / "series.csv"
    csv.write_text("t,y\n" + "".join(f"{i},{(i % 7) / 7}\n" for i in range(200)))
    argv = ["--task", "forecast", "--data", str(csv), "--window", "8", "--horizon", "2"]
    assert train(tmp_path / "fc", *argv, "--max-steps", "4") == 0
    assert "rmse" in capsys.readouterr().out
    assert main(["sample", str(tmp_path / "fc")]) == 2
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


def test_version_and_every_option_has_help_with_its_default(capsys):
    import kioku
    from kioku.cli import COMMANDS, build_parser

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == f"kioku {kioku.__version__}\n"
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in COMMANDS:
        for action in commands[name]._actions:
            if action.dest == "help" or not action.option_strings:
                continue
            text = action.help or ""
            said = "default" in text or (action.required and "(required)" in text)
            assert said, f"kioku {name} {action.option_strings}: {text!r}"
    text = commands["train"].format_help()
    for title in ("data:", "model:", "optimisation:", "evaluation:", "output:", "examples:"):
        assert title in text
    assert "--hidden HIDDEN       cells per layer (default: char-lm 256" in text
    for name in ("eval", "sample", "info", "inspect", "view", "predict"):
        assert "default: best" in commands[name].format_help().replace("\n", " ")


def test_flags_a_task_or_a_resumed_run_does_not_read_are_refused(tmp_path, text_file, capsys):
    run = tmp_path / "run"
    assert train(run, "--data", str(text_file), "--max-steps", "2") == 0
    capsys.readouterr()
    before = files_of(run)
    assert main(["train", "--resume", str(run), "--hidden", "32", "--max-steps", "4"]) == 2
    err = capsys.readouterr().err
    assert "--hidden 32: a resumed run keeps the hidden it started with (16)" in err
    assert files_of(run) == before
    # the same value, or a stopping flag, is fine
    assert main(["train", "--resume", str(run), "--hidden", "16", "--max-steps", "3"]) == 0
    capsys.readouterr()

    labeled = tmp_path / "labels.tsv"
    labeled.write_text("".join(f"{'ab'[i % 2]}\tword{i % 7} x\n" for i in range(40)))
    for flag, value, tasks in [
        ("--bptt", "8", "lm"),
        ("--window", "8", "forecast"),
        ("--tie-weights", None, "lm"),
        ("--pooling", "max", "classify"),
    ]:
        argv = ["--task", "tag", "--data", str(labeled), flag] + ([value] if value else [])
        assert main(["train", "--out", str(tmp_path / "t"), *argv]) == 2
        shown = f"{flag} {value}" if value else f"{flag} True"
        assert f"{shown}: applies to task {tasks}, not to task tag" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()


def test_presets_never_override_a_given_flag(tmp_path, capsys):
    from kioku.train.settings import resolve

    labeled = tmp_path / "labels.tsv"
    labeled.write_text("".join(f"{'ab'[i % 2]}\tword{i % 2} x\n" for i in range(40)))
    # 32 training examples, batch 4: the preset's 10 epochs would stop at 80 steps
    argv = ["--task", "classify", "--data", str(labeled), "--max-steps", "100"]
    assert train(tmp_path / "c", *argv) == 0
    assert "test after 100 steps" in capsys.readouterr().out
    settings = resolve({"data": "book.txt", "level": "word"})
    assert (settings.optimizer, settings.lr, settings.level) == ("adam", 3e-3, "word")
    assert resolve({"task": "tag", "epochs": 2}).max_steps is None


def test_min_count_and_max_vocab_shape_the_tagger_and_classifier(tmp_path):
    from kioku.train.labeled_tasks import ClassifyTask
    from kioku.train.settings import resolve
    from kioku.train.tag_task import TagTask

    rows = []
    for s in range(40):
        for i, word in enumerate(["the", f"rare{s}", "runs"], 1):
            rows.append(f"{i}\t{word}\t{word}\tX\t_\t_\t0\tdep\t_\t_")
        rows.append("")
    conllu = tmp_path / "t.conllu"
    conllu.write_text("\n".join(rows) + "\n")
    every = TagTask.from_settings(resolve({"task": "tag", "data": str(conllu)}))
    common = TagTask.from_settings(resolve({"task": "tag", "data": str(conllu), "min_count": 2}))
    assert len(every.vocab) == 2 + 2 + 32  # <unk> <eos>, the, runs, 32 training sentences' rare
    assert sorted(common.vocab.tokens) == sorted(["<unk>", "<eos>", "the", "runs"])
    # the rare words are <unk> in training, so <unk> gets trained
    assert all(example.tokens[1] == 0 for example in common.splits["train"])
    capped = TagTask.from_settings(resolve({"task": "tag", "data": str(conllu), "max_vocab": 3}))
    assert capped.vocab.tokens == ["<unk>", "<eos>", "runs"]  # ties: by the token

    labeled = tmp_path / "labels.tsv"
    labeled.write_text("".join(f"{'ab'[i % 2]}\tcommon word{i}\n" for i in range(40)))
    settings = resolve({"task": "classify", "data": str(labeled), "min_count": 2})
    assert "common" in ClassifyTask.from_settings(settings).vocab.index
    assert "word0" not in ClassifyTask.from_settings(settings).vocab.index


def test_dev_split_and_ud_file_names(tmp_path, capsys):
    rows = []
    for _ in range(12):
        for i, (word, tag) in enumerate([("the", "DET"), ("cat", "NOUN")], 1):
            rows.append(f"{i}\t{word}\t{word}\t{tag}\t_\t_\t0\tdep\t_\t_")
        rows.append("")
    text = "\n".join(rows) + "\n"
    ud = tmp_path / "UD_Toy"
    ud.mkdir()
    for split in ("train", "dev", "test"):
        (ud / f"toy-ud-{split}.conllu").write_text(text)
    assert train(tmp_path / "r", "--task", "tag", "--data", str(ud), "--max-steps", "2") == 0
    assert "examples {'train': 12, 'valid': 12, 'test': 12}" in capsys.readouterr().out
    plain = tmp_path / "plain"
    plain.mkdir()
    for split in ("train", "dev", "test"):
        (plain / f"{split}.conllu").write_text(text)
    assert train(tmp_path / "p", "--task", "tag", "--data", str(plain), "--max-steps", "2") == 0
    capsys.readouterr()
    (plain / "dev.conllu").unlink()
    assert train(tmp_path / "q", "--task", "tag", "--data", str(plain)) == 2
    assert "found train train.conllu, test test.conllu but no valid (or dev) file" in (
        capsys.readouterr().err
    )


def test_forecast_leaves_out_an_index_column_and_says_so(tmp_path, capsys):
    csv = tmp_path / "series.csv"
    rows = "".join(f"2024-01-{i % 28 + 1:02d},{i},{(i % 7) / 7},{i % 5}\n" for i in range(120))
    csv.write_text("date,n,y,z\n" + rows)
    argv = ["--task", "forecast", "--data", str(csv), "--window", "8", "--max-steps", "2"]
    assert train(tmp_path / "a", *argv) == 0
    out = capsys.readouterr().out
    assert "columns ['y', 'z'] (left out 'date': its name says it indexes time; " in out
    assert "'n': it counts rows; --columns chooses)" in out
    assert train(tmp_path / "b", *argv, "--columns", "n,y") == 0
    assert "columns ['n', 'y']" in capsys.readouterr().out


def test_sample_draws_a_fresh_seed_and_refuses_unknown_prefix(tmp_path, text_file, capsys):
    run = tmp_path / "run"
    assert train(run, "--data", str(text_file), "--max-steps", "2") == 0
    capsys.readouterr()
    outputs, seeds = [], []
    for _ in range(2):
        assert main(["sample", str(run), "--length", "40"]) == 0
        captured = capsys.readouterr()
        outputs.append(captured.out)
        seeds.append(int(captured.err.split()[1]))
    assert seeds[0] != seeds[1] and outputs[0] != outputs[1]
    assert main(["sample", str(run), "--length", "40", "--seed", str(seeds[0])]) == 0
    assert capsys.readouterr().out == outputs[0]
    assert main(["sample", str(run), "--prefix", "def Q"]) == 2
    err = capsys.readouterr().err
    assert "--prefix: 'Q' at character 4 is not in the model's vocabulary" in err


def test_train_names_the_checkpoint_its_figures_come_from(tmp_path, capsys):
    labeled = tmp_path / "labels.tsv"
    labeled.write_text("".join(f"{'ab'[i % 3 == 0]}\tword{i % 3 == 0} x\n" for i in range(60)))
    assert train(tmp_path / "c", "--task", "classify", "--data", str(labeled)) == 0
    lines = capsys.readouterr().out.splitlines()
    best = tmp_path / "c" / json.loads((tmp_path / "c" / "best.json").read_text())["checkpoint"]
    assert lines[-1].startswith(f"checkpoint: {best} (the one eval, predict")
    assert f"test figures from checkpoint {best} (best on valid)" in lines
    assert any(line.startswith("majority-class baseline ('a' always): accuracy ") for line in lines)
    assert main(["info", str(tmp_path / "c"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoint"] == str(best)
