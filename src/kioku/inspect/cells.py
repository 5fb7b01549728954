"""Cell search: rank the memory cells (or hidden units, or gates) of a traced run by how
well their activation follows a per-token feature (Pearson correlation)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .features import get_feature
from .trace import Trace


@dataclass
class CellMatch:
    """One unit: where it is, which quantity (``c``, ``h``, ``i``...), its index and the
    correlation of its activation with the feature."""

    module: str
    layer: int
    direction: int
    quantity: str
    cell: int
    correlation: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def correlations(activations: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """``activations (N, H)``, ``feature (N,)`` -> Pearson correlation per unit ``(H,)``;
    a constant unit or a constant feature gives 0."""
    a = np.asarray(activations, np.float64)
    f = np.asarray(feature, np.float64)
    if a.ndim != 2 or f.shape != (a.shape[0],):
        raise ValueError(
            f"feature: expected shape ({a.shape[0]},) for activations {a.shape}, found {f.shape}"
        )
    a = a - a.mean(axis=0)
    f = f - f.mean()
    denom = np.sqrt((a * a).sum(axis=0) * (f * f).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * f[:, None]).sum(axis=0) / denom
    return np.where(denom > 0, r, 0.0)


def feature_values(
    feature: str | Callable[[str], np.ndarray] | np.ndarray, text: str | None, steps: int
) -> np.ndarray:
    """Resolve a feature (built-in name, callable on ``text``, or an array) to ``(steps,)``."""
    if isinstance(feature, str):
        feature = get_feature(feature)
    if callable(feature):
        if text is None:
            raise ValueError("text: expected the traced text to compute the feature, found None")
        feature = feature(text)
    values = np.asarray(feature, np.float64)
    if values.shape != (steps,):
        raise ValueError(
            f"feature: expected one value per step, shape ({steps},), found {values.shape}"
        )
    return values


def cell_search(
    tr: Trace,
    feature: str | Callable[[str], np.ndarray] | np.ndarray,
    text: str | None = None,
    quantity: str | None = None,
    batch_index: int = 0,
    top: int = 10,
) -> list[CellMatch]:
    """Units of every traced (module, layer, direction) ranked by ``|correlation|`` with
    ``feature`` over the steps of sequence ``batch_index`` (all calls joined in time).

    ``feature`` is a built-in name (see :data:`~kioku.inspect.features.FEATURES`), a
    callable ``text -> (T,)`` or an array ``(T,)``; ``T`` is the number of traced steps
    (for a character model run on ``text``, ``T = len(text)``). ``quantity`` is a short
    or long name of the traced cells' quantities; the default is the memory: ``c`` where
    the cell has one (LSTM, sLSTM), else ``h`` (GRU, RNN). Returns the ``top`` best.
    """
    matches: list[CellMatch] = []
    values = None
    for module, layer, direction in tr.keys():
        rec = tr.joined(layer, direction, module)
        name = quantity or ("c" if "c" in rec.values else "h")
        acts = rec.get(name)
        if not 0 <= batch_index < acts.shape[1]:
            raise ValueError(f"batch_index: expected 0..{acts.shape[1] - 1}, found {batch_index}")
        if values is None:
            values = feature_values(feature, text, acts.shape[0])
        r = correlations(acts[:, batch_index, :], values)
        matches += [
            CellMatch(module, layer, direction, rec.quantity(name).short, int(k), float(r[k]))
            for k in range(r.size)
        ]
    matches.sort(key=lambda m: -abs(m.correlation))
    return matches[:top]
