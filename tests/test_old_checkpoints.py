"""Checkpoints written by the code before the training package was reshaped (main at
b8612e8, ``tests/fixtures/main_checkpoints/make.py``) still load, evaluate and resume,
and give the figures that code gave."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tolerance import assert_close, recurrent_depth

from kioku.cli import main
from kioku.train.checkpoint import load_checkpoint
from kioku.train.evaluation import evaluate_checkpoint
from kioku.train.restore import load_model

FIXTURES = Path(__file__).parent / "fixtures" / "main_checkpoints"
DATA = {"lm": "code.txt", "classify": "labels.tsv", "tag": "tags.conllu", "forecast": "series.csv"}
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.fixture
def fixtures(tmp_path, monkeypatch):
    """A copy of the fixture folder as the working directory (the runs name their data
    by relative paths, and resuming writes into the run)."""
    folder = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, folder)
    monkeypatch.chdir(folder)
    return folder


@pytest.mark.parametrize("name", sorted(DATA))
def test_old_checkpoint_loads_evaluates_and_resumes(fixtures, name, capsys):
    expected = np.load(fixtures / f"{name}_expected.npz", allow_pickle=False)
    model, state, vocab, _ = load_model(name, "latest")
    out = model(expected["inputs"])
    out = out[0] if isinstance(out, tuple) else out
    # the fixtures' models: 4 cells on 3 inputs, one layer; 5 steps of 2 sequences, then an
    # output layer over at most 8 (two directions)
    assert_close("outputs", out, expected["outputs"], recurrent_depth(5, 3, 4, batch=2) + 8)
    assert (vocab is not None) == (name != "forecast")

    record = evaluate_checkpoint(name, "valid", "latest", f"data/{DATA[name]}")
    assert record["loss"] == pytest.approx(EXPECTED[name]["valid_loss"], rel=1e-5)

    assert main(["train", "--resume", name, "--max-steps", "4", "--no-progress"]) == 0
    capsys.readouterr()
    resumed, _ = load_checkpoint(name)
    assert resumed["step"] == EXPECTED[name]["resumed_step"]
    depth = 2 * recurrent_depth(8, 3, 4, batch=4)  # two more steps of at most 8 x 4 inputs
    for key, value in resumed["model"]["params"].items():
        assert_close(key, value, expected[f"resumed/{key}"], depth)
