"""The optional libraries the converters need (onnx, torch, keras), imported when first
used so that kioku itself needs only NumPy."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, needed_by: str, library: str, install: str) -> ModuleType:
    """``module`` imported, or ``ImportError`` saying that ``needed_by`` need ``library``
    and how to ``install`` it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:  # pragma: no cover - every library is a test dependency
        raise ImportError(f"{needed_by} need {library}: pip install {install}") from error
