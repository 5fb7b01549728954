"""A run described by a file: settings.toml in every run folder, kioku train --config and
--print-config (kioku.train.config_file)."""

from __future__ import annotations

import random

import pytest
import tomllib

from kioku.cli import main
from kioku.train.checkpoint import load_checkpoint
from kioku.train.config_file import read_config, settings_toml, settings_values, to_toml
from kioku.train.settings import TrainSettings

SMALL = ["--hidden", "8", "--embed", "8", "--batch-size", "8", "--no-progress"]


@pytest.fixture
def reviews(tmp_path):
    rng = random.Random(0)
    lines = [rng.choice(["pos\tgood fine film", "neg\tbad awful film"]) for _ in range(60)]
    path = tmp_path / "reviews.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_flat_values_round_trip_through_toml(tmp_path):
    values = {"lr": 3e-05, "clip": 0.25, "hidden": 7, "plateau": True, "name": 'a "b" \\ c é',
              "big": 1e300, "whole": 2.0, "negative": -0.5, "gone": None}  # fmt: skip
    text = to_toml(values)
    assert 'gone = "none"' in text
    back = tomllib.loads(text)
    assert back == {**values, "gone": "none"}
    assert type(back["whole"]) is float and type(back["hidden"]) is int


def test_settings_round_trip_through_their_toml():
    settings = TrainSettings(
        task="classify", data="/d/x.tsv", hidden=12, lr=1e-4, clip=None, epochs=3,
        max_steps=None, bptt=None, pooling="mean", out="runs/x",
    )  # fmt: skip
    values = tomllib.loads(settings_toml(settings))
    assert "window" not in values and "bptt" not in values  # forecast's, lm's: not classify's
    assert values["clip"] == "none" and values["max_steps"] == "none"
    rebuilt = TrainSettings(**settings_values(values, TrainSettings), bptt=None)
    assert rebuilt == settings


def test_every_run_folder_holds_its_settings_and_runs_again_from_them(tmp_path, reviews):
    first = tmp_path / "a"
    argv = ["train", "--task", "classify", "--data", str(reviews), "--epochs", "2", *SMALL]
    assert main([*argv, "--lr", "0.01", "--out", str(first)]) == 0
    config = first / "settings.toml"
    assert read_config(config)["lr"] == 0.01
    again = tmp_path / "b"
    assert main(["train", "--config", str(config), "--out", str(again)]) == 0
    saved = [load_checkpoint(run)[0]["meta"]["settings"] for run in (first, again)]
    assert {**saved[0], "out": None} == {**saved[1], "out": None}
    assert saved[1]["out"] == str(again) and saved[1]["lr"] == 0.01
    # and both runs computed the same: same settings, same seed
    params = [load_checkpoint(run)[0]["model"]["params"] for run in (first, again)]
    for name, value in params[0].items():
        assert (value == params[1][name]).all(), name
    # a flag given beside the file wins
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "c"), "--lr",
                 "0.02"]) == 0  # fmt: skip
    assert read_config(tmp_path / "c" / "settings.toml")["lr"] == 0.02


def test_print_config_prints_what_config_reads(tmp_path, reviews, capsys):
    argv = ["train", "--task", "classify", "--data", str(reviews), "--hidden", "9",
            "--out", str(tmp_path / "r")]  # fmt: skip
    assert main([*argv, "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert not (tmp_path / "r").exists()  # printed, nothing trained
    values = tomllib.loads(printed)
    assert values["hidden"] == 9 and values["data"] == str(reviews.resolve())
    (tmp_path / "run.toml").write_text(printed)
    assert main(["train", "--config", str(tmp_path / "run.toml"), "--print-config"]) == 0
    assert capsys.readouterr().out == printed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("hiden = 8\n", "unknown ['hiden']"),
        ("hidden = 0\ntask = 'classify'\n", "--hidden: expected an integer >= 1, found 0"),
        ("[model]\nhidden = 8\n", "key 'model': expected a flat value, found a table"),
        ("hidden = = 8\n", "not TOML"),
    ],
)
def test_a_bad_config_is_refused_in_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert main(["train", "--config", str(tmp_path / "none.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_char_language_model_runs_again_from_its_settings(tmp_path):
    # its unset settings (tokenizer, epochs, max_time: "none") read back as unset
    text = tmp_path / "t.txt"
    text.write_text("hello world\n" * 200)
    first, again = tmp_path / "a", tmp_path / "b"
    small = ["--hidden", "8", "--embed", "8", "--batch-size", "4", "--bptt", "8", "--no-progress"]
    small += ["--data", str(text), "--max-steps", "3"]
    assert main(["train", "--out", str(first), *small]) == 0
    assert main(["train", "--config", str(first / "settings.toml"), "--out", str(again)]) == 0
    saved = [load_checkpoint(run)[0]["meta"]["settings"] for run in (first, again)]
    assert {**saved[0], "out": None} == {**saved[1], "out": None}
    assert saved[1]["tokenizer"] is None and saved[1]["epochs"] is None
