"""kioku.Forecaster: forecasts carrying the input's time index, the rolling-origin backtest
and its metrics against a hand computation, residual-based intervals and their coverage,
the plot, and save -> kioku.load -> the same forecasts."""

from __future__ import annotations

import numpy as np
import pytest

import kioku
from kioku.estimators.forecast import errors

WINDOW, HORIZON = 8, 3
TINY = {"window": WINDOW, "horizon": HORIZON, "hidden": 8, "batch_size": 16}


def series(n: int = 240, seed: int = 0) -> np.ndarray:
    t = np.arange(n)
    noise = np.random.default_rng(seed).normal(0, 0.05, n)
    return (np.sin(2 * np.pi * t / 12) + 0.01 * t + 2 + noise)[:, None]


@pytest.fixture(scope="module")
def fitted():
    values = series()
    fc = kioku.Forecaster(**TINY)
    fc.fit(values[:200], epochs=4, verbose=0)
    return fc, values


def test_metrics_against_a_hand_computation():
    actual = np.array([[1.0, 0.0], [2.0, 4.0]])
    forecast = np.array([[2.0, 1.0], [2.0, 2.0]])
    got = errors(actual, forecast)
    assert got["mae"] == pytest.approx((1 + 1 + 0 + 2) / 4)
    assert got["rmse"] == pytest.approx(np.sqrt((1 + 1 + 0 + 4) / 4))
    assert got["mape"] == pytest.approx(100 * (1 / 1 + 0 / 2 + 2 / 4) / 3)  # the zero left out
    smape = [2 * 1 / 3, 2 * 1 / 1, 0.0, 2 * 2 / 6]
    assert got["smape"] == pytest.approx(100 * np.mean(smape))


def test_backtest_against_a_hand_computation(fitted):
    fc, values = fitted
    result = fc.backtest(values, start=200, stride=5, season=12)
    origins = list(range(200, 240 - HORIZON + 1, 5))
    assert result["origins"] == {"count": len(origins), "first": 200, "season": 12}
    actual = np.stack([values[o : o + HORIZON] for o in origins])
    naive = np.stack([np.full((HORIZON, 1), values[o - 1, 0]) for o in origins])
    seasonal = np.stack([values[o - 12 : o - 12 + HORIZON] for o in origins])
    loaded = fc.predictor  # the model's forecasts, one origin at a time
    model = np.stack([loaded.forecast(values[o - WINDOW : o]) for o in origins])
    for name, guess in (("naive", naive), ("seasonal_naive", seasonal), ("model", model)):
        diff = guess - actual
        assert result[name]["mae"] == pytest.approx(np.abs(diff).mean()), name
        assert result[name]["rmse"] == pytest.approx(np.sqrt((diff**2).mean())), name
        assert result[name]["mape"] == pytest.approx(100 * np.abs(diff / actual).mean()), name
        smape = 200 * np.abs(diff) / (np.abs(actual) + np.abs(guess))
        assert result[name]["smape"] == pytest.approx(smape.mean()), name
    # a period-12 series: the seasonal-naive forecast beats the naive one
    assert result["seasonal_naive"]["mae"] < result["naive"]["mae"]


def test_forecasts_carry_the_time_index():
    pd = pytest.importorskip("pandas")
    values = series(120)[:, 0]
    frame = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=120, freq="D"),
                          "sales": values})  # fmt: skip
    fc = kioku.Forecaster(**TINY)
    fc.fit(frame, epochs=1, verbose=0)
    forecast = fc.predict()
    expected = pd.date_range("2024-04-30", periods=HORIZON, freq="D")  # after 2024-04-29
    assert list(forecast.index) == list(expected) and list(forecast.columns) == ["sales"]
    np.testing.assert_allclose(forecast["sales"], fc.predictor.forecast(values)[:, 0])
    # a DatetimeIndex works the same; monthly dates give months
    monthly = pd.DataFrame({"sales": values}, index=pd.date_range("2000-01-31", periods=120,
                                                                   freq="ME"))  # fmt: skip
    assert fc.predict(monthly).index[0] == pd.Timestamp("2010-01-31")
    # no dates: steps after the rows given
    steps = fc.predict(values[:50, None])
    assert list(steps.index) == [50, 51, 52] and steps.index.name == "step"


def test_intervals_are_validation_quantiles_and_their_coverage_is_counted(fitted):
    fc, values = fitted
    # the validation windows' errors, by hand
    valid = fc.valid_
    starts = range(len(valid) - WINDOW - HORIZON + 1)
    forecasts = fc.predictor.forecast([valid[s : s + WINDOW] for s in starts])  # one batch
    residuals = np.stack([valid[s + WINDOW : s + WINDOW + HORIZON] - f
                          for s, f in zip(starts, forecasts)])  # fmt: skip
    np.testing.assert_array_equal(fc.residuals_, residuals)
    # one window at a time: the same up to float32 rounding of the batched products
    single = fc.predictor.forecast(valid[:WINDOW])
    tolerance = 16 * np.finfo(np.float32).eps * np.abs(valid).max()
    np.testing.assert_allclose(single, forecasts[0], rtol=0, atol=tolerance)
    low, high = fc.interval(0.8)
    np.testing.assert_allclose(low, np.quantile(residuals, 0.1, axis=0))
    np.testing.assert_allclose(high, np.quantile(residuals, 0.9, axis=0))
    # coverage on held-out rows (never fitted on): the share inside, counted by hand
    held_out = values[200 - WINDOW :]
    starts = range(len(held_out) - WINDOW - HORIZON + 1)
    points = fc.predictor.forecast([held_out[s : s + WINDOW] for s in starts])
    inside = []
    for start, point in zip(starts, points):
        actual = held_out[start + WINDOW : start + WINDOW + HORIZON]
        inside.append((actual >= point + low) & (actual <= point + high))
    assert fc.coverage(held_out, 0.8) == pytest.approx(np.mean(inside))
    frame = fc.predict_interval(held_out, 0.8)
    np.testing.assert_allclose(frame["column1_low"], frame["column1"] + low[:, 0])
    with pytest.raises(ValueError, match="coverage: expected a number in"):
        fc.interval(1.5)


def test_plot_and_save(fitted, tmp_path):
    pytest.importorskip("matplotlib")
    fc, values = fitted
    figure = fc.plot(tmp_path / "forecast.png")
    assert (tmp_path / "forecast.png").stat().st_size > 1000
    assert len(figure.axes[0].lines) == 2  # history and forecast (and the interval band)
    fc.save(tmp_path / "fc")
    again = kioku.load(tmp_path / "fc")
    np.testing.assert_array_equal(again.forecast(values[:200]), fc.predictor.forecast(values[:200]))


def test_bad_series_are_refused_naming_the_argument():
    with pytest.raises(ValueError, match=r"series: expected at least 22 rows"):
        kioku.Forecaster(**TINY).fit(series(15), verbose=0)
    bad = series(100)
    bad[5] = np.nan
    with pytest.raises(ValueError, match="series: expected finite numbers"):
        kioku.Forecaster(**TINY).fit(bad, verbose=0)
    with pytest.raises(ValueError, match="window: expected an integer >= 1, found 0"):
        kioku.Forecaster(window=0)


def test_an_interval_needs_enough_validation_windows():
    values = series(120)
    fc = kioku.Forecaster(**TINY)
    fc.fit(values[:90], validation_data=values[90:], epochs=1, verbose=0)  # 30 rows: 20 windows
    assert fc.residuals_.shape == (20, HORIZON, 1)
    fc.interval(0.9)  # 10 windows needed
    with pytest.raises(ValueError, match="coverage 0.99: the validation part gives 20 windows"):
        fc.interval(0.99)


@pytest.fixture(scope="module")
def daily_run(tmp_path_factory):
    import datetime

    from kioku.cli import main

    folder = tmp_path_factory.mktemp("cli")
    start = datetime.date(2024, 1, 30)
    lines = ["date,sales"] + [
        f"{start + datetime.timedelta(days=i)},{v:.4f}" for i, v in enumerate(series(120)[:, 0])
    ]
    (folder / "daily.csv").write_text("\n".join(lines) + "\n")
    argv = ["train", "--task", "forecast", "--data", str(folder / "daily.csv"), "--window", "8",
            "--horizon", "3", "--hidden", "8", "--epochs", "1", "--no-progress",
            "--out", str(folder / "run")]  # fmt: skip
    assert main(argv) == 0
    return folder


def _day(i: int) -> str:
    import datetime

    return str(datetime.date(2024, 2, 1) + datetime.timedelta(days=i))


@pytest.mark.parametrize(
    ("first_column", "cells", "expected"),
    [
        ("date", _day, ["date", "2024-03-02", "2024-03-03", "2024-03-04"]),  # leap February
        ("date", lambda i: _day(i + (i > 20)), ["step", "1", "2", "3"]),  # a day missing: steps
        ("t", lambda i: str(100 + i), ["t", "130", "131", "132"]),  # a count goes on
        ("name", lambda i: "x", ["step", "1", "2", "3"]),
    ],
)
def test_predict_labels_rows_with_the_input_time(daily_run, capsys, first_column, cells, expected):
    from kioku.cli import main

    values = series(31)[:, 0]
    rows = [f"{first_column},sales"] + [f"{cells(i)},{v:.4f}" for i, v in enumerate(values[:30])]
    (daily_run / "in.csv").write_text("\n".join(rows) + "\n")
    assert main(["predict", str(daily_run / "run"), str(daily_run / "in.csv")]) == 0
    out = capsys.readouterr().out.splitlines()
    labels = [line.split(",")[0] for line in out]
    assert labels == expected


def test_next_dates_without_pandas_keep_days_and_month_ends(monkeypatch):
    import sys
    from datetime import datetime

    from kioku.data.time_index import next_dates

    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    days = [datetime(2024, 2, 27), datetime(2024, 2, 28), datetime(2024, 2, 29)]
    after = [datetime(2024, 3, 1), datetime(2024, 3, 2)]
    assert next_dates(days, 2) == (after, "every 1 day, 0:00:00")
    ends = [datetime(2023, 11, 30), datetime(2023, 12, 31), datetime(2024, 1, 31)]
    future, freq = next_dates(ends, 2)
    assert future == [datetime(2024, 2, 29), datetime(2024, 3, 31)] and freq == "every 1 month"
    assert next_dates(days[:2], 1) == (None, "fewer than 3 dates")


def test_predict_plot_and_its_refusals(daily_run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from kioku.cli import main

    run, data = str(daily_run / "run"), str(daily_run / "daily.csv")
    assert main(["predict", run, data, "--plot", str(tmp_path / "fc.png")]) == 0
    assert (tmp_path / "fc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "time index 'date': D" in capsys.readouterr().err
    assert main(["predict", run, data, "--plot", str(tmp_path / "fc.nope")]) == 2
    assert "--plot" in capsys.readouterr().err


def covariate_series(n: int = 160) -> np.ndarray:
    """``(n, 2)``: sales follow the price two steps earlier."""
    rng = np.random.default_rng(0)
    price = np.sin(np.arange(n) / 4) + rng.normal(0, 0.05, n)
    sales = np.zeros(n)
    sales[2:] = 3 * price[:-2] + rng.normal(0, 0.05, n - 2)
    return np.stack([sales, price], axis=1)


def test_targets_apart_from_past_covariates(tmp_path):
    pd = pytest.importorskip("pandas")
    values = covariate_series()
    frame = pd.DataFrame({"price": values[:, 1], "sales": values[:, 0]})  # inputs first here
    fc = kioku.Forecaster(**TINY, targets=["sales"], inputs=["price"])
    fc.fit(frame, epochs=2, verbose=0)
    assert fc.model.config()["input_size"] == 2 and fc.model.config()["output_size"] == 1
    forecast = fc.predict(frame)
    assert list(forecast.columns) == ["sales"] and forecast.shape == (HORIZON, 1)
    # the model reads the covariate: another price history, another forecast
    other = frame.assign(price=frame["price"] * -1)
    assert not np.allclose(fc.predict(other)["sales"], forecast["sales"])
    # the naive baselines forecast the target alone, by hand
    result = fc.backtest(frame, start=140, stride=HORIZON, season=12)
    origins = range(140, 160 - HORIZON + 1, HORIZON)
    naive = np.concatenate([np.full(HORIZON, values[o - 1, 0]) for o in origins])
    actual = np.concatenate([values[o : o + HORIZON, 0] for o in origins])
    assert result["naive"]["mae"] == pytest.approx(np.abs(naive - actual).mean())
    fc.save(tmp_path / "cov")
    loaded = kioku.load(tmp_path / "cov")
    assert loaded.targets == ["sales"] and loaded.columns == ["sales", "price"]
    np.testing.assert_array_equal(loaded.forecast(values[:, [0, 1]]), forecast.to_numpy())
    with pytest.raises(ValueError, match=r"horizon: expected at most the model's 3 steps, found 5"):
        loaded.forecast(values, horizon=5)
    with pytest.raises(ValueError, match=r"inputs: \['sales'\] leave no column only to forecast"):
        kioku.Forecaster(**TINY, targets="sales", inputs="sales").fit(frame, verbose=0)


def test_the_command_forecasts_targets_from_inputs(tmp_path, capsys):
    from kioku.cli import main

    values = covariate_series()
    path = tmp_path / "cov.csv"
    rows = ["t,sales,price"] + [f"{t},{s:.4f},{p:.4f}" for t, (s, p) in enumerate(values)]
    path.write_text("\n".join(rows) + "\n")
    argv = ["train", "--task", "forecast", "--data", str(path), "--window", "8", "--horizon",
            "3", "--hidden", "8", "--epochs", "1", "--no-progress", "--out"]  # fmt: skip
    assert main([*argv, str(tmp_path / "run"), "--targets", "sales", "--inputs", "price"]) == 0
    assert "targets ['sales'], past covariates ['price']" in capsys.readouterr().out
    assert main(["predict", str(tmp_path / "run"), str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "t,sales" and out[1].startswith("160,") and len(out) == 4
    assert main(["predict", str(tmp_path / "run"), str(path), "--horizon", "4"]) == 2
    assert "past covariates ['price'] would be needed ahead" in capsys.readouterr().err
    # every column but the inputs is a target when --targets is not given
    assert main([*argv, str(tmp_path / "run2"), "--inputs", "price"]) == 0
    assert kioku.load(tmp_path / "run2").targets == ["sales"]
    for extra, message in [
        (["--targets", "sales", "--inputs", "sales"], "--inputs sales: ['sales'] forecast already"),
        (["--targets", "sales", "--columns", "price"], "--targets sales: --columns price says"),
    ]:
        assert main([*argv, str(tmp_path / "bad"), *extra]) == 2
        assert message in capsys.readouterr().err


def test_the_command_plot_interval_is_the_quantiles_of_the_input_errors(daily_run):
    from kioku.cli.forecast_output import input_interval

    predictor = kioku.load(daily_run / "run")
    lines = (daily_run / "daily.csv").read_text().splitlines()[1:]
    values = np.array([[float(line.split(",")[1])] for line in lines])
    (low, high), note = input_interval(predictor, values, 0.8)
    starts = range(len(values) - WINDOW - HORIZON + 1)
    forecasts = predictor.forecast([values[s : s + WINDOW] for s in starts])
    errors = np.stack([values[s + WINDOW : s + WINDOW + HORIZON] - f
                       for s, f in zip(starts, forecasts)])  # fmt: skip
    # the same float32 forecasts; the float64 quantile's interpolation may round apart by 1 ulp
    ulp = 4 * np.finfo(np.float64).eps
    np.testing.assert_allclose(low, np.quantile(errors, 0.1, axis=0), rtol=ulp, atol=0)
    np.testing.assert_allclose(high, np.quantile(errors, 0.9, axis=0), rtol=ulp, atol=0)
    assert note == f"interval: 80% of the errors on the input's {len(errors)} windows"
    assert input_interval(predictor, values[:15], 0.9) == (
        None, "no interval: 5 windows in the input, 10 needed")  # fmt: skip
