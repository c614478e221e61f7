"""Issue 18: the gate ledger holds one would-have position at a time, sized and priced as the session.

An audit found every refused BUY traded all in, those refused while a position was already held
included (4,925 would-have trades, 52M notional on a 10k account), and costs read from the journal's
fills, so a session with no fill priced them at zero.
"""

from __future__ import annotations

import pandas as pd
import pytest

from labkit.config.loading import load_config
from labkit.data.files import read_bar_file
from labkit.engine.journal import JournalWriter, read_journal
from labkit.readiness.counterfactual import ledger, ledger_summary, would_have_trades
from labkit.reports.sessions import load_session
from labkit.research.backtest import run_backtest
from tests import stubs

FEE, SLIPPAGE = 0.001, 0.0005
TURNOVER = ("turnover", "max_daily_trades")
BUDGET = ("risk_budget", "risk_budget_exhausted")


def _journal(
    rows: list[tuple[str, str, tuple[str, str] | None, float]], cash: float = 1000.0
) -> pd.DataFrame:
    # rows: (proposed, action, block or None, position held at the decision); price 100 throughout
    traces = [
        {"stage": b[0], "reason": b[1]} if b else {"stage": "passed", "reason": None} for _, _, b, _ in rows
    ]
    return pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-05", periods=len(rows), freq="min", tz="UTC"),
            "proposed": [r[0] for r in rows],
            "action": [r[1] for r in rows],
            "gate_trace": traces,
            "price": [100.0] * len(rows),
            "position": [r[3] for r in rows],
            "cash": [cash if r[3] == 0 else 0.0 for r in rows],
            "equity": [cash] * len(rows),
            "fill": [None] * len(rows),
        }
    )


def test_ledger_when_entries_are_refused_inside_a_position_opens_one_would_have_trade_at_a_time():
    # Arrange: a refusal from flat opens a would-have position; the refusals inside it, and those
    # while the session itself holds a position, open nothing
    journal = _journal(
        [
            ("BUY", "HOLD", TURNOVER, 0.0),  # opens the would-have position
            ("BUY", "HOLD", TURNOVER, 0.0),  # inside it
            ("BUY", "HOLD", BUDGET, 0.0),  # inside it
            ("SELL", "HOLD", None, 0.0),  # its exit signal: out at the next open
            ("BUY", "BUY", None, 0.0),  # the session enters
            ("BUY", "HOLD", BUDGET, 10.0),  # while the session holds a position
            ("BUY", "HOLD", BUDGET, 10.0),
            ("SELL", "SELL", None, 10.0),
            ("HOLD", "HOLD", None, 0.0),
            ("BUY", "HOLD", TURNOVER, 0.0),  # flat again: a second would-have position, never closed
            ("HOLD", "HOLD", None, 0.0),
        ]
    )
    # Act
    trades = would_have_trades(journal, fee=FEE, slippage=SLIPPAGE)
    table = ledger(journal, fee=FEE, slippage=SLIPPAGE).set_index(["stage", "reason"])
    summary = ledger_summary(table.reset_index())
    # Assert
    assert list(trades["proposed_ts"]) == [journal["ts"][0], journal["ts"][9]]
    assert list(trades["open"]) == [False, True]
    assert table.loc[TURNOVER, ["blocks", "trades", "in_would_have", "while_holding"]].tolist() == [
        3,
        2,
        1,
        0,
    ]
    assert table.loc[BUDGET, ["blocks", "trades", "in_would_have", "while_holding"]].tolist() == [3, 0, 1, 2]
    assert (summary["blocks"], summary["trades"], summary["in_would_have"], summary["while_holding"]) == (
        6,
        2,
        2,
        2,
    )


def test_ledger_when_sized_all_in_with_position_frac_spends_that_share_of_the_cash():
    journal = _journal(
        [("BUY", "HOLD", TURNOVER, 0.0), ("SELL", "HOLD", None, 0.0), ("HOLD", "HOLD", None, 0.0)]
    )
    bars = stubs.bars(closes=[100.0, 100.0, 110.0], opens=[100.0, 100.0, 110.0])
    bars.index = journal["ts"]
    # Act
    trades = would_have_trades(journal, bars, fee=FEE, slippage=0.0, risk={"position_frac": 0.5})
    # Assert: half the cash, fee included, went in; the trade's PnL is on that half
    trade = trades.iloc[0]
    assert trade["notional"] == pytest.approx(500.0, rel=1e-12)
    assert trade["units"] == pytest.approx(500.0 / (100.0 * (1 + FEE)), rel=1e-12)
    assert trade["net_pnl"] == pytest.approx(trade["units"] * 110.0 * (1 - FEE) - 500.0, rel=1e-12)


def test_ledger_when_the_session_has_no_fills_prices_at_the_configured_fee_and_slippage(tmp_path):
    # Arrange: the risk budget refuses every entry, so the journal holds no fill at all
    stubs.replayed_session(
        tmp_path,
        "starved",
        "2026-01-05",
        "2026-01-05T06:00",
        **{"broker.fee": FEE, "broker.slippage": SLIPPAGE, "gates.risk_budget.min_notional": 1e12},
    )
    view = load_session(tmp_path, "starved")
    assert not view.journal["fill"].map(lambda f: isinstance(f, dict)).any()
    # Act
    trades = view.would_have_trades()
    # Assert: each would-have trade paid the configured fee both ways and the slippage against it
    closed = trades[~trades["open"].astype(bool)]
    assert len(closed) >= 2
    assert trades.attrs["fee"] == FEE and trades.attrs["slippage"] == SLIPPAGE
    bars = view.bars()
    for _, trade in closed.iterrows():
        entry_open = float(bars.loc[trade["entry_ts"], "open"])
        exit_open = float(bars.loc[trade["exit_ts"], "open"])
        expected = exit_open * (1 - SLIPPAGE) * (1 - FEE) / (entry_open * (1 + SLIPPAGE) * (1 + FEE)) - 1
        assert trade["net_return"] == pytest.approx(expected, rel=1e-9)


def test_ledger_when_risk_sized_buys_the_units_the_session_would_have_bought(tmp_path):
    # The definition by its meaning: with max_daily=1 the turnover gate refuses every entry after
    # the day's first; without the gate those entries are taken. A risk-sized entry from flat is a
    # share of equity (risk, exposure and cash caps all scale with it), so each would-have position
    # holds the units the gateless run bought, scaled by the two runs' equities at the proposal.
    bars = read_bar_file(stubs.FIXTURE_CSV)
    risk = {"risk.sizing": "risk", "risk.stop_atr": 2.0, "risk.risk_per_trade": 0.002}
    settings = {"broker.fee": FEE, "broker.slippage": SLIPPAGE, **risk}
    gated_path, free_path = tmp_path / "gated.jsonl", tmp_path / "free.jsonl"
    for path, extra in (
        (gated_path, {"gates.turnover.max_daily": 1}),
        (free_path, {"gates.enabled": ["data"]}),
    ):
        journal = JournalWriter(path)
        run_backtest(load_config(None, {**settings, **extra}, environ={}), bars, journal)
        journal.close()
    gated, free = read_journal(gated_path), read_journal(free_path).set_index("ts")
    config = load_config(None, settings, environ={})
    # Act
    would = would_have_trades(gated, bars, fee=FEE, slippage=SLIPPAGE, risk=config.risk.model_dump())
    # Assert
    assert len(would) >= 3 and would.attrs["sizing"].startswith("by risk")
    for _, trade in would.iterrows():
        bought = free.loc[trade["entry_ts"], "fill"]
        proposed = trade["proposed_ts"]
        scale = gated.set_index("ts").loc[proposed, "equity"] / free.loc[proposed, "equity"]
        assert trade["units"] == pytest.approx(bought["units"] * scale, rel=1e-9)


def test_backtest_ledger_when_the_run_recorded_its_fee_prices_at_it_not_at_its_fills(tmp_path):
    # Arrange: a backtest at a fee of 0.2% whose journal keeps its summary beside it
    from labkit.cli import main
    from labkit.reports.backtests import load_backtest

    journal = tmp_path / "bt.jsonl"
    window = ["--since", "2026-01-05", "--until", "2026-01-06", "--fee", "0.002", "--slippage", "0.0007"]
    assert main(["--home", str(tmp_path), "backtest", *window, "--journal", str(journal)]) == 0
    view = load_backtest(journal, tmp_path)
    # Act
    table = view.ledger({"risk": {"sizing": "all_in", "position_frac": 0.5}})
    # Assert
    assert (table.attrs["fee"], table.attrs["slippage"]) == (0.002, 0.0007)
    assert "recorded beside its journal" in table.attrs["basis"]
    assert table.attrs["sizing"].startswith("all in: 100%")  # the run's own sizing, not the home's 50%


# -- exits enforced on their entry's own bar (a line's `exit_fill`) ----------------------------------


def _fill(side: str, price: float, fee_rate: float, reason: str) -> dict:
    # One unit filled at `price` without slippage, paying `fee_rate` of its notional.
    return {
        "side": side,
        "units": 1.0,
        "price": price,
        "fee": price * fee_rate,
        "slippage_cost": 0.0,
        "reason": reason,
    }


def test_exit_ledger_when_stops_fill_on_their_entry_bars_reads_their_fee_from_both_fills():
    # Arrange: a round trip at a fee of 0.1%, then (the fee raised to 0.2% at a restart) two entries
    # stopped on their own bars: six fills, four of them at 0.2%, two of those in `exit_fill`
    stopped = {"fill": _fill("BUY", 100.0, 0.002, "signal"), "exit": _fill("SELL", 98.0, 0.002, "stop_loss")}
    lines = [
        ("HOLD", _fill("BUY", 100.0, 0.001, "signal"), None),
        ("SELL", None, None),
        ("HOLD", _fill("SELL", 100.0, 0.001, "signal"), None),
        ("HOLD", stopped["fill"], stopped["exit"]),
        ("HOLD", stopped["fill"], stopped["exit"]),
        ("SELL", None, None),  # the signal both stops are set against: out at 100, the next price known
        ("HOLD", None, None),
    ]
    journal = pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-05", periods=len(lines), freq="min", tz="UTC"),
            "proposed": [p for p, _, _ in lines],
            "price": [100.0] * len(lines),
            "fill": [f for _, f, _ in lines],
            "exit_fill": [e for _, _, e in lines],
        }
    )
    from labkit.readiness.counterfactual import exit_ledger

    # Act: no fee given, so the median rate the fills paid
    table = exit_ledger(journal)
    # Assert: each stop sold at 98 less its fee, against holding to 100 less the fee of 0.2%
    (row,) = table.to_dict("records")
    assert (row["exit"], row["exits"], row["open"]) == ("stop_loss", 2, 0)
    assert row["effect"] == pytest.approx(2 * ((98.0 - 98.0 * 0.002) - 100.0 * (1 - 0.002)), rel=1e-12)


def test_exit_ledger_when_a_stop_fills_on_its_entry_bar_scores_it_as_on_any_other_bar(tmp_path):
    # Arrange: a backtest whose entry gaps through its stop on its own bar, then a SELL signal
    import numpy as np

    from labkit.data.bars import make_bars
    from labkit.readiness.counterfactual import exit_ledger

    rows = [(100.0, 101.0, 99.0, 100.0)] * 4 + [(100.0, 100.5, 90.0, 91.0)] + [(91.0, 92.0, 90.0, 91.0)] * 3
    o, h, low, c = (np.array(col, dtype="float64") for col in zip(*rows, strict=True))
    times = stubs.T0 + stubs.MINUTE * np.arange(len(rows), dtype="int64")
    bars = make_bars(times, {"open": o, "high": h, "low": low, "close": c, "volume": np.ones(len(rows))})
    path = tmp_path / "bt.jsonl"
    writer = JournalWriter(path)
    settings = {
        "broker.fee": FEE,
        "broker.slippage": SLIPPAGE,
        "gates.enabled": ["data"],
        "risk.atr_window": 2,
        "risk.stop_atr": 1.0,
    }
    strategy = _scripted({3: 1, 6: -1})
    run_backtest(load_config(None, settings, environ={}), bars, writer, strategy=strategy, trial=False)
    writer.close()
    journal = read_journal(path)
    stop = journal["exit_fill"].iloc[4]
    assert stop["reason"] == "stop_loss" and journal["fill"].iloc[4]["side"] == "BUY"
    # Act
    table = exit_ledger(journal, bars, fee=FEE, slippage=SLIPPAGE)
    # Assert: the stop's proceeds against the units held to the open after the SELL (bar 7's)
    held = stop["units"] * bars["open"].iloc[7] * (1 - SLIPPAGE) * (1 - FEE)
    (row,) = table.to_dict("records")
    assert (row["exit"], row["exits"]) == ("stop_loss", 1)
    assert row["effect"] == pytest.approx(stop["units"] * stop["price"] - stop["fee"] - held, rel=1e-12)


def _scripted(sides: dict[int, int]):
    # A strategy proposing the side given for each bar number (1 BUY, -1 SELL), HOLD otherwise.
    import numpy as np

    from labkit.data.bars import ts_ms
    from labkit.strategies.base import Signals, Strategy

    class Scripted(Strategy):
        name = "scripted"

        def __init__(self) -> None:
            super().__init__()
            self.model_id, self.warmup = "scripted", 1
            self.at = {stubs.T0 + bar * stubs.MINUTE: side for bar, side in sides.items()}

        def propose(self, bars):
            side = np.array([self.at.get(t, 0) for t in ts_ms(bars).tolist()], dtype="int8")
            return Signals(side, np.where(side != 0, 1.0, np.nan), np.full(len(side), np.nan))

    return Scripted()


# -- a backtest's own sizing, recorded beside its journal -------------------------------------------

RISK_SIZED = {"risk.sizing": "risk", "risk.stop_atr": 2.0, "risk.risk_per_trade": 0.002}


def _fixture_backtest(tmp_path, **settings) -> tuple:
    # A backtest of the fixture's bars whose turnover gate refuses every entry after the day's first.
    from labkit.reports.backtests import load_backtest

    bars = read_bar_file(stubs.FIXTURE_CSV)
    base = {"broker.fee": FEE, "broker.slippage": SLIPPAGE, "gates.turnover.max_daily": 1}
    config = load_config(None, {**base, **settings}, environ={})
    path = tmp_path / "bt.jsonl"
    writer = JournalWriter(path)
    run_backtest(config, bars, writer, trial=False)
    writer.close()
    return path, config, load_backtest(path, tmp_path)


def test_backtest_ledger_when_the_run_recorded_its_risk_sizes_by_it_not_by_the_home(tmp_path):
    # Arrange: a risk-sized backtest, its report read in a home that sizes all in with half the cash
    from labkit.research.backtest import read_summary

    path, config, view = _fixture_backtest(tmp_path, **RISK_SIZED)
    home = {"risk": {"sizing": "all_in", "position_frac": 0.5}}
    # Act
    recorded = read_summary(path)
    table = view.ledger(home)
    would = would_have_trades(view.journal, fee=FEE, slippage=SLIPPAGE, risk=config.risk.model_dump())
    # Assert: the summary keeps the run's risk section; the ledger sizes as the run did, and says so
    assert recorded["risk"] == config.risk.model_dump(mode="json") and recorded["confidence_floor"] is None
    assert table.attrs["sizing"].startswith("by risk")
    assert "the run's risk config, recorded beside its journal" in table.attrs["sizing"]
    assert ledger_summary(table)["trades"] == len(would) >= 1
    assert ledger_summary(table)["net_pnl"] == pytest.approx(float(would["net_pnl"].sum()), rel=1e-12)


def test_backtest_ledger_when_no_risk_was_recorded_sizes_by_the_home_and_says_so(tmp_path):
    # Arrange: the same run, its summary as backtests kept it before they recorded their risk
    import json

    from labkit.reports.backtests import load_backtest
    from labkit.research.backtest import summary_path

    path, _, _ = _fixture_backtest(tmp_path, **RISK_SIZED)
    summary = json.loads(summary_path(path).read_text())
    del summary["risk"], summary["confidence_floor"]
    summary_path(path).write_text(json.dumps(summary))
    view = load_backtest(path, tmp_path)
    # Act
    table = view.ledger({"risk": {"sizing": "all_in", "position_frac": 0.5}})
    # Assert
    assert table.attrs["sizing"].startswith("all in: 50%")
    assert "the home's risk config (none was recorded beside this journal)" in table.attrs["sizing"]
    assert "recorded beside its journal" in table.attrs["basis"]  # the fee and slippage still are
