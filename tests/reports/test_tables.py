"""Report tables (journals, sessions, weekly, tables): every row is one trade, every figure in its unit."""

from __future__ import annotations

import pandas as pd
import pytest

from labkit.analysis.trips import round_trips
from labkit.engine.journal import read_journal
from labkit.reports.journals import monthly_returns, trade_list
from labkit.reports.sessions import quote_currency
from tests import stubs


def test_trade_list_when_rendered_keeps_each_trade_on_its_own_row(tmp_path):
    # Arrange: a real session's journal
    stubs.replayed_session(tmp_path, "t", "2026-01-05", "2026-01-05T12:00", **{"broker.slippage": 0.0005})
    journal = read_journal(tmp_path / "data/sessions/t/decisions.jsonl")
    trips = round_trips(journal)
    # Act
    table = trade_list(journal, "USDT")
    # Assert: the n-th row is the n-th trade, in every column
    assert len(table) == len(trips) > 3 and table.notna().all().all()
    for n in (1, len(trips)):
        trip = trips.iloc[n - 1]
        row = table.loc[n]
        assert row["entry (UTC)"] == trip["entry_ts"].strftime("%Y-%m-%d %H:%M")
        assert row["net PnL"] == f"{trip['net_pnl']:,.2f} USDT"
        assert row["units"] == f"{trip['units']:.6g}"


def test_monthly_returns_when_months_span_a_year_boundary_compounds_each_year():
    journal = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2025-12-31", "2026-01-31", "2026-02-28"], utc=True),
            "equity": [110.0, 121.0, 108.9],
        }
    )
    table = monthly_returns(journal, 100.0)
    assert (
        table.loc[2025, "Dec"] == 10.0 and table.loc[2026, "Jan"] == 10.0 and table.loc[2026, "Feb"] == -10.0
    )
    assert table.loc[2026, "year"] == -1.0


def test_quote_currency_when_symbol_has_no_quote_says_usd():
    assert quote_currency({"session": {"symbol": "BTC/USDT"}}) == "USDT"
    assert quote_currency({"session": {"symbol": "SPY"}}) == "USD"


def _verdict(**figures):
    from labkit.readiness.weekly import GateResult, WeeklyReadiness

    gates = (
        GateResult("drawdown", False, {"max_drawdown": 0.136, "peak_equity": 10_000.0, "week_drawdown": 0.136},
                   {"max_drawdown": 0.1}, "too deep"),
        GateResult("cost_efficiency", False, {"cost_share": float("nan"), "costs": 558.25, "gross_pnl": -801.98,
                                              "costless": False}, {"max_cost_share": 0.5}, "no gross profit"),
    )
    per_day = ({"day": "2026-01-05", "decisions": 1440, "expected": 1440, "coverage": 1.0},
               {"day": "2026-01-10", "decisions": 0, "expected": 1440, "coverage": 0.0})
    return WeeklyReadiness("2026-W02", "a", "b", "x", "y", 1440, 2880, 3, ("m",), gates, per_day)


def test_gates_table_when_currency_given_puts_it_on_money_figures_only():
    # Arrange
    from labkit.reports.weekly import gates_table

    # Act
    table = gates_table(_verdict(), "USDT").set_index("gate")
    # Assert
    assert table.loc["drawdown", "figures"] == "max_drawdown=0.136, peak_equity=10,000.00 USDT, week_drawdown=0.136"
    assert table.loc["cost_efficiency", "figures"] == (
        "cost_share=n/a, costs=558.25 USDT, gross_pnl=-801.98 USDT, costless=False"
    )
    assert table.loc["drawdown", "thresholds"] == "max_drawdown=0.1"


def test_per_day_table_when_shown_names_utc_days_and_coverage_in_percent():
    from labkit.reports.weekly import per_day_table

    table = per_day_table(_verdict())
    assert table.index.name == "day (UTC)"
    assert table["coverage"].tolist() == ["100.0%", "0.0%"]


def test_report_header_when_parameters_hold_the_home_leaves_it_out(tmp_path):
    # Arrange
    from labkit.reports.sessions import load_session, report_header

    stubs.replayed_session(tmp_path, "h", "2026-01-05", "2026-01-05T01:00")
    view = load_session(tmp_path, "h")
    # Act
    table = report_header("session", {"home": str(tmp_path), "session": "h"}, view)
    # Assert
    text = " ".join(table["value"])
    assert str(tmp_path) not in text and "session='h'" in text
    assert table.loc["data range", "value"] == "2026-01-05 00:00 UTC to 2026-01-05 00:59 UTC (60 bars decided)"
    assert table.loc["generated at", "value"].endswith(" UTC")


def test_describe_code_version_when_dirty_or_clean_says_so():
    from labkit.reports.tables import describe_code_version

    assert describe_code_version("0.1.0+ge4fe642d7a09.dirty") == (
        "labkit 0.1.0, git commit e4fe642d7a09, dirty tree (uncommitted changes)"
    )
    assert describe_code_version("0.1.0+ge4fe642d7a09") == "labkit 0.1.0, git commit e4fe642d7a09, clean tree"


@pytest.mark.parametrize(
    "module",
    ["labkit.reports.tables", "labkit.reports.journals", "labkit.reports.backtests", "labkit.readiness.verdicts"],
)
def test_report_tables_when_doctested_examples_hold(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted >= 1 and result.failed == 0


def test_health_table_when_the_calendar_expected_no_bar_says_n_a_not_nan():
    # Issue 17: a closed day (no bar expected) has NaN coverage; the table showed "nan%".
    from labkit.reports.daily import health_table

    health = {
        "day": "2026-01-10", "decisions": 0, "expected": 0, "coverage": float("nan"), "missing_bars": 0,
        "heartbeat_gaps": 0, "max_gap_seconds": 0.0, "data_errors": 0, "data_error_share": float("nan"),
        "actions": {"BUY": 0, "SELL": 0}, "blocked": 0, "top_reasons": [], "trades_closed": 0, "pnl": None,
        "pnl_pct": None, "fees": 0.0, "slippage": -0.0, "max_drawdown": float("nan"),
    }  # fmt: skip
    table = health_table(health, "USD")["value"]
    assert table["decisions / bars expected"] == "0 / 0 (n/a)"
    assert table["data errors"] == "0 (n/a)"
    assert table["max drawdown (within the day)"] == "n/a"
    assert table["fees / slippage"] == "0.00 USD / 0.00 USD"
