"""Each setting declared once: the command line's flags, help and checks are derived from
the declarations of TrainSettings; every numeric flag is bounded before any work, and a
run that would not fit in memory is refused with the estimate, which counts exactly the
parameters the models allocate."""

from __future__ import annotations

import argparse
import importlib.util
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from kioku.cli import build_parser, main
from kioku.cli.setting_flags import add_setting_flags
from kioku.models import Forecaster, LanguageModel, SequenceClassifier, SequenceTagger, size
from kioku.train.settings import CHAR_LM, CLASSIFY, FORECAST, TAG, TrainSettings, resolve
from kioku.train.settings_fields import declare, declared
from kioku.train.setup import build_model, build_task, data_sizes

GIB = 2**30
DOCS = Path(__file__).resolve().parents[1] / "docs"


def train_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices["train"]


def one_line(capsys, command: str = "train") -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kioku {command}: "), err
    return lines[0]


def a_task_for(field) -> list[str]:
    """Flags that make a run whose task reads ``field``."""
    tasks = field.spec.tasks
    return [] if tasks is None or "lm" in tasks else ["--task", tasks[0]]


def out_of_range(field) -> list[str]:
    """Values just outside ``field``'s declared range (and a non-finite float)."""
    spec, values = field.spec, []
    step = 1 if field.kind is int else 0.5
    if spec.minimum is not None:
        values.append(spec.minimum if spec.above else spec.minimum - step)
    if spec.maximum is not None:
        values.append(spec.maximum if spec.below else spec.maximum + step)
    if field.kind is float:
        values.append("nan")
    return [str(int(v) if field.kind is int else v) for v in values]


def test_every_declared_setting_is_a_flag_with_help_default_and_range():
    parser = train_parser()
    actions = {a.dest: a for a in parser._actions}
    groups = {
        action.dest: group.title
        for group in parser._action_groups
        for action in group._group_actions
    }
    fields = declared(TrainSettings)
    assert set(fields) <= set(actions) and len(fields) >= 45
    for name, field in fields.items():
        action = actions[name]
        negated = ["--no-" + field.flag[2:]] if field.spec.negatable else []
        assert action.option_strings == [field.flag, *negated], name
        assert action.default is None, name
        assert action.help.startswith(field.spec.help) and "(default: " in action.help, name
        assert groups[name] == field.spec.group, name
        if field.spec.choices is not None:
            assert action.choices == [c for c in field.spec.choices if c is not None], name
        elif field.kind in (int, float):
            assert action.type is field.kind and field.expected() in action.help, name
    # nothing else but --resume, which is no setting: it says which run to continue
    assert set(actions) - set(fields) == {"help", "resume", "config", "print_config"}


@pytest.mark.parametrize(
    "name", [n for n, f in declared(TrainSettings).items() if f.kind in (int, float)]
)
def test_every_numeric_flag_is_checked_against_its_range(name, tmp_path, capsys):
    field = declared(TrainSettings)[name]
    values = out_of_range(field)
    assert values, f"{name}: a numeric setting without a range"
    for value in values:
        argv = ["train", *a_task_for(field), field.flag, value, "--out", str(tmp_path / "r")]
        started = time.perf_counter()
        assert main(argv) == 2
        line = one_line(capsys)
        assert time.perf_counter() - started < 1.0, line
        assert line.startswith(f"kioku train: {field.flag}: expected "), line
        assert f"found {value}" in line, line
        typed = field.kind(float(value)) if value != "nan" else float(value)
        with pytest.raises(ValueError) as caught:
            CHAR_LM.replace(task=(field.spec.tasks or ("lm",))[0], **{name: typed})
        assert caught.value.setting == name
    assert not (tmp_path / "r").exists()


@dataclass(frozen=True)
class Extended(TrainSettings):
    colour_depth: int = declare(3, "model", "bits per colour channel", minimum=1, maximum=8)


def test_a_new_declaration_is_a_flag_and_a_check_with_no_other_edit(monkeypatch):
    parser = argparse.ArgumentParser()
    add_setting_flags(parser, Extended, lambda name: "three")
    assert parser.parse_args(["--colour-depth", "9"]).colour_depth == 9
    help_text = " ".join(parser.format_help().split())
    assert "--colour-depth COLOUR_DEPTH bits per colour channel (default: three; " in help_text
    assert "an integer >= 1 and <= 8)" in help_text
    with pytest.raises(ValueError, match=r"colour_depth: expected an integer <= 8, found 9"):
        Extended(colour_depth=9)
    assert Extended(colour_depth=8).colour_depth == 8
    # kioku train builds its parser from whatever TrainSettings declares
    import kioku.train.settings

    monkeypatch.setattr(kioku.train.settings, "TrainSettings", Extended)
    monkeypatch.setattr(kioku.train.settings, "preset_default", lambda name: "preset")
    action = next(a for a in train_parser()._actions if a.dest == "colour_depth")
    assert action.option_strings == ["--colour-depth"] and action.type is int


def fits_in(monkeypatch, available: int) -> None:
    monkeypatch.setattr(size, "available_bytes", lambda: available)


@pytest.mark.parametrize(
    ("argv", "flag", "words"),
    [
        (["--hidden", "1000000000"], "--hidden 1000000000", "the weights alone need about 42 EiB"),
        (["--embed", "100000000"], "--embed 100000000", "the weights alone need about"),
        (["--batch-size", "1000000000"], "--batch-size 1000000000", "one batch's activations"),
        (["--bptt", "100000000"], "--bptt 100000000", "one batch's activations need about"),
        (["--layers", "1000", "--hidden", "20000"], "--hidden 20000", "the weights alone"),
        (
            ["--task", "forecast", "--data", "x.csv", "--window", "100000", "--hidden", "900"],
            "--window 100000",
            "one batch's activations need about",
        ),
    ],
)
def test_a_run_too_large_for_memory_is_refused_before_any_allocation(
    argv, flag, words, tmp_path, capsys, monkeypatch
):
    fits_in(monkeypatch, GIB)
    main(["train", "--out", str(tmp_path / "warm"), "--hidden", "0"])  # imports done
    capsys.readouterr()
    tracemalloc.start()
    started = time.perf_counter()
    status = main(["train", "--out", str(tmp_path / "r"), *argv])
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    line = one_line(capsys)
    assert status == 2 and seconds < 1.0 and peak < 16 * 2**20, (seconds, peak)
    assert line.startswith(f"kioku train: {flag}: {words}"), line
    assert line.endswith("this machine has 1.0 GiB available"), line
    assert not (tmp_path / "r").exists()


def test_what_fits_is_not_refused_and_the_real_memory_is_read(monkeypatch):
    available = size.available_bytes()
    assert available is None or available > 0
    fits_in(monkeypatch, GIB)
    assert resolve({}).hidden == 256  # the default run: about 42 MiB
    fits_in(monkeypatch, 2**20)
    with pytest.raises(
        ValueError, match=r"need about 29 MiB \(training about 42 MiB in all\)"
    ) as caught:
        resolve({})
    assert caught.value.setting == "hidden"  # nothing given: the width is named


def test_a_vocabulary_too_large_is_refused_when_the_data_is_read(monkeypatch):
    class HugeVocabulary:
        vocab = range(10**9)

        def build_model(self, *args):
            raise AssertionError("allocated")

    fits_in(monkeypatch, 23 * GIB)
    with pytest.raises(ValueError) as caught:
        build_model(CHAR_LM, HugeVocabulary())
    assert caught.value.setting == "max_vocab"
    assert "a vocabulary of 1000000000 tokens; this machine has 23 GiB available" in str(
        caught.value
    )


def unique_parameters(model) -> int:
    seen: dict[int, int] = {}
    for _, param, _ in model.named_parameters():
        seen[id(param)] = param.size
    return sum(seen.values())


@pytest.mark.parametrize("cell", ["lstm", "gru", "slstm"])
def test_parameter_count_is_what_each_model_allocates(cell):
    heads = 2 if cell == "slstm" else 1
    common = dict(cell=cell, heads=heads, hidden=6, layers=3)
    cases = [
        (
            CHAR_LM.replace(embed=6, tie_weights=True, **common),
            LanguageModel(11, 6, 6, 3, tie_weights=True, cell=cell, num_heads=heads, rng=0),
            dict(vocab_size=11),
        ),
        (
            CHAR_LM.replace(embed=5, **common),
            LanguageModel(11, 5, 6, 3, cell=cell, num_heads=heads, rng=0),
            dict(vocab_size=11),
        ),
        (
            CLASSIFY.replace(embed=5, bidirectional=True, **common),
            SequenceClassifier(13, 5, 6, 4, 3, True, cell=cell, num_heads=heads, rng=0),
            dict(vocab_size=13, num_outputs=4),
        ),
        (
            TAG.replace(embed=5, char_embed=3, char_hidden=4, **common),
            SequenceTagger(
                13, 5, 6, 7, 3, cell=cell, num_heads=heads, char_vocab_size=9,
                char_embed_size=3, char_hidden_size=4, rng=0,
            ),
            dict(vocab_size=13, num_outputs=7, char_vocab_size=9),
        ),
        (
            TAG.replace(embed=5, char_embed=0, bidirectional=False, **common),
            SequenceTagger(13, 5, 6, 7, 3, False, cell=cell, num_heads=heads, rng=0),
            dict(vocab_size=13, num_outputs=7),
        ),
        (
            FORECAST.replace(horizon=3, **common),
            Forecaster(4, 6, 3, 3, cell=cell, num_heads=heads, rng=0),
            dict(input_size=4),
        ),
    ]  # fmt: skip
    for settings, model, sizes in cases:
        count = unique_parameters(model)
        assert size.parameter_count(settings, **sizes) == count, (settings.task, cell)
        estimate = size.estimate(settings, **sizes)
        assert estimate.weights == 4 * count
        assert estimate.training == estimate.weights * (2 + 2)  # Adam: two moments
        assert size.estimate_bytes(settings, **sizes) == estimate.training + estimate.activations


def write_data(tmp_path: Path) -> dict[str, tuple[Path, dict]]:
    text = tmp_path / "code.py"
    text.write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(60)))
    labeled = tmp_path / "labels.tsv"
    labeled.write_text("".join(f"{'abc'[i % 3]}\tword{i % 7} x\n" for i in range(60)))
    rows = [
        f"{i}\t{w}\t{w}\t{'NV'[i % 2]}\t_\t_\t0\tdep\t_\t_"
        for i, w in enumerate("ab cd ef".split(), 1)
    ]
    conllu = tmp_path / "t.conllu"
    conllu.write_text(("\n".join(rows) + "\n\n") * 30)
    series = tmp_path / "s.csv"
    series.write_text("a,b\n" + "".join(f"{np.sin(i)},{np.cos(i)}\n" for i in range(200)))
    return {
        "lm": (text, {"bptt": 8}),
        "classify": (labeled, {"bidirectional": True}),
        "tag": (conllu, {"char_embed": 4, "char_hidden": 3}),
        "forecast": (series, {"window": 6, "horizon": 2}),
    }


def test_the_estimate_counts_the_models_training_builds(tmp_path):
    for task_name, (path, extra) in write_data(tmp_path).items():
        given = dict(task=task_name, data=str(path), hidden=5, layers=2, batch_size=2, **extra)
        if task_name != "forecast":
            given["embed"] = 4
        settings = resolve(given)
        task = build_task(settings)
        model = build_model(settings, task)
        assert size.parameter_count(settings, **data_sizes(task)) == unique_parameters(model)


def test_sample_and_predict_bound_their_numbers_before_loading(tmp_path, capsys):
    missing = str(tmp_path / "no-run")
    for argv, line in [
        (["sample", missing, "--length", "1000000000"], "--length: expected an integer <= 1000000"),
        (["sample", missing, "--length", "0"], "--length: expected an integer >= 1, found 0"),
        (
            ["sample", missing, "--temperature", "inf"],
            "--temperature: expected a finite number >= 0",
        ),
        (["sample", missing, "--seed", "-1"], "--seed: expected an integer >= 0, found -1"),
        (
            ["predict", missing, "--horizon", "1000000000"],
            "--horizon: expected an integer <= 100000",
        ),
        (["predict", missing, "--batch-size", "0"], "--batch-size: expected an integer >= 1"),
    ]:
        started = time.perf_counter()
        assert main(argv) == 2
        assert time.perf_counter() - started < 1.0
        assert one_line(capsys, argv[0]).startswith(f"kioku {argv[0]}: {line}")


def test_the_settings_table_in_the_docs_is_current():
    spec = importlib.util.spec_from_file_location("settings_table", DOCS / "settings_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.table()
    for name, field in declared(TrainSettings).items():
        assert f"| `{field.flag}` |" in table, name
    assert module.current(DOCS / "training.md"), "run: python docs/settings_table.py"
