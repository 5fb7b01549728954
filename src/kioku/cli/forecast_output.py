"""What ``kioku predict`` writes around a forecast: the time index of its rows (the dates
after the input's date column, the counts after a column counting rows, or steps) and
the ``--plot`` of the input's last rows and the forecast."""

from __future__ import annotations

import io


def time_labels(
    header: list[str], rows: list[list[str]], picks: list[int], steps: int
) -> tuple[str, list, list, str]:
    """The forecast rows' index: ``(its name, the ``steps`` labels, the input rows'
    labels, a note saying what was found)``. The first column the model does not read
    whose cells are ISO dates gives the next dates (:mod:`kioku.data.time_index`); one
    counting rows by one continues the count; else steps ``1..steps``."""
    from ..data.time_index import next_dates, parse_dates, shown

    for j, column in enumerate(header):
        if j in picks:
            continue
        cells = [r[j].strip() if j < len(r) else "" for r in rows]
        dates = parse_dates(cells)
        if dates is not None:
            future, freq = next_dates(dates, steps)
            if future is not None:
                labels = [shown(t, cells[-1]) for t in future]
                return column, labels, dates, f"time index {column!r}: {freq}"
            return "step", list(range(1, steps + 1)), dates, f"{column!r}: {freq}; steps"
        try:
            counts = [int(c) for c in cells]
        except ValueError:
            continue
        if len(counts) > 2 and all(b - a == 1 for a, b in zip(counts, counts[1:])):
            future = list(range(counts[-1] + 1, counts[-1] + 1 + steps))
            return column, future, counts, f"time index {column!r}: counts rows"
    return "step", list(range(1, steps + 1)), list(range(1 - len(rows), 1)), "no time index"


def plot_forecast(path, predictor, values, forecast, past, labels, name) -> None:
    """The input's last rows (4 windows) and the forecast, one panel per column, to
    ``path`` (written atomically by matplotlib's format of its suffix)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("--plot: needs matplotlib (pip install 'kioku-lstm[plot]')") from None
    from datetime import datetime

    from ..data.atomic import write_bytes_atomic

    shown = 4 * int(predictor.window or 1)
    future = [datetime.fromisoformat(x) for x in labels] if name != "step" and isinstance(
        labels[0], str) else labels  # fmt: skip
    columns = predictor.targets
    values = values[:, [predictor.columns.index(c) for c in columns]]  # the targets' history
    figure, axes = plt.subplots(len(columns), 1, figsize=(8, 2.6 * len(columns)), squeeze=False)
    for j, (axis, column) in enumerate(zip(axes[:, 0], columns)):
        axis.plot(past[-shown:], values[-shown:, j], color="black", label="history")
        axis.plot(future, forecast[:, j], color="tab:blue", marker=".", label="forecast")
        axis.set_title(column)
        axis.set_xlabel(name)
        axis.legend(loc="upper left")
    if name != "step":
        figure.autofmt_xdate()  # dates slanted, not overlapping
    figure.tight_layout()
    buffer = io.BytesIO()
    suffix = str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else "png"
    try:
        figure.savefig(buffer, format=suffix)
    except ValueError as error:
        raise ValueError(f"--plot {path}: {error}") from None
    finally:
        plt.close(figure)
    write_bytes_atomic(path, buffer.getvalue())
