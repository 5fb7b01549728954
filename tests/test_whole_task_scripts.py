"""The whole-task benchmark scripts run: two timed steps of each on the shared data
(skipped, saying why, where a clone has no ``../shared/data``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SCRIPTS = [("tagger_kioku.py", "ud-gum"), ("tagger_torch.py", "ud-gum"), ("ptb_kioku.py", "ptb")]
SCRIPTS += [("ptb_torch.py", "ptb")]


pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("script", "data"), SCRIPTS)
def test_a_whole_task_script_times_two_steps(script, data):
    if not (DATA / data).is_dir():
        pytest.skip(f"{DATA / data} is missing: the whole-task scripts read the shared data")
    if "torch" in script:
        pytest.importorskip("torch")
    cmd = [sys.executable, str(ROOT / "benchmarks" / script), "--steps", "2", "--warmup", "1"]
    cmd += ["--data-root", str(DATA)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["steps"] == 2 and record["library"] in ("kioku", "torch")
