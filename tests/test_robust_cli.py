"""Issue 10 on the command line: bad input and damaged files get exit status 2 and one
line naming the command, the flag or file (and key), what was expected and what was
found; a run folder has one writer; nothing a kill leaves behind survives a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

from kioku.cli import main
from kioku.train.checkpoint import load_checkpoint
from kioku.train.checkpoint_files import seal
from kioku.train.lock import LOCK_NAME

SMALL = ["--hidden", "8", "--embed", "4", "--layers", "1", "--bptt", "8", "--batch-size", "2"]
SMALL += ["--eval-tokens", "100", "--no-progress"]


def files_of(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def one_error_line(capsys, command):
    """The command's stderr: exactly one line, starting ``kioku COMMAND:``."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kioku {command}: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "code.py"
    path.write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(120)))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A two-step character run, made once; tests copy it before damaging it."""
    folder = tmp_path_factory.mktemp("trained")
    data = folder / "code.py"
    data.write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(120)))
    run = folder / "run"
    argv = ["train", "--data", str(data), "--out", str(run), "--max-steps", "2", *SMALL]
    assert main(argv) == 0
    return run


def copy_run(trained, tmp_path):
    import shutil

    target = tmp_path / "run"
    shutil.copytree(trained, target)
    return target


# -- numbers out of range -------------------------------------------------------------
# what each message says the flag expects -> the flags with that range and a value outside
# it; the message shows the value as parsed (a float flag's "1" is 1.0)
OUT_OF_RANGE = {
    "an integer >= 1": [("--max-steps", "-1"), ("--epochs", "0")],
    "an integer >= 0": [
        ("--eval-every", "-1"),
        ("--keep", "-2"),
        ("--seed", "-3"),
        ("--patience", "-1"),
    ],
    "[0, 1)": [("--dropout", "1.5"), ("--momentum", "1")],
    "a finite number > 0": [("--lr", "nan")],
    "a number > 0": [("--max-time", "0")],
    "a number >= 0": [("--clip", "-1")],
    "(0, 1]": [("--lr-decay", "1.5")],
}


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        (flag, value, f"expected {bound}, found {value if 'integer' in bound else float(value)}")
        for bound, cases in OUT_OF_RANGE.items()
        for flag, value in cases
    ],
)
def test_numbers_out_of_range_name_the_flag(tmp_path, capsys, flag, value, expected):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), flag, value, "--no-progress"]) == 2
    assert one_error_line(capsys, "train") == f"kioku train: {flag}: {expected}"
    assert not out.exists()


def test_inspect_max_tokens_out_of_range(tmp_path, trained, capsys):
    text = tmp_path / "t.py"
    text.write_text("x = 1\n" * 50)
    argv = ["inspect", str(trained), "--text", str(text), "--out", str(tmp_path / "rep")]
    assert main([*argv, "--max-tokens", "-5"]) == 2
    assert one_error_line(capsys, "inspect") == (
        "kioku inspect: --max-tokens: expected an integer >= 1, found -5"
    )
    assert not (tmp_path / "rep").exists()


# -- bad values in data ---------------------------------------------------------------
@pytest.mark.parametrize("cell", ["nan", "inf", "-Infinity", "NaN"])
def test_csv_nan_or_inf_named_with_line_and_column(tmp_path, capsys, cell):
    csv = tmp_path / "series.csv"
    rows = [f"{i},{i * 2}" for i in range(400)]
    rows[6] = f"7,{cell}"
    csv.write_text("a,b\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    assert main(["train", "--task", "forecast", "--data", str(csv), "--out", str(out)]) == 2
    line = one_error_line(capsys, "train")
    assert f"series.csv: line 8, column 2 ('b'): expected a finite number, found {cell!r}" in line
    assert not out.exists()


def test_one_row_csv_named_without_numpy_warnings(tmp_path, capsys):
    csv = tmp_path / "one.csv"
    csv.write_text("a,b\n1,2\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old path printed NumPy's RuntimeWarnings
        status = main(["train", "--task", "forecast", "--data", str(csv), "--out", str(tmp_path)])
    assert status == 2
    line = one_error_line(capsys, "train")
    assert "one.csv: expected at least" in line and "found 1" in line


# -- damaged checkpoint.json: a missing key or a wrong type ---------------------------
DAMAGE = [
    (("step",), None, "key 'state.step' missing"),
    (("model", "config"), "x", "key 'state.model.config': expected an object, found 'x'"),
    (("task",), 3, "key 'state.task': expected an object, found 3"),
    (("optimizer", "hyperparams", "lr"), "x", "'state.optimizer.hyperparams.lr': expected a"),
    # the settings matter to the commands that rebuild the data: train and eval
    (("meta", "settings", "hidden"), -3, "'state.meta.settings.hidden': expected an integer"),
    (("task", "vocab", "tokens"), None, "key 'state.task.vocab.tokens' missing"),
    (("recent_losses",), ["x"], "key 'state.recent_losses': expected list of numbers"),
    (("task", "position", "batch"), -1, "key 'state.task.position.batch': expected an integer"),
]


def damage(run, path, value):
    config = next(run.glob("ckpt-*/checkpoint.json"))
    tree = json.loads(config.read_text())
    holder = tree["state"]
    for part in path[:-1]:
        holder = holder[part]
    if value is None:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    config.write_text(json.dumps(seal(tree)))  # resealed: the field checks behind the seal


@pytest.mark.parametrize(("path", "value", "words"), DAMAGE)
def test_damaged_checkpoint_json_names_file_and_key(tmp_path, trained, capsys, path, value, words):
    run = copy_run(trained, tmp_path)
    damage(run, path, value)
    before = files_of(run)
    commands = {
        "train": ["train", "--resume", str(run), "--max-steps", "4"],
        "eval": ["eval", str(run)],
        "sample": ["sample", str(run), "--length", "5"],
        "info": ["info", str(run)],
    }
    if path[0] == "meta":  # sample and info need no settings (their model is complete)
        commands = {k: v for k, v in commands.items() if k in ("train", "eval")}
    for command, argv in commands.items():
        assert main(argv) == 2, command
        line = one_error_line(capsys, command)
        assert "checkpoint.json: " in line and words in line, line
    assert files_of(run) == before


# -- a log cut by a kill --------------------------------------------------------------
def test_info_reads_a_log_whose_last_line_was_cut(tmp_path, trained, capsys):
    run = copy_run(trained, tmp_path)
    log = run / "log.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    log.write_text(log.read_text() + '{"step": 9, "split": "va')
    assert main(["info", str(run), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["log_tail"] == records[-3:]
    assert "kioku info: warning: " in captured.err and "log.jsonl: line" in captured.err
    log.write_text('{"step": 1\n' + log.read_text())  # a bad line before the end: refused
    assert main(["info", str(run)]) == 2
    assert "log.jsonl: line 1: not a JSON record" in one_error_line(capsys, "info")


# -- failing late ---------------------------------------------------------------------
def test_out_naming_a_file_fails_before_the_first_step(tmp_path, text_file, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    argv = ["train", "--data", str(text_file), "--out", str(out), "--max-steps", "2", *SMALL]
    assert main(argv) == 2
    line = one_error_line(capsys, "train")
    assert line == f"kioku train: --out {out}: expected a run folder, found a file"
    assert out.read_text() == "mine"
    assert capsys.readouterr().out == ""  # no task header, no step: refused first


# -- shared folders -------------------------------------------------------------------
def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_live_lock_refuses_a_second_run(tmp_path, text_file, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK_NAME).write_text(f"{holder.pid} {os.uname().nodename}\n")
        argv = ["train", "--data", str(text_file), "--out", str(out), "--max-steps", "2", *SMALL]
        assert main(argv) == 2
        line = one_error_line(capsys, "train")
        assert f"in use by another kioku run (process {holder.pid}" in line
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over_and_dropped(tmp_path, text_file, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(f"{dead_pid()} {os.uname().nodename}\n")
    argv = ["train", "--data", str(text_file), "--out", str(out), "--max-steps", "2", *SMALL]
    assert main(argv) == 0
    assert (out / "latest.json").is_file() and not (out / LOCK_NAME).exists()


def test_two_processes_into_one_folder(tmp_path, text_file):
    """Two real ``kioku train`` processes: the one that finds the lock held exits 2."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "kioku", "train", "--data", str(text_file), "--out", str(out)]
    # the first must still hold the lock when the second starts: far more steps than it can
    # run meanwhile (400 finished first once the kernels got faster), killed at the end
    argv += ["--max-steps", "1000000", *SMALL]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (out / LOCK_NAME).exists() and time.monotonic() < deadline:
            assert first.poll() is None, first.stderr.read()
            time.sleep(0.02)  # until the first holds the lock
        assert (out / LOCK_NAME).exists()
        second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert second.stderr.count("\n") == 1 and "in use by another kioku run" in second.stderr
        assert f"process {first.pid}" in second.stderr
    finally:
        first.kill()
        first.wait()


def test_log_symlink_is_refused_not_appended_through(tmp_path, trained, capsys):
    run = copy_run(trained, tmp_path)
    elsewhere = tmp_path / "precious.txt"
    elsewhere.write_text("not a log\n")
    (run / "log.jsonl").unlink()
    (run / "log.jsonl").symlink_to(elsewhere)
    assert main(["train", "--resume", str(run), "--max-steps", "4"]) == 2
    line = one_error_line(capsys, "train")
    assert "log.jsonl: expected the run's own log file, found a symbolic link" in line
    assert elsewhere.read_text() == "not a log\n"
    assert not (run / LOCK_NAME).exists()


# -- leftovers of a kill --------------------------------------------------------------
def test_leftovers_of_a_kill_are_removed_on_the_next_start(tmp_path, trained, capsys):
    run = copy_run(trained, tmp_path)
    partial = run / ".tmp-ckpt-abc123"
    partial.mkdir()
    (partial / "tensors.safetensors").write_bytes(b"half")
    (run / ".latest.json.x1y2.tmp").write_text('{"checkpoint": ')
    (run / ".log.jsonl.q9.tmp").write_text("")
    (run / f".{LOCK_NAME}.zz.tmp").write_text("")
    assert main(["train", "--resume", str(run), "--max-steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "removed what an interrupted write left: .kioku.lock.zz.tmp" in out
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
    assert load_checkpoint(run)[0]["step"] == 3


# -- interop built from inconsistent files --------------------------------------------
def one_lstm_node_model(hidden_size, attribute):
    """A graph of one ONNX LSTM node with weights of ``hidden_size`` and the attribute
    ``hidden_size=attribute``."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    H, I = hidden_size, 3
    inits = [
        numpy_helper.from_array(rng.standard_normal((1, 4 * H, I)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal((1, 4 * H, H)).astype(np.float32), "R"),
    ]
    node = helper.make_node("LSTM", ["X", "W", "R"], ["Y"], name="n", hidden_size=attribute)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 1, I])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])


def test_onnx_hidden_size_disagreeing_with_weights_is_refused_by_to_lstm_and_run():
    pytest.importorskip("onnx")
    from kioku.interop import from_onnx

    agreeing = from_onnx(one_lstm_node_model(5, 5))
    assert agreeing.to_lstm().hidden_size == 5
    lstm = from_onnx(one_lstm_node_model(5, 7))
    expected = r"node 'n': attribute 'hidden_size': expected 5 \(R's last axis\), found 7"
    with pytest.raises(ValueError, match=expected):
        lstm.to_lstm()
    with pytest.raises(ValueError, match=expected):
        lstm.run({"X": np.zeros((2, 1, 3), np.float32)})


@pytest.mark.parametrize("cut", [0, 10, 100])
def test_corrupt_onnx_and_safetensors_files_are_named(tmp_path, cut):
    pytest.importorskip("onnx")
    pytest.importorskip("safetensors")
    from safetensors.numpy import save_file

    from kioku.interop import from_onnx, load_torch_safetensors, to_onnx
    from kioku.interop.onnx_gru import from_onnx_gru
    from kioku.nn import LSTM

    onnx_path = tmp_path / "model.onnx"
    to_onnx(LSTM(3, 4, rng=0), onnx_path)
    onnx_path.write_bytes(onnx_path.read_bytes()[:cut] + b"\xff\xfe garbage")
    for load in (from_onnx, from_onnx_gru):
        with pytest.raises(ValueError) as info:
            load(onnx_path)
        assert str(info.value).startswith(f"{onnx_path}: not a readable ONNX model")
    st_path = tmp_path / "weights.safetensors"
    save_file({"weight_ih_l0": np.zeros((16, 3), np.float32)}, str(st_path))
    st_path.write_bytes(st_path.read_bytes()[:cut] + b"\x00garbage")
    with pytest.raises(ValueError) as info:
        load_torch_safetensors(st_path)
    assert str(info.value).startswith(f"{st_path}: not a readable safetensors file")


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["sample", "RUN", "--temperature", "-1"], "--temperature: expected a number >= 0"),
        (["sample", "RUN", "--top-k", "0"], "--top-k: expected an integer >= 1, found 0"),
        (["sample", "RUN", "--length", "0"], "--length: expected an integer >= 1, found 0"),
        (["info", "NOPE"], "NOPE: no checkpoint (checkpoint.json or latest.json) found"),
        (["eval", "NOPE"], "NOPE: no checkpoint (checkpoint.json or latest.json) found"),
        (["train", "--resume", "NOPE"], "NOPE: no checkpoint"),
        (["train", "--out", "/proc/kioku-run"], "--out /proc/kioku-run: cannot create or write"),
        (["train", "--data", "NOPE", "--out", "OUT"], "--data: NOPE: no such file or directory"),
    ],
)
def test_other_bad_input_gets_one_line_and_status_2(tmp_path, trained, capsys, argv, line):
    names = {"RUN": str(trained), "NOPE": str(tmp_path / "nope"), "OUT": str(tmp_path / "o")}
    argv = [names.get(a, a) for a in argv]
    line = line.replace("NOPE", names["NOPE"])
    assert main([*argv, "--no-progress"] if argv[0] == "train" else argv) == 2
    assert line in one_error_line(capsys, argv[0])
