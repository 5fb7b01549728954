"""Tuning of the kernels' thresholds: the file, its checks, KIOKU_TUNING, the effect on the
kernels (which read the module attributes), ``kioku tune``. Timings are never asserted."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

pytest.importorskip("numba")

from kioku.cli import main  # noqa: E402
from kioku.kernels import _padding, _threads, _tuning, numba_lstm  # noqa: E402


@pytest.fixture
def tuning(tmp_path, monkeypatch):
    """Tuning on, its cache in ``tmp_path``; what was in force is put back after."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("KIOKU_TUNING", "auto")
    saved = dict(_tuning._state, noted=set(_tuning._state["noted"]))
    before = _tuning.in_force()
    _tuning._state["noted"] = set()
    yield tmp_path
    _tuning.apply(before["values"], before["source"], before["path"])
    _tuning._state["noted"] = saved["noted"]


def _result(**values) -> dict:
    """A measurement as :func:`_tuning.measure` returns it, with ``values`` replacing the
    defaults."""
    chosen = {**_tuning.defaults(), **values}
    levels = [{"quantity": 2, "on_s": 0.001, "off_s": 0.002}]
    choices = {
        name: {"value": v, "default": _tuning.default(name), "unit": "u", "levels": levels,
               "note": None}
        for name, v in chosen.items()
    }  # fmt: skip
    return {"choices": choices, "seconds": 0.5, "load_average": [0.1, 0.2, 0.3],
            "others_share": 0.02}  # fmt: skip


def _fake_measure(monkeypatch, **values) -> list:
    calls = []

    def measure(*args, **kwargs):
        calls.append(1)
        return _result(**values)

    monkeypatch.setattr(_tuning, "measure", measure)
    return calls


def _attributes() -> dict:
    from kioku.kernels import _gemm, _tiles

    modules = {"kioku.kernels._threads": _threads, "kioku.kernels.numba_lstm": numba_lstm,
               "kioku.kernels._padding": _padding, "kioku.kernels._tiles": _tiles,
               "kioku.kernels._gemm": _gemm}  # fmt: skip
    return {name: getattr(modules[c.module], name) for name, c in _tuning.CHOICES.items()}


def test_file_round_trip(tuning):
    path = _tuning.write_file(_result(MIN_ROWS=8, MIN_FLOPS=1e6))
    assert path == tuning / "kioku" / f"tuning-{_tuning.key()}.json"
    content = json.loads(path.read_text())  # strict JSON, schema and key inside
    assert content["schema"] == _tuning.SCHEMA and content["key"] == _tuning.key()
    assert content["machine"] == _tuning.machine()
    stored, where = _tuning.read_stored()
    assert where == path
    assert stored == {**_tuning.defaults(), "MIN_ROWS": 8, "MIN_FLOPS": 1e6}
    assert type(stored["MIN_ROWS"]) is int and type(stored["MIN_FLOPS"]) is float
    assert not list(path.parent.glob("*.tmp"))  # written atomically: no temporary left


def test_key_follows_the_machine(monkeypatch):
    identity = _tuning.machine()
    assert identity["cpu"] and isinstance(identity["flags"], list)
    assert identity["versions"]["numpy"] == np.__version__
    base = _tuning.key(identity)
    assert len(base) == 16 and base == _tuning.key(dict(identity))
    for field, other in (("cpu", "Some Other CPU"), ("flags", ["avx2"]), ("threads", 99)):
        assert _tuning.key({**identity, field: other}) != base
    newer = {**identity["versions"], "numba": "99.0"}
    assert _tuning.key({**identity, "versions": newer}) != base
    monkeypatch.setenv("KIOKU_NUM_THREADS", str(identity["threads"] + 1))
    assert _tuning.key() != base  # the thread budget is part of it


def test_a_numba_target_other_than_the_host_is_another_machine(monkeypatch):
    for name in ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES"):
        monkeypatch.delenv(name, raising=False)
    host = _tuning.machine()
    assert "target" not in host  # the host's own code: keys of existing files unchanged
    monkeypatch.setenv("NUMBA_CPU_NAME", "haswell")
    monkeypatch.setenv("NUMBA_CPU_FEATURES", "+avx2,+fma")
    target = _tuning.machine()
    assert target["target"] == {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "+avx2,+fma"}
    assert _tuning.key(target) != _tuning.key(host)


def _write_raw(tuning, text: str):
    path = _tuning.tuning_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _valid_content() -> dict:
    content = _result()
    content.update(schema=_tuning.SCHEMA, key=_tuning.key(), machine=_tuning.machine())
    return content


def _damaged(kind: str) -> str:
    content = _valid_content()
    if kind == "not json":
        return '{"schema": 1, "key": '
    if kind == "nan":
        return json.dumps(content).replace('"seconds": 0.5', '"seconds": NaN')
    if kind == "schema":
        content["schema"] = 99
    elif kind == "foreign":
        content["key"] = "0123456789abcdef"
    elif kind == "too small":
        content["choices"]["MIN_ROWS"]["value"] = 0
    elif kind == "too large":
        content["choices"]["FUSED_MIN_ROWS"]["value"] = 1e12
    elif kind == "not a number":
        content["choices"]["MIN_FLOPS"]["value"] = "fast"
    elif kind == "boolean":
        content["choices"]["MIN_FLOPS"]["value"] = True
    elif kind == "fraction":
        content["choices"]["MIN_ROWS"]["value"] = 2.5
    elif kind == "missing":
        del content["choices"]["FUSED_MAX_BYTES"]
    return json.dumps(content)


DAMAGE = ("not json", "nan", "schema", "foreign", "too small", "too large", "not a number",
          "boolean", "fraction", "missing")  # fmt: skip
REASONS = ("not valid JSON", "not valid JSON", "schema: expected 1, found 99",
           "key: expected", "MIN_ROWS: expected an integer in [1, 4096], found 0",
           "FUSED_MIN_ROWS: expected an integer", "MIN_FLOPS: expected a finite number",
           "MIN_FLOPS: expected a finite number", "MIN_ROWS: expected an integer",
           "FUSED_MAX_BYTES: missing")  # fmt: skip


@pytest.mark.parametrize("kind, reason", list(zip(DAMAGE, REASONS)), ids=DAMAGE)
def test_unusable_file_is_ignored_with_one_note_and_measured_again(
    tuning, monkeypatch, capsys, kind, reason
):
    path = _write_raw(tuning, _damaged(kind))
    calls = _fake_measure(monkeypatch, MIN_ROWS=16)
    _tuning._state["values"] = None  # as in a fresh process
    assert _tuning.value("MIN_ROWS") == _tuning.default("MIN_ROWS")  # read, not measured
    assert _tuning.in_force()["source"] == "defaults (not tuned on this machine yet)"
    assert calls == []
    state = _tuning.ensure(log=lambda line: None)  # a command's first use measures again
    assert calls == [1] and state["values"]["MIN_ROWS"] == 16 and _threads.MIN_ROWS == 16
    notes = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(notes) == 1 and notes[0].startswith(f"kioku: ignoring the tuning file {path}")
    assert reason in notes[0]
    assert _tuning.read_stored()[0]["MIN_ROWS"] == 16  # the new measurement replaced it


def test_stored_file_is_used_without_measuring(tuning, monkeypatch):
    path = _tuning.write_file(_result(MIN_ROWS=8, FUSED_MIN_ROWS=2))
    calls = _fake_measure(monkeypatch)
    progress = []
    state = _tuning.ensure(log=progress.append)
    assert calls == [] and progress == []
    assert state["source"] == "tuned" and state["path"] == str(path)
    assert _threads.MIN_ROWS == 8 and numba_lstm.FUSED_MIN_ROWS == 2
    _tuning._state["values"] = None  # a fresh process reads it when the fast path loads
    assert _tuning.value("FUSED_MIN_ROWS") == 2


def test_missing_file_is_measured_with_a_progress_line(tuning, monkeypatch):
    calls = _fake_measure(monkeypatch, DIRECTIONS_MIN_FLOPS=5e5)
    progress = []
    state = _tuning.ensure(log=progress.append)
    assert calls == [1]
    assert progress[0] == _tuning.PROGRESS
    assert progress[0].startswith("kioku: tuning kernels for this CPU (once, about a minute;")
    assert (
        progress[-1].startswith("kioku: tuned in ") and str(_tuning.tuning_path()) in progress[-1]
    )
    assert state["values"]["DIRECTIONS_MIN_FLOPS"] == 5e5 == _threads.DIRECTIONS_MIN_FLOPS
    _tuning.ensure(log=progress.append)  # stored now: not measured twice
    assert calls == [1]


def test_tuning_off_uses_the_defaults(tuning, monkeypatch):
    _tuning.write_file(_result(MIN_ROWS=8, FUSED_MIN_ROWS=1))
    monkeypatch.setenv("KIOKU_TUNING", "off")
    calls = _fake_measure(monkeypatch)
    _tuning._state["values"] = None
    assert _tuning.value("MIN_ROWS") == 4
    state = _tuning.ensure(log=lambda line: None)
    assert calls == [] and state["values"] == _tuning.defaults()
    assert state["source"] == "defaults (KIOKU_TUNING=off)"
    assert _attributes() == _tuning.defaults()


def test_tuning_now_measures_again(tuning, monkeypatch):
    _tuning.write_file(_result(MIN_ROWS=8))
    monkeypatch.setenv("KIOKU_TUNING", "now")
    calls = _fake_measure(monkeypatch, MIN_ROWS=2)
    assert _tuning.ensure(log=lambda line: None)["values"]["MIN_ROWS"] == 2
    assert calls == [1] and _tuning.read_stored()[0]["MIN_ROWS"] == 2


def test_bad_tuning_variable_is_an_error_naming_it(tuning, monkeypatch):
    monkeypatch.setenv("KIOKU_TUNING", "sometimes")
    with pytest.raises(
        ValueError, match="KIOKU_TUNING: expected off, now or auto, found 'sometimes'"
    ):
        _tuning.ensure()
    assert main(["tune", "--show"]) == 0  # --show reads, whatever the variable says


def test_apply_refuses_out_of_range_values_and_keeps_what_was_in_force(tuning):
    before = _attributes()
    with pytest.raises(_tuning.TuningFileError, match="MIN_ROWS: expected an integer"):
        _tuning.apply({**_tuning.defaults(), "MIN_ROWS": -3}, "test")
    assert _attributes() == before


def _lstm_outputs(batch: int = 16) -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    T, H = 7, 64
    x = rng.standard_normal((T, batch, H)).astype(np.float32)
    w_ih, w_hh = (rng.uniform(-0.15, 0.15, (4 * H, H)).astype(np.float32) for _ in range(2))
    bias = rng.uniform(-0.15, 0.15, 4 * H).astype(np.float32)
    dy = rng.standard_normal((T, batch, H)).astype(np.float32)
    y, h_n, c_n, cache = numba_lstm.lstm_forward(x, w_ih, w_hh, bias)
    grads = numba_lstm.lstm_backward(dy, cache)
    inferred = numba_lstm.lstm_forward(x, w_ih, w_hh, bias, keep_cache=False)[0]
    return [y, h_n, c_n, inferred, grads.dx, grads.dweight_ih, grads.dweight_hh, grads.dbias]


@pytest.mark.slow
def test_a_tuned_value_changes_the_path_not_the_results(tuning, monkeypatch):
    monkeypatch.setenv("KIOKU_NUM_THREADS", "2")
    _tuning.apply(_tuning.defaults(), "test")
    assert _threads.plan(16, 8.0 * 16 * 64 * 64).batch_threads == 1  # 524288 < MIN_FLOPS
    reference = _lstm_outputs()
    # the thread split: each row's arithmetic is the same on any thread, bit for bit
    _tuning.apply({**_tuning.defaults(), "MIN_ROWS": 2, "MIN_FLOPS": 1e5}, "test")
    assert _threads.MIN_ROWS == 2 and _threads.MIN_FLOPS == 1e5
    assert _threads.plan(16, 8.0 * 16 * 64 * 64).batch_threads == 2  # read at call time
    for split, whole in zip(_lstm_outputs(), reference):
        np.testing.assert_array_equal(split, whole)
    # the fused projection sums x W_ih^T + h W_hh^T in one chain: float32 rounding only
    for name, value in (("FUSED_MIN_ROWS", 1), ("FUSED_MIN_ROWS", 1 << 30), ("FUSED_MAX_BYTES", 0)):
        _tuning.apply({**_tuning.defaults(), name: value}, "test")
        assert getattr(numba_lstm, name) == value
        for got, want in zip(_lstm_outputs(), reference):
            # each element sums at most T * B * (I + H) products of terms of order one
            bound = 1e3 * np.finfo(np.float32).eps * max(1.0, float(np.abs(want).max()))
            np.testing.assert_allclose(got, want, rtol=0, atol=bound)


def test_pick_follows_the_timings():
    choice = _tuning.CHOICES["MIN_ROWS"]

    def levels(on_wins_from: float | None, gap: float = 0.5):
        return [
            {"quantity": q, "on_s": 1.0 - (gap if on_wins_from and q >= on_wins_from else -gap),
             "off_s": 1.0}
            for q in choice.candidates
        ]  # fmt: skip

    assert _tuning.pick(choice, levels(8)) == 8
    assert _tuning.pick(choice, levels(2)) == 2
    assert _tuning.pick(choice, levels(None)) == 32  # never worth it: past the last level
    assert _tuning.pick(choice, levels(8, gap=0.001)) == choice.default  # within noise
    # where the paths differ (4 rows), a gain under MIN_GAIN keeps the default
    assert _tuning.pick(choice, levels(8, gap=0.5 * _tuning.MIN_GAIN)) == choice.default
    assert _tuning.pick(choice, levels(8, gap=2 * _tuning.MIN_GAIN)) == 8
    assert _tuning.pick(choice, []) == choice.default
    at_most = _tuning.CHOICES["FUSED_MAX_BYTES"]
    held = [{"quantity": q, "on_s": 0.5 if q <= 1 << 22 else 2.0, "off_s": 1.0}
            for q in (1 << 21, 1 << 22, 1 << 23, 1 << 24)]  # fmt: skip
    assert _tuning.pick(at_most, held) == 1 << 22


@pytest.mark.slow
def test_measurement_on_tiny_sizes(tuning):
    result = _tuning.measure(block_s=0.0005, rounds=1, scale=0.2)
    assert set(result["choices"]) == set(_tuning.CHOICES)
    for name, entry in result["choices"].items():
        choice = _tuning.CHOICES[name]
        low, high = choice.bounds
        assert low <= entry["value"] <= high and entry["default"] == choice.default
        if entry["levels"]:
            assert len(entry["levels"]) == len(choice.candidates)
            for level in entry["levels"]:
                assert level["on_s"] > 0 and level["off_s"] > 0
        else:
            assert entry["note"]  # says why the choice does not matter here
    assert _tuning.in_force()["source"] == "measured now"
    assert _attributes() == {name: e["value"] for name, e in result["choices"].items()}
    path = _tuning.write_file(result)
    assert _tuning.read_file(path, _tuning.key())["values"] == _attributes()
    assert math.isfinite(result["seconds"])
    if os.path.exists("/proc/stat"):
        assert 0.0 <= result["others_share"] <= 1.0


def test_tune_show_and_reset(tuning, capsys):
    assert main(["tune", "--show"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"CPU: {_tuning.machine()['cpu']}\ninstruction set: ")
    assert "not tuned yet" in out and "MIN_ROWS = 4 (default 4)" in out
    assert "NR = " in out and "compile-time constant" in out
    path = _tuning.write_file(_result(MIN_ROWS=8))
    assert main(["tune", "--show"]) == 0
    out = capsys.readouterr().out
    assert f"stored in {path}" in out and "MIN_ROWS = 8 (default 4)" in out
    assert "2: 1 vs 2" in out  # the timings behind it, ms with the path on vs off
    assert "other processes' share of the cores while measuring: 2%" in out
    assert main(["tune", "--reset"]) == 0
    assert f"deleted {path}" in capsys.readouterr().out and not path.exists()
    assert _threads.MIN_ROWS == 4  # the defaults are back in force
    assert main(["tune", "--reset"]) == 0
    assert "no tuning file to delete" in capsys.readouterr().out


def test_tune_show_names_a_numba_target_other_than_the_host(tuning, capsys, monkeypatch):
    monkeypatch.delenv("NUMBA_CPU_NAME", raising=False)  # .ci/run's AVX2 pass sets it
    monkeypatch.setenv("NUMBA_CPU_FEATURES", "+avx2,+fma")
    assert main(["tune", "--show"]) == 0
    assert "\nkernels compiled for: NUMBA_CPU_FEATURES=+avx2,+fma\n" in capsys.readouterr().out


def test_tune_show_of_a_damaged_file_is_one_line(tuning, capsys):
    path = _write_raw(tuning, "[]")
    assert main(["tune", "--show"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kioku tune: {path}: cannot be used (schema: expected 1")
    assert len(err.strip().splitlines()) == 1


def test_tune_measures_and_writes(tuning, monkeypatch, capsys):
    _fake_measure(monkeypatch, FUSED_MIN_ROWS=8)
    assert main(["tune"]) == 0
    captured = capsys.readouterr()
    assert _tuning.PROGRESS in captured.err
    assert f"written to {_tuning.tuning_path()}" in captured.out
    assert "FUSED_MIN_ROWS = 8 (default 4)" in captured.out


def test_commands_that_run_the_kernels_tune_first(tuning, monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(_tuning, "ensure", lambda log=None: seen.append(1))
    assert main(["eval", str(tmp_path / "no-such-run")]) == 2  # tuned, then the error
    assert seen == [1]
    main(["tune", "--show"])
    assert seen == [1]  # tune --show reads only


def test_a_failed_measurement_leaves_the_defaults_and_the_command_goes_on(tuning, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(_tuning, "measure", broken)
    progress = []
    state = _tuning.ensure(log=progress.append)
    assert state["source"] == "defaults (the measurement failed)"
    assert _attributes() == _tuning.defaults()
    assert progress[-1] == (
        "kioku: tuning failed (RuntimeError: no compiler); the defaults are used"
    )
    assert not _tuning.tuning_path().exists()


def test_an_unwritable_cache_keeps_the_measurement_for_this_process(tuning, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tuning / "a-file"))
    (tuning / "a-file").write_text("not a folder")
    _fake_measure(monkeypatch, MIN_ROWS=8)
    progress = []
    state = _tuning.ensure(log=progress.append)
    assert state["source"] == "tuned (measured now, not stored)" and _threads.MIN_ROWS == 8
    assert "could not store it" in progress[-1]


def test_a_fresh_process_never_measures_on_import_and_reads_a_stored_file(tuning):
    import os
    import subprocess
    import sys

    script = (
        "import sys, kioku\n"
        "from kioku.kernels import _threads, numba_lstm\n"
        "print(_threads.MIN_ROWS, numba_lstm.FUSED_MIN_ROWS)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "KIOKU_TUNING"}

    def fresh() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip

    run = fresh()
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["4", "4"] and run.stderr == ""
    assert not (tuning / "kioku").exists()  # nothing measured, nothing written
    _tuning.write_file(_result(MIN_ROWS=8, FUSED_MIN_ROWS=2))
    run = fresh()
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["8", "2"]  # read when the compiled kernels load


def test_a_probe_forces_a_path_for_one_call_and_restores_it():
    from kioku.kernels import _tuning_probes

    seen = []

    def call():
        seen.append((_threads.MIN_ROWS, numba_lstm.FUSED_MIN_ROWS))
        raise KeyError("stop")

    before = _attributes()
    forced = _tuning_probes._with(
        {"MIN_ROWS": (_threads, 1), "FUSED_MIN_ROWS": (numba_lstm, 7)}, call
    )
    with pytest.raises(KeyError):
        forced()
    assert seen == [(1, 7)] and _attributes() == before


def test_new_values_drop_the_plans_made_under_the_old_ones(tuning):
    from kioku.kernels import _training_plan

    _tuning.apply(_tuning.defaults(), "test")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 8)).astype(np.float32)
    w_ih, w_hh = (rng.uniform(-0.3, 0.3, (32, 8)).astype(np.float32) for _ in range(2))
    numba_lstm.lstm_forward(x, w_ih, w_hh)  # a small float32 batch: planned on first use
    assert _training_plan._plans
    _tuning.apply(_tuning.defaults(), "test")  # the same values: the plans stand
    assert _training_plan._plans
    _tuning.apply({**_tuning.defaults(), "FUSED_MIN_ROWS": 1}, "test")
    assert not _training_plan._plans  # each planned with the old path: made again


def test_a_busy_machine_is_said_after_tuning(tuning, monkeypatch):
    busy = {**_result(), "others_share": 0.6}
    monkeypatch.setattr(_tuning, "measure", lambda *args, **kwargs: busy)
    progress = []
    _tuning.ensure(log=progress.append)
    assert progress[-1].startswith(
        "kioku: the machine was busy while tuning (other processes used 60% of the cores)"
    )
    assert _tuning.read_stored()[0] == _tuning.defaults()  # stored all the same


@pytest.mark.parametrize("load_now, measured_again", [(0.1, True), (9.0, False)])
def test_a_busy_measurement_is_replaced_on_the_first_idle_use(
    tuning, monkeypatch, load_now, measured_again
):
    busy = _result(MIN_ROWS=8)
    busy["others_share"] = 0.5
    _tuning.write_file(busy)
    monkeypatch.setattr(_tuning._store, "load_average", lambda: [load_now, load_now, load_now])
    calls = _fake_measure(monkeypatch, MIN_ROWS=16)
    progress = []
    state = _tuning.ensure(log=progress.append)
    assert calls == ([1] if measured_again else [])
    assert state["values"]["MIN_ROWS"] == (16 if measured_again else 8)
    if measured_again:
        assert "measured on a busy machine" in progress[0]
        assert _tuning.read_stored()[0]["MIN_ROWS"] == 16  # the idle measurement is kept
        assert _tuning.ensure(log=progress.append)["values"]["MIN_ROWS"] == 16
        assert calls == [1]  # and not measured a third time
