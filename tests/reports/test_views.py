"""Report tables: every row is one trade, every figure in its unit."""

from __future__ import annotations

import pandas as pd

from labkit.journal import read_journal
from labkit.readiness.trips import round_trips
from labkit.reports.views import monthly_returns, quote_currency, trade_list
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
