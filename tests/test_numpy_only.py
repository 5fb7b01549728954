"""kioku with NumPy alone: Numba's import blocked (``sys.modules['numba'] = None``) in a
subprocess that runs ``.ci/numpy_only_smoke.py`` (what ``.ci/run`` runs in venvs without
the extras): ``import kioku``, the ``auto`` backend falling back to the reference, every
layer's forward and backward (checked there against central differences, and here against
this process's reference backend, bit for bit), and ``kioku train``'s one-line note."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kioku import kernels
from kioku.cli import main

SMOKE = Path(__file__).resolve().parents[1] / ".ci" / "numpy_only_smoke.py"
NOTE = "pip install 'kioku-lstm[fast]'"


def load_smoke():
    spec = importlib.util.spec_from_file_location("numpy_only_smoke", SMOKE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke script without Numba, with ``kioku train``; its process and saved arrays."""
    saved = tmp_path_factory.mktemp("numpy-only") / "results.npz"
    env = {k: v for k, v in os.environ.items() if k not in ("KIOKU_KERNELS", "KIOKU_NUM_THREADS")}
    command = [sys.executable, str(SMOKE), "--no-numba", "--train", "--save", str(saved)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    return done, saved


def test_import_and_every_layer_without_numba(smoke_run):
    done, _ = smoke_run
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("import kioku") and "['reference']" in lines[0]
    for name, _, _ in load_smoke().LAYERS:
        assert f"{name}: forward and backward, gradients match central differences" in lines


def test_without_numba_results_equal_the_reference_backend(smoke_run):
    """The float32 outputs and gradients computed without Numba are, bit for bit, those of
    the reference backend in a process where Numba imports."""
    done, saved = smoke_run
    assert done.returncode == 0, done.stderr
    with kernels.use("reference"):
        here = load_smoke().float32_results()
    with np.load(saved, allow_pickle=False) as there:
        assert sorted(there.files) == sorted(here)
        for key, value in here.items():
            np.testing.assert_array_equal(there[key], value, err_msg=key)


def test_train_without_numba_says_once_that_fast_helps(smoke_run):
    done, _ = smoke_run
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("kioku train:")]
    assert line.count(NOTE) == 1 and "exit 0" in line


def test_train_with_numba_has_no_note(tmp_path, capsys):
    pytest.importorskip("numba", reason="the note is the expected output without Numba")
    text = tmp_path / "code.py"
    text.write_text("".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(200)))
    argv = ["train", "--data", str(text), "--out", str(tmp_path / "run"), "--max-steps", "2"]
    argv += "--hidden 8 --embed 4 --bptt 8 --batch-size 2 --eval-tokens 100 --no-progress".split()
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert NOTE not in captured.err and "test bits per character:" in captured.out


def test_smoke_script_fails_when_a_gradient_is_wrong(monkeypatch):
    """The smoke's check can fail: a backward off by 0.01 % is caught."""
    smoke = load_smoke()
    real = smoke.run_layer

    def off(layer, x, dy):
        return real(layer, x, None if dy is None else dy * 1.0001)

    monkeypatch.setattr(smoke, "run_layer", off)
    with kernels.use("reference"), pytest.raises(SystemExit):
        smoke.check_gradients("lstm", "LSTM", {})
