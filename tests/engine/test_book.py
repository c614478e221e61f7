"""One book over a universe: a line per (bar, symbol) with one gapless seq, shared cash, the
portfolio gates (open positions, heat from the stops, correlated exposure) and missing bars."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.config.assembly import build_book_engine, build_strategy
from labkit.config.loading import load_config
from labkit.data.bars import make_bars
from labkit.data.synthetic import universe_bars
from labkit.data.universe import align
from labkit.engine.book import BookEngine
from labkit.engine.journal import JournalWriter
from labkit.strategies.base import Signals, Strategy

T0 = 1_767_571_200_000  # 2026-01-05
DAY = 86_400_000
FIVE = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT"]
_RISKY = dict(
    RISK__SIZING="risk", RISK__STOP_ATR="2", RISK__RISK_PER_TRADE="0.02", GATES__TURNOVER__MAX_DAILY="50"
)


def _config(**env: str) -> Any:
    return load_config(None, {}, environ={f"LABKIT_{k}": v for k, v in env.items()})


def _run(
    tmp_path, symbols, config, universe=None, days=2, timeframe="1m", journal=True
) -> tuple[BookEngine, list]:
    universe = universe or align(universe_bars(symbols, timeframe, T0, T0 + days * DAY))
    path = tmp_path / "book.jsonl"
    path.unlink(missing_ok=True)
    writer = JournalWriter(path) if journal else None
    engine = build_book_engine(config, list(universe.symbols), "backtest", journal=writer)
    engine.process(universe)
    if writer is None:
        return engine, []
    writer.close()
    return engine, [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_a_five_symbol_book_writes_every_symbol_under_one_gapless_seq(tmp_path) -> None:
    engine, lines = _run(tmp_path, FIVE, _config())
    assert [line["seq"] for line in lines] == list(range(len(lines)))
    assert len(lines) == 5 * 2 * 1440
    assert [line["symbol"] for line in lines[:5]] == FIVE  # the order given, at every bar
    assert {line["symbol"] for line in lines if line["fill"]} == set(FIVE)
    assert min(line["cash"] for line in lines) >= 0
    # Equity is the book's: every symbol's line at a bar's close shows the same book after the last.
    per_bar = np.array([line["equity"] for line in lines]).reshape(-1, 5)[:, -1]
    np.testing.assert_allclose(per_bar, engine.equity, rtol=0, atol=1e-6)


def test_the_book_without_a_journal_decides_exactly_as_with_one(tmp_path) -> None:
    with_journal, _ = _run(tmp_path, FIVE[:3], _config())
    without, _ = _run(tmp_path, FIVE[:3], _config(), journal=False)
    np.testing.assert_array_equal(with_journal.equity, without.equity)
    assert with_journal.book.top.cash == without.book.top.cash


def test_an_all_in_book_buys_equal_slices_not_all_the_cash(tmp_path) -> None:
    _, lines = _run(tmp_path, FIVE, _config())
    first = next(line for line in lines if line["fill"])
    assert -first["fill"]["cash_flow"] == pytest.approx(10_000 / 5, rel=1e-9)


def test_max_open_positions_holds_no_more_than_that_many_symbols_at_any_bar(tmp_path) -> None:
    # Small risk-sized entries: cash never runs out first, so the limit is what binds.
    config = _config(PORTFOLIO__MAX_OPEN_POSITIONS="2", **{**_RISKY, "RISK__RISK_PER_TRADE": "0.002"})
    _, lines = _run(tmp_path, FIVE, config, days=3)
    held: dict[str, float] = {}
    most = 0
    for line in lines:
        held[line["symbol"]] = line["position"]
        most = max(most, sum(1 for units in held.values() if units > 0))
    assert most == 2
    reasons = {line["rejection_reason"] for line in lines}
    assert "max_open_positions" in reasons


def test_a_symbol_without_a_bar_holds_as_no_bar_and_its_order_waits_for_its_next_bar(tmp_path) -> None:
    bars = universe_bars(["BTC/USDT", "ETH/USDT"], "1m", T0, T0 + DAY)
    eth = bars["ETH/USDT"]
    bars["ETH/USDT"] = eth[(eth.index.minute % 7) != 3]  # one bar in seven missing
    _, lines = _run(tmp_path, [], _config(), universe=align(bars))
    missing = [line for line in lines if line["symbol"] == "ETH/USDT" and line["ts"][14:16] in {"03", "10"}]
    assert any(line["rejection_reason"] == "no_bar" for line in missing)
    assert all(line["fill"] is None for line in lines if line["rejection_reason"] == "no_bar")
    eth_bars = set(eth.index[(eth.index.minute % 7) != 3].strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert all(line["ts"] in eth_bars for line in lines if line["symbol"] == "ETH/USDT" and line["fill"])


_RISKY = dict(
    RISK__SIZING="risk", RISK__STOP_ATR="2", RISK__RISK_PER_TRADE="0.02", GATES__TURNOVER__MAX_DAILY="50"
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(max_heat=st.floats(0.005, 0.08), per_trade=st.floats(0.002, 0.03), seed=st.integers(0, 3))
def test_with_risk_sizing_the_books_stop_risk_never_exceeds_max_heat(
    tmp_path, max_heat, per_trade, seed
) -> None:
    config = _config(
        **{**_RISKY, "RISK__RISK_PER_TRADE": str(per_trade), "PORTFOLIO__MAX_HEAT": str(max_heat)}
    )
    universe = align(universe_bars(FIVE, "5m", T0, T0 + 3 * DAY, seed=seed))
    _, lines = _run(tmp_path, [], config, universe=universe)
    stop_atr = config.risk.stop_atr
    open_risk: dict[str, float] = {}  # symbol -> units x (entry - stop), or a waiting entry's
    waiting: set[str] = set()
    checked = 0
    for line in lines:
        symbol, fill = line["symbol"], line["fill"]
        if symbol in waiting and line["rejection_reason"] != "no_bar":
            waiting.discard(symbol)
            open_risk.pop(symbol, None)  # filled (counted again below) or not filled at all
        for one in (fill, line.get("exit_fill")):
            if one and one["side"] == "BUY":
                open_risk[symbol] = one["units"] * (one["price"] - one["stop_price"])
            elif one:
                open_risk.pop(symbol, None)
        if line["action"] == "BUY":
            detail = line["gate_trace"]["detail"]
            entry = detail["units"] * stop_atr * detail["atr"]
            others = sum(risk for s, risk in open_risk.items() if s != symbol)
            assert others + entry <= max_heat * line["equity"] * (1 + 1e-9)
            open_risk[symbol] = entry  # waiting for its open: counted by its decided size
            waiting.add(symbol)
            checked += 1
    assert checked > 0


class _Planted(Strategy):
    """Buys each symbol once at a planted bar and sells them all later."""

    name = "planted"

    def __init__(self, entries: dict[int, int]) -> None:
        super().__init__()
        self.entries = entries  # n bars -> bar to buy at (by the symbol's bar count, set per symbol)
        self.model_id = "planted"
        self.warmup = 1

    def propose(self, bars: pd.DataFrame) -> Signals:
        side = np.zeros(len(bars), dtype="int8")
        at = self.entries[int(bars["volume"].iloc[0])]
        side[at] = 1
        side[-5] = -1
        return Signals(side, np.ones(len(bars)), np.full(len(bars), np.nan))


def _planted_universe() -> tuple[dict[str, pd.DataFrame], dict[int, int]]:
    # A and B share 95% correlated returns; C moves on its own. Volume tags each symbol for _Planted.
    rng = np.random.default_rng(5)
    n = 800
    common, own_b, own_c = (rng.standard_normal(n) * 0.002 for _ in range(3))
    paths = {
        "AAA/USD": common,
        "BBB/USD": 0.95 * common + np.sqrt(1 - 0.95**2) * own_b,
        "CCC/USD": own_c,
    }
    times = T0 + np.arange(n, dtype="int64") * 60_000
    frames = {}
    for tag, (symbol, r) in enumerate(paths.items(), start=1):
        close = 100 * np.exp(np.cumsum(r))
        open_ = np.concatenate([[100.0], close[:-1]])
        frames[symbol] = make_bars(
            times,
            {
                "open": open_,
                "high": np.maximum(open_, close) * 1.0005,
                "low": np.minimum(open_, close) * 0.9995,
                "close": close,
                "volume": np.full(n, float(tag)),
            },
        )
    return frames, {1: 600, 2: 610, 3: 620}


def _planted_run(config: Any) -> dict[str, dict]:
    frames, entries = _planted_universe()
    universe = align(frames)
    engine = build_book_engine(config, list(frames), "backtest", journal=None)
    for symbol in frames:
        engine.strategies[symbol] = _Planted(entries)
    engine.lines = {s: engine.lines[s] for s in frames}
    lines: dict[str, dict] = {}

    class Keep(JournalWriter):
        def __init__(self) -> None:
            pass

        def write_bytes(self, data: bytes) -> None:
            for raw in data.splitlines():
                line = orjson.loads(raw)
                if line["proposed"] == "BUY":
                    lines[line["symbol"]] = line

        def flush(self) -> None:
            pass

    engine.journal = Keep()
    engine.process(universe)
    return lines


def test_an_entry_correlated_with_an_open_position_is_refused_at_scale_zero_naming_it() -> None:
    config = _config(
        PORTFOLIO__MAX_CORRELATION="0.8",
        PORTFOLIO__CORRELATED_SCALE="0",
        GATES__ENABLED='["data","correlation"]',
    )
    lines = _planted_run(config)
    assert lines["AAA/USD"]["action"] == "BUY"
    refused = lines["BBB/USD"]
    assert refused["rejection_reason"] == "correlated_exposure"
    assert refused["gate_trace"]["detail"]["correlated_with"] == "AAA/USD"
    assert refused["gate_trace"]["detail"]["correlation"] > 0.9
    assert lines["CCC/USD"]["action"] == "BUY"  # independent: taken


def test_an_entry_correlated_with_an_open_position_is_scaled_down_by_the_correlated_scale() -> None:
    free = _planted_run(_config(GATES__ENABLED='["data","correlation"]'))
    scaled = _planted_run(
        _config(
            PORTFOLIO__MAX_CORRELATION="0.8",
            PORTFOLIO__CORRELATED_SCALE="0.5",
            GATES__ENABLED='["data","correlation"]',
        )
    )
    detail = scaled["BBB/USD"]["gate_trace"]["detail"]
    assert scaled["BBB/USD"]["action"] == "BUY"
    assert detail["scaled_by"] == 0.5 and detail["correlated_with"] == "AAA/USD"
    assert detail["units"] == pytest.approx(free["BBB/USD"]["gate_trace"]["detail"]["units"] * 0.5, rel=1e-12)
    assert "scaled_by" not in scaled["CCC/USD"]["gate_trace"]["detail"]


def test_a_single_symbol_chain_leaves_the_portfolio_gates_out() -> None:
    from labkit.config.assembly import build_engine

    engine = build_engine(_config(), "backtest")
    assert [g.name for g in engine.gates] == [
        "halt",
        "data",
        "model",
        "confidence",
        "scalping",
        "turnover",
        "risk_budget",
        "guardrails",
    ]
    assert build_strategy(_config()).model_id == "sma_cross-10-30"


def _comparable(raw: bytes) -> list[dict]:
    # A line less what depends on when and in which run it was written.
    out = []
    for line in raw.splitlines():
        one = orjson.loads(line)
        one.pop("decided_at"), one.pop("correlation_id")
        out.append(one)
    return out


@pytest.mark.parametrize(
    "env",
    [
        {},
        {
            **_RISKY,
            "RISK__TRAILING_ATR": "3",
            "PORTFOLIO__MAX_HEAT": "0.05",
            "PORTFOLIO__MAX_CORRELATION": "0.6",
            "PORTFOLIO__CORRELATION_WINDOW": "50",
            "PORTFOLIO__MAX_OPEN_POSITIONS": "2",
        },
    ],
    ids=["all_in", "risk-exits-heat-correlation"],
)
def test_a_book_decided_in_pieces_writes_the_same_journal_as_in_one_go(tmp_path, env) -> None:
    config = _config(**env)
    bars = universe_bars(FIVE[:3], "5m", T0, T0 + 2 * DAY)
    eth = bars["ETH/USDT"]
    bars["ETH/USDT"] = eth[(eth.index.minute % 35) != 10]  # missing bars too
    universe = align(bars)
    whole, pieces = tmp_path / "whole.jsonl", tmp_path / "pieces.jsonl"
    writer = JournalWriter(whole)
    one = build_book_engine(config, list(universe.symbols), "backtest", journal=writer)
    one.process(universe)
    writer.close()
    writer = JournalWriter(pieces)
    many = build_book_engine(config, list(universe.symbols), "backtest", journal=writer)
    cuts = [0, 1, 2, 40, 41, 200, 333, 334, 500, len(universe)]
    for lo, hi in itertools.pairwise(cuts):
        many.process(universe.rows(lo, hi))
    writer.close()
    assert _comparable(pieces.read_bytes()) == _comparable(whole.read_bytes())
    np.testing.assert_array_equal(many.equity_curve(), one.equity_curve())
    assert many.book.legs == one.book.legs


def test_the_engines_block_counts_and_closed_trades_per_symbol_match_its_journal(tmp_path) -> None:
    config = _config(**{**_RISKY, "PORTFOLIO__MAX_OPEN_POSITIONS": "2"})
    engine, lines = _run(tmp_path, FIVE[:4], config)
    for symbol in FIVE[:4]:
        mine = [line for line in lines if line["symbol"] == symbol]
        refused = [
            (line["gate_trace"]["stage"], line["gate_trace"]["reason"])
            for line in mine
            if line["gate_trace"]["stage"] != "passed"
        ]
        assert engine.blocks[symbol] == Counter(refused)
        pnl = [
            one["pnl"]
            for line in mine
            for one in (line["fill"], line.get("exit_fill"))
            if one and one["pnl"] is not None
        ]
        assert engine.closed_pnl[symbol] == pnl
    assert sum(engine.blocks[FIVE[0]].values()) > 0


def test_due_times_the_source_could_not_deliver_hold_every_symbol_and_the_journal_stays_whole(
    tmp_path,
) -> None:
    from labkit.engine.journal import checked_lines

    universe = align(universe_bars(FIVE[:3], "5m", T0, T0 + DAY))
    path = tmp_path / "book.jsonl"
    writer = JournalWriter(path)
    engine = build_book_engine(_config(), list(universe.symbols), "paper", journal=writer)
    engine.process(universe.rows(0, 100))
    held = {s: leg.position for s, leg in engine.book.legs.items()}
    gap = [int(t) for t in universe.times[100:103]]
    engine.unavailable(gap, now=gap[-1] + 300_000)
    engine.process(universe.rows(103, len(universe)))
    writer.close()
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["seq"] for line in lines] == list(range(len(lines))) and len(lines) == 3 * len(universe)
    missing = lines[300:309]
    assert {line["gate_trace"]["reason"] for line in missing} == {"data_unavailable"}
    assert [line["symbol"] for line in missing] == FIVE[:3] * 3
    assert {line["symbol"]: line["position"] for line in missing[-3:]} == held  # nothing filled meanwhile
    assert len(list(checked_lines(path, FIVE[:3]))) == len(lines)  # a book's journal, whole
