"""Risk sizing and the exits the engine enforces: stop-loss, take-profit, trailing and time stops.

The independent reference is a plain-loop stop-loss backtest written here (backtesting.py is not a
dependency); docs/config.md says where its `sl=` rules differ from labkit's.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.config.assembly import build_engine
from labkit.config.loading import load_config
from labkit.data.bars import make_bars, ts_ms
from labkit.data.files import read_bar_file
from labkit.engine.core import Engine
from labkit.engine.exits import entry_units
from labkit.engine.journal import JournalWriter, iter_lines
from labkit.engine.portfolio import EXIT_REASONS, Portfolio
from labkit.engine.settings import BrokerConfig, EngineSettings, RiskConfig
from labkit.strategies.base import Signals, Strategy
from labkit.strategies.registry import make_strategy
from tests import stubs

FLAT = (100.0, 101.0, 99.0, 100.0)  # true range 2: with atr_window 2, ATR is 2 from bar 2 on


class _Scripted(Strategy):
    """Proposes the side given for each bar's open time (1 BUY, -1 SELL), HOLD otherwise."""

    name = "scripted"

    def __init__(self, sides: dict[int, int]) -> None:
        super().__init__()
        self.sides = sides
        self.model_id = "scripted"
        self.warmup = 1

    def propose(self, bars: pd.DataFrame) -> Signals:
        side = np.array([self.sides.get(t, 0) for t in ts_ms(bars).tolist()], dtype="int8")
        return Signals(side, np.where(side != 0, 1.0, np.nan), np.full(len(side), np.nan))


def _ohlc(rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    o, h, low, c = (np.array(col, dtype="float64") for col in zip(*rows, strict=True))
    times = stubs.T0 + stubs.MINUTE * np.arange(len(rows), dtype="int64")
    return make_bars(times, {"open": o, "high": h, "low": low, "close": c, "volume": np.full(len(rows), 1.0)})


def _config(**overrides):
    base = {"broker.fee": 0.0, "broker.slippage": 0.0, "gates.enabled": ["data"], "risk.atr_window": 2}
    base.update(overrides)
    return load_config(None, base, environ={})


def _run(bars: pd.DataFrame, buy_at: int, sell_at: int | None = None, **overrides) -> Engine:
    sides = {stubs.T0 + buy_at * stubs.MINUTE: 1}
    if sell_at is not None:
        sides[stubs.T0 + sell_at * stubs.MINUTE] = -1
    engine = build_engine(_config(**overrides), "backtest", strategy=_Scripted(sides))
    engine.process(bars)
    return engine


def _fills(tmp_path: Path, bars: pd.DataFrame, buy_at: int, **overrides) -> list[tuple[int, dict]]:
    path = tmp_path / "decisions.jsonl"
    journal = JournalWriter(path)
    sides = {stubs.T0 + buy_at * stubs.MINUTE: 1}
    engine = build_engine(_config(**overrides), "backtest", strategy=_Scripted(sides), journal=journal)
    engine.process(bars)
    journal.close()
    return [(line["seq"], line["fill"]) for line in iter_lines(path) if line["fill"]]


def test_exits_when_bar_gaps_through_the_stop_fills_at_the_open(tmp_path):
    # Arrange: the entry fills at bar 4's open (100), stop 1 ATR (2) below: 98; bar 5 opens at 95
    bars = _ohlc([FLAT] * 5 + [(95.0, 96.0, 94.0, 95.0), FLAT])
    # Act
    fills = _fills(tmp_path, bars, buy_at=3, **{"risk.stop_atr": 1.0})
    # Assert
    (entry_seq, entry), (exit_seq, exit_) = fills
    assert (entry_seq, entry["price"], entry["stop_price"]) == (4, 100.0, 98.0)
    assert (exit_seq, exit_["side"], exit_["reason"], exit_["price"]) == (5, "SELL", "stop_loss", 95.0)
    assert exit_["order_seq"] == 5


def test_exits_when_one_bar_reaches_stop_and_target_assumes_the_stop(tmp_path):
    # Arrange: stop 98 and target 102; bar 5 reaches both
    bars = _ohlc([FLAT] * 5 + [(100.0, 103.0, 97.0, 100.0)])
    # Act
    fills = _fills(tmp_path, bars, buy_at=3, **{"risk.stop_atr": 1.0, "risk.take_profit_atr": 1.0})
    # Assert
    assert [(f["reason"], f["price"]) for _, f in fills[1:]] == [("stop_loss", 98.0)]


def test_exits_when_high_reaches_target_fills_at_the_target(tmp_path):
    bars = _ohlc([FLAT] * 5 + [(100.0, 103.0, 99.5, 101.0)])
    fills = _fills(tmp_path, bars, buy_at=3, **{"risk.stop_atr": 1.0, "risk.take_profit_atr": 1.0})
    assert [(f["reason"], f["price"]) for _, f in fills[1:]] == [("take_profit", 102.0)]


def test_exits_when_highs_rise_then_fall_trailing_stop_ratchets_up_only():
    # Arrange: trail 2 below the highest high; entry bar 4's high 101 -> 99, bar 5's 104 -> 102
    bars = _ohlc(
        [FLAT] * 5 + [(100.0, 104.0, 99.5, 103.0), (103.0, 103.5, 102.5, 103.0), (103.0, 103.2, 101.0, 102.0)]
    )
    engine = build_engine(
        _config(**{"risk.trailing_atr": 1.0}),
        "backtest",
        strategy=_Scripted({stubs.T0 + 3 * stubs.MINUTE: 1}),
    )
    levels = []
    # Act
    for i in range(len(bars)):
        engine.process(bars.iloc[i : i + 1])
        levels.append(engine.portfolio.trailing_price)
    # Assert: never lower; bar 6's lower high keeps 102; bar 7's low 101 sells at 102
    assert levels[4:7] == [99.0, 102.0, 102.0]
    assert levels[7] is None and engine.portfolio.position == 0.0
    assert engine.portfolio.realized_pnl == pytest.approx(2.0 * 100.0)  # 100 units, 100 -> 102


def test_exits_when_max_bars_held_sells_at_the_open_that_many_bars_after_the_entry(tmp_path):
    bars = _ohlc([FLAT] * 5 + [(100.5, 101.0, 99.5, 100.0), (100.7, 101.0, 99.5, 100.0), FLAT])
    fills = _fills(tmp_path, bars, buy_at=3, **{"risk.max_bars": 2})
    assert [(seq, f["reason"], f["price"]) for seq, f in fills] == [
        (4, "signal", 100.0),
        (6, "time_stop", 100.7),
    ]


def test_exits_when_off_fills_carry_reason_signal_and_no_levels(tmp_path):
    bars = _ohlc([FLAT] * 6)
    fills = _fills(tmp_path, bars, buy_at=3)
    assert [set(f) for _, f in fills] == [
        {"side", "units", "price", "fee", "slippage_cost", "order_seq", "pnl", "cash_flow", "reason"}
    ]


# --- the entry's own bar: its range comes after the fill at its open -----------------------------------

# Opens where the entry fills (100), then trades ten below it: through a stop 2 below the fill.
GAP_DOWN = (100.0, 100.5, 90.0, 91.0)
RISK_SIZED = {
    "broker.fee": 0.001,
    "broker.slippage": 0.0005,
    "risk.sizing": "risk",
    "risk.risk_per_trade": 0.01,
    "risk.stop_atr": 1.0,
}


def _lines(
    tmp_path: Path, bars: pd.DataFrame, sides: dict[int, int], **overrides
) -> tuple[Engine, list[dict]]:
    path = tmp_path / "decisions.jsonl"
    journal = JournalWriter(path)
    engine = build_engine(_config(**overrides), "backtest", strategy=_Scripted(sides), journal=journal)
    engine.process(bars)
    journal.close()
    return engine, list(iter_lines(path))


def test_exits_when_entry_bar_trades_through_the_stop_exits_on_that_bar_within_the_risk_budget(tmp_path):
    # Arrange: a BUY decided at bar 3 fills at bar 4's open (100.05 with slippage); the stop is
    # 1 ATR (2) below the fill, 98.05; bar 4 then trades down to 90 and bar 5 opens at 91
    bars = _ohlc([FLAT] * 4 + [GAP_DOWN, (91.0, 92.0, 90.0, 91.0)])
    # Act
    engine, lines = _lines(tmp_path, bars, {stubs.T0 + 3 * stubs.MINUTE: 1}, **RISK_SIZED)
    # Assert: the entry's line holds both fills; the exit is at the stop, on the entry's bar
    entry, exit_ = lines[4]["fill"], lines[4]["exit_fill"]
    assert (entry["side"], entry["reason"], entry["stop_price"]) == ("BUY", "signal", pytest.approx(98.05))
    assert (exit_["side"], exit_["reason"], exit_["order_seq"]) == ("SELL", "stop_loss", 4)
    assert exit_["price"] == pytest.approx(98.05 * (1 - 0.0005))
    assert lines[4]["position"] == 0.0 and lines[5]["fill"] is None
    assert list(lines[4]).index("exit_fill") == list(lines[4]).index("fill") + 1
    assert all("exit_fill" not in line for i, line in enumerate(lines) if i != 4)
    # The loss is the risk budget (1% of 10,000) plus both fills' fees and slippage, no more
    costs = entry["fee"] + entry["slippage_cost"] + exit_["fee"] + exit_["slippage_cost"]
    assert 0 < -exit_["pnl"] <= 0.01 * 10_000 + costs + 1e-9
    assert lines[4]["cash"] == pytest.approx(10_000 + exit_["pnl"], rel=1e-12)
    assert (engine.portfolio.entries, engine.portfolio.exits) == (1, 1)
    assert engine.portfolio.stop_price is None and engine.portfolio.entry_seq == -1


def test_exits_when_entry_bar_trades_through_the_stop_the_round_trip_is_counted(tmp_path):
    # Arrange
    from labkit.analysis.trips import exit_reasons, round_trips
    from labkit.engine.journal import read_journal

    bars = _ohlc([FLAT] * 4 + [GAP_DOWN, (91.0, 92.0, 90.0, 91.0)])
    _, lines = _lines(tmp_path, bars, {stubs.T0 + 3 * stubs.MINUTE: 1}, **RISK_SIZED)
    # Act
    journal = read_journal(tmp_path / "decisions.jsonl")
    trips = round_trips(journal)
    # Assert
    assert len(trips) == 1
    trip = trips.iloc[0]
    assert trip["entry_ts"] == trip["exit_ts"] == journal["ts"].iloc[4]
    assert trip["net_pnl"] == pytest.approx(lines[4]["exit_fill"]["pnl"], rel=1e-12)
    assert exit_reasons(journal) == ["stop_loss"]
    assert journal["exit_fill_side"].iloc[4] == "SELL" and journal["exit_fill"].iloc[3] is None


def test_exits_when_entry_bar_exits_the_day_and_session_figures_count_both_fills(tmp_path):
    # Arrange
    from labkit.analysis.trips import journal_fills
    from labkit.engine.journal import read_journal
    from labkit.readiness.daily import daily_health
    from labkit.reports.sessions import session_summary

    bars = _ohlc([FLAT] * 4 + [GAP_DOWN, (91.0, 92.0, 90.0, 91.0)])
    _, lines = _lines(tmp_path, bars, {stubs.T0 + 3 * stubs.MINUTE: 1}, **RISK_SIZED)
    journal = read_journal(tmp_path / "decisions.jsonl")
    both = [lines[4]["fill"], lines[4]["exit_fill"]]
    # Act
    fills = journal_fills(journal)
    day = daily_health(journal, "2026-01-05", stubs.MINUTE, capital=10_000.0)
    summary = session_summary(journal, 10_000.0)["value"]
    # Assert
    assert fills["fill_side"].tolist() == ["BUY", "SELL"]
    assert fills["fill_pnl"].iloc[1] == both[1]["pnl"]
    assert day["fills"] == {"BUY": 1, "SELL": 1} and day["trades_closed"] == 1
    assert day["fees"] == pytest.approx(sum(f["fee"] for f in both), rel=1e-12)
    assert day["slippage"] == pytest.approx(sum(f["slippage_cost"] for f in both), rel=1e-12)
    assert f"{sum(f['fee'] for f in both):,.2f}" in str(summary["fees / slippage"])


@pytest.mark.parametrize(
    ("entry_bar", "reason", "price"),
    [
        ((100.0, 103.0, 99.5, 101.0), "take_profit", 102.0),  # the high reaches the target
        ((100.0, 103.0, 97.0, 100.0), "stop_loss", 98.0),  # both reached: the stop is assumed
        ((100.0, 101.5, 99.0, 100.0), None, None),  # neither: the position is held
    ],
)
def test_exits_when_entry_bar_reaches_a_level_it_fills_there_as_later_bars_do(
    tmp_path, entry_bar, reason, price
):
    # Arrange: stop 98 and target 102 around the fill at bar 4's open, 100
    bars = _ohlc([FLAT] * 4 + [entry_bar, FLAT])
    # Act
    _, lines = _lines(
        tmp_path,
        bars,
        {stubs.T0 + 3 * stubs.MINUTE: 1},
        **{"risk.stop_atr": 1.0, "risk.take_profit_atr": 1.0},
    )
    # Assert
    exit_ = lines[4].get("exit_fill")
    assert (exit_["reason"], exit_["price"]) == (reason, price) if reason else exit_ is None


def test_exits_when_entry_bar_dips_below_the_trailing_stop_before_its_high_moves_it(tmp_path):
    # Arrange: trail 2 below the fill at bar 4's open (98); bar 4 dips to 97.5, then makes 104
    bars = _ohlc([FLAT] * 4 + [(100.0, 104.0, 97.5, 103.0), FLAT])
    # Act
    engine, lines = _lines(tmp_path, bars, {stubs.T0 + 3 * stubs.MINUTE: 1}, **{"risk.trailing_atr": 1.0})
    # Assert: the level the bar opened with is the one it is checked against, as on any later bar
    assert (lines[4]["exit_fill"]["reason"], lines[4]["exit_fill"]["price"]) == ("trailing_stop", 98.0)
    assert engine.portfolio.position == 0.0 and engine.portfolio.trailing_price is None


def test_exits_when_off_the_entry_bar_is_not_checked_and_lines_have_one_fill(tmp_path):
    # Arrange: sma_cross without exits (no levels): the deep entry bar changes nothing
    bars = _ohlc([FLAT] * 4 + [GAP_DOWN, FLAT])
    # Act
    engine, lines = _lines(tmp_path, bars, {stubs.T0 + 3 * stubs.MINUTE: 1})
    # Assert
    assert lines[4]["fill"]["side"] == "BUY" and engine.portfolio.position > 0
    assert all("exit_fill" not in line for line in lines)


def _entry_bar_exits() -> tuple[pd.DataFrame, dict[int, int]]:
    # Three entries: one stopped on its own bar, one whose entry bar reaches its target, one held
    # to a later stop; flat bars between, so each decision sees the same ATR (2).
    rows = [FLAT] * 4 + [GAP_DOWN] + [FLAT] * 4 + [(100.0, 104.5, 99.5, 104.0)] + [FLAT] * 4
    rows += [FLAT, FLAT, (100.0, 100.5, 95.0, 96.0), FLAT]
    sides = {stubs.T0 + i * stubs.MINUTE: 1 for i in (3, 8, 14)}
    return _ohlc(rows), sides


def test_exits_when_entry_bar_exits_a_resumed_or_recovered_book_decides_like_the_batch_run(tmp_path):
    # Arrange: the batch run, the same bars one at a time, a book saved (as state.json keeps it)
    # after every bar and resumed, and a book folded from the journal line by line
    bars, sides = _entry_bar_exits()
    overrides = {**RISK_SIZED, "risk.take_profit_atr": 1.5, "risk.trailing_atr": 3.0}
    config = _config(**overrides)

    def run(path: Path, pieces: list[int], resume: bool) -> tuple[Engine, list[dict]]:
        journal = JournalWriter(path)
        engine = build_engine(config, "backtest", strategy=_Scripted(sides), journal=journal)
        start = 0
        for size in pieces:
            if resume and start:
                saved = Portfolio.from_dict(orjson.loads(orjson.dumps(engine.portfolio.to_dict())))
                engine = build_engine(config, "backtest", saved, journal, strategy=_Scripted(sides))
                engine.prime(bars.iloc[:start])
            engine.process(bars.iloc[start : start + size])
            start += size
        journal.close()
        return engine, [{k: v for k, v in line.items() if k != "correlation_id"} for line in iter_lines(path)]

    # Act
    batch, lines = run(tmp_path / "a.jsonl", [len(bars)], resume=False)
    _, live = run(tmp_path / "b.jsonl", [1] * len(bars), resume=False)
    _, resumed = run(tmp_path / "c.jsonl", [1] * len(bars), resume=True)
    highs = bars["high"].tolist()
    folded = Portfolio.start(10_000.0)
    for line, high in zip(iter_lines(tmp_path / "a.jsonl"), highs, strict=True):
        folded.replay_line(line, high)
    # Assert
    exits = [(line["seq"], line["exit_fill"]["reason"]) for line in lines if "exit_fill" in line]
    assert exits == [(4, "stop_loss"), (9, "take_profit")]
    assert [line["fill"]["reason"] for line in lines if line["fill"]][-2:] == ["signal", "stop_loss"]

    def strip(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "decided_at"} for row in rows]

    assert strip(live) == strip(lines) and strip(resumed) == strip(lines)
    for key in (
        "cash",
        "position",
        "entries",
        "exits",
        "realized_pnl",
        "fees_paid",
        "slippage_paid",
        "risk_today",
    ):
        got, want = getattr(folded, key), getattr(batch.portfolio, key)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12), key


def test_sizing_when_risk_buys_risk_per_trade_over_stop_distance():
    # Arrange: equity 10,000, 1% at risk, stop 1 ATR = 2 -> 50 units (well under the cash)
    bars = _ohlc([FLAT] * 6)
    # Act
    engine = _run(
        bars, buy_at=3, **{"risk.sizing": "risk", "risk.stop_atr": 1.0, "risk.risk_per_trade": 0.01}
    )
    # Assert
    assert engine.portfolio.position == pytest.approx(50.0)
    assert engine.portfolio.risk_today == pytest.approx(100.0)


def test_sizing_when_risk_is_capped_by_max_exposure():
    bars = _ohlc([FLAT] * 6)
    overrides = {
        "risk.sizing": "risk",
        "risk.stop_atr": 1.0,
        "risk.risk_per_trade": 0.5,
        "risk.max_exposure": 0.3,
    }
    engine = _run(bars, buy_at=3, **overrides)
    assert engine.portfolio.position == pytest.approx(0.3 * 10_000 / 100.0)


def test_sizing_when_risk_without_stop_is_refused():
    with pytest.raises(Exception, match="stop_atr"):
        _config(**{"risk.sizing": "risk"})


@pytest.mark.parametrize(("confidence", "scale"), [(0.6, 0.5), (0.8, 0.75), (1.0, 1.0), (0.55, 0.5)])
def test_sizing_when_model_confidence_scales_between_threshold_and_one(confidence, scale):
    # Arrange
    risk = RiskConfig(sizing="risk", stop_atr=1.0)
    s = EngineSettings("t", "backtest", "X/Y", "1m", risk, BrokerConfig(fee=0.0))
    scaled = EngineSettings("t", "backtest", "X/Y", "1m", risk, BrokerConfig(fee=0.0), confidence_floor=0.6)
    # Act
    full = entry_units(s, 10_000.0, 10_000.0, 100.0, 2.0, confidence)
    sized = entry_units(scaled, 10_000.0, 10_000.0, 100.0, 2.0, confidence)
    # Assert
    assert full == pytest.approx(50.0)
    assert sized == pytest.approx(50.0 * scale)


def test_sizing_when_risk_and_already_long_holds_with_already_long(tmp_path):
    path = tmp_path / "d.jsonl"
    journal = JournalWriter(path)
    sides = {stubs.T0 + 3 * stubs.MINUTE: 1, stubs.T0 + 5 * stubs.MINUTE: 1}
    overrides = {"risk.sizing": "risk", "risk.stop_atr": 1.0}
    engine = build_engine(_config(**overrides), "backtest", strategy=_Scripted(sides), journal=journal)
    engine.process(_ohlc([FLAT] * 7))
    journal.close()
    line = list(iter_lines(path))[5]
    assert (line["proposed"], line["action"], line["gate_trace"]["reason"]) == ("BUY", "HOLD", "already_long")


# --- the same bars, any way they arrive -------------------------------------------------------------

EXITS_ON = {
    "broker.fee": 0.001,
    "broker.slippage": 0.0005,
    "risk.sizing": "risk",
    "risk.risk_per_trade": 0.02,
    "risk.stop_atr": 1.5,
    "risk.take_profit_atr": 4.0,
    "risk.trailing_atr": 3.0,
    "risk.max_bars": 40,
    "risk.atr_window": 14,
    "strategies.sma_cross.fast": 5,
    "strategies.sma_cross.slow": 20,
}


@pytest.fixture(scope="module")
def fixture_bars() -> pd.DataFrame:
    return read_bar_file(stubs.FIXTURE_CSV)


def _journal(path: Path, bars: pd.DataFrame, chunks: list[int] | None = None, portfolio=None, prime=None):
    journal = JournalWriter(path)
    config = load_config(None, EXITS_ON, environ={})
    engine = build_engine(config, "paper", portfolio=portfolio, journal=journal)
    if prime is not None:
        engine.prime(prime)
    if chunks is None:
        engine.process(bars)
    else:
        start = 0
        for size in chunks:
            engine.process(bars.iloc[start : start + size])
            start += size
    journal.close()
    return engine, [
        {k: v for k, v in line.items() if k not in ("decided_at", "correlation_id")}
        for line in iter_lines(path)
    ]


def test_exits_when_fed_bar_by_bar_or_resumed_decide_like_a_replay(tmp_path, fixture_bars):
    # Arrange / Act: one replay, one bar at a time, and a book saved after 250 bars and resumed
    _, replay = _journal(tmp_path / "a.jsonl", fixture_bars)
    _, live = _journal(tmp_path / "b.jsonl", fixture_bars, chunks=[1] * len(fixture_bars))
    path = tmp_path / "c.jsonl"
    first, _ = _journal(path, fixture_bars.iloc[:250])
    saved = orjson.loads(orjson.dumps(first.portfolio.to_dict()))
    journal = JournalWriter(path)  # appends
    second = build_engine(
        load_config(None, EXITS_ON, environ={}), "paper", Portfolio.from_dict(saved), journal
    )
    second.prime(fixture_bars.iloc[:250])
    second.process(fixture_bars)
    journal.close()
    resumed = [
        {k: v for k, v in line.items() if k not in ("decided_at", "correlation_id")}
        for line in iter_lines(path)
    ]
    # Assert: exits fired, and every way of feeding the bars wrote the same journal
    reasons = {line["fill"]["reason"] for line in replay if line["fill"]}
    assert reasons >= {"signal"} and reasons & {"stop_loss", "trailing_stop", "take_profit", "time_stop"}
    assert live == replay
    assert resumed == replay


def test_exits_when_journal_is_ahead_of_the_state_recovery_rebuilds_the_levels(tmp_path, fixture_bars):
    # Arrange: a book that saw 275 bars, and one rebuilt from the first 260 plus the journal's next
    # 15, in which a position was entered (seq 273) and is still open
    path = tmp_path / "a.jsonl"
    engine, lines = _journal(path, fixture_bars.iloc[:275])
    early, _ = _journal(tmp_path / "b.jsonl", fixture_bars.iloc[:260])
    book = Portfolio.from_dict(orjson.loads(orjson.dumps(early.portfolio.to_dict())))
    assert engine.portfolio.position > 0 and early.portfolio.position == 0
    highs = dict(zip(ts_ms(fixture_bars).tolist(), fixture_bars["high"].tolist(), strict=True))
    # Act: the bars' highs come from the session's tape, as in `recover_from_journal`
    for line, ts in zip(lines[260:], ts_ms(fixture_bars.iloc[260:275]).tolist(), strict=True):
        book.replay_line(line, highs[ts])
    # Assert: the fields a decision reads agree
    assert engine.portfolio.trailing_price is not None
    for key in (
        "trailing_price",
        "trailing_dist",
        "position",
        "cash",
        "stop_price",
        "take_profit_price",
        "entry_seq",
        "risk_today",
        "pending_units",
    ):
        got, want = getattr(book, key), getattr(engine.portfolio, key)
        assert got == want or got == pytest.approx(want, rel=1e-12), key


# --- property: with no gaps, a trade loses at most its risk plus costs -------------------------------


@st.composite
def _market(draw):
    n = draw(st.integers(30, 60))
    signs = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n))
    sizes = draw(st.lists(st.floats(0.5, 1.0), min_size=n, max_size=n))
    wicks = draw(st.lists(st.floats(0.0, 0.1), min_size=2 * n, max_size=2 * n))
    sides = draw(st.lists(st.sampled_from([0, 0, 0, 1, -1]), min_size=n, max_size=n))
    closes = 100.0 + np.cumsum(np.array(signs) * np.array(sizes))
    # No gaps: each bar opens at the close before it; its range is its move plus a small wick.
    opens = np.concatenate([[100.0], closes[:-1]])
    highs = np.maximum(opens, closes) + np.array(wicks[:n])
    lows = np.minimum(opens, closes) - np.array(wicks[n:])
    times = stubs.T0 + stubs.MINUTE * np.arange(n, dtype="int64")
    bars = make_bars(
        times, {"open": opens, "high": highs, "low": lows, "close": closes, "volume": np.ones(n)}
    )
    return bars, {int(t): s for t, s in zip(times.tolist(), sides, strict=True) if s}


@settings(max_examples=60, deadline=None, database=None)
@given(
    _market(),
    st.floats(0.001, 0.05),
    st.floats(2.5, 5.0),
    st.floats(0.0, 0.002),
    st.floats(0.0, 0.001),
)
def test_sizing_when_risk_and_no_gaps_no_trade_loses_more_than_its_risk_plus_costs(
    market, risk, stop_atr, fee, slippage
):
    # Arrange: every move and wick is under the stop distance, so no bar jumps past a stop
    bars, sides = market
    overrides = {
        "broker.fee": fee,
        "broker.slippage": slippage,
        "risk.sizing": "risk",
        "risk.risk_per_trade": risk,
        "risk.stop_atr": stop_atr,
        "risk.trailing_atr": stop_atr,
        "risk.atr_window": 5,
        "gates.enabled": ["data"],
    }
    engine = build_engine(load_config(None, overrides, environ={}), "backtest", strategy=_Scripted(sides))
    fills: list[dict] = []
    equity_before: list[float] = []
    original = engine.portfolio.fill

    def record(*args, **kwargs):
        cash_before = engine.portfolio.cash
        out = original(*args, **kwargs)
        if out is not None:
            fills.append(out)
            equity_before.append(cash_before)  # entries are from flat: equity is the cash
        return out

    engine.portfolio.fill = record  # type: ignore[method-assign]
    # Act
    engine.process(bars)
    # Assert
    for entry, exit_, equity in zip(fills[::2], fills[1::2], equity_before[::2], strict=False):
        costs = entry["fee"] + entry["slippage_cost"] + exit_["fee"] + exit_["slippage_cost"]
        assert -exit_["pnl"] <= risk * equity + costs + 1e-9


# --- an independent reference: plain loops over the fixture -----------------------------------------


def _reference(bars: pd.DataFrame, side: np.ndarray, need: int, fee: float, slip: float, k: float, w: int):
    """All-in entries at the next open, a stop `k` ATRs below the entry fill, written as plain loops.

    The stop is checked on every bar held, the entry's own bar included.
    """
    o, h, lo, c = (bars[col].to_numpy() for col in ("open", "high", "low", "close"))
    atr = [math.nan] * len(c)
    for i in range(w, len(c)):
        ranges = [
            max(h[j] - lo[j], abs(h[j] - c[j - 1]), abs(lo[j] - c[j - 1])) for j in range(i - w + 1, i + 1)
        ]
        total = 0.0
        for r in ranges:
            total += r
        atr[i] = total / w
    cash, units, stop, pending, pending_atr = 10_000.0, 0.0, None, 0, math.nan
    fills, equity = [], []
    for i in range(len(c)):
        filled = False  # a SELL at the open; after a BUY there, the bar's range is checked too
        if pending == 1:
            price = o[i] * (1 + slip)
            units = cash / (price * (1 + fee))
            cash -= min(units * price * (1 + fee), cash)
            stop = price - k * pending_atr
            fills.append((i, "BUY", price))
        elif pending == -1 and units > 0:
            price = o[i] * (1 - slip)
            cash += units * price * (1 - fee)
            units, stop = 0.0, None
            fills.append((i, "SELL", price))
            filled = True
        pending = 0
        if not filled and units > 0 and stop is not None:
            hit = o[i] if o[i] <= stop else (stop if lo[i] <= stop else None)
            if hit is not None:
                price = hit * (1 - slip)
                cash += units * price * (1 - fee)
                units, stop = 0.0, None
                fills.append((i, "SELL", price))
        equity.append(cash + units * c[i])
        if i + 1 >= need and side[i] == 1:
            pending, pending_atr = 1, atr[i]
        elif i + 1 >= need and side[i] == -1 and units > 0:
            pending = -1
    return fills, np.array(equity)


def test_exits_when_stop_loss_backtest_matches_a_plain_loop_reference(fixture_bars):
    # Arrange
    fee, slip, k, w = 0.001, 0.0005, 1.0, 14
    overrides = {
        "broker.fee": fee,
        "broker.slippage": slip,
        "risk.stop_atr": k,
        "risk.atr_window": w,
        "gates.enabled": ["data"],
    }
    config = load_config(None, overrides, environ={})
    engine = build_engine(config, "backtest")
    side = make_strategy("sma_cross", config.strategies.sma_cross).propose(fixture_bars).side
    fills: list[tuple[int, str, float]] = []
    original = engine.portfolio.fill

    def record(*args, **kwargs):
        out = original(*args, **kwargs)
        if out is not None:
            # An enforced exit fills on its own line, any other order on the line after its decision.
            bar = out["order_seq"] + (out["reason"] not in EXIT_REASONS)
            fills.append((bar, out["side"], out["price"]))
        return out

    engine.portfolio.fill = record  # type: ignore[method-assign]
    # Act
    engine.process(fixture_bars)
    expected_fills, expected_equity = _reference(fixture_bars, side, engine.warmup, fee, slip, k, w)
    # Assert
    assert len(expected_fills) > 4
    assert [(i, s) for i, s, _ in fills] == [(i, s) for i, s, _ in expected_fills]
    assert [p for _, _, p in fills] == pytest.approx([p for _, _, p in expected_fills], rel=1e-12)
    assert engine.equity_curve() == pytest.approx(expected_equity, rel=1e-9)


def test_exits_when_a_paper_session_runs_in_pieces_replay_finds_every_decision_identical(tmp_path, capsys):
    # Arrange: a paper session with exits on, stopped and resumed twice (its book saved between)
    from labkit.cli import main
    from labkit.session.paths import session_paths

    for until in ("2026-01-05T02:00", "2026-01-05T04:00", "2026-01-05T06:00"):
        stubs.replayed_session(tmp_path, "x", "2026-01-05", until, **EXITS_ON)
    lines = list(iter_lines(session_paths(tmp_path, "x").decisions))
    reasons = {line["fill"]["reason"] for line in lines if line["fill"]}
    # Act
    code = main(["--home", str(tmp_path), "replay", "--session", "x"])
    # Assert
    assert reasons & {"stop_loss", "trailing_stop", "take_profit", "time_stop"}
    assert code == 0
    assert f"{len(lines)} decisions replayed, all identical" in capsys.readouterr().out


def test_exits_when_a_crash_leaves_the_state_behind_the_journal_the_session_goes_on_identically(tmp_path):
    # Arrange: one session run straight through; another whose state.json is put back four bars
    # (a crash before the save) while it holds a position with a trailing stop (entered at seq 204)
    from labkit.session.paths import session_paths

    def run(home: Path, until: str) -> None:
        stubs.replayed_session(home, "x", "2026-01-05", until, **EXITS_ON)

    def book(home: Path) -> dict:
        return orjson.loads(session_paths(home, "x").state.read_bytes())["portfolio"]

    run(tmp_path / "a", "2026-01-05T03:30")
    at_cut = book(tmp_path / "a")
    run(tmp_path / "b", "2026-01-05T03:30")
    run(tmp_path / "c", "2026-01-05T03:26")
    assert book(tmp_path / "c")["position"] > 0 and book(tmp_path / "c")["trailing_price"] is not None
    state_b = orjson.loads(session_paths(tmp_path / "b", "x").state.read_bytes())
    state_b["portfolio"], state_b["journal_offset"] = book(tmp_path / "c"), 0
    session_paths(tmp_path / "b", "x").state.write_bytes(orjson.dumps(state_b))
    # Act: the restart folds the four lines in (the trailing stop ratchets on the tape's highs)
    run(tmp_path / "b", "2026-01-05T03:30")
    recovered = book(tmp_path / "b")
    run(tmp_path / "a", "2026-01-05T06:00")
    run(tmp_path / "b", "2026-01-05T06:00")

    # Assert
    def lines(home: Path) -> list[dict]:
        return [
            {k: v for k, v in line.items() if k not in ("decided_at", "correlation_id")}
            for line in iter_lines(session_paths(home, "x").decisions)
        ]

    keys = ("position", "cash", "stop_price", "take_profit_price", "trailing_price", "entry_seq", "last_seq")
    assert {k: recovered[k] for k in keys} == {k: at_cut[k] for k in keys}
    assert recovered["trailing_price"] != book(tmp_path / "c")["trailing_price"]  # it did ratchet
    assert lines(tmp_path / "b") == lines(tmp_path / "a")


# A stop close enough that some entries are stopped on their own bar (seqs 69, 102, 136, 204, 242,
# 273 and 344 of the synthetic market's first six hours), others later.
TIGHT_STOP = {**EXITS_ON, "risk.stop_atr": 0.8}


def test_exits_when_entry_bars_exit_a_session_resumed_or_recovered_goes_on_like_one_run_and_replays(
    tmp_path, capsys
):
    # Arrange: one session run straight; one stopped after deciding seq 101 (its BUY fills at 102,
    # the first bar after the restart, and is stopped there); one whose state.json is put back to
    # seq 134 while its journal holds seq 139 (a crash before the save), the entry bar 136 among
    # the lines the restart folds in
    from labkit.cli import main
    from labkit.session.paths import session_paths

    def run(home: Path, until: str) -> None:
        stubs.replayed_session(home, "x", "2026-01-05", until, **TIGHT_STOP)

    def lines(home: Path) -> list[dict]:
        return [
            {k: v for k, v in line.items() if k not in ("decided_at", "correlation_id")}
            for line in iter_lines(session_paths(home, "x").decisions)
        ]

    run(tmp_path / "a", "2026-01-05T06:00")
    run(tmp_path / "b", "2026-01-05T01:42")
    run(tmp_path / "c", "2026-01-05T02:20")
    run(tmp_path / "d", "2026-01-05T02:15")
    behind = orjson.loads(session_paths(tmp_path / "c", "x").state.read_bytes())
    behind["portfolio"] = orjson.loads(session_paths(tmp_path / "d", "x").state.read_bytes())["portfolio"]
    behind["journal_offset"] = 0
    session_paths(tmp_path / "c", "x").state.write_bytes(orjson.dumps(behind))
    # Act
    run(tmp_path / "b", "2026-01-05T06:00")
    run(tmp_path / "c", "2026-01-05T06:00")
    code = main(["--home", str(tmp_path / "b"), "replay", "--session", "x"])
    # Assert
    straight = lines(tmp_path / "a")
    two_fills = [line["seq"] for line in straight if "exit_fill" in line]
    assert {102, 136} <= set(two_fills)
    assert lines(tmp_path / "b") == straight
    assert lines(tmp_path / "c") == straight
    assert code == 0 and f"{len(straight)} decisions replayed, all identical" in capsys.readouterr().out


def test_risk_budget_when_the_days_entries_took_daily_risk_refuses_the_next_entry(tmp_path):
    # Arrange: each entry risks 1.5% (75 units x a stop 2 below); the day allows 3%
    path = tmp_path / "d.jsonl"
    journal = JournalWriter(path)
    sides = {stubs.T0 + i * stubs.MINUTE: side for i, side in ((3, 1), (5, -1), (7, 1), (9, -1), (11, 1))}
    overrides = {
        "risk.sizing": "risk",
        "risk.stop_atr": 1.0,
        "risk.risk_per_trade": 0.015,
        "gates.enabled": ["data", "risk_budget"],
        "gates.risk_budget.daily_risk": 0.03,
    }
    engine = build_engine(_config(**overrides), "backtest", strategy=_Scripted(sides), journal=journal)
    # Act
    engine.process(_ohlc([FLAT] * 13))
    journal.close()
    # Assert
    lines = list(iter_lines(path))
    assert [lines[i]["action"] for i in (3, 7, 11)] == ["BUY", "BUY", "HOLD"]
    trace = lines[11]["gate_trace"]
    assert (trace["stage"], trace["reason"]) == ("risk_budget", "risk_budget_exhausted")
    assert trace["detail"]["risk_used"] == pytest.approx(0.03)
    assert trace["detail"]["risk_today"] == pytest.approx(300.0)


def test_engine_settings_when_strategy_is_a_model_scale_sizes_above_its_entry_threshold():
    from labkit.config.assembly import engine_settings

    config = load_config(None, {"session.strategy": "model", "strategies.model.entry": 0.62}, environ={})
    assert engine_settings(config, "backtest").confidence_floor == 0.62
    assert engine_settings(_config(), "backtest").confidence_floor is None
