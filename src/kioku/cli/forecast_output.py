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


COVERAGE = 0.9
"""The central share of the errors the plot's interval spans."""


def input_interval(predictor, values, coverage: float = COVERAGE, most: int = 500):
    """Offsets ``(low (H, K), high (H, K))`` of a ``coverage`` interval from the model's
    own errors on the input's windows (its last ``most``), per step of the model's
    horizon and target, and a note; ``(None, why)`` with too few windows. Residual-based,
    like :meth:`kioku.Forecaster.interval`, but on the rows given: where those were
    trained on, the errors are in-sample and the interval narrower than the future's."""
    import numpy as np

    from ..data.timeseries import windows

    window, horizon = int(predictor.window), int(predictor.horizon)
    need = int(np.ceil(1 / (1 - coverage) - 1e-9))
    count = values.shape[0] - window - horizon + 1
    if count < need:
        return None, f"no interval: {max(count, 0)} windows in the input, {need} needed"
    x, y = windows(values[-(most + window + horizon - 1) :], window, horizon)
    forecasts = np.stack(predictor.forecast([x[:, w] for w in range(x.shape[1])]))
    picked = [predictor.columns.index(c) for c in predictor.targets]
    errors = np.transpose(y[..., picked], (1, 0, 2)) - forecasts  # (W, H, K)
    tail = (1 - coverage) / 2
    low, high = np.quantile(errors, tail, axis=0), np.quantile(errors, 1 - tail, axis=0)
    return (
        low,
        high,
    ), f"interval: {coverage:.0%} of the errors on the input's {len(errors)} windows"


def plot_forecast(path, predictor, values, forecast, past, labels, name) -> str:
    """The input's last rows (4 windows), the forecast and its interval
    (:func:`input_interval`), one panel per target, to ``path`` (written atomically, in
    the format of its suffix); returns a note on the interval."""
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
    interval, note = input_interval(predictor, values)
    values = values[:, [predictor.columns.index(c) for c in columns]]  # the targets' history
    figure, axes = plt.subplots(len(columns), 1, figsize=(8, 2.6 * len(columns)), squeeze=False)
    for j, (axis, column) in enumerate(zip(axes[:, 0], columns)):
        axis.plot(past[-shown:], values[-shown:, j], color="black", label="history")
        axis.plot(future, forecast[:, j], color="tab:blue", marker=".", label="forecast")
        if interval is not None:  # over the model's own horizon
            steps = min(len(future), interval[0].shape[0])
            band = forecast[:steps, j] + interval[0][:steps, j], forecast[:steps, j] + interval[
                1][:steps, j]  # fmt: skip
            label = f"{COVERAGE:.0%} interval"
            axis.fill_between(future[:steps], *band, color="tab:blue", alpha=0.25, label=label)
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
    return note
