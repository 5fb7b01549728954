"""The GRU and sLSTM beside the LSTM in training: ``kioku train --cell`` for every task,
checkpoints that keep the cell and reload to the same outputs, resuming a language model
whose carried state has one (GRU) or four (sLSTM) components, and old checkpoints (no
cell in their config) loading as LSTMs."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from tolerance import assert_close, recurrent_depth

from kioku.cli import main
from kioku.train.checkpoint import load_checkpoint
from kioku.train.restore import load_model
from kioku.train.runner import build_trainer
from kioku.train.settings import TrainSettings

FIXTURES = Path(__file__).parent / "fixtures" / "main_checkpoints"
DATA = {"lm": "code.txt", "classify": "labels.tsv", "tag": "tags.conllu", "forecast": "series.csv"}
CELLS = {"lstm": 1, "gru": 1, "slstm": 2}  # cell -> heads
LAYERS = {"lstm": "LSTM", "gru": "GRU", "slstm": "SLSTM"}


def small_settings(task: str, cell: str, out: Path, steps: int = 3) -> TrainSettings:
    return TrainSettings(
        task=task,
        data=str(FIXTURES / "data" / DATA[task]),
        out=str(out),
        cell=cell,
        heads=CELLS[cell],
        hidden=8,
        embed=6,
        layers=2,
        bptt=12,
        batch_size=4,
        window=6,
        max_steps=steps,
        epochs=None,
        eval_every=0,
        eval_tokens=200,
        sample_every=0,
        no_progress=True,
    )


def inputs_for(task: str, model, rng: np.random.Generator):
    """A batch the model of ``task`` takes: ``(inputs, lengths)``."""
    if task == "forecast":
        return rng.standard_normal((6, 3, model.input_size)).astype(np.float32), None
    tokens = rng.integers(0, model.vocab_size, (7, 3))
    return tokens, (None if task == "lm" else np.array([7, 4, 2]))


def outputs(model, inputs, lengths):
    with model.eval_mode():
        out = model(inputs) if lengths is None else model(inputs, lengths)
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(DATA))
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_every_task_trains_saves_and_reloads_with_every_cell(tmp_path, task, cell):
    settings = small_settings(task, cell, tmp_path / "run")
    trainer = build_trainer(settings, stream=io.StringIO())
    result = trainer.run()
    assert result.step == 3 and np.isfinite(result.losses).all()
    trained = trainer.model
    assert trained.cell == cell and type(trained.recurrent).__name__ == LAYERS[cell]
    if cell == "slstm":
        assert trained.recurrent.num_heads == 2

    state, _ = load_checkpoint(settings.out)
    assert state["model"]["config"]["cell"] == cell
    assert state["meta"]["settings"]["cell"] == cell
    loaded, _, _, _ = load_model(settings.out)
    assert type(loaded.recurrent).__name__ == LAYERS[cell] and loaded.config() == trained.config()
    for name, value in trained.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value, err_msg=name)
    inputs, lengths = inputs_for(task, trained, np.random.default_rng(0))
    expected = outputs(trained, inputs, lengths)
    assert np.isfinite(expected).all()
    np.testing.assert_array_equal(outputs(loaded, inputs, lengths), expected)


@pytest.mark.parametrize("cell", ["gru", "slstm"])
def test_cli_resume_of_a_language_model_carries_each_cells_state(tmp_path, cell, capsys):
    """Interrupted after 2 steps and resumed to 4, the run ends where an uninterrupted
    one does: the carried state (1 array for the GRU, 4 for the sLSTM) is saved whole."""
    data = str(FIXTURES / "data" / "code.txt")
    common = ["--data", data, "--cell", cell, "--hidden", "8", "--embed", "6", "--layers", "1"]
    common += ["--bptt", "8", "--batch-size", "3", "--eval-every", "0", "--sample-every", "0"]
    common += ["--eval-tokens", "100", "--no-progress"]
    if cell == "slstm":
        common += ["--heads", "4"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["train", "--out", str(full), "--max-steps", "4", *common]) == 0
    assert main(["train", "--out", str(part), "--max-steps", "2", *common]) == 0
    assert main(["train", "--resume", str(part), "--max-steps", "4"]) == 0
    capsys.readouterr()
    ends = [load_checkpoint(run)[0] for run in (full, part)]
    assert ends[0]["step"] == ends[1]["step"] == 4
    carry = ends[1]["task"]["carry"]
    assert len(carry) == {"gru": 1, "slstm": 4}[cell]
    # 4 optimizer steps of a layer of 8 cells on 6 inputs, bptt 8, batch 3
    depth = 4 * recurrent_depth(8, 6, 8, batch=3)
    for a, b in zip(ends[0]["task"]["carry"], carry):
        assert_close("carried state", b, a, depth)
    assert ends[1]["model"]["config"]["cell"] == cell
    for name, value in ends[0]["model"]["params"].items():
        assert name.startswith(("embedding", cell, "decoder")), name
        assert_close(name, ends[1]["model"]["params"][name], value, depth)


def test_cli_cell_flags_and_their_errors(tmp_path, capsys):
    data = str(FIXTURES / "data" / "labels.tsv")
    argv = ["train", "--task", "classify", "--data", data, "--hidden", "8", "--embed", "4"]
    argv += ["--max-steps", "2", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "a"), "--cell", "slstm", "--heads", "3"]) == 2
    assert "--heads: expected 1 or (cell slstm) a divisor of hidden 8" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "b"), "--cell", "gru", "--heads", "2"]) == 2
    assert "found 2 (cell gru)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--out", str(tmp_path / "c"), "--cell", "rnn"])
    assert "invalid choice: 'rnn'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cell"):
        TrainSettings(cell="transformer")
    with pytest.raises(ValueError, match="heads: expected 1 or"):
        TrainSettings(cell="slstm", heads=None)
    assert TrainSettings(cell="slstm", hidden=12, heads=3).cell_options() == {
        "cell": "slstm",
        "num_heads": 3,
    }
    assert TrainSettings.from_dict({"hidden": 8}).cell == "lstm"  # settings saved before cells
    assert main([*argv, "--out", str(tmp_path / "d"), "--cell", "gru"]) == 0
    assert "'cell': 'gru'" in capsys.readouterr().out  # the model line shows its config


@pytest.mark.parametrize("name", sorted(DATA))
def test_old_checkpoints_without_a_cell_load_as_lstms(tmp_path, name, monkeypatch):
    folder = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, folder)
    monkeypatch.chdir(folder)
    state, _ = load_checkpoint(name)
    assert "cell" not in state["model"]["config"]
    assert "cell" not in state["meta"]["settings"]
    model, _, _, _ = load_model(name)
    assert model.cell == "lstm" and type(model.recurrent).__name__ == "LSTM"
    assert model.recurrent is model.lstm
    assert all(not k.startswith(("gru.", "slstm.")) for k in model.state_dict())


def test_onnx_export_of_a_gru_model_names_the_cell():
    from kioku.interop import to_onnx
    from kioku.models import LanguageModel

    model = LanguageModel(7, 4, 6, 1, cell="gru", rng=0)
    with pytest.raises(TypeError, match="cell 'gru'"):
        to_onnx(model)
