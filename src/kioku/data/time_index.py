"""The time index of a forecast: the timestamps after a CSV's date column, at the
frequency its dates keep, or step numbers where there is none.

The frequency is inferred from the dates themselves: pandas' ``infer_freq`` when pandas
is installed (business days, month ends, ...), else a constant step (days, hours,
seconds: ``datetime`` arithmetic) or a constant number of calendar months (the same day
of the month, or month ends). Dates that keep none of these give step numbers, with
the reason.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta


def parse_dates(cells: list[str]) -> list[datetime] | None:
    """``cells`` as datetimes (ISO 8601: ``2024-01-31``, ``2024-01-31 12:00``), or ``None``
    when one is not a date."""
    out = []
    for cell in cells:
        try:
            out.append(datetime.fromisoformat(cell.strip()))
        except ValueError:
            return None
    return out


def _add_months(moment: datetime, months: int, month_end: bool) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=last if month_end else min(moment.day, last))


def _months_apart(a: datetime, b: datetime) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def next_dates(dates: list[datetime], steps: int) -> tuple[list[datetime] | None, str]:
    """The ``steps`` dates after ``dates`` and the frequency found (in words), or
    ``(None, why not)``."""
    if len(dates) < 3:
        return None, "fewer than 3 dates"
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            freq = pd.infer_freq(pd.DatetimeIndex(dates))
        if freq is None:
            return None, "the dates keep no frequency pandas can infer"
        future = pd.date_range(dates[-1], periods=steps + 1, freq=freq)[1:]
        return [t.to_pydatetime() for t in future], str(freq)
    # calendar months first: month ends 31 days apart twice are still month ends
    months = {_months_apart(a, b) for a, b in zip(dates, dates[1:])}
    month_end = all(d.day == calendar.monthrange(d.year, d.month)[1] for d in dates)
    same_day = len({d.day for d in dates}) == 1
    if len(months) == 1 and next(iter(months)) > 0 and (month_end or same_day):
        n = next(iter(months))
        future = [_add_months(dates[-1], n * (k + 1), month_end) for k in range(steps)]
        return future, f"every {n} month{'s' if n > 1 else ''}"
    deltas = {b - a for a, b in zip(dates, dates[1:])}
    if len(deltas) == 1 and next(iter(deltas)) > timedelta(0):
        delta = next(iter(deltas))
        return [dates[-1] + delta * (k + 1) for k in range(steps)], f"every {delta}"
    return None, "the dates keep no constant step"


def shown(moment: datetime, like: str) -> str:
    """``moment`` written as the input wrote its dates (a date alone, or with a time)."""
    text = like.strip()
    if len(text) <= 10 and moment.time() == datetime.min.time():
        return date(moment.year, moment.month, moment.day).isoformat()
    return moment.isoformat(sep=" ")
