"""Forecasting: windows of a CSV series predict its next steps.

The series is standardised with the training split's mean and deviation, which the
checkpoint keeps (``task.mean``, ``task.std``), so that predictions and evaluations on
other files come back in the data's own units. Figures come with the naive forecast
(the window's last value, repeated) and the seasonal-naive one (the value one period
earlier) beside them, in the data's units.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..data.padded import Example, PaddedBatcher
from ..data.timeseries import csv_rows, index_columns, read_csv_series, windows
from ..models import Forecaster, Model
from .checkpoint import CheckpointError
from .labeled_tasks import SPLITS, Batch, PaddedTask, split_source
from .settings import TrainSettings, setting_error


def season_of(values: np.ndarray, longest: int) -> int:
    """The lag in ``2..longest`` at which ``values (N, F)`` correlate best with
    themselves (summed over columns): the period a seasonal-naive forecast repeats."""
    centred = values - values.mean(axis=0)
    best, best_score = 2, -math.inf
    for lag in range(2, max(2, min(longest, values.shape[0] - 2)) + 1):
        a, b = centred[lag:], centred[:-lag]
        denom = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0)) + 1e-12
        score = float(((a * b).sum(axis=0) / denom).sum())
        if score > best_score:
            best, best_score = lag, score
    return best


def split_sizes(rows: int) -> tuple[int, int, int]:
    """Rows of train, valid and test when one file of ``rows`` is split 80/10/10."""
    cuts = (int(rows * 0.8), int(rows * 0.9))
    return cuts[0], cuts[1] - cuts[0], rows - cuts[1]


class ForecastTask(PaddedTask):
    """Windows of ``settings.window`` steps predict the next ``settings.horizon`` steps, on
    a series standardised with the training split's mean and standard deviation."""

    kind = "forecast"

    def __init__(
        self,
        series: dict[str, np.ndarray],
        columns: list[str],
        window: int,
        horizon: int,
        batch_size: int,
        seed: int,
        scaling: tuple[np.ndarray, np.ndarray] | None = None,
        left_out: dict[str, str] | None = None,
        targets: list[str] | None = None,
    ) -> None:
        """``series``: per split, the values ``(N, F)`` of the ``F`` ``columns`` (what the
        model reads); ``targets``: those it forecasts (default: all; the others are past
        covariates); ``scaling``: ``(mean (F,), std (F,))``, default the training split's."""
        self.columns, self.window, self.horizon = columns, window, horizon
        self.targets = list(targets) if targets else list(columns)
        unknown = [t for t in self.targets if t not in columns]
        if unknown:
            raise setting_error(ValueError, "targets", f"{unknown} not among columns {columns}")
        self.target_index = [columns.index(t) for t in self.targets]
        self.left_out = left_out or {}
        if scaling is None:
            scaling = (series["train"].mean(axis=0), series["train"].std(axis=0) + 1e-8)
        self.mean, self.std = (np.asarray(a, np.float64) for a in scaling)
        self.season = season_of(series["train"][:, self.target_index], window)
        splits = {}
        for split, values in series.items():
            x, y = windows((values - self.mean) / self.std, window, horizon)
            y = y[..., self.target_index]  # (H, W, targets): covariates are read, not forecast
            splits[split] = [
                Example(x[:, w].astype(np.float32), y[:, w].astype(np.float32))
                for w in range(x.shape[1])
            ]
        super().__init__(splits, batch_size, seed)

    @classmethod
    def from_settings(cls, settings: TrainSettings) -> ForecastTask:
        files = split_source(settings.data, cls.kind, (".csv",))
        first = files.single or files.files["train"]
        header = settings.header
        wanted, targets, left_out = cls.choose_targets(first, settings, header)
        steps = settings.window + settings.horizon  # one window, at least, in every split
        if files.single is not None:
            # valid holds at most n / 10 + 1 rows: no n below 10 (steps - 1) can do
            start = max(steps, 10 * (steps - 1))
            need = next(n for n in range(start, 100 * steps) if min(split_sizes(n)) >= steps)
            why = f"a window of {steps} steps in each of train, valid, test: 80/10/10"
            values, columns = read_csv_series(files.single, wanted, need, why, header)
            cuts = (int(values.shape[0] * 0.8), int(values.shape[0] * 0.9))
            series = dict(zip(SPLITS, np.split(values, cuts)))
        else:
            series = {}
            for split, path in files.files.items():
                why = f"one window of --window + --horizon = {steps} steps"
                series[split], columns = read_csv_series(path, wanted, steps, why, header)
        task = cls.from_memory(series, columns, settings, targets)
        task.left_out = left_out
        counts = {s: f"{len(v):,} rows, {len(task.splits[s]):,} windows" for s, v in series.items()}
        task.said(files, counts, "in time order: valid and test are the series' tail")
        return task

    @classmethod
    def from_memory(
        cls,
        series: dict[str, np.ndarray],
        columns: list[str],
        settings: TrainSettings,
        targets: list[str] | None = None,
    ) -> ForecastTask:
        """The task over per-split values ``(N, F)`` of ``columns`` (``train`` and
        ``valid``, and ``test`` if given) held in memory, scaled with the training part's
        mean and deviation (:meth:`from_settings` reads its CSV files into this);
        ``targets`` (default: all columns) are forecast, the others read as covariates."""
        return cls(
            series, columns, settings.window, settings.horizon, settings.batch_size,
            settings.seed, targets=targets,
        )  # fmt: skip

    @classmethod
    def choose_targets(
        cls, path: Path, settings: TrainSettings, header: bool | None
    ) -> tuple[list[str] | None, list[str] | None, dict[str, str]]:
        """``(the columns to read, those to forecast, the time-index columns left out)``
        from ``--targets`` (or ``--columns``) and ``--inputs``; ``None``: every column."""
        if settings.targets and settings.columns and settings.targets != settings.columns:
            detail = f"--columns {settings.columns} says otherwise; give one of them"
            raise setting_error(ValueError, "targets", detail, settings.targets)
        wanted, left_out = cls.choose_columns(path, settings.targets or settings.columns, header)
        inputs = [c.strip() for c in (settings.inputs or "").split(",") if c.strip()]
        if not inputs:
            return wanted, None, left_out
        if not (settings.targets or settings.columns):  # every column but the inputs
            names = wanted or csv_rows(path, header)[0]
            wanted = [n for n in names if n not in left_out and n not in inputs]
        both = [c for c in inputs if c in wanted]
        if both:
            detail = f"{both} forecast already (--targets); a column is one or the other"
            raise setting_error(ValueError, "inputs", detail, settings.inputs)
        if not wanted:
            raise setting_error(
                ValueError, "inputs", "leaves no column to forecast", settings.inputs
            )
        return wanted + inputs, wanted, left_out

    @staticmethod
    def choose_columns(
        path: Path, given: str | None, header: bool | None = True
    ) -> tuple[list[str] | None, dict[str, str]]:
        """The columns to forecast: ``given`` (comma-separated), else every column but
        those that index time (left out, each with its reason). ``header``: the first
        row names the columns (``None``: detected, see :func:`csv_rows`)."""
        if given:
            return [c.strip() for c in given.split(",")], {}
        left_out = index_columns(path, header)
        if not left_out:
            return None, {}
        names = csv_rows(path, header)[0]
        kept = [n for n in names if n not in left_out]
        if not kept:
            detail = f"every column of {path} looks like a time index ({left_out}); choose some"
            raise setting_error(ValueError, "columns", detail)
        return kept, left_out

    @classmethod
    def on_file(cls, state: dict, path: Path, batch_size: int, source: str) -> ForecastTask:
        """All windows of ``path`` as split ``"all"``, scaled with a checkpoint's mean and
        deviation (``state``, its ``task`` field read from ``source``)."""
        columns = state.get("columns")
        if "mean" not in state or "std" not in state:
            raise CheckpointError(
                f"{source}: field 'task.mean': missing (a checkpoint older than saved "
                "scaling; only its own data can be evaluated)"
            )
        values, columns = read_csv_series(path, columns, header=None)
        scaling = (np.asarray(state["mean"]), np.asarray(state["std"]))
        series = {"train": values, "all": values}
        return cls(series, columns, state["window"], state["horizon"], batch_size, 0, scaling,
                   targets=state.get("targets"))  # fmt: skip

    def header(self) -> str:
        shown = f"columns {self.columns}"
        if self.targets != self.columns:
            inputs = [c for c in self.columns if c not in self.targets]
            shown = f"targets {self.targets}, past covariates {inputs}"
        if self.left_out:
            why = "; ".join(f"{name!r}: {reason}" for name, reason in self.left_out.items())
            shown += f" (left out {why}; --columns chooses)"
        return f"{super().header()}; {shown}"

    def extra_state(self) -> dict:
        targets = {"targets": self.targets} if self.targets != self.columns else {}
        return {"columns": self.columns, "window": self.window, "horizon": self.horizon, **targets}

    def state_dict(self) -> dict:
        # the scaling is kept for predictions, not compared on resume (older runs lack it)
        return {**super().state_dict(), "mean": self.mean.tolist(), "std": self.std.tolist()}

    def build_model(
        self, settings: TrainSettings, rng: np.random.Generator, init_range: float | None
    ) -> Forecaster:
        return Forecaster(
            len(self.columns),
            settings.hidden,
            settings.layers,
            self.horizon,
            output_size=len(self.targets),
            dropout=settings.dropout,
            rng=rng,
            init_range=init_range,
            **settings.cell_options(),
        )

    def batch_loss(self, model: Model, batch: Batch, backward: bool) -> tuple[float, int, int]:
        x, _, y = batch  # x (T, B, F) windows of one length, y (H, B, F)
        loss, _ = model.loss(x, np.transpose(y, (1, 0, 2)), backward=backward)
        return float(loss), y.shape[1], 0

    def measure(self, model: Model, split: str) -> dict[str, float]:
        """The mean loss (standardised units), ``rmse`` in those units, and in the
        data's units: ``rmse_units`` and the naive and seasonal-naive forecasts' RMSE."""
        batcher = PaddedBatcher(self.splits[split], self.batch_size, shuffle=False)
        squares = {"model": 0.0, "naive": 0.0, "seasonal": 0.0}
        total = count = cells = 0.0
        picked, std = self.target_index, self.std[self.target_index]
        with model.eval_mode():
            for x, _, y in batcher.epoch_batches():
                target = np.transpose(y, (1, 0, 2))  # (B, H, F)
                loss, pred = model.loss(x, target, backward=False)
                total += float(loss) * y.shape[1]
                count += y.shape[1]
                cells += target.size
                naive = np.repeat(x[-1][:, None, picked], self.horizon, axis=1)
                steps = np.arange(self.horizon) % self.season - self.season
                seasonal = np.transpose(x[steps][..., picked], (1, 0, 2))
                for name, guess in (("model", pred), ("naive", naive), ("seasonal", seasonal)):
                    squares[name] += float((((guess - target) * std) ** 2).sum())
        loss = total / count
        units = {f"rmse_{k}": math.sqrt(v / cells) for k, v in squares.items()}
        return {
            "loss": loss,
            "rmse": math.sqrt(loss),
            "rmse_units": units["rmse_model"],
            "naive_rmse_units": units["rmse_naive"],
            "seasonal_naive_rmse_units": units["rmse_seasonal"],
        }

    def report(self, record: dict, step: int, best_step: int | None) -> list[str]:
        return [
            *super().report(record, step, best_step),
            f"test RMSE in the data's units: {record['rmse_units']:.4g}",
            f"naive baseline (last value repeated): {record['naive_rmse_units']:.4g}",
            f"seasonal-naive baseline (period {self.season}): "
            f"{record['seasonal_naive_rmse_units']:.4g}",
        ]
