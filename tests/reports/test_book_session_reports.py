"""A session over a universe judged and reported: the weekly verdict, the day's health and the session
page read a book per time, on the book's equity, and every symbol's trades."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labkit.analysis.trips import round_trips
from labkit.config.loading import load_config
from labkit.config.schema import ReadinessConfig
from labkit.engine.journal import read_journal
from labkit.readiness.daily import daily_health
from labkit.readiness.verdicts import judge_week
from labkit.readiness.weekly import weekly_readiness
from labkit.reports.render import render_report
from labkit.session.paths import session_paths
from tests.reports.test_book_report import BOOK_HEADINGS, _in_process
from tests.stubs import forward_session

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
TF = 300_000
CAPITAL = 10_000.0
DAY = "2026-01-05"
WEEK = "2026-W02"


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    # A day of a 3-symbol book decided as each 5-minute bar closed: forward evidence.
    home = tmp_path_factory.mktemp("book")
    settings = {"session.symbols": ",".join(SYMBOLS), "session.timeframe": "5m"}
    forward_session(home, "b", DAY, "2026-01-06", **settings)
    return home, read_journal(session_paths(home, "b").decisions)


def _book_equity(journal: pd.DataFrame) -> pd.Series:
    # The book's equity at each time: the last line of the time, written once every symbol was marked.
    return journal.groupby("ts", sort=True)["equity"].last().astype(float)


def _drawdown(equity: pd.Series) -> float:
    peak = np.maximum.accumulate(np.concatenate([[CAPITAL], equity.to_numpy()]))[1:]
    return float(np.max(1.0 - equity.to_numpy() / peak))


def _trips(journal: pd.DataFrame) -> pd.DataFrame:
    # Every symbol's round trips, paired within the symbol's own lines.
    return pd.concat([round_trips(journal[journal["symbol"] == s].reset_index(drop=True)) for s in SYMBOLS])


def test_weekly_verdict_of_a_forward_book_counts_times_and_judges_the_book_s_equity(book) -> None:
    # Arrange
    home, journal = book
    # Act
    verdict = judge_week(home, "b", WEEK)
    # Assert
    assert len(journal) == 3 * 288  # a line per (time, symbol)
    assert verdict.decisions == 288 and verdict.replays == 0 and not verdict.refusals
    assert [(d["day"], d["decisions"], d["coverage"]) for d in verdict.per_day[:1]] == [(DAY, 288, 1.0)]
    drawdown = verdict.gate("drawdown").figures["max_drawdown"]
    assert drawdown == pytest.approx(_drawdown(_book_equity(journal)), rel=1e-12) and drawdown > 0
    trips = _trips(journal)
    assert verdict.trades == len(trips) > 0
    cost = verdict.gate("cost_efficiency").figures
    assert cost["gross_pnl"] == pytest.approx(float(trips["gross_pnl"].sum()))
    assert verdict.gate("deflated_sharpe").figures["returns"] == 288  # a return per time, not per line
    assert verdict.evidence["returns"] == 288


def test_weekly_verdict_of_a_book_counts_a_no_bar_line_as_decided_and_a_partial_or_late_time_as_not(
    book,
) -> None:
    # Arrange: SOL had no bar at 01:00 (held, not blocked), the run was cut off after BTC's line at
    # 02:00, and ETH's line at 03:00 was decided an hour late.
    _, journal = book
    at = {t: pd.Timestamp(f"{DAY} {t}", tz="UTC") for t in ("01:00", "02:00", "03:00")}
    edited = journal.copy()
    no_bar = (edited["ts"] == at["01:00"]) & (edited["symbol"] == "SOL/USDT")
    edited.loc[no_bar, ["stage", "reason", "proposed"]] = ["data", "no_bar", "HOLD"]
    late = (edited["ts"] == at["03:00"]) & (edited["symbol"] == "ETH/USDT")
    edited.loc[late, "decided_at"] = edited.loc[late, "decided_at"] + pd.Timedelta(hours=1)
    edited = edited[~((edited["ts"] == at["02:00"]) & (edited["symbol"] != "BTC/USDT"))]
    # Act
    verdict = weekly_readiness(edited.reset_index(drop=True), WEEK, ReadinessConfig(), TF, CAPITAL)
    # Assert
    assert verdict.decisions == 288 - 2 and verdict.replays == 1
    health = verdict.gate("gate_health").figures
    assert health["top_reason"] != "data/no_bar" and health["data_errors"] == 0


def test_daily_health_of_a_book_counts_times_and_every_symbol_s_actions_and_trades(book) -> None:
    # Arrange
    _, journal = book
    equity = _book_equity(journal)
    trips = _trips(journal)
    # Act
    health = daily_health(journal, DAY, TF, CAPITAL)
    # Assert
    assert (health["decisions"], health["expected"], health["coverage"]) == (288, 288, 1.0)
    assert health["replays"] == 0 and health["heartbeat_gaps"] == 0
    assert health["actions"]["BUY"] == int((journal["action"] == "BUY").sum()) > 0
    assert health["trades_closed"] == len(trips)
    assert health["realized_pnl"] == pytest.approx(float(trips["net_pnl"].sum()))
    assert health["pnl"] == pytest.approx(float(equity.iloc[-1]) - CAPITAL)
    assert health["max_drawdown"] == pytest.approx(_drawdown(equity), rel=1e-12)


def test_daily_health_of_a_book_does_not_count_a_no_bar_line_as_a_block(book) -> None:
    # Arrange
    _, journal = book
    edited = journal.copy()
    quiet = edited["ts"] < pd.Timestamp(f"{DAY} 06:00", tz="UTC")
    edited.loc[quiet & (edited["symbol"] == "SOL/USDT"), ["stage", "reason"]] = ["data", "no_bar"]
    before = daily_health(journal, DAY, TF, CAPITAL)
    # Act
    health = daily_health(edited, DAY, TF, CAPITAL)
    # Assert
    sol_blocked = int((journal["stage"][quiet & (journal["symbol"] == "SOL/USDT")] != "passed").sum())
    assert health["blocked"] == before["blocked"] - sol_blocked
    assert all(r["reason"] != "no_bar" for r in health["top_reasons"]) and health["decisions"] == 288


def test_session_page_of_a_book_shows_the_book_s_equity_and_its_book_sections(book, monkeypatch) -> None:
    # Arrange
    home, _ = book
    _in_process(monkeypatch)
    # Act
    result = render_report("session", "b", home, load_config(None, {}, environ={}))
    # Assert
    page = result.html.read_text(encoding="utf-8")
    for heading in BOOK_HEADINGS:
        assert heading in page
    assert "a book of 3: BTC/USDT, ETH/USDT, SOL/USDT" in page
    assert "This session is one book over 3 symbols" in page
    assert "576 bars x 3 symbols" not in page and "288 bars x 3 symbols" in page
    assert all(f"Actions on {s}" in page for s in SYMBOLS)
    assert "Traceback" not in page
