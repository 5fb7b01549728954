"""CSV time series, and the sliding windows a forecaster learns from."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from .text import read_text


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def has_header(rows: list[list[str]]) -> bool:
    """Whether the first of CSV ``rows`` is a header: a cell of it is not a number in a
    column whose other cells mostly are. A first row of numbers is data; columns of no
    numbers at all (dates, names) cannot tell, and then a header is assumed."""
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        return True
    first, rest = rows[0], rows[1:]
    if all(_is_number(c) for c in first):
        return False
    for j, cell in enumerate(first):
        cells = [r[j] for r in rest if j < len(r)]
        if not _is_number(cell) and cells and sum(map(_is_number, cells)) * 2 > len(cells):
            return True
    return not any(_is_number(c) for c in first)


def csv_rows(
    path: str | os.PathLike, header: bool | None = True
) -> tuple[list[str], list[list[str]], int]:
    """The column names, the data rows of a CSV file and the line number of the first.
    ``header``: ``True`` the first row names the columns, ``False`` it is data (columns
    ``column1``, ``column2``, ...), ``None`` detected by :func:`has_header`."""
    path = Path(path)
    text = read_text(path)
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as error:
        raise ValueError(f"{path}: not CSV ({error})") from None
    if header is None:
        header = has_header(rows)
    if header:
        return [h.strip() for h in rows[0]], rows[1:], 2
    width = max((len(r) for r in rows), default=0)
    return [f"column{j + 1}" for j in range(width)], rows, 1


def read_csv_series(
    path: str | os.PathLike,
    columns: list[str] | None = None,
    min_rows: int = 1,
    why: str = "",
    header: bool | None = True,
) -> tuple[np.ndarray, list[str]]:
    """Numeric columns of a CSV file: ``(values (N, F) float64, names)``. ``header`` as
    in :func:`csv_rows` (default: the first row names the columns).

    ``columns`` picks columns by name (default: all). A non-numeric cell, NaN or an
    infinity is a ``ValueError`` naming the file, the line and the column; so is a file
    of fewer than ``min_rows`` data rows (naming the file, and ``why`` that many).
    """
    path = Path(path)
    header, data_rows, first_line = csv_rows(path, header)
    names = columns or header
    missing = [c for c in names if c not in header]
    if missing:
        raise ValueError(f"{path}: line 1: columns {missing} not in header {header}")
    picks = [header.index(c) for c in names]
    values = []
    for line, row in enumerate(data_rows, first_line):
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


def index_columns(path: str | os.PathLike, header: bool | None = True) -> dict[str, str]:
    """The columns of a CSV file that index time rather than measure something, each
    with the reason: a name in :data:`INDEX_NAMES`, no cell a number (dates, names), or
    the integers counting up by one from the first row. A column with some numbers and
    a bad cell stays, for the reader to name that cell. ``header`` as in :func:`csv_rows`."""
    header, rows, _ = csv_rows(path, header)
    rows = [r for r in rows if any(c.strip() for c in r)]
    found = {}
    for j, name in enumerate(header):
        cells = [r[j].strip() for r in rows if j < len(r)]
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
