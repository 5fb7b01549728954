"""Issue 25: trust what you load and what you train.

A checkpoint reads only itself (pointers and tensor files confined, ``checkpoint.json``
sealed, config sizes checked against the tensor header before anything is built);
numbers stay finite or the run stops (exit 3, the last finite checkpoint kept and
named); every JSON kioku writes is strict; a fresh start is fresh. Each refusal is
checked for its message and for leaving the run folder as it was.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import kioku
from kioku.cli import main
from kioku.models import LanguageModel
from kioku.nn import GRU, LSTM, SLSTM
from kioku.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from kioku.train.checkpoint_files import seal
from kioku.train.restore import load_model
from kioku.train.runlog import RunLog


def strict_loads(text: str):
    """``json.loads`` that refuses NaN and Infinity, as jq and browsers do."""

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def files_of(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kioku {command}: "), err
    assert "Traceback" not in err and "MemoryError" not in err
    return lines[0]


def lm_state(tokens=("<unk>", "<eos>", "a", "b")) -> dict:
    """A language model with its vocabulary, as ``kioku.load`` reads it."""
    model = LanguageModel(len(tokens), embed_size=3, hidden_size=4, num_layers=1, rng=0)
    return {
        "model": {"kind": "LanguageModel", "config": model.config(), "params": model.state_dict()},
        "task": {"kind": "lm", "vocab": {"level": "char", "tokens": list(tokens)}},
        "step": 3,
    }


def rewrite(directory: Path, change) -> None:
    """Apply ``change(meta, arrays)`` to a checkpoint and write it back with its digests
    and seal updated: a checkpoint damaged on purpose, not by chance."""
    from kioku.train.checkpoint import decode_tensors, encode_tensors

    meta = json.loads((directory / "checkpoint.json").read_text())
    tensors = directory / meta["tensor_file"]
    arrays = decode_tensors(tensors.read_bytes(), "safetensors", str(tensors))
    change(meta, arrays)
    data = encode_tensors(arrays, "safetensors")
    tensors.write_bytes(data)
    meta["tensor_bytes"], meta["tensor_sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (directory / "checkpoint.json").write_text(json.dumps(seal(meta), indent=1))


# -- 1. a checkpoint reads only itself -------------------------------------------------
def test_pointers_leading_out_of_the_run_folder_are_refused(tmp_path):
    run, other = tmp_path / "run", tmp_path / "other-run"
    save_checkpoint(run, lm_state(), 3, best=True)
    theirs = save_checkpoint(other, lm_state(("<unk>", "<eos>", "x", "y")), 5, best=True)
    before = files_of(run)
    (run / "best.json").write_text(json.dumps({"checkpoint": f"../other-run/{theirs.name}"}))
    with pytest.raises(CheckpointError) as info:
        kioku.load(run)
    assert str(info.value) == (
        f"{run / 'best.json'}: field 'checkpoint': expected a checkpoint folder inside "
        f"{run}, found '../other-run/{theirs.name}'"
    )
    (run / "latest.json").write_text(json.dumps({"checkpoint": str(theirs)}))  # absolute
    with pytest.raises(CheckpointError, match=r"latest\.json: field 'checkpoint': expected a "):
        load_checkpoint(run)
    (run / "latest.json").write_text(json.dumps({"checkpoint": "ckpt-link"}))
    (run / "ckpt-link").symlink_to(theirs)  # a link that leads out
    with pytest.raises(CheckpointError, match=r"found 'ckpt-link', a link to .*other-run"):
        load_checkpoint(run)
    for name in ("..", ".", "", "a/../..", 7):
        (run / "latest.json").write_text(json.dumps({"checkpoint": name}))
        with pytest.raises(CheckpointError, match=r"latest\.json: field 'checkpoint'"):
            load_checkpoint(run)
    (run / "ckpt-link").unlink()
    after = files_of(run)
    assert {p: b for p, b in after.items() if p.parent != run} == {
        p: b for p, b in before.items() if p.parent != run
    }  # the checkpoints themselves untouched


def test_a_tensor_file_outside_the_checkpoint_folder_is_refused(tmp_path):
    run, twin = tmp_path / "run", tmp_path / "twin"
    mine = save_checkpoint(run, lm_state(), 3)
    theirs = save_checkpoint(twin, lm_state(("<unk>", "<eos>", "x", "y")), 3)
    meta = json.loads((mine / "checkpoint.json").read_text())
    data = (theirs / "tensors.safetensors").read_bytes()
    meta.update(tensor_file=f"../../twin/{theirs.name}/tensors.safetensors")
    meta.update(tensor_bytes=len(data), tensor_sha256=hashlib.sha256(data).hexdigest())
    (mine / "checkpoint.json").write_text(json.dumps(seal(meta)))  # digest and seal updated
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(run)
    assert "field 'tensor_file': expected a tensor file inside" in str(info.value)
    assert "'../../twin/" in str(info.value)
    (mine / "linked.safetensors").symlink_to(theirs / "tensors.safetensors")
    meta["tensor_file"] = "linked.safetensors"
    (mine / "checkpoint.json").write_text(json.dumps(seal(meta)))
    with pytest.raises(CheckpointError, match=r"found 'linked\.safetensors', a link to .*twin"):
        load_checkpoint(run)


@pytest.mark.parametrize(
    ("old", "new"),
    [(b'"a"', b'"`"'), (b'"pos"', b'"pns"')],  # one bit each: 0x61 -> 0x60, 0x6f -> 0x6e
)
def test_one_flipped_bit_in_checkpoint_json_is_refused(tmp_path, old, new):
    state = lm_state()
    state["task"]["labels"] = ["pos", "neg"]
    directory = save_checkpoint(tmp_path, state, 3)
    config = directory / "checkpoint.json"
    data = config.read_bytes()
    assert data.count(old) == 1 and sum(bin(a ^ b).count("1") for a, b in zip(old, new)) == 1
    config.write_bytes(data.replace(old, new))
    with pytest.raises(CheckpointError) as info:
        kioku.load(tmp_path)
    assert str(info.value).startswith(f"{config}: corrupted: its content's sha256")
    config.write_bytes(data)
    assert kioku.load(tmp_path).vocab.tokens == ["<unk>", "<eos>", "a", "b"]


def test_a_legacy_checkpoint_without_a_seal_still_loads(tmp_path):
    directory = save_checkpoint(tmp_path, lm_state(), 3)
    meta = json.loads((directory / "checkpoint.json").read_text())
    del meta["meta_sha256"]
    meta["format"] = "kioku-checkpoint-1"
    (directory / "checkpoint.json").write_text(json.dumps(meta))
    assert kioku.load(tmp_path).vocab.tokens[2] == "a"
    meta["format"] = "kioku-checkpoint-2"  # the sealed format without its seal: refused
    (directory / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="field 'meta_sha256' missing"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize(
    ("key", "value"), [("hidden_size", 10**12), ("num_layers", 10**7), ("vocab_size", 10**9)]
)
def test_config_sizes_are_checked_against_the_tensor_header_first(tmp_path, capsys, key, value):
    directory = save_checkpoint(tmp_path, lm_state(), 3)
    rewrite(directory, lambda meta, arrays: meta["state"]["model"]["config"].update({key: value}))
    with pytest.raises(CheckpointError) as info:
        load_model(tmp_path)
    assert f"key 'state.model.config.{key}': {value} does not match the tensors" in str(info.value)
    assert "refused before building the model" in str(info.value)
    for command in ("info", "eval", "predict", "sample"):
        assert main([command, str(tmp_path)]) == 2
        assert key in one_error_line(capsys, command)


def test_info_refuses_a_config_that_disagrees_with_its_tensors(tmp_path, capsys):
    directory = save_checkpoint(tmp_path, lm_state(), 3)
    rewrite(directory, lambda meta, arrays: meta["state"]["model"]["config"].update(hidden_size=3))
    assert main(["info", str(tmp_path)]) == 2
    line = one_error_line(capsys, "info")
    assert (
        "key 'model.params.lstm.weight_ih_l0': expected shape (12, 3) (from model.config)" in line
    )
    assert "found (16, 3) (in the tensor file)" in line


def test_a_vocabulary_that_disagrees_with_the_config_is_refused(tmp_path):
    directory = save_checkpoint(tmp_path, lm_state(), 3)
    rewrite(directory, lambda meta, arrays: meta["state"]["task"]["vocab"]["tokens"].pop())
    with pytest.raises(CheckpointError) as info:
        kioku.load(tmp_path)
    assert "key 'state.task.vocab.tokens' holds 3 entries, but key " in str(info.value)
    assert "'state.model.config.vocab_size' says 4" in str(info.value)


def test_a_forecast_horizon_that_disagrees_with_the_model_is_refused(tmp_path):
    from kioku.models import Forecaster

    model = Forecaster(1, hidden_size=4, horizon=2, rng=0)
    task = {"kind": "forecast", "columns": ["y"], "mean": [0.0], "std": [1.0], "window": 4}
    params = model.state_dict()
    for horizon, words in [(10**9, "is 1000000000"), ([1], "holds 1 entries")]:
        state = {"model": {"kind": "Forecaster", "config": model.config(), "params": params},
                 "task": {**task, "horizon": horizon}, "step": 1}  # fmt: skip
        folder = tmp_path / str(len(str(horizon)))
        save_checkpoint(folder, state, 1)
        with pytest.raises(CheckpointError) as info:
            kioku.load(folder)
        assert f"key 'state.task.horizon' {words}, but key 'state.model.config.horizon' says 2" in (
            str(info.value)
        )


def poison(directory: Path, value: float = np.nan, name: str = "lstm.weight_hh_l0") -> None:
    """Put ``value`` into one parameter of a checkpoint (digest and seal updated)."""

    def change(meta, arrays):
        key = f"model/params/{name}/"
        arrays[key] = arrays[key].copy()
        arrays[key].flat[0] = value

    rewrite(directory, change)


def test_non_finite_tensors_are_refused_by_load_and_every_command(tmp_path, capsys):
    directory = save_checkpoint(tmp_path, lm_state(), 3)
    before = files_of(tmp_path)
    poison(directory, np.inf)
    with pytest.raises(CheckpointError) as info:
        kioku.load(tmp_path)
    assert "tensor 'model.params.lstm.weight_hh_l0' holds 1 non-finite value(s)" in str(info.value)
    state, _ = load_checkpoint(tmp_path, allow_nonfinite=True)  # for those who mean it
    assert np.isinf(state["model"]["params"]["lstm.weight_hh_l0"]).sum() == 1
    for command in ("info", "predict", "sample"):
        assert main([command, str(tmp_path)]) == 2
        assert "model.params.lstm.weight_hh_l0" in one_error_line(capsys, command)
    assert set(files_of(tmp_path)) == set(before)


@pytest.mark.parametrize(
    "layer",
    [lambda: LSTM(3, 4, rng=0), lambda: GRU(3, 4, rng=0), lambda: SLSTM(3, 4, num_heads=2, rng=0)],
    ids=["LSTM", "GRU", "sLSTM"],
)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_load_state_dict_refuses_non_finite_values_naming_the_key(layer, bad):
    module = layer()
    before = module.state_dict()
    state = module.state_dict()
    key = sorted(state)[-1]
    state[key].flat[-1] = bad
    with pytest.raises(ValueError) as info:
        module.load_state_dict(state)
    assert str(info.value).startswith(f"state[{key!r}]: expected finite numbers, found 1 NaN")
    assert all(np.array_equal(before[k], v) for k, v in module.state_dict().items())
    module.load_state_dict(state, allow_nonfinite=True)
    assert not np.isfinite(module.state_dict()[key]).all()


def test_a_non_finite_state_is_never_saved(tmp_path):
    save_checkpoint(tmp_path, lm_state(), 3)
    before = files_of(tmp_path)
    state = lm_state()
    state["model"]["params"]["decoder.bias"][0] = np.nan
    with pytest.raises(ValueError, match=r"tensor 'model\.params\.decoder\.bias': expected fin"):
        save_checkpoint(tmp_path, state, 4)
    with pytest.raises(ValueError, match=r"state\.best_valid: expected a finite number, found"):
        save_checkpoint(tmp_path, {**lm_state(), "best_valid": math.inf}, 4)
    assert files_of(tmp_path) == before


# -- 2. numbers stay finite, or the run stops ------------------------------------------
@pytest.fixture(scope="module")
def series(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "series.csv"
    values = [50 + 10 * math.sin(i / 5) for i in range(300)]
    path.write_text("t,y\n" + "".join(f"{i},{v:.4f}\n" for i, v in enumerate(values)))
    return path


def forecast_argv(series: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--task", "forecast", "--data", str(series), "--out", str(out),
            "--hidden", "8", "--window", "8", "--no-progress", *extra]  # fmt: skip


def test_a_diverging_run_stops_with_exit_3_keeping_the_last_finite_checkpoint(
    tmp_path, series, capsys
):
    out = tmp_path / "run"
    argv = forecast_argv(series, out, "--optimizer", "sgd", "--clip", "0", "--lr", "2")
    assert main([*argv, "--max-steps", "60", "--eval-every", "1"]) == 3
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    line = lines[0]
    assert line.startswith("kioku train: training stopped at step ")
    assert "likely cause: the learning rate 2 is too high" in line and "--clip" in line
    latest = out / json.loads((out / "latest.json").read_text())["checkpoint"]
    assert f"the last finite checkpoint is {latest}: use it" in line
    warning = [s for s in captured.out.splitlines() if s.startswith("warning: the loss")]
    assert len(warning) == 1 and "times its first value" in warning[0]  # before the stop
    step = int(line.split("step ")[1].split(":")[0])
    assert int(latest.name.split("-")[1]) < step
    for folder in out.glob("ckpt-*"):  # every checkpoint written is finite, and loads
        load_checkpoint(folder)
    for record in (out / "log.jsonl").read_text().splitlines():
        strict_loads(record)
    assert kioku.load(out, "latest").checkpoint == latest


@pytest.mark.parametrize(
    "extra",
    [("--optimizer", "sgd", "--clip", "0", "--lr", "1e6"), ("--lr", "1e30")],
    ids=["sgd-1e6-no-clip", "adam-1e30"],
)
def test_huge_learning_rates_stop_at_once(tmp_path, series, capsys, extra):
    out = tmp_path / "run"
    assert main([*forecast_argv(series, out, *extra), "--max-steps", "20"]) == 3
    line = one_error_line(capsys, "train")
    assert "training stopped at step " in line and "no checkpoint was saved before it" in line
    assert "the learning rate 1e+" in line
    assert not out.exists() or not list(out.glob("ckpt-*"))  # no NaN checkpoint


def test_resume_and_predict_refuse_non_finite_parameters(tmp_path, series, capsys):
    out = tmp_path / "run"
    assert main([*forecast_argv(series, out), "--max-steps", "2"]) == 0
    capsys.readouterr()
    latest = out / json.loads((out / "latest.json").read_text())["checkpoint"]
    poison(latest, np.nan, "head.weight")
    before = files_of(out)
    assert main(["train", "--resume", str(out), "--max-steps", "4", "--no-progress"]) == 2
    assert "tensor 'model.params.head.weight' holds 1 non-finite" in one_error_line(capsys, "train")
    assert main(["predict", str(out), str(series), "--which", "latest"]) != 0
    assert "model.params.head.weight" in one_error_line(capsys, "predict")
    assert main(["eval", str(out), "--which", "latest"]) == 2
    assert "model.params.head.weight" in one_error_line(capsys, "eval")
    assert files_of(out) == before


def test_eval_json_is_strict_when_the_loss_overflows(tmp_path, series, capsys):
    out = tmp_path / "run"
    assert main([*forecast_argv(series, out), "--max-steps", "2"]) == 0
    capsys.readouterr()
    latest = out / json.loads((out / "latest.json").read_text())["checkpoint"]

    def huge(meta, arrays):  # finite weights whose forecasts overflow the squared error
        arrays["model/params/head.bias/"] = np.full_like(arrays["model/params/head.bias/"], 3e38)

    rewrite(latest, huge)
    assert main(["eval", str(out), "--which", "latest", "--json"]) == 0
    record = strict_loads(capsys.readouterr().out)
    assert record["loss"] is None and "loss" in record["nonfinite"]


def test_run_log_writes_non_finite_figures_as_null_and_names_them(tmp_path):
    log = RunLog(tmp_path / "log.jsonl")
    log.write({"step": 1, "loss": math.nan, "figures": {"rmse": math.inf}, "lr": 0.1})
    record = strict_loads((tmp_path / "log.jsonl").read_text())
    assert record == {"step": 1, "loss": None, "figures": {"rmse": None}, "lr": 0.1,
                      "nonfinite": ["loss", "figures.rmse"]}  # fmt: skip


# -- 5. a fresh start is fresh ---------------------------------------------------------
def test_a_fresh_start_after_a_dead_run_starts_clean(tmp_path, series, capsys):
    import os

    from kioku.train.lock import LOCK_NAME

    out = tmp_path / "run"
    out.mkdir()
    # killed before its first checkpoint: its log, a checkpoint no pointer names, its lock
    (out / "log.jsonl").write_text('{"step": 5, "split": "valid", "loss": 1.0}\n')
    (out / "ckpt-000000005").mkdir()
    (out / LOCK_NAME).write_text(f"999999999 {os.uname().nodename}\n")
    argv = forecast_argv(series, out, "--max-steps", "10", "--eval-every", "5")
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert "starting clean: removed a dead run's files: ckpt-000000005, log.jsonl" in said
    steps = [strict_loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps.count(5) == 1 and steps[-1] == 10
    assert not (out / LOCK_NAME).exists()
    # a folder named like a checkpoint but holding the user's own files is left alone
    (out / "latest.json").rename(tmp_path / "latest.json")
    (out / "ckpt-000000099").mkdir()
    (out / "ckpt-000000099" / "notes.txt").write_text("mine")
    from kioku.train.checkpoint import remove_dead_run

    assert "ckpt-000000099" not in remove_dead_run(out)
    assert (out / "ckpt-000000099" / "notes.txt").read_text() == "mine"
    shutil.rmtree(out)
    out.mkdir()
    (out / "log.jsonl").write_text('{"step": 5, "split": "valid", "loss": 1.0}\n')
    assert main(argv) == 0
    capsys.readouterr()
    # a folder holding a run (latest.json) is never cleaned: refused as before
    before = files_of(out)
    assert main(argv) == 2
    assert "holds a run already" in one_error_line(capsys, "train")
    assert files_of(out) == before


# -- 4. input streams as checked as files ------------------------------------------------
def predictor_run(folder: Path, kind: str) -> Path:
    """A run folder ``kioku predict`` reads, made without training (random weights)."""
    from kioku.models import Forecaster, SequenceTagger

    if kind == "lm":
        state = lm_state(("<unk>", "<eos>", "a", "b", "\n", " "))
    elif kind == "tag":
        model = SequenceTagger(4, embed_size=3, hidden_size=4, num_tags=2, rng=0)
        task = {
            "kind": "tag",
            "vocab": {"level": "word", "tokens": ["<unk>", "<eos>", "the", "dog"]},
            "labels": ["DET", "NOUN"],
        }
        state = {
            "model": {
                "kind": "SequenceTagger",
                "config": model.config(),
                "params": model.state_dict(),
            },
            "task": task,
            "step": 1,
        }
    else:
        model = Forecaster(1, hidden_size=4, horizon=1, rng=0)
        task = {
            "kind": "forecast",
            "columns": ["y"],
            "mean": [0.0],
            "std": [1.0],
            "window": 4,
            "horizon": 1,
        }
        state = {
            "model": {"kind": "Forecaster", "config": model.config(), "params": model.state_dict()},
            "task": task,
            "step": 1,
        }
    save_checkpoint(folder, state, 1)
    return folder


def predict(capsys, monkeypatch, run: Path, data: bytes, *argv: str) -> tuple[int, str]:
    """``kioku predict RUN -`` with ``data`` as the bytes of standard input: status, the
    one line of stderr on failure (asserted to be one line), else stdout."""
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    status = main(["predict", str(run), "-", *argv])
    if status == 0:
        return status, capsys.readouterr().out
    return status, one_error_line(capsys, "predict")


CONLLU = "1\tthe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNOUN\t_\t_\t0\troot\t_\t_\n\n"
BAD_INPUTS = [
    ("lm", b"\x00\x01binary", "binary {noun} (NUL byte at line 1, byte 0)"),
    ("lm", b"caf\xe9 au lait\n", "not UTF-8 text (byte 0xe9 at line 1, byte 3)"),
    ("tag", CONLLU.replace("2\tdog", "one\tdog", 1).encode(),
     "line 2: ID 'one': expected a word number (1, 2, ...), a range (1-2) or an empty node"),
    ("tag", CONLLU.replace("\t_\t_\n", "\t_\n").encode(),  # a column short: 9
     "line 1: expected 10 tab-separated CoNLL-U columns, found 9"),
    ("forecast", b"y\n1\nx\n", "line 3: expected numbers in columns ['y']"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "data", "words"), BAD_INPUTS)
def test_standard_input_gets_the_checks_a_file_gets(tmp_path, capsys, monkeypatch, kind, data,
                                                     words):  # fmt: skip
    run = predictor_run(tmp_path / kind, kind)
    status, line = predict(capsys, monkeypatch, run, data)
    assert status == 2 and f"kioku predict: standard input: {words.format(noun='input')}" in line
    path = tmp_path / "input.txt"
    path.write_bytes(data)
    assert main(["predict", str(run), str(path)]) == 2
    assert f"kioku predict: {path}: {words.format(noun='file')}" in one_error_line(
        capsys, "predict"
    )


def test_good_conllu_from_standard_input_is_tagged(tmp_path, capsys, monkeypatch):
    run = predictor_run(tmp_path / "tag", "tag")
    status, out = predict(capsys, monkeypatch, run, CONLLU.encode())
    assert status == 0
    rows = [line.split("\t") for line in out.splitlines() if line]
    assert [r[1] for r in rows] == ["the", "dog"] and {r[3] for r in rows} <= {"DET", "NOUN"}


@pytest.mark.parametrize(
    ("kind", "data"),
    [("lm", b"a" * 10485760 + b"\n"), ("forecast", b"y\n1\n" + b"2" * 10485760 + b"\n")],
)
def test_a_10_mb_line_is_refused_at_the_stated_limit_within_seconds(
    tmp_path, capsys, monkeypatch, kind, data
):
    import time

    from kioku.data.inputs import MAX_LINE_CHARS

    run = predictor_run(tmp_path / kind, kind)
    started = time.perf_counter()
    status, line = predict(capsys, monkeypatch, run, data)
    assert time.perf_counter() - started < 20
    number = 1 if kind == "lm" else 3
    assert status == 2 and line == (
        f"kioku predict: standard input: line {number}: 10485760 characters, more than the "
        f"limit of {MAX_LINE_CHARS}"
    )


# -- interop and settings: clear errors ------------------------------------------------
def test_from_torch_on_a_path_is_a_clear_error():
    from kioku.interop import from_torch

    with pytest.raises(TypeError, match=r"found a path 'evil\.pt': kioku never unpickles"):
        from_torch("evil.pt")
    with pytest.raises(TypeError, match=r"module_or_state_dict: expected torch\.nn\.LSTM.*int"):
        from_torch(3)


def test_from_onnx_with_an_empty_initializer_names_it(tmp_path):
    pytest.importorskip("onnx")
    from test_robust_cli import one_lstm_node_model

    from kioku.interop import from_onnx

    model = one_lstm_node_model(3, 3)
    weights = next(init for init in model.graph.initializer if init.name == "W")
    weights.ClearField("raw_data")
    del weights.float_data[:]
    path = tmp_path / "empty.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ValueError) as info:
        from_onnx(path)
    assert "initializer 'W': declared shape [1, 12, 3] (36 values), but its data does not" in (
        str(info.value)
    )


def test_max_vocab_1_is_refused(tmp_path, capsys):
    data = tmp_path / "words.txt"
    data.write_text("the cat sat on the mat\n" * 50)
    argv = ["train", "--data", str(data), "--level", "word", "--out", str(tmp_path / "r")]
    assert main([*argv, "--max-vocab", "1"]) == 2
    assert "--max-vocab" in one_error_line(capsys, "train")
    assert not (tmp_path / "r").exists()
    # the same model of <unk> and <eos> alone, reached by --min-count: refused too
    assert main([*argv, "--min-count", "1000", "--hidden", "8", "--embed", "4"]) == 2
    line = one_error_line(capsys, "train")
    assert "--min-count 1000: the vocabulary holds only <unk> and <eos>" in line
    assert not (tmp_path / "r").exists()
