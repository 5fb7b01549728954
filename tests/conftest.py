"""Shared fixtures: the data folder beside the repository, and torch when installed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# The kernels' hand-set thresholds, never a tuning measured on this machine: the suite
# stays fast and its paths fixed (tests/test_tuning.py turns tuning on where it tests it).
os.environ["KIOKU_TUNING"] = "off"
# no "compiling the kernels" line on stderr: a cold cache must not change what tests read
os.environ["KIOKU_COMPILE_NOTICE"] = "off"

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def ptb_dir() -> Path:
    folder = SHARED_DATA / "ptb"
    if not (folder / "ptb.train.txt").exists():
        pytest.skip(f"Penn Treebank not found at {folder} (a fresh clone has no ../shared)")
    return folder
