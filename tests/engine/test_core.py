from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from labkit.config.assembly import build_engine
from labkit.config.loading import load_config
from labkit.data.files import read_bar_file
from labkit.engine.journal import FIELDS, JournalWriter, iter_lines
from tests import stubs


def _config(**overrides):
    base = {"broker.fee": 0.001, "broker.slippage": 0.0005}
    base.update(overrides)
    return load_config(None, base, environ={})


def _journal_run(tmp_path: Path, bars: pd.DataFrame, chunks: list[int] | None = None, **overrides):
    path = tmp_path / "decisions.jsonl"
    journal = JournalWriter(path)
    engine = build_engine(_config(**overrides), "paper", journal=journal)
    if chunks is None:
        engine.process(bars)
    else:
        start = 0
        for size in chunks:
            engine.process(bars.iloc[start : start + size])
            start += size
    journal.close()
    return engine, list(iter_lines(path))


def _without_clock(lines):
    return [{k: v for k, v in line.items() if k not in ("decided_at", "correlation_id")} for line in lines]


@pytest.fixture(scope="module")
def fixture_bars() -> pd.DataFrame:
    return read_bar_file(stubs.FIXTURE_CSV)


def test_engine_when_replaying_writes_one_schema_line_per_bar(tmp_path, fixture_bars):
    # Act
    _, lines = _journal_run(tmp_path, fixture_bars)
    # Assert
    assert len(lines) == len(fixture_bars)
    assert [line["seq"] for line in lines] == list(range(len(fixture_bars)))
    assert all(tuple(line) == FIELDS and line["schema"] == 1 for line in lines)
    assert lines[0]["rejection_reason"] == "insufficient_data:1"
    assert lines[0]["gate_trace"]["stage"] == "data"
    assert {line["gate_trace"]["stage"] for line in lines} >= {"data", "passed"}


def test_engine_when_replaying_keeps_cash_plus_position_equal_to_equity(tmp_path, fixture_bars):
    _, lines = _journal_run(tmp_path, fixture_bars)
    for line in lines:
        assert line["cash"] >= 0.0
        assert line["position"] >= 0.0
        assert line["equity"] == pytest.approx(line["cash"] + line["position"] * line["price"], rel=1e-12)


def test_engine_when_order_decided_fills_at_next_open(tmp_path, fixture_bars):
    _, lines = _journal_run(tmp_path, fixture_bars)
    opens = fixture_bars["open"].to_numpy()
    orders = [line for line in lines if line["action"] != "HOLD"]
    assert orders, "the fixture must contain crosses"
    for order in orders:
        if order["seq"] + 1 < len(lines):
            fill = lines[order["seq"] + 1]["fill"]
            assert fill["order_seq"] == order["seq"] and fill["side"] == order["action"]
            slip = 1.0005 if fill["side"] == "BUY" else 0.9995
            assert fill["price"] == pytest.approx(opens[order["seq"] + 1] * slip)


def test_engine_when_fed_bar_by_bar_decides_like_a_replay(tmp_path, fixture_bars):
    # Arrange: a live session sees one bar per call; a backtest sees the whole range at once.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # Act
    _, replay = _journal_run(tmp_path / "a", fixture_bars)
    _, live = _journal_run(tmp_path / "b", fixture_bars, chunks=[1] * len(fixture_bars))
    # Assert
    assert _without_clock(live) == _without_clock(replay)


def test_engine_when_resumed_from_saved_state_continues_identically(tmp_path, fixture_bars):
    # Arrange: run the first 250 bars, serialise the book, start a new engine from it
    (tmp_path / "a").mkdir()
    _, whole = _journal_run(tmp_path / "a", fixture_bars)
    path = tmp_path / "resumed.jsonl"
    journal = JournalWriter(path)
    first = build_engine(_config(), "paper", journal=journal)
    first.process(fixture_bars.iloc[:250])
    saved = orjson.loads(orjson.dumps(first.portfolio.to_dict()))
    # Act
    from labkit.engine.portfolio import Portfolio

    second = build_engine(_config(), "paper", portfolio=Portfolio.from_dict(saved), journal=journal)
    second.prime(fixture_bars.iloc[:250])
    second.process(fixture_bars)  # already-decided bars are skipped
    journal.close()
    # Assert
    assert _without_clock(list(iter_lines(path))) == _without_clock(whole)


def test_engine_when_signal_on_last_bar_never_fills():
    # Arrange: closes fall, then the last bar crosses up
    closes = np.concatenate([np.linspace(110, 100, 40), [130.0]])
    bars = stubs.bars(closes)
    engine = build_engine(
        _config(**{"strategies.sma_cross.fast": 2, "strategies.sma_cross.slow": 5}), "backtest"
    )
    # Act
    engine.process(bars)
    # Assert
    assert engine.portfolio.pending_side == 1
    assert engine.portfolio.entries == 0


def test_engine_when_shadow_fills_with_the_paper_costs(fixture_bars):
    # Issue 9: shadow fills were costless, so readiness judged a record that paid nothing.
    shadow, paper = build_engine(_config(), "shadow"), build_engine(_config(), "paper")
    shadow.process(fixture_bars)
    paper.process(fixture_bars)
    assert shadow.portfolio.entries > 0 and shadow.portfolio.fees_paid > 0
    assert (shadow.portfolio.fees_paid, shadow.portfolio.slippage_paid) == (
        paper.portfolio.fees_paid,
        paper.portfolio.slippage_paid,
    )


def test_engine_when_max_daily_reached_blocks_entries(tmp_path, fixture_bars):
    _, lines = _journal_run(tmp_path, fixture_bars, **{"gates.turnover.max_daily": 2})
    blocked = [line for line in lines if line["rejection_reason"] == "max_daily_trades"]
    assert blocked
    assert blocked[0]["gate_trace"]["detail"] == {"trades_today": 2, "limit": 2}
    assert sum(1 for line in lines if line["action"] == "BUY") == 2  # one UTC day in the fixture


def test_engine_when_confidence_missing_writes_null_not_nan(tmp_path, fixture_bars):
    _, lines = _journal_run(tmp_path, fixture_bars.iloc[:40])
    raw = (tmp_path / "decisions.jsonl").read_text()
    assert "NaN" not in raw
    assert lines[-1]["confidence"] is None or not math.isnan(lines[-1]["confidence"])


def test_engine_when_exit_signal_while_flat_holds_without_a_block(tmp_path, fixture_bars):
    _, lines = _journal_run(tmp_path, fixture_bars)
    flat_sells = [line for line in lines if line["proposed"] == "SELL" and line["position"] == 0.0]
    assert flat_sells
    for line in flat_sells:
        assert line["action"] == "HOLD" and line["rejection_reason"] is None
        assert line["gate_trace"] == {"stage": "passed", "reason": "already_flat", "detail": {}}


@pytest.mark.parametrize(("late_ms", "expected"), [(30_000, None), (90_000, 1.5), (150_000, "stale_data")])
def test_engine_when_bar_decided_late_marks_it_or_holds_it_stale(tmp_path, fixture_bars, late_ms, expected):
    # Arrange: a live engine deciding one bar well after it closed (catching up after an outage)
    path = tmp_path / "d.jsonl"
    journal = JournalWriter(path)
    engine = build_engine(_config(), "paper", journal=journal)
    engine.process(fixture_bars.iloc[:100])
    bar = fixture_bars.iloc[100:101]
    close = int(bar.index[0].value // 1_000_000) + 60_000
    # Act
    engine.process(bar, now=close + late_ms)
    journal.close()
    # Assert
    line = list(iter_lines(path))[-1]
    if expected == "stale_data":
        assert line["rejection_reason"] == "stale_data"
    else:
        assert line["gate_trace"]["stage"] == "passed"
        assert line["gate_trace"]["detail"].get("late_bars") == expected


@pytest.mark.parametrize(
    ("overrides", "halted", "stage", "reason"),
    [
        ({}, True, "halt", "emergency_stop"),
        ({"gates.turnover.max_daily": 1}, False, "turnover", "max_daily_trades"),
        ({"gates.risk_budget.min_notional": 1e9}, False, "risk_budget", "risk_budget_exhausted"),
        ({"gates.guardrails.max_drawdown": 0.0001}, False, "guardrails", "drawdown_limit"),
    ],
)
def test_engine_when_a_gate_refuses_entries_its_block_reaches_the_journal(
    tmp_path, fixture_bars, overrides, halted, stage, reason
):
    # Arrange: each built-in entry gate made to refuse, through the config as a user would
    from labkit.engine.portfolio import Portfolio

    config = _config(**overrides)
    book = Portfolio.start(config.session.capital)
    book.halted, book.halt_reason = halted, "emergency_stop" if halted else None
    path = tmp_path / "d.jsonl"
    journal = JournalWriter(path)
    engine = build_engine(config, "paper", portfolio=book, journal=journal)
    # Act
    engine.process(fixture_bars)
    journal.close()
    # Assert
    lines = list(iter_lines(path))
    blocked = [line for line in lines if line["gate_trace"]["stage"] == stage]
    assert blocked and all(line["proposed"] == "BUY" for line in blocked)
    assert {line["rejection_reason"] for line in blocked} == {reason}
    assert all(line["rejection_reason"] == line["gate_trace"]["reason"] for line in blocked)


@pytest.mark.parametrize(
    ("template", "proposed", "trace"),
    [("hold_template", "HOLD", "PASSED"), ("flat_template", "SELL", "ALREADY_FLAT")],
)
def test_journal_when_hold_line_comes_from_prepared_bytes_equals_the_encoded_dict(template, proposed, trace):
    # The prepared-bytes paths (a HOLD nothing blocked, an exit while flat) and the dict path must
    # write the same bytes, hostile names and numbers included.
    from labkit.engine import journal
    from labkit.engine.journal import LineEncoder, number

    rng = np.random.default_rng(3)
    numbers = [0.0, -0.0, 5e-324, 1e-300, 1.5e300, 123456789.123456789, 1e16, 1e-7, 64123.5, 2.0**53 + 1]
    for session, symbol in [("demo", "BTC/USDT"), ('a%b"c\\d', "ünï/€%s"), ("x" * 64, "%d%%")]:
        enc = LineEncoder(session, "paper", symbol, "1m", "sma_cross-10-30", "ab%12")
        for _ in range(200):
            seq = int(rng.integers(0, 10**9))
            values = [
                float(rng.choice(numbers)) * float(rng.choice([1.0, rng.random() * 1e6])) for _ in range(5)
            ]
            conf = None if rng.random() < 0.5 else values[1]
            millis = int(rng.integers(0, 1000))
            decided = f"2026-01-05T00:00:01.{millis:03d}Z"
            price, _, pos, cash, equity = values
            line = enc.line(
                seq,
                "2026-01-05T00:00:00Z",
                decided,
                price,
                proposed,
                "HOLD",
                conf,
                getattr(journal, trace),
                None,
                pos,
                cash,
                equity,
            )
            fast = getattr(enc, template) % (
                seq,
                b"2026-01-05T00:00:00",  # the template adds the Z
                b"2026-01-05T00:00:01",
                millis,
                number(price),
                number(conf),
                number(pos),
                number(cash),
                number(equity),
                seq,
            )
            assert fast == enc.encode(line)


def test_journal_when_quiet_lines_are_written_in_a_run_equal_the_encoded_dicts():
    # The run path bakes the decision time and the book into the templates once per 256 lines;
    # hostile names must not reach the slots.
    from labkit.engine import journal
    from labkit.engine.journal import LineEncoder, number

    rng = np.random.default_rng(5)
    for session, symbol in [("demo", "BTC/USDT"), ('a%b"c\\d', "ünï/€%s"), ("x" * 64, "%d%%")]:
        enc = LineEncoder(session, "paper", symbol, "1m", "m%b", "ab%12")
        n = 600
        prices, confs, equities = rng.random(n) * 1e5, rng.random(n), rng.random(n) * 1e4
        flat = (rng.random(n) < 0.4).tolist()
        lines = enc.quiet_lines(
            7,
            flat,
            [b"2026-01-05T00:00:00"] * n,
            [number(v) for v in prices.tolist()],
            [number(v) for v in confs.tolist()],
            number(0.5),
            number(123.25),
            [number(v) for v in equities.tolist()],
            lambda: 1767571201005,
        )
        expected = [
            enc.encode(
                enc.line(
                    7 + i,
                    "2026-01-05T00:00:00Z",
                    "2026-01-05T00:00:01.005Z",
                    float(prices[i]),
                    "SELL" if flat[i] else "HOLD",
                    "HOLD",
                    float(confs[i]),
                    journal.ALREADY_FLAT if flat[i] else journal.PASSED,
                    None,
                    0.5,
                    123.25,
                    float(equities[i]),
                )
            )
            for i in range(n)
        ]
        assert lines == expected
