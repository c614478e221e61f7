"""Exits by reason and the sizing in the assumptions, as the reports show them."""

from __future__ import annotations

import pandas as pd
import pytest

from labkit.analysis.trips import exit_reasons, round_trips
from labkit.config.assembly import build_engine
from labkit.config.loading import load_config
from labkit.data.files import read_bar_file
from labkit.engine.journal import JournalWriter, read_journal
from labkit.reports import journals, sessions
from tests import stubs

EXITS_ON = {
    "broker.fee": 0.001,
    "risk.sizing": "risk",
    "risk.stop_atr": 1.5,
    "risk.take_profit_atr": 4.0,
    "risk.trailing_atr": 3.0,
    "strategies.sma_cross.fast": 5,
    "strategies.sma_cross.slow": 20,
}


@pytest.fixture(scope="module")
def journal(tmp_path_factory):
    path = tmp_path_factory.mktemp("exits") / "decisions.jsonl"
    writer = JournalWriter(path)
    build_engine(load_config(None, EXITS_ON, environ={}), "backtest", journal=writer).process(
        read_bar_file(stubs.FIXTURE_CSV)
    )
    writer.close()
    return read_journal(path)


def test_exit_reasons_when_exits_fire_name_each_closed_trade(journal):
    reasons = exit_reasons(journal)
    assert len(reasons) == len(round_trips(journal))
    assert {"signal", "take_profit"} <= set(reasons)


def test_exits_table_when_exits_fire_counts_returns_and_hit_rate_by_reason(journal):
    # Arrange
    trips = round_trips(journal).assign(exit=exit_reasons(journal))
    # Act
    table = journals.exits_table(journal)
    # Assert: take-profits all won, and the counts add up to the closed trades
    assert list(table.columns) == ["trades", "mean net return", "hit rate"]
    assert sum(int(n.replace(",", "")) for n in table["trades"]) == len(trips)
    assert table.loc["take_profit", "hit rate"] == "100.0%"
    signal = trips[trips["exit"] == "signal"]
    assert table.loc["signal", "mean net return"] == f"{signal['net_return'].mean():+.3%}"


def test_exits_table_when_no_trade_closed_is_empty():
    assert journals.exits_table(pd.DataFrame(columns=["ts", "fill", "fill_side"])).empty


def test_sizing_text_when_risk_names_the_formula_and_when_all_in_the_share():
    risk = {"sizing": "risk", "risk_per_trade": 0.01, "stop_atr": 2.0, "atr_window": 14, "max_exposure": 0.5}
    assert "1.00% of equity / (2 x ATR(14)), capped at 50% of equity" in sessions.sizing_text(risk)
    assert "probability" in sessions.sizing_text(risk, "model")
    assert "spends 100% of the cash" in sessions.sizing_text({})


def test_exits_text_when_none_set_says_signal_only_else_lists_them():
    assert sessions.exits_text({}).startswith("none")
    text = sessions.exits_text({"stop_atr": 2.0, "max_bars": 30})
    assert "stop-loss 2 ATR" in text and "time stop after 30 bars" in text and "taken as the stop" in text


def test_exit_ledger_when_exits_fire_sets_each_against_holding_to_the_next_signal(journal):
    # Arrange
    from labkit.readiness.counterfactual import exit_ledger

    enforced = [r for r in exit_reasons(journal) if r != "signal"]
    # Act
    table = exit_ledger(journal)
    # Assert
    assert dict(zip(table["exit"], table["exits"], strict=True)) == {
        r: enforced.count(r) for r in set(enforced)
    }
    for row in table.itertuples():
        assert row.effect == pytest.approx(row.saved - row.forgone)
        assert row.verdict == ("pays" if row.saved > row.forgone else "costs")
    shown = journals.exit_ledger_table(table, "USDT")
    assert shown.index.name == "exit" and shown["effect"].str.endswith(" USDT").all()


def test_exit_ledger_when_price_recovers_after_the_stop_says_it_costs():
    from labkit.readiness.counterfactual import exit_ledger

    j = pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-05", periods=4, freq="min", tz="UTC"),
            "proposed": ["HOLD", "HOLD", "SELL", "HOLD"],
            "price": [100.0, 99.0, 104.0, 104.0],
            "fill": [
                None,
                {
                    "side": "SELL",
                    "units": 2.0,
                    "price": 98.0,
                    "fee": 0.0,
                    "slippage_cost": 0.0,
                    "reason": "stop_loss",
                },
                None,
                None,
            ],
        }
    )
    table = exit_ledger(j, fee=0.0, slippage=0.0)
    assert table[["exit", "effect", "forgone", "verdict"]].to_dict("records") == [
        {"exit": "stop_loss", "effect": -12.0, "forgone": 12.0, "verdict": "costs"}
    ]
