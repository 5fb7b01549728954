"""The forecasting estimator: ``Forecaster(window=28, horizon=7).fit(series)`` on a NumPy
array ``(T, F)`` (or ``(T,)``) or a pandas ``DataFrame``, forecasts that carry the
input's time index, a rolling-origin backtest beside the naive and seasonal-naive
baselines, residual-based prediction intervals, and a plot.

Time index: a ``DataFrame`` with a ``DatetimeIndex`` or a date column (a column of no
numbers, or one named ``date``/``time``/...) gives its timestamps and the frequency
pandas infers from them; a forecast's rows are the next timestamps. Without one (a
NumPy array, or dates whose frequency cannot be inferred) the rows are steps: ``T``,
``T + 1``, ... after the ``T`` rows given.

Intervals are residual-based, not sampled or quantile-trained: the empirical quantiles
of the validation windows' errors, per horizon step and column, added to the point
forecast (:meth:`Forecaster.interval`). :meth:`Forecaster.coverage` measures the share
of held-out values that fall inside them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.timeseries import INDEX_NAMES, windows
from ..train.forecast_task import ForecastTask, season_of
from ..train.settings import TrainSettings
from .base import Estimator

METRICS = ("mae", "rmse", "mape", "smape")


def errors(actual: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, MAPE and sMAPE (both in %) of ``forecast`` against ``actual`` (same
    shapes). MAPE leaves out the actual zeros (``nan`` when every one is zero); sMAPE is
    ``200 |f - a| / (|a| + |f|)`` averaged, a pair of zeros counting 0."""
    actual, forecast = np.asarray(actual, np.float64), np.asarray(forecast, np.float64)
    diff = forecast - actual
    nonzero = actual != 0
    mape = (
        float(np.mean(np.abs(diff[nonzero] / actual[nonzero])) * 100) if nonzero.any() else np.nan
    )
    denom = np.abs(actual) + np.abs(forecast)
    ratio = np.divide(2 * np.abs(diff), denom, out=np.zeros_like(denom), where=denom > 0)
    return {
        "mae": float(np.mean(np.abs(diff))),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "mape": mape,
        "smape": float(np.mean(ratio) * 100),
    }


def _frame(series: Any) -> tuple[np.ndarray, list[str], Any]:
    """``(values (T, F) float64, column names, time index or None)`` of an array or a
    DataFrame (its date column or DatetimeIndex taken as the time index)."""
    if hasattr(series, "columns") and hasattr(series, "select_dtypes"):  # pandas DataFrame
        import pandas as pd

        frame = series
        index = frame.index if isinstance(frame.index, pd.DatetimeIndex) else None
        for name in frame.columns:
            column = frame[name]
            is_date = pd.api.types.is_datetime64_any_dtype(column)
            named = str(name).lower() in INDEX_NAMES
            if index is None and (is_date or (named and not pd.api.types.is_numeric_dtype(column))):
                index = pd.DatetimeIndex(pd.to_datetime(column))
                frame = frame.drop(columns=[name])
            elif named:
                frame = frame.drop(columns=[name])
        numeric = frame.select_dtypes("number")
        dropped = [c for c in frame.columns if c not in numeric.columns]
        if dropped:
            raise ValueError(f"series: columns {dropped} hold no numbers (and no dates)")
        values, columns = numeric.to_numpy(np.float64), [str(c) for c in numeric.columns]
    else:
        values = np.asarray(series, np.float64)
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim != 2:
            raise ValueError(
                f"series: expected an array (T,) or (T, F), found shape {values.shape}"
            )
        columns, index = [f"column{j + 1}" for j in range(values.shape[1])], None
    if not np.isfinite(values).all():
        raise ValueError("series: expected finite numbers, found nan or inf")
    return values, columns, index


def _future_index(index: Any, start: int, steps: int) -> Any:
    """The ``steps`` timestamps after ``index`` (its inferred frequency), or the step
    numbers ``start .. start + steps - 1`` when there is no index or no frequency."""
    if index is not None and len(index) >= 3:
        import warnings

        import pandas as pd

        with warnings.catch_warnings():  # pandas 3 announces offsets instead of strings
            warnings.simplefilter("ignore")
            freq = pd.infer_freq(index)
        if freq is not None:
            return pd.date_range(index[-1], periods=steps + 1, freq=freq)[1:]
    return np.arange(start, start + steps)


class Forecaster(Estimator):
    """Windows of ``window`` steps predict the next ``horizon`` (direct multi-step) of
    the ``targets`` (names, default every column), reading the ``inputs`` (past
    covariates) beside them; an array's columns are ``column1``, ``column2``, ....
    Without ``validation_data`` the series' tail validates, as ``kioku train`` splits a
    CSV in time order: ``validation_split`` of the rows (10 %), and at least 20 windows
    (for the intervals' quantiles) where the series leaves two windows to train on."""

    task = "forecast"

    def __init__(self, **settings: Any) -> None:
        for name in ("targets", "inputs", "columns"):  # lists of names: the settings' text
            if isinstance(settings.get(name), (list, tuple)):
                settings[name] = ",".join(map(str, settings[name]))
        super().__init__(**settings)

    def _roles(self, columns: list[str], settings: TrainSettings) -> tuple[list[str], list[str]]:
        """The columns to forecast and the past covariates, each named in ``columns``."""

        def names(text: str | None) -> list[str]:
            return [c.strip() for c in (text or "").split(",") if c.strip()]

        inputs = names(settings.inputs)
        targets = names(settings.targets or settings.columns) or [
            c for c in columns if c not in inputs
        ]
        for setting, chosen in (("targets", targets), ("inputs", inputs)):
            unknown = [c for c in chosen if c not in columns]
            if unknown:
                raise ValueError(f"{setting}: {unknown} not among the series' columns {columns}")
        both = [c for c in inputs if c in targets]
        if both or not targets:
            raise ValueError(f"inputs: {both or inputs} leave no column only to forecast")
        return targets, inputs

    def _task(self, x: Any, y: Any, validation_data: Any, settings: TrainSettings) -> Any:
        if y is not None:
            raise TypeError("y: a forecaster learns from the series alone; give fit(series)")
        values, columns, index = _frame(x)
        targets, inputs = self._roles(columns, settings)
        order = [columns.index(c) for c in targets + inputs]  # targets first, then inputs
        values, columns = values[:, order], targets + inputs
        steps = settings.window + settings.horizon
        if validation_data is None:
            n_valid = max(int(round(len(values) * self.validation_split)), steps)
            wanted = steps + 19  # 20 windows of errors: the intervals' quantiles need them
            if n_valid < wanted and len(values) - wanted >= 2 * steps:
                n_valid = wanted
            if len(values) - n_valid < steps:
                raise ValueError(
                    f"series: expected at least {2 * steps} rows (a window of window + horizon "
                    f"= {steps} to train on and one to validate), found {len(values)}"
                )
            train, valid = values[:-n_valid], values[-n_valid:]
        else:
            train = values
            valid, vcolumns, _ = _frame(validation_data)
            if set(vcolumns) >= set(columns):
                valid = valid[:, [vcolumns.index(c) for c in columns]]
            elif valid.shape[1] == len(order):
                valid = valid[:, order]
            else:
                raise ValueError(f"validation_data: expected columns {columns}, found {vcolumns}")
        for name, part in (("train", train), ("validation", valid)):
            if len(part) < steps:
                raise ValueError(
                    f"series: the {name} part has {len(part)} rows, expected at least "
                    f"window + horizon = {steps}"
                )
        self.series_, self.columns_, self.index_ = values, columns, index
        self.targets_ = targets
        self.picked_ = list(range(len(targets)))  # the targets lead the columns
        task = ForecastTask.from_memory({"train": train, "valid": valid}, columns, settings,
                                        targets)  # fmt: skip
        self.valid_ = valid
        return task

    def fit(self, x: Any, y: Any = None, validation_data: Any = None, **options: Any):
        """Train on the series ``x`` (see :class:`Forecaster`); the rest as
        :meth:`Estimator.fit`. Then the validation windows' errors give the intervals."""
        history = super().fit(x, y, validation_data, **options)
        self.residuals_ = self._residuals(self.valid_)
        return history

    # -- forecasts ------------------------------------------------------------------------
    def _context(self, series: Any) -> tuple[np.ndarray, Any]:
        if series is None:
            self._fitted()
            return self.series_, self.index_
        values, columns, index = _frame(series)
        if set(columns) >= set(self.columns_):  # by name: targets first, then inputs
            return values[:, [columns.index(c) for c in self.columns_]], index
        if values.shape[1] != len(self.columns_):
            raise ValueError(f"series: expected columns {self.columns_}, found {columns}")
        return values, index

    def predict(self, series: Any = None, horizon: int | None = None, batch_size: int = 64) -> Any:
        """The next ``horizon`` (default: the model's) values after ``series`` (default:
        the series fitted), in its units: a ``DataFrame`` indexed by the next timestamps
        (or steps) when pandas is installed, else an array ``(horizon, F)``."""
        values, index = self._context(series)
        forecast = self._fitted().forecast(values, horizon, batch_size)
        return self._labelled(forecast, index, len(values))

    def _labelled(self, forecast: np.ndarray, index: Any, start: int, extra: dict | None = None):
        future = _future_index(index, start, forecast.shape[0])
        try:
            import pandas as pd
        except ImportError:
            return forecast
        frame = pd.DataFrame(forecast, columns=self.targets_, index=future)
        frame.index.name = (
            "time" if index is not None and not isinstance(future, np.ndarray) else "step"
        )
        for name, values in (extra or {}).items():
            for j, column in enumerate(self.targets_):
                frame[f"{column}_{name}"] = values[:, j]
        return frame

    def _residuals(self, values: np.ndarray) -> np.ndarray:
        """Errors ``(W, H, F)`` (actual - forecast) of every window of ``values``."""
        p = self._fitted()
        x, y = windows(values, p.window, p.horizon)  # (T, W, F), (H, W, F)
        forecasts = np.stack(p.forecast([x[:, w] for w in range(x.shape[1])]))  # (W, H, K)
        return np.transpose(y[..., self.picked_], (1, 0, 2)) - forecasts

    def interval(self, coverage: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Offsets ``(low (H, F), high (H, F))`` to add to a forecast for a central
        ``coverage`` interval: the empirical quantiles of the validation errors per step
        and column (residual-based; no distribution assumed)."""
        if not 0 < coverage < 1:
            raise ValueError(f"coverage: expected a number in (0, 1), found {coverage!r}")
        self._fitted()
        need = int(np.ceil(1 / (1 - coverage) - 1e-9))
        if len(self.residuals_) < need:
            raise ValueError(
                f"coverage {coverage}: the validation part gives {len(self.residuals_)} windows "
                f"of errors, expected at least {need} (give longer validation_data)"
            )
        tail = (1 - coverage) / 2
        return (
            np.quantile(self.residuals_, tail, axis=0),
            np.quantile(self.residuals_, 1 - tail, axis=0),
        )

    def predict_interval(self, series: Any = None, coverage: float = 0.9) -> Any:
        """The forecast after ``series`` with its ``coverage`` interval: columns
        ``<name>``, ``<name>_low``, ``<name>_high`` (a DataFrame; without pandas a dict of
        arrays ``forecast``, ``low``, ``high``)."""
        values, index = self._context(series)
        point = self._fitted().forecast(values)
        low, high = self.interval(coverage)
        labelled = self._labelled(
            point, index, len(values), {"low": point + low, "high": point + high}
        )
        if isinstance(labelled, np.ndarray):
            return {"forecast": point, "low": point + low, "high": point + high}
        return labelled

    def coverage(self, series: Any, coverage: float = 0.9) -> float:
        """The share of the values of every window of ``series`` (held out: not fitted
        on) that fall inside the ``coverage`` interval around their forecast."""
        values, _ = self._context(series)
        low, high = self.interval(coverage)
        errors_ = self._residuals(values)  # actual - forecast, (W, H, F)
        return float(((errors_ >= low) & (errors_ <= high)).mean())

    def backtest(self, series: Any = None, start: float | int = 0.8, stride: int | None = None,
                 season: int | None = None) -> dict[str, dict[str, float]]:  # fmt: skip
        """Rolling-origin forecasts over the test span: from origin ``start`` (a row, or a
        share of the rows) to the end, every ``stride`` rows (default: the horizon), the
        model forecasts the next ``horizon`` rows from the ``window`` before the origin.
        Returns MAE, RMSE, MAPE and sMAPE of the model and of the naive (the last value
        repeated) and seasonal-naive (the value ``season`` rows earlier; default: the
        training data's period) forecasts over the same rows: ``{"model": {...},
        "naive": {...}, "seasonal_naive": {...}}``."""
        values, _ = self._context(series)
        p = self._fitted()
        H, W = p.horizon, p.window
        first = int(round(start * len(values))) if isinstance(start, float) else int(start)
        first = max(first, W)
        stride = H if stride is None else int(stride)
        season = season or getattr(self.task_, "season", None) or season_of(values, W)
        if season > first:
            raise ValueError(f"season: expected at most the first origin {first}, found {season}")
        origins = list(range(first, len(values) - H + 1, stride))
        if not origins:
            raise ValueError(
                f"start: no origin leaves a horizon of {H} rows after a window of {W} "
                f"(rows {len(values)}, first origin {first})"
            )
        model = np.stack(p.forecast([values[o - W : o] for o in origins]))  # (O, H, K)
        targets = values[:, self.picked_]
        actual = np.stack([targets[o : o + H] for o in origins])
        naive = np.stack([np.repeat(targets[o - 1 : o], H, axis=0) for o in origins])
        seasonal = np.stack([targets[o - season + (np.arange(H) % season)] for o in origins])
        out = {
            name: errors(actual, guess)
            for name, guess in (("model", model), ("naive", naive), ("seasonal_naive", seasonal))
        }
        out["origins"] = {"count": len(origins), "first": origins[0], "season": season}
        return out

    def plot(self, path: str | None = None, series: Any = None, coverage: float = 0.9,
             history: int | None = None):  # fmt: skip
        """History (the last ``history`` rows, default 4 windows), the forecast and its
        ``coverage`` interval, one panel per column; saved to ``path`` when given.
        Needs matplotlib (the ``plot`` extra). Returns the figure."""
        try:
            import matplotlib

            if path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("plot: needs matplotlib (pip install 'kioku-lstm[plot]')") from None
        values, index = self._context(series)
        p = self._fitted()
        point = p.forecast(values)
        low, high = self.interval(coverage)
        shown = history or 4 * p.window
        past = index[-shown:] if index is not None else np.arange(len(values))[-shown:]
        future = _future_index(index, len(values), p.horizon)
        if index is not None and isinstance(future, np.ndarray):  # dates without frequency
            past = np.arange(len(values))[-shown:]
        rows = len(self.targets_)
        figure, axes = plt.subplots(rows, 1, figsize=(8, 2.6 * rows), squeeze=False)
        for j, (axis, name) in enumerate(zip(axes[:, 0], self.targets_)):
            axis.plot(past, values[-shown:, self.picked_[j]], color="black", label="history")
            axis.plot(future, point[:, j], color="tab:blue", label="forecast")
            band = (point[:, j] + low[:, j], point[:, j] + high[:, j])
            label = f"{coverage:.0%} interval"
            axis.fill_between(future, *band, color="tab:blue", alpha=0.25, label=label)
            axis.set_title(name)
            axis.legend(loc="upper left")
        figure.tight_layout()
        if path is not None:
            figure.savefig(path)
        return figure
