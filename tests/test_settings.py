"""Training settings: the presets keep the figures the command used before, settings
from checkpoints round-trip, bad settings are refused naming the field (and, on the
command line, the flag), and nothing below the command line knows of argparse."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import numpy as np
import pytest

from kioku.cli import main
from kioku.cli.train_cmd import flag_message
from kioku.models import Forecaster, LanguageModel, SequenceClassifier, SequenceTagger
from kioku.train import TASKS, Task, TrainSettings
from kioku.train.settings import CHAR_LM, CLASSIFY, PTB_SMALL, resolve

# the presets as kioku train filled them before settings were a dataclass (main b8612e8)
SHARED = dict(bptt=None, eval_tokens=None, init_range=0.0, lr_decay=None, decay_start=None)
OLD_PRESETS = {
    "char": dict(
        embed=64, hidden=256, layers=2, bptt=64, batch_size=32, optimizer="adam", lr=3e-3,
        clip=1.0, max_steps=2400, epochs=None, eval_every=200, sample_every=400,
        eval_tokens=20000, init_range=0.0, lr_decay=None, decay_start=None,
    ),
    "ptb": dict(
        embed=200, hidden=200, layers=2, bptt=20, batch_size=20, optimizer="sgd", lr=20.0,
        clip=0.25, max_steps=None, epochs=13, eval_every=0, sample_every=0, eval_tokens=None,
        init_range=0.1, lr_decay=0.5, decay_start=4,
    ),
    "labeled": dict(
        SHARED, embed=64, hidden=64, layers=1, batch_size=32, optimizer="adam", lr=3e-3,
        clip=5.0, max_steps=None, epochs=10, eval_every=0, sample_every=0,
    ),
}  # fmt: skip
OLD_COMMON = dict(
    task="lm", level=None, seed=0, dropout=0.0, momentum=0.0, nesterov=False,
    weight_decay=0.0, tie_weights=False, variational_dropout=False, plateau=False,
    patience=0, eval_batch_size=10, min_count=None, max_vocab=None, keep=2,
    bidirectional=None, pooling="last", horizon=1, window=32, columns=None,
)  # fmt: skip


@pytest.mark.parametrize(
    ("given", "preset", "out"),
    [
        ({}, "char", "runs/stdlib"),
        ({"data": "ptb"}, "ptb", "runs/ptb"),
        # a user's word-level text starts from the character preset, not PTB's SGD at lr 20
        ({"data": "book.txt", "level": "word"}, "char", "runs/book"),
        # (the tag preset is the word + char tagger of issue 15: tests/test_char_tagger.py)
        ({"task": "classify", "data": "x/tags.tsv", "hidden": 8}, "labeled", "runs/tags"),
    ],
)
def test_presets_keep_the_old_figures(given, preset, out):
    settings = resolve(given)
    expected = {**OLD_COMMON, **OLD_PRESETS[preset], "data": "stdlib", "out": out, **given}
    fields = settings.to_dict()
    assert {k: fields[k] for k in expected} == expected
    assert settings.max_time is None and settings.no_progress is False
    assert TrainSettings() == CHAR_LM and PTB_SMALL.data == "ptb" and CLASSIFY.task == "classify"


def test_settings_round_trip_and_old_checkpoint_keys():
    settings = resolve({"data": "ptb", "dropout": 0.5, "out": "r"})
    assert TrainSettings.from_dict(settings.to_dict()) == settings
    saved = {**settings.to_dict(), "command": "train"}  # what argparse left in old runs
    assert TrainSettings.from_dict(saved) == settings
    # a given stopping limit replaces the saved ones (PTB's epochs=13)
    assert resolve({"max_steps": 9}, saved) == settings.replace(max_steps=9, epochs=None)
    with pytest.raises(TypeError, match=r"settings: expected fields of TrainSettings.*'colour'"):
        TrainSettings.from_dict({"colour": "red"})
    with pytest.raises(TypeError, match=r"changes: .*'hiden'"):
        settings.replace(hiden=3)


@pytest.mark.parametrize(
    ("change", "flag", "words"),
    [
        ({"dropout": 1.5}, "--dropout", ["expected [0, 1)", "1.5"]),
        ({"hidden": 0}, "--hidden", ["expected an integer >= 1", "0"]),
        ({"batch_size": 2.5}, "--batch-size", ["expected an integer >= 1", "2.5"]),
        ({"optimizer": "lbfgs"}, "--optimizer", ["expected one of", "lbfgs"]),
        ({"lr": -1.0}, "--lr", ["expected a number > 0", "-1.0"]),
    ],
)
def test_bad_settings_name_the_field_and_the_flag(change, flag, words):
    with pytest.raises(ValueError) as caught:
        CHAR_LM.replace(**change)
    field = next(iter(change))
    assert str(caught.value).startswith(f"{field}: ") and caught.value.setting == field
    message = flag_message(caught.value)
    assert message.startswith(f"{flag}: ") and all(w in message for w in words), message


def test_the_command_names_flags_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dropout", "1.0", "--out", str(out), "--no-progress"]) == 2
    assert "kioku train: --dropout: expected [0, 1), found 1.0" in capsys.readouterr().err
    argv = ["train", "--task", "classify", "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    assert "kioku train: --data: task classify needs a file or folder" in capsys.readouterr().err
    missing = tmp_path / "nope.txt"
    assert main(["train", "--data", str(missing), "--out", str(out)]) == 2
    assert f"kioku train: --data: {missing}: no such file" in capsys.readouterr().err
    assert not out.exists()


def test_every_task_implements_the_protocol():
    members = {n for n in vars(Task) if not n.startswith("_")} | {"kind"}
    assert set(TASKS) == {"lm", "classify", "tag", "forecast"}
    for name, task in TASKS.items():
        missing = {m for m in members if not hasattr(task, m)}
        assert not missing, (name, missing)
        assert task.kind == name


def test_no_argparse_below_the_command_line():
    import kioku.train

    train = Path(kioku.train.__file__).parent
    for path in [*train.glob("*.py"), *(train.parent / "models").glob("*.py")]:
        text = path.read_text()
        assert "import argparse" not in text and "Namespace" not in text, path


def test_model_config_is_the_signature():
    models = [
        LanguageModel(9, 4, 4, 1, tie_weights=True, rng=0),
        SequenceClassifier(9, 4, 5, 3, pooling="mean", rng=0),
        SequenceTagger(input_size=3, hidden_size=4, num_tags=2, rng=0),
        Forecaster(3, 4, horizon=2, dtype=np.float64, rng=0),
    ]
    for model in models:
        names = [n for n in inspect.signature(type(model).__init__).parameters][1:]
        assert list(model.config()) == [n for n in names if n != "rng"]
    assert models[0].config()["tie_weights"] is True
    assert models[1].config()["pooling"] == "mean"
    assert models[3].config()["dtype"] == "float64" and models[3].config()["output_size"] == 3


def test_eval_mode_restores_the_mode_after_an_error():
    model = LanguageModel(5, 2, 2, 1, dropout=0.5, rng=0)
    with pytest.raises(RuntimeError), model.eval_mode():
        assert not model.training and not model.lstm.training
        raise RuntimeError("inside")
    assert model.training and model.lstm.training
    model.eval()
    with model.eval_mode():
        pass
    assert not model.training
    assert dataclasses.is_dataclass(TrainSettings)


def test_a_script_trains_from_settings_alone(tmp_path):
    import io

    from kioku.train import load_checkpoint, train_run

    text = tmp_path / "code.txt"
    text.write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(60)))
    settings = CHAR_LM.replace(
        data=str(text), out=str(tmp_path / "run"), max_steps=2, hidden=8, embed=4, layers=1,
        bptt=8, batch_size=2, eval_tokens=100, sample_every=0, no_progress=True,
    )  # fmt: skip
    stream = io.StringIO()
    summary = train_run(settings, stream=stream)
    assert summary["step"] == 2 and summary["report"][0].startswith("test bits per character:")
    assert stream.getvalue().startswith("data: ") and "\ndata: char-level" in stream.getvalue()
    state, _ = load_checkpoint(tmp_path / "run")
    assert TrainSettings.from_dict(state["meta"]["settings"]) == settings
    with pytest.raises(FileExistsError, match="holds a run already") as caught:
        train_run(settings, stream=stream)
    assert caught.value.setting == "out"


def test_declared_tables_are_the_hand_written_ones_they_replace():
    from kioku.train.settings import RESUMABLE, TASK_FIELDS

    # as kioku.train.settings wrote them before each setting was declared once (45a2bb6^)
    lm, words = ("lm",), ("lm", "classify", "tag")
    before = {
        "bptt": lm, "eval_tokens": lm, "eval_batch_size": lm, "sample_every": lm,
        "tie_weights": lm, "variational_dropout": lm, "level": ("lm", "classify"),
        "embed": words, "min_count": words, "max_vocab": words,
        "bidirectional": ("classify", "tag"), "embed_dropout": ("classify", "tag"),
        "char_embed": ("tag",), "char_hidden": ("tag",), "word_dropout": ("tag",),
        "sort_window": ("tag",), "pooling": ("classify",), "window": ("forecast",),
        "horizon": ("forecast",), "columns": ("forecast",),
    }  # fmt: skip
    # (settings declared since, such as tokenizer and header, add their own entries)
    assert {name: TASK_FIELDS[name] for name in before} == before
    assert all(name not in TASK_FIELDS for name in ("hidden", "lr", "task", "data", "out"))
    assert RESUMABLE >= {
        "out", "max_time", "eval_every", "eval_tokens", "eval_batch_size", "patience",
        "sample_every", "keep", "no_progress", "max_steps", "epochs",
    }  # fmt: skip
    assert not RESUMABLE & {"hidden", "layers", "embed", "lr", "optimizer", "data", "task"}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"max_vocab": 2}, "max_vocab: expected an integer >= 3, found 2"),
        ({"init_range": 1e30}, "init_range: expected [0, 1], found 1e+30"),
        ({"lr": float("inf")}, "lr: expected a finite number > 0, found inf"),
        ({"clip": float("nan")}, "clip: expected a finite number >= 0, found nan"),
        ({"layers": 1001}, "layers: expected an integer <= 1000, found 1001"),
        ({"window": 100_001}, "window: expected an integer <= 100000, found 100001"),
    ],
)
def test_new_bounds_name_the_bound_missed(change, words):
    with pytest.raises(ValueError) as caught:
        resolve({"task": "forecast" if "window" in change else "lm", **change})
    assert str(caught.value) == words
