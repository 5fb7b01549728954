"""Crash safety: ``kioku train`` killed with SIGKILL at random moments, several times and
inside checkpoint writes too, then resumed each time, ends bit-identical to a run that
was never interrupted; what the kills left behind is removed on the next start."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kioku.cli import main
from kioku.train.checkpoint import load_checkpoint
from kioku.train.lock import LOCK_NAME

pytestmark = [pytest.mark.slow, pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")]

STEPS = 96
ARGS = ["--max-steps", str(STEPS), "--eval-every", "4", "--sample-every", "0"]
ARGS += ["--hidden", "8", "--embed", "4", "--layers", "1", "--bptt", "8", "--batch-size", "2"]
ARGS += ["--eval-tokens", "60", "--no-progress", "--dropout", "0.1"]
KILLS = 6


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".")) if out.exists() else []


def start(data: Path, out: Path) -> subprocess.Popen:
    resume = ["--resume"] if (out / "latest.json").exists() else []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        # a pause before each file of a checkpoint, so that kills land inside writes
        "KIOKU_TEST_CHECKPOINT_PAUSE": "0.03",
    }
    argv = [sys.executable, "-m", "kioku", "train", "--data", str(data), "--out", str(out)]
    return subprocess.Popen(
        [*argv, *resume, *ARGS], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def kill_inside_a_write(
    child: subprocess.Popen, out: Path, stale: set[str], timeout: float = 20.0
) -> bool:
    """SIGKILL ``child`` as soon as it has a temporary checkpoint folder of its own (not
    one of the ``stale`` ones an earlier kill left); True if it was killed mid-write
    (False: it finished first)."""
    deadline = time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        if any(p.name not in stale for p in out.glob(".tmp-ckpt-*")):
            child.send_signal(signal.SIGKILL)
            child.wait()
            return True
        time.sleep(0.002)
    return False


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path):
    data = tmp_path / "code.py"
    data.write_text("".join(f"def f{i}(x):\n    return x * {i} + 1\n" for i in range(150)))
    reference = tmp_path / "reference"
    assert main(["train", "--data", str(data), "--out", str(reference), *ARGS]) == 0

    out = tmp_path / "killed"
    chance = random.Random(10)
    mid_write, killed, restarts_with_leftovers = 0, 0, 0
    for kill in range(KILLS):
        if leftovers(out):
            restarts_with_leftovers += 1
        stale = {p.name for p in out.glob(".tmp-ckpt-*")}
        child = start(data, out)
        if kill % 2 == 0:
            inside = kill_inside_a_write(child, out, stale)
            mid_write += inside
            killed += inside
        else:
            time.sleep(chance.uniform(0.3, 1.5))  # anywhere: importing, training, saving
            killed += child.poll() is None
            child.send_signal(signal.SIGKILL)
            child.wait()
    if leftovers(out):
        restarts_with_leftovers += 1
    final = start(data, out)
    _, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()

    assert killed >= KILLS - 1 and mid_write >= 2  # kills, inside checkpoint writes too
    assert restarts_with_leftovers >= 1  # and the next start had something to clean
    assert leftovers(out) == [] and not (out / LOCK_NAME).exists()
    done, _ = load_checkpoint(out)
    expected, _ = load_checkpoint(reference)
    assert done["step"] == expected["step"] == STEPS
    for name, value in expected["model"]["params"].items():
        assert np.array_equal(done["model"]["params"][name], value), name
    for name, value in expected["optimizer"]["arrays"].items():
        assert np.array_equal(done["optimizer"]["arrays"][name], value), name
    assert done["rng"] == expected["rng"]
