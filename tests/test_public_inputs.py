"""Every function a notebook calls takes a path as str or Path and a time in any plain form.

A user writes ``"2026-01-05"`` or ``date(2026, 1, 5)`` and ``"runs/a.jsonl"`` wherever labkit asks
for an instant or a file; anything else is refused by the argument's name, never with a bare
TypeError from deep inside.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import labkit
from labkit import operations, readiness
from labkit.data import synthetic
from labkit.data.files import read_bar_file
from labkit.data.registry import open_source
from labkit.errors import ConfigError
from labkit.models.artifacts import load_model
from labkit.reports import backtests, research, sessions

DAY = "2026-01-05 00:00:00+00:00"
# Each form a user may write for 2026-01-05 and for the day after.
SINCE = {
    "str": ("2026-01-05", "2026-01-06"),
    "date": (date(2026, 1, 5), date(2026, 1, 6)),
    "datetime": (datetime(2026, 1, 5), datetime(2026, 1, 6)),
    "Timestamp": (pd.Timestamp("2026-01-05", tz="UTC"), pd.Timestamp("2026-01-06", tz="UTC")),
    "epoch_ms": (1_767_571_200_000, 1_767_657_600_000),
}
PATH_FORMS = {"str": str, "Path": Path}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)


# Functions of (home, since, until) returning one day of hourly bars.
BAR_LOADERS: dict[str, Callable[[Path, Any, Any], pd.DataFrame]] = {
    "labkit.load_bars": lambda home, s, u: labkit.load_bars(
        "synthetic", "BTC/USDT", "1h", s, u, home=str(home)
    ),
    "labkit.synthetic_bars": lambda home, s, u: labkit.synthetic_bars("BTC/USDT", "1h", s, u),
    "reports.research.load_bars": lambda home, s, u: research.load_bars(
        str(home), "synthetic", "BTC/USDT", "1h", s, u
    ),
    "data.synthetic.synthetic_bars": lambda home, s, u: synthetic.synthetic_bars("BTC/USDT", "1h", s, u),
    "source.bars": lambda home, s, u: open_source("synthetic", str(home)).bars("BTC/USDT", "1h", s, u),
}


@pytest.mark.parametrize("form", SINCE)
@pytest.mark.parametrize("loader", BAR_LOADERS)
def test_bar_loader_when_given_any_time_form_returns_that_utc_day(loader, form, tmp_path):
    # Arrange
    since, until = SINCE[form]
    # Act
    bars = BAR_LOADERS[loader](tmp_path, since, until)
    # Assert
    assert len(bars) == 24 and str(bars.index[0]) == DAY


@pytest.mark.parametrize("loader", BAR_LOADERS)
def test_bar_loader_when_since_is_not_a_time_names_the_argument(loader, tmp_path):
    # Act / Assert
    with pytest.raises(ConfigError, match=r"^since(_ms)?: .*not a time"):
        BAR_LOADERS[loader](tmp_path, object(), "2026-01-06")


@pytest.mark.parametrize("loader", BAR_LOADERS)
def test_bar_loader_when_until_is_words_names_the_argument(loader, tmp_path):
    # Act / Assert
    with pytest.raises(ConfigError, match=r"^until(_ms)?: 'next week'"):
        BAR_LOADERS[loader](tmp_path, "2026-01-05", "next week")


@pytest.mark.parametrize("form", ["str", "date", "datetime", "Timestamp"])
def test_day_bounds_when_given_any_day_form_returns_that_utc_day(form):
    # Act
    start, end = readiness.day_bounds(SINCE[form][0])
    # Assert
    assert (str(start), str(end)) == (DAY, "2026-01-06 00:00:00+00:00")


@pytest.mark.parametrize("form", ["date", "datetime", "Timestamp"])
def test_week_bounds_when_given_a_day_returns_its_iso_week(form):
    # Act / Assert: 2026-01-05 is the Monday of 2026-W02
    assert readiness.week_bounds(SINCE[form][0]) == readiness.week_bounds("2026-W02")


@pytest.mark.parametrize(("call", "field"), [(readiness.day_bounds, "date"), (readiness.week_bounds, "week")])
def test_period_bounds_when_given_a_number_names_the_argument(call, field):
    # Act / Assert
    with pytest.raises(ConfigError, match=f"^{field}: 5 is not"):
        call(5)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    # A small real run's journal, written through the API with a str path.
    bars = labkit.synthetic_bars("BTC/USDT", "1h", "2026-01-05", "2026-01-07")
    path = tmp_path / "runs" / "sma.jsonl"
    labkit.backtest(bars, "sma_cross", journal=str(path), home=str(tmp_path), fast=3, slow=8)
    return path


@pytest.mark.parametrize("form", PATH_FORMS)
def test_journal_readers_when_given_a_path_form_read_the_run(form, journal, tmp_path):
    # Arrange
    as_form = PATH_FORMS[form]
    # Act
    frame = labkit.read_journal(as_form(journal))
    view = backtests.load_backtest(as_form(journal), as_form(tmp_path))
    # Assert
    assert len(frame) == 48 and len(view.journal) == 48


# Functions of a home that succeed, or say what the home lacks, for an empty home given as `form`.
HOME_CALLS: dict[str, Callable[[Any], object]] = {
    "labkit.load_config": lambda home: labkit.load_config(home).session.symbol,
    "reports.research.market_config": lambda home: (
        research.market_config(home, "synthetic", "ETH/USDT", "1h").session.symbol
    ),
    "readiness.latest_verdict": lambda home: readiness.latest_verdict(home, "demo"),
    "data.registry.open_source": lambda home: open_source("csv:bars.csv", home).bars("X", "1h", 0, 10**13),
}
# The same, for functions that need something an empty home lacks: they must get as far as saying so.
HOME_LOOKUPS: dict[str, tuple[Callable[[Any], object], str]] = {
    "labkit.session_status": (lambda home: labkit.session_status(home, "demo"), "no session 'demo'"),
    "reports.sessions.load_session": (lambda home: sessions.load_session(home, "demo"), "no session 'demo'"),
    "operations.status": (lambda home: operations.status("demo", home), "no session 'demo'"),
    "operations.latest_decisions": (
        lambda home: operations.latest_decisions("demo", home),
        "no session 'demo'",
    ),
    "reports.research.load_model_record": (
        lambda home: research.load_model_record(home, "latest"),
        "no model",
    ),
    "models.load_model": (lambda home: load_model(home, "latest"), "no model"),
    "reports.backtests.load_backtest": (
        lambda home: backtests.load_backtest("none.jsonl", home),
        "does not exist",
    ),
}


@pytest.fixture
def bar_file(tmp_path: Path) -> None:
    bars = labkit.synthetic_bars("BTC/USDT", "1h", "2026-01-05", "2026-01-06")
    bars.rename_axis("ts").reset_index().to_csv(tmp_path / "bars.csv", index=False)


@pytest.mark.parametrize("form", PATH_FORMS)
@pytest.mark.parametrize("call", HOME_CALLS)
def test_home_function_when_given_a_path_form_reads_that_home(call, form, tmp_path, bar_file, monkeypatch):
    # Arrange: the usual home elsewhere, so only the argument can lead to tmp_path's files
    (tmp_path / "labkit.yaml").write_text("session:\n  symbol: ETH/USDT\n")
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "elsewhere"))
    # Act
    answer = HOME_CALLS[call](PATH_FORMS[form](tmp_path))
    # Assert
    expected = None if call == "readiness.latest_verdict" else "ETH/USDT"
    if call == "data.registry.open_source":
        assert len(answer) == 24  # type: ignore[arg-type]
    else:
        assert answer == expected


@pytest.mark.parametrize("form", PATH_FORMS)
def test_read_bar_file_when_given_a_path_form_reads_the_file(form, tmp_path, bar_file):
    # Act
    bars = read_bar_file(PATH_FORMS[form](tmp_path / "bars.csv"))
    # Assert
    assert len(bars) == 24 and str(bars.index[0]) == DAY


@pytest.mark.parametrize("form", PATH_FORMS)
@pytest.mark.parametrize("call", HOME_LOOKUPS)
def test_home_lookup_when_given_a_path_form_looks_in_that_home(call, form, tmp_path):
    # Arrange
    function, lacking = HOME_LOOKUPS[call]
    # Act / Assert: it got past the argument to the home's (empty) contents
    with pytest.raises(ConfigError, match=lacking) as caught:
        function(PATH_FORMS[form](tmp_path))
    assert str(tmp_path) in str(caught.value) or "does not exist" in lacking


@pytest.mark.parametrize("call", [*HOME_CALLS, *HOME_LOOKUPS])
def test_home_function_when_home_is_a_number_names_the_argument(call):
    # Arrange
    function = HOME_CALLS.get(call) or HOME_LOOKUPS[call][0]
    # Act / Assert
    with pytest.raises(ConfigError, match=r"^home: 5 is not a path"):
        function(5)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: labkit.read_journal(5), "path"),
        (lambda: read_bar_file(5), "path"),
        (lambda: backtests.load_backtest(5), "journal"),
        (
            lambda: labkit.backtest(
                labkit.synthetic_bars("BTC/USDT", "1h", "2026-01-05", "2026-01-06"), journal=5
            ),
            "journal",
        ),
        (lambda: labkit.load_bars("synthetic", "BTC/USDT", "1h", "2026-01-05", "2026-01-06", home=5), "home"),
    ],
    ids=["read_journal", "read_bar_file", "load_backtest", "backtest", "load_bars"],
)
def test_file_argument_when_a_number_names_the_argument(call, field):
    # Act / Assert
    with pytest.raises(ConfigError, match=f"^{field}: 5 is not a path"):
        call()


@pytest.mark.parametrize("form", PATH_FORMS)
def test_session_functions_when_given_a_path_form_run_and_read_that_session(form, tmp_path, monkeypatch):
    # Arrange: an hour of paper trading, with the usual home elsewhere
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "elsewhere"))
    home = PATH_FORMS[form](tmp_path)
    overrides = {"session.name": "s", "session.pace": "fast", "session.since": "2026-01-05"}
    config = labkit.load_config(home, {**overrides, "session.until": "2026-01-05T01:00"}, environ={})
    # Act
    labkit.run_session(config, home, progress=False)
    # Assert: each reader finds the hour's 60 decisions under that home
    assert labkit.session_status(home, "s")["decisions"] == 60
    assert operations.status("s", home)["decisions"] == 60
    assert len(sessions.load_session(home, "s").journal) == 60
    assert len(operations.latest_decisions("s", home, n=3)) == 3
