"""The course's worked solutions (``notebooks/solutions/NN_*.py``) loaded by file: their
names start with a digit, so they are not importable by name."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"


def load(name: str) -> ModuleType:
    """The module of ``notebooks/solutions/<name>.py``."""
    spec = importlib.util.spec_from_file_location(f"solutions_{name}", SOLUTIONS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
