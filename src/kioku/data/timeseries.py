"""CSV time series, and the sliding windows a forecaster learns from."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from .text import read_text


def read_csv_series(
    path: str | os.PathLike,
    columns: list[str] | None = None,
    min_rows: int = 1,
    why: str = "",
) -> tuple[np.ndarray, list[str]]:
    """Numeric columns of a CSV file with a header row: ``(values (N, F) float64, names)``.

    ``columns`` picks columns by name (default: all). A non-numeric cell, NaN or an
    infinity is a ``ValueError`` naming the file, the line and the column; so is a file
    of fewer than ``min_rows`` data rows (naming the file, and ``why`` that many).
    """
    path = Path(path)
    text = read_text(path)
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as error:
        raise ValueError(f"{path}: not CSV ({error})") from None
    header = [h.strip() for h in rows[0]]
    names = columns or header
    missing = [c for c in names if c not in header]
    if missing:
        raise ValueError(f"{path}: line 1: columns {missing} not in header {header}")
    picks = [header.index(c) for c in names]
    values = []
    for line, row in enumerate(rows[1:], 2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise ValueError(f"{path}: line {line}: expected {len(header)} cells, found {len(row)}")
        record = []
        for j in picks:
            try:
                value = float(row[j])
            except ValueError:
                value = math.nan
            if not math.isfinite(value):  # NaN/inf would train into NaN checkpoints
                raise ValueError(
                    f"{path}: line {line}, column {j + 1} ({header[j]!r}): expected a finite "
                    f"number, found {row[j]!r}"
                )
            record.append(value)
        values.append(record)
    if not values:
        raise ValueError(f"{path}: no data rows (expected a header and numeric rows)")
    if len(values) < min_rows:
        reason = f" ({why})" if why else ""
        raise ValueError(
            f"{path}: expected at least {min_rows} data rows{reason}, found {len(values)}"
        )
    return np.array(values, dtype=np.float64), names


INDEX_NAMES = frozenset(
    {"t", "time", "date", "datetime", "timestamp", "index", "idx", "step", "day", "month", "year"}
)
"""Header names taken for a time index, not a series to forecast."""


def index_columns(path: str | os.PathLike) -> dict[str, str]:
    """The columns of a CSV file that index time rather than measure something, each
    with the reason: a name in :data:`INDEX_NAMES`, no cell a number (dates, names), or
    the integers counting up by one from the first row. A column with some numbers and
    a bad cell stays, for the reader to name that cell."""
    path = Path(path)
    rows = [r for r in csv.reader(read_text(path).splitlines()) if any(c.strip() for c in r)]
    if not rows:
        return {}
    header = [h.strip() for h in rows[0]]
    found = {}
    for j, name in enumerate(header):
        cells = [r[j].strip() for r in rows[1:] if j < len(r)]
        if name.lower() in INDEX_NAMES:
            found[name] = "its name says it indexes time"
            continue
        numbers = []
        for cell in cells:
            try:
                numbers.append(float(cell))
            except ValueError:
                pass
        if not numbers and cells:
            found[name] = "none of its cells is a number"
        elif len(numbers) == len(cells) > 2 and np.array_equal(
            numbers, numbers[0] + np.arange(len(numbers))
        ):
            found[name] = "it counts rows"
    return found


def windows(series: np.ndarray, input_len: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """All sliding windows of ``series (N, F)``: inputs ``(T, W, F)`` and the following
    ``horizon`` steps ``(H, W, F)``, time-major, ``W = N - T - H + 1`` windows."""
    series = np.asarray(series)
    if series.ndim == 1:
        series = series[:, None]
    n = series.shape[0]
    count = n - input_len - horizon + 1
    if count < 1:
        raise ValueError(
            f"series: expected at least {input_len + horizon} steps for input_len {input_len} "
            f"and horizon {horizon}, found {n}"
        )
    starts = np.arange(count)
    x = np.stack([series[s : s + input_len] for s in starts], axis=1)
    y = np.stack([series[s + input_len : s + input_len + horizon] for s in starts], axis=1)
    return x, y
