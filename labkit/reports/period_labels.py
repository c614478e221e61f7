"""The period a report covers, written one way for every kind of report in the index.

A period is the first bar to the last bar, both named by their opens, in UTC: a backtest run with
``--until 2026-01-10`` and a model trained up to ``--until 2026-01-04T23:45`` both end at their
last bar (2026-01-09, 2026-01-04 23:44), never at an excluded end. Whole UTC days are written as
days (``2026-01-05 to 2026-01-07``, one day once: ``2026-01-05``), anything else to the minute
(``2026-01-05 09:30 to 2026-01-05 17:59``, seconds when a bar has them).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from labkit.timeutil import DAY_MS, timeframe_ms


def period_label(first: Any, last: Any, timeframe: str | int) -> str:
    """Return the period from the bar opening at `first` to the bar opening at `last`, UTC.

    `timeframe` (``1m`` or milliseconds) says when the last bar closes: a period whose first bar
    opens at a midnight and whose last bar closes at one is whole days, written as days.

    Examples
    --------
    >>> period_label("2026-01-05T00:00Z", "2026-01-06T23:59Z", "1m")
    '2026-01-05 to 2026-01-06'
    >>> period_label("2026-01-05T00:00Z", "2026-01-05T23:59Z", "1m")
    '2026-01-05'
    >>> period_label("2026-01-01T00:00Z", "2026-01-04T23:44Z", "1m")
    '2026-01-01 00:00 to 2026-01-04 23:44'
    """
    start, end = _utc(first), _utc(last)
    step = timeframe if isinstance(timeframe, int) else timeframe_ms(timeframe)
    start_ms, close_ms = int(start.value // 1_000_000), int(end.value // 1_000_000) + step
    if start_ms % DAY_MS == 0 and close_ms % DAY_MS == 0:
        days = [start.date().isoformat(), pd.Timestamp(close_ms - DAY_MS, unit="ms").date().isoformat()]
        return days[0] if days[0] == days[1] else " to ".join(days)
    return " to ".join(_minute(stamp) for stamp in (start, end))


def days_label(start: Any, end: Any) -> str:
    """Return the whole UTC days of the half-open range ``[start, end)`` (a day's or a week's bounds).

    Examples
    --------
    >>> days_label("2026-01-05", "2026-01-12")
    '2026-01-05 to 2026-01-11'
    """
    return period_label(start, _utc(end) - pd.Timedelta(days=1), DAY_MS)


def report_period(kind: str, home: Path, subject: str, period: str, parameters: Mapping[str, Any]) -> str:
    """Return the period the index shows for a report of `kind`, by `period_label`'s convention.

    `subject` is the session, journal, model or sweep the report is of, `period` what the report
    calls its period (a day, an ISO week, ``session``, ...) and `parameters` the notebook's. A
    report whose bars cannot be read (a journal emptied since) keeps `period` as it is.
    """
    from labkit.errors import ConfigError

    try:
        found = _bars_of(kind, Path(home), subject, period, parameters)
    except (ConfigError, OSError, ValueError, KeyError, TypeError):
        return period
    return period if found is None else found


def _bars_of(kind: str, home: Path, subject: str, period: str, parameters: Mapping[str, Any]) -> str | None:
    from labkit.analysis.periods import day_bounds, week_bounds

    if kind == "daily":
        return days_label(*day_bounds(period))
    if kind == "weekly":
        return f"{period}: {days_label(*week_bounds(period))}"  # the ISO week users name, and its days
    if kind == "session":
        from labkit.session.paths import session_paths

        return _journal_span(session_paths(home, subject).decisions)
    if kind == "backtest":
        journal = Path(str(parameters["journal"]))
        return _journal_span(journal if journal.is_absolute() else home / journal)
    if kind == "train":
        from labkit._io import read_json
        from labkit.models.artifacts import models_dir

        meta = read_json(models_dir(home) / subject / "model.json")
        if meta is None:
            return None
        window = meta["window"]  # its until is the last bar's open
        return period_label(window["since"], window["until"], str(meta["timeframe"]))
    if kind == "sweep":
        return _sweep_span(home, subject)
    return None


def _journal_span(path: Path) -> str | None:
    from labkit.engine.journal import read_journal

    frame = read_journal(path, columns=["ts", "timeframe"])
    if frame.empty:
        return None
    return period_label(frame["ts"].iloc[0], frame["ts"].iloc[-1], str(frame["timeframe"].iloc[-1]))


def _sweep_span(home: Path, name: str) -> str | None:
    # A sweep's runs may differ in window and timeframe: from the earliest first bar to the latest
    # last. Runs that failed have no bars; results without first_ts/last_ts end a bar before --until.
    from labkit.reports.sweeps import load_sweep

    runs = load_sweep(home, name).results
    if runs.empty:
        return None
    steps = runs["timeframe"].map(lambda tf: pd.Timedelta(milliseconds=timeframe_ms(str(tf))))
    if {"first_ts", "last_ts"} <= set(runs.columns):
        ran = runs["first_ts"].notna() & runs["last_ts"].notna()
        runs, steps = runs[ran], steps[ran]
        firsts, lasts = runs["first_ts"].map(_utc), runs["last_ts"].map(_utc)
    else:
        firsts, lasts = runs["since"].map(_utc), runs["until"].map(_utc) - steps
    if runs.empty:
        return None
    latest = lasts.idxmax()
    return period_label(firsts.min(), lasts[latest], int(steps[latest] / pd.Timedelta(milliseconds=1)))


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value) if not isinstance(value, int) else pd.Timestamp(value, unit="ms")
    if stamp is pd.NaT:
        raise ValueError(f"{value!r} is not a time")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _minute(stamp: pd.Timestamp) -> str:
    return stamp.strftime("%Y-%m-%d %H:%M:%S" if stamp.second else "%Y-%m-%d %H:%M")
