"""Strict JSON out: what kioku writes parses with every reader (``jq``, browsers, Go).

Python's ``json`` writes ``NaN`` and ``Infinity`` for non-finite floats, which is not
JSON. Here a non-finite number is written as ``null`` and, when the top level is an
object, its path is listed under ``"nonfinite"`` (``{"loss": null, "nonfinite":
["loss"]}``), so the reader still learns that the value was NaN or infinite rather than
absent. NumPy scalars and arrays are written as numbers and lists.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

NONFINITE_KEY = "nonfinite"


def finite_tree(obj: Any, found: list[str], where: str = "") -> Any:
    """A copy of ``obj`` with each non-finite float replaced by ``None``; the dotted
    path of each is appended to ``found``."""
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    elif isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        found.append(where or "value")
        return None
    if isinstance(obj, dict):
        return {
            k: finite_tree(v, found, f"{where}.{k}" if where else str(k)) for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple)):
        return [finite_tree(v, found, f"{where}[{i}]") for i, v in enumerate(obj)]
    return obj


def strict(obj: Any) -> Any:
    """``obj`` ready for strict JSON: non-finite floats as ``None``, their paths listed
    under ``"nonfinite"`` when ``obj`` is a dict (and any were found)."""
    found: list[str] = []
    clean = finite_tree(obj, found)
    if found and isinstance(clean, dict):
        clean[NONFINITE_KEY] = found
    return clean


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`strict` ``(obj)``, refusing anything left non-finite."""
    return json.dumps(strict(obj), allow_nan=False, **kwargs)
