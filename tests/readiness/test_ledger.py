"""The counterfactual gate ledger: what each gate's blocked entries would have done."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from labkit.analysis.trips import round_trips
from labkit.config.loading import load_config
from labkit.data.files import read_bar_file
from labkit.engine.journal import JournalWriter, read_journal
from labkit.readiness.counterfactual import ledger, ledger_summary, would_have_trades
from labkit.research.backtest import run_backtest
from tests import stubs


def _journal(proposed, prices, stages=None, equity=1000.0):
    n = len(proposed)
    stages = stages or [None] * n
    traces = [
        {"stage": s, "reason": r} if s else {"stage": "passed", "reason": None}
        for s, r in [(x if x else (None, None)) for x in stages]
    ]
    return pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-05", periods=n, freq="min", tz="UTC"),
            "proposed": proposed,
            "action": ["HOLD"] * n,
            "gate_trace": traces,
            "price": prices,
            "equity": [equity] * n,
            "fill": [None] * n,
        }
    )


def _bars(opens, closes):
    return stubs.bars(closes=closes, opens=opens)


def test_ledger_when_blocked_entry_would_have_won_counts_the_profit_forgone():
    # Arrange: a refused BUY at bar 0; the exit signal at bar 2; fills at the next opens
    journal = _journal(
        ["BUY", "HOLD", "SELL", "HOLD"],
        [100.0, 104.0, 106.0, 107.0],
        [("turnover", "max_daily_trades"), None, None, None],
    )
    bars = _bars(opens=[99.0, 100.0, 105.0, 110.0], closes=[100.0, 104.0, 106.0, 107.0])
    bars.index = journal["ts"]
    # Act
    trades = would_have_trades(journal, bars, fee=0.001, slippage=0.0005)
    table = ledger(journal, bars, fee=0.001, slippage=0.0005)
    # Assert: entry at bar 1's open, exit at bar 3's open, fee both ways, slippage against us
    cost = 100.0 * 1.0005 * 1.001
    proceeds = 110.0 * 0.9995 * 0.999
    expected = proceeds / cost - 1.0
    assert trades["net_return"].iloc[0] == pytest.approx(expected, rel=1e-12)
    row = table.iloc[0].to_dict()
    assert (row["stage"], row["reason"], row["blocks"], row["trades"], row["open"]) == (
        "turnover",
        "max_daily_trades",
        1,
        1,
        0,
    )
    assert row["forgone"] == pytest.approx(1000.0 * expected) and row["saved"] == 0.0
    assert row["hit_rate"] == 1.0 and row["verdict"] == "costs"


def test_ledger_when_no_exit_signal_follows_marks_the_trade_open_at_the_last_close():
    journal = _journal(
        ["BUY", "HOLD", "HOLD"], [100.0, 90.0, 80.0], [("guardrails", "loss_streak"), None, None]
    )
    trades = would_have_trades(journal, fee=0.001, slippage=0.0)
    # without bars, the entry fills at the close before it; the mark has no exit fee
    assert bool(trades["open"].iloc[0]) is True
    assert trades["net_return"].iloc[0] == pytest.approx(80.0 / (100.0 * 1.001) - 1.0)
    assert ledger(journal, fee=0.001, slippage=0.0).iloc[0]["verdict"] == "pays"


def test_ledger_when_blocked_on_the_last_bar_counts_the_block_but_no_trade():
    journal = _journal(["HOLD", "BUY"], [100.0, 101.0], [None, ("halt", "emergency_stop")])
    row = ledger(journal, fee=0.0, slippage=0.0).iloc[0]
    assert (row["blocks"], row["trades"], row["verdict"]) == (1, 0, "untested")
    assert math.isnan(row["hit_rate"])


def test_ledger_when_nothing_was_blocked_is_empty():
    journal = _journal(["BUY", "SELL"], [100.0, 101.0])
    costs = {"fee": 0.001, "slippage": 0.0}
    assert ledger(journal, **costs).empty and ledger_summary(ledger(journal, **costs))["blocks"] == 0
    assert ledger(journal.iloc[0:0], **costs).empty


def test_ledger_when_checked_against_the_trades_taken_without_the_gate_agrees(tmp_path):
    # The definition, tested by its meaning: with max_daily=1 the turnover gate refuses every entry
    # after the first of the day; with the gates off those very entries are taken. Each would-have
    # trade must be the trade the gateless run made from the same proposal.
    bars = read_bar_file(stubs.FIXTURE_CSV)
    costs = {"broker.fee": 0.001, "broker.slippage": 0.0005}
    gated_path = tmp_path / "gated.jsonl"
    journal = JournalWriter(gated_path)
    run_backtest(load_config(None, {**costs, "gates.turnover.max_daily": 1}, environ={}), bars, journal)
    journal.close()
    free_path = tmp_path / "free.jsonl"
    journal = JournalWriter(free_path)
    run_backtest(load_config(None, {**costs, "gates.enabled": ["data"]}, environ={}), bars, journal)
    journal.close()
    # Act
    would = would_have_trades(read_journal(gated_path), bars, fee=0.001, slippage=0.0005)
    taken = round_trips(read_journal(free_path)).set_index("entry_ts")
    # Assert
    closed = would[~would["open"].astype(bool)]
    assert len(closed) >= 3 and set(would["reason"]) == {"max_daily_trades"}
    for _, trade in closed.iterrows():
        assert trade["net_return"] == pytest.approx(taken.loc[trade["entry_ts"], "net_return"], rel=1e-9)
    assert would.attrs["fee"] == pytest.approx(0.001) and would.attrs["slippage"] == pytest.approx(0.0005)
