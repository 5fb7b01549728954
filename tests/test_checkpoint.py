"""Checkpoints: round trips, atomic writes, and errors that name the file and the key."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kioku.nn import LSTM
from kioku.train import checkpoint as ckpt
from kioku.train import rngstate
from kioku.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from kioku.train.checkpoint_files import seal
from kioku.train.optim import Adam
from kioku.train.restore import load_params


def make_state(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    lstm = LSTM(3, 4, num_layers=2, rng=rng)
    opt = Adam(lstm.parameters(), lr=0.01)
    for _, _, grad in lstm.named_parameters():
        grad[...] = rng.standard_normal(grad.shape)
    opt.step()
    return {
        "model": {"kind": "LSTM", "config": lstm.config(), "params": lstm.state_dict()},
        "optimizer": opt.state_dict(),
        "rng": {"model": rngstate.collect(lstm)},
        "carry": [rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 4))],
        "step": 7,
        "best_valid": None,
    }


def assert_same_tree(a, b):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_tree(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_tree(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("backend", ["safetensors", "npz"])
def test_round_trip_is_exact(tmp_path, monkeypatch, backend):
    if backend == "npz":
        monkeypatch.setattr(ckpt, "_have_safetensors", lambda: False)
    state = make_state()
    path = save_checkpoint(tmp_path, state, step=7)
    assert (path / f"tensors.{backend}").is_file()
    loaded, directory = load_checkpoint(tmp_path)
    assert directory == path
    assert_same_tree(state, loaded)
    # the PCG64 state (128-bit integers) survives JSON
    generator = np.random.default_rng()
    rngstate.set_state(generator, loaded["rng"]["model"]["rng"])
    reference = np.random.default_rng()
    reference.bit_generator.state = state["rng"]["model"]["rng"]
    assert np.array_equal(generator.random(5), reference.random(5))


def test_latest_and_best_pointers_and_pruning(tmp_path):
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, make_state(step), step=step, best=step == 2, keep=2)
    names = sorted(p.name for p in tmp_path.glob("ckpt-*"))
    assert names == ["ckpt-000000002", "ckpt-000000003", "ckpt-000000004"]  # best kept
    assert load_checkpoint(tmp_path)[1].name == "ckpt-000000004"
    best, _ = load_checkpoint(tmp_path, which="best")
    assert_same_tree(best, make_state(2))
    again = save_checkpoint(tmp_path, make_state(9), step=4)  # same step saved again
    assert again.name == "ckpt-000000004.1"
    assert load_checkpoint(tmp_path)[1] == again


def test_write_failing_halfway_leaves_previous_checkpoint(tmp_path, monkeypatch):
    first = make_state(1)
    save_checkpoint(tmp_path, first, step=1)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    real_write = ckpt._write_file
    calls = []

    def failing_write(path, data):
        calls.append(path)
        if len(calls) == 1:
            real_write(path, data[: len(data) // 2])  # half the tensors, then the crash
            raise OSError("disk full")
        real_write(path, data)

    monkeypatch.setattr(ckpt, "_write_file", failing_write)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, make_state(2), step=2)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # nothing touched, no temporary left behind
    loaded, _ = load_checkpoint(tmp_path)
    assert_same_tree(first, loaded)

    # an interruption (Ctrl-C) between the files behaves the same
    calls.clear()

    def interrupted_write(path, data):
        calls.append(path)
        if path.name == ckpt.CONFIG_NAME:
            raise KeyboardInterrupt
        real_write(path, data)

    monkeypatch.setattr(ckpt, "_write_file", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, make_state(3), step=3)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_truncated_and_corrupted_tensor_files_are_named(tmp_path):
    path = save_checkpoint(tmp_path, make_state(), step=7)
    tensors = path / "tensors.safetensors"
    data = tensors.read_bytes()
    tensors.write_bytes(data[:-100])
    with pytest.raises(CheckpointError, match=r"tensors\.safetensors: truncated.*expected"):
        load_checkpoint(tmp_path)
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    tensors.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match=r"tensors\.safetensors: corrupted: sha256"):
        load_checkpoint(tmp_path)


def test_broken_json_and_missing_fields_are_named(tmp_path):
    path = save_checkpoint(tmp_path, make_state(), step=7)
    config = path / "checkpoint.json"
    text = config.read_text()
    config.write_text(text[: len(text) // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint\.json: invalid JSON at line \d+"):
        load_checkpoint(tmp_path)
    meta = json.loads(text)
    del meta["tensor_sha256"]
    config.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"checkpoint\.json: field 'tensor_sha256' missing"):
        load_checkpoint(tmp_path)
    meta = json.loads(text)
    meta["state"]["carry"][0] = {"__array__": "carry/7"}
    config.write_text(json.dumps(meta))  # the seal no longer matches: refused first
    with pytest.raises(CheckpointError, match=r"checkpoint\.json: corrupted: its content"):
        load_checkpoint(tmp_path)
    config.write_text(json.dumps(seal(meta)))  # resealed: the missing array is named
    with pytest.raises(CheckpointError, match=r"tensors\.safetensors: array 'carry/7' missing"):
        load_checkpoint(tmp_path)
    (tmp_path / "latest.json").write_text('{"checkpoint": "ckpt-gone"}')
    with pytest.raises(CheckpointError, match=r"latest\.json: field 'checkpoint'"):
        load_checkpoint(tmp_path)


def test_parameters_of_another_shape_are_refused_untouched(tmp_path):
    save_checkpoint(tmp_path, make_state(), step=7)
    state, directory = load_checkpoint(tmp_path)
    source = str(directory / "checkpoint.json")
    wider = LSTM(3, 5, num_layers=2, rng=0)
    before = wider.state_dict()
    with pytest.raises(
        CheckpointError, match=r"checkpoint\.json: key 'model\.params\.weight_ih_l0'"
    ):
        load_params(wider, state, source)
    shallower = LSTM(3, 4, num_layers=1, rng=0)
    with pytest.raises(CheckpointError, match=r"key 'model\.params\.weight_ih_l1': not a param"):
        load_params(shallower, state, source)
    assert all(np.array_equal(before[k], v) for k, v in wider.state_dict().items())
    same = LSTM(3, 4, num_layers=2, rng=1)
    load_params(same, state, source)
    assert_same_tree(same.state_dict(), state["model"]["params"])


# -- a run folder: its lock, its leftovers, its log --------------------------------------
def test_lock_holds_refuses_and_is_taken_over_when_stale(tmp_path):
    import os
    import subprocess
    import sys

    from kioku.train.lock import LOCK_NAME, RunLock, RunLockedError

    folder = tmp_path / "run"
    with RunLock(folder) as lock:
        holder = (folder / LOCK_NAME).read_text().split()
        assert lock.held and int(holder[0]) == os.getpid()
        with pytest.raises(
            RunLockedError, match=f"in use by another kioku run .process {os.getpid()}"
        ):
            RunLock(folder).acquire()
        (folder / "latest.json").write_text("{}")
    assert not (folder / LOCK_NAME).exists() and (folder / "latest.json").exists()

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # its pid is now free: a lock naming it is stale
    for stale in (f"{child.pid} {os.uname().nodename}\n", "", "garbage"):
        (folder / LOCK_NAME).write_text(stale)
        with RunLock(folder):
            assert (folder / LOCK_NAME).read_text().split()[0] == str(os.getpid())
        assert not (folder / LOCK_NAME).exists()
    assert sorted(p.name for p in folder.iterdir()) == ["latest.json"]  # no temporaries


def test_lock_leaves_no_folder_behind_and_refuses_a_file(tmp_path):
    from kioku.train.lock import RunLock

    with RunLock(tmp_path / "new" / "run"):
        pass
    assert not (tmp_path / "new" / "run").exists()  # made by the lock, empty: removed
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="expected a run folder, found a file"):
        RunLock(tmp_path / "file").acquire()


def test_remove_leftovers_deletes_only_temporaries(tmp_path):
    state = make_state()
    save_checkpoint(tmp_path, state, 3)
    (tmp_path / ".tmp-ckpt-x1").mkdir()
    (tmp_path / ".tmp-ckpt-x1" / "checkpoint.json").write_text("{")
    (tmp_path / ".latest.json.abc.tmp").write_text("")
    (tmp_path / ".hidden-note").write_text("mine")
    (tmp_path / "notes.tmp").write_text("mine")
    before = {p.name for p in tmp_path.iterdir()}
    assert ckpt.remove_leftovers(tmp_path) == [".latest.json.abc.tmp", ".tmp-ckpt-x1"]
    assert {p.name for p in tmp_path.iterdir()} == before - {".latest.json.abc.tmp", ".tmp-ckpt-x1"}
    assert load_checkpoint(tmp_path)[0]["step"] == 7


def test_run_state_fields_are_checked_on_load(tmp_path):
    state = make_state()
    state.update(task={"kind": "lm", "position": {"epoch": 0, "batch": 2}}, epoch=0, meta={})
    state.update(bad_evals=0, elapsed=1.0, recent_losses=[1.0])
    save_checkpoint(tmp_path, state, 1)
    assert load_checkpoint(tmp_path)[0]["task"]["position"]["batch"] == 2
    for key, value, words in [
        ("step", True, "key 'state.step': expected an integer >= 0, found True"),
        ("elapsed", "1", "key 'state.elapsed': expected an integer or a number, found '1'"),
        ("epoch", None, "key 'state.epoch' missing"),
    ]:
        damaged = dict(state)
        if value is None:
            del damaged[key]
        else:
            damaged[key] = value
        folder = tmp_path / key
        save_checkpoint(folder, damaged, 1)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(folder)
        assert str(info.value) == f"{next(folder.glob('ckpt-*'))}/checkpoint.json: {words}"


def test_run_log_refuses_a_symlink_and_reads_up_to_a_cut_line(tmp_path):
    from kioku.train.runlog import RunLog

    target = tmp_path / "elsewhere.txt"
    target.write_text("keep\n")
    (tmp_path / "log.jsonl").symlink_to(target)
    with pytest.raises(ValueError, match="log.jsonl: expected the run's own log file"):
        RunLog(tmp_path / "log.jsonl").write({"step": 1})
    assert target.read_text() == "keep\n"
    log = RunLog(tmp_path / "real.jsonl")
    log.write({"step": 1})
    log.write({"step": 2})
    with open(log.path, "a") as handle:
        handle.write('{"step": 3, "lo')
    with pytest.warns(UserWarning, match=r"real.jsonl: line 3 is cut short .* the 2 records"):
        assert log.read() == [{"step": 1}, {"step": 2}]
    log.truncate_after(5)  # a resumed run drops the cut line
    assert log.read() == [{"step": 1}, {"step": 2}]
