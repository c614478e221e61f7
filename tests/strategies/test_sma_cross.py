from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labkit.analysis import metrics
from labkit.analysis.trips import blocking_table, round_trips
from labkit.cli import main
from labkit.config.assembly import build_gates, engine_settings
from labkit.config.loading import load_config
from labkit.data.files import read_bar_file
from labkit.engine.core import Engine
from labkit.engine.journal import JournalWriter, read_journal
from labkit.engine.portfolio import Portfolio
from labkit.gates.base import BUY, HOLD, SELL, BarFacts, Block, DecisionContext, Gate
from labkit.research.backtest import run_backtest
from labkit.research.record import BacktestRecord
from labkit.strategies.base import BUY_CODE, SELL_CODE, Signals, Strategy
from tests import stubs


def _reference_sma_cross(
    bars: pd.DataFrame, fast: int, slow: int, fee: float, slippage: float, capital: float
) -> dict[str, float]:
    """DESIGN.md's sma_cross written the plain way, independently of labkit's engine."""
    close = bars["close"]
    f, s = close.rolling(fast).mean().to_numpy(), close.rolling(slow).mean().to_numpy()
    opens, closes = bars["open"].to_numpy(), close.to_numpy()
    cash, units, pending, entries = capital, 0.0, 0, 0
    equity = []
    for t in range(len(bars)):
        if pending == 1 and units == 0:
            price = opens[t] * (1 + slippage)
            units = cash / (price * (1 + fee))
            cash, entries = 0.0, entries + 1
        elif pending == -1 and units > 0:
            cash, units = units * opens[t] * (1 - slippage) * (1 - fee), 0.0
        pending = 0
        equity.append(cash + units * closes[t])
        if t >= 1 and f[t - 1] < s[t - 1] and f[t] > s[t]:
            pending = 1
        elif t >= 1 and f[t - 1] > s[t - 1] and f[t] < s[t]:
            pending = -1
    curve = np.array([capital, *equity])
    drawdown = float(np.max(1 - curve / np.maximum.accumulate(curve)))
    return {"final_equity": equity[-1], "trades": entries, "max_drawdown_pct": drawdown * 100}


@pytest.mark.parametrize(
    ("fast", "slow", "fee", "slippage"), [(10, 30, 0.001, 0.0), (5, 20, 0.0, 0.0), (10, 30, 0.002, 0.001)]
)
def test_backtest_when_gates_off_matches_reference_sma_cross(fast, slow, fee, slippage):
    # Arrange
    bars = read_bar_file(stubs.FIXTURE_CSV)
    config = load_config(
        None,
        {
            "strategies.sma_cross.fast": fast,
            "strategies.sma_cross.slow": slow,
            "broker.fee": fee,
            "broker.slippage": slippage,
            "gates.enabled": ["data"],
        },
        environ={},
    )
    expected = _reference_sma_cross(bars, fast, slow, fee, slippage, 10_000.0)
    # Act
    result = run_backtest(config, bars).summary
    # Assert
    assert result["trades"] == expected["trades"] > 0
    assert result["final_equity"] == pytest.approx(expected["final_equity"], rel=1e-9)
    assert result["max_drawdown_pct"] == pytest.approx(expected["max_drawdown_pct"], rel=1e-9)


def test_backtest_when_run_on_fixture_gives_golden_numbers():
    # Golden figures of the fixture CSV: change only deliberately, with the reason in the commit.
    bars = read_bar_file(stubs.FIXTURE_CSV)
    config = load_config(None, {"gates.enabled": ["data"]}, environ={})
    result = run_backtest(config, bars).summary
    assert result["bars"] == 600
    assert result["first_ts"] == "2026-01-05T00:00:00Z" and result["last_ts"] == "2026-01-05T09:59:00Z"
    assert (result["trades"], round(result["final_equity"], 2)) == (GOLDEN_TRADES, GOLDEN_FINAL)
    assert round(result["sharpe"], 3) == GOLDEN_SHARPE


def test_backtest_when_flat_market_has_zero_sharpe_and_no_trades():
    bars = stubs.bars(np.full(100, 50.0))
    result = run_backtest(load_config(None, {}, environ={}), bars).summary
    assert result["trades"] == 0
    assert result["sharpe"] == 0.0 and result["return_pct"] == 0.0 and result["max_drawdown_pct"] == 0.0


GOLDEN_TRADES, GOLDEN_FINAL, GOLDEN_SHARPE = 17, 8882.18, -268.732


# --- the summary: every figure from labkit.analysis.metrics, blocks and guardrail halts (issue 9) ---


def _journaled(config_overrides: dict, tmp_path: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Run the fixture with and without a journal; return the summary, the journal and the trips."""
    bars = read_bar_file(stubs.FIXTURE_CSV)
    config = load_config(None, config_overrides, environ={})
    writer = JournalWriter(tmp_path / "decisions.jsonl")
    with_journal = run_backtest(config, bars, writer)
    writer.close()
    without = run_backtest(config, bars)
    assert without.summary == with_journal.summary  # counting blocks needs no journal
    return without.summary, read_journal(tmp_path / "decisions.jsonl"), without.trips


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"gates.guardrails.max_drawdown": 0.01},
        {"gates.guardrails.max_loss_streak": 1},
        {"gates.turnover.max_daily": 3},
        {"gates.enabled": ["data"]},
    ],
    ids=["defaults", "tiny-drawdown", "loss-streak", "max-daily", "gates-off"],
)
def test_backtest_when_journal_written_blocked_counts_match_it(overrides, tmp_path):
    # Act
    summary, journal, _ = _journaled(overrides, tmp_path)
    # Assert
    table = blocking_table(journal)
    expected = [
        {"stage": row.stage, "reason": row.reason, "count": int(row.count)} for row in table.itertuples()
    ]
    assert summary["blocks"] == expected
    assert summary["blocked"] == int(table["count"].sum())


def test_backtest_when_guardrails_max_drawdown_tiny_shows_the_halt_with_start_and_bars(tmp_path):
    # Issue 9: "The backtest summary hides that a guardrail stopped all trading after three weeks."
    # Act
    summary, journal, _ = _journaled({"gates.guardrails.max_drawdown": 0.01}, tmp_path)
    # Assert: from the first guardrails refusal after the last entry taken, to the end
    entries = journal[journal["proposed"] == "BUY"]
    last_taken = entries[entries["action"] == "BUY"].index.max()
    refused = entries[(entries["stage"] == "guardrails") & (entries.index > last_taken)]
    start = refused.index.min()
    assert summary["guardrail_halt"] == {
        "first_ts": "2026-01-05T01:45:00Z",
        "bars": 495,
        "blocks": 15,
        "reasons": {"drawdown_limit": 15},
    }
    assert journal.loc[start, "ts"] == pd.Timestamp("2026-01-05T01:45:00Z")
    assert len(journal) - start == 495 and len(refused) == 15
    assert set(journal.loc[start:, "action"]) <= {"HOLD", "SELL"}  # no entry after it


def test_backtest_when_guardrails_let_the_last_entry_through_reports_no_halt(tmp_path):
    # Arrange: guardrails (and the daily trade limit) loose enough to let every entry through
    loose = {f"gates.guardrails.{key}": value for key, value in LOOSE_GUARDRAILS.items()}
    loose["gates.turnover.max_daily"] = 1000
    # Act
    summary, journal, _ = _journaled(loose, tmp_path)
    # Assert
    assert summary["guardrail_halt"] is None
    assert journal[journal["proposed"] == "BUY"]["action"].iloc[-1] == "BUY"


def test_backtest_when_journal_written_trade_figures_match_its_round_trips(tmp_path):
    # Act
    summary, journal, trips = _journaled({"gates.enabled": ["data"]}, tmp_path)
    # Assert
    expected_trips = round_trips(journal)
    pd.testing.assert_frame_equal(trips, expected_trips)
    stats = metrics.trade_stats(expected_trips)
    assert summary["closed_trades"] == len(expected_trips) == stats["trades"]
    assert summary["profit_factor"] == pytest.approx(stats["profit_factor"])
    assert summary["hit_rate_pct"] == pytest.approx(stats["hit_rate"] * 100)
    assert summary["expectancy"] == pytest.approx(expected_trips["net_pnl"].mean())
    assert summary["best_trade_pct"] == pytest.approx(expected_trips["net_return"].max() * 100)
    assert summary["exposure_pct"] == pytest.approx((journal["position"] > 0).mean() * 100)
    assert (
        pd.Timedelta(summary["max_trade_duration"])
        == (expected_trips["exit_ts"] - expected_trips["entry_ts"]).max()
    )


def test_backtest_when_run_on_fixture_gives_golden_figures_of_the_new_fields():
    # Golden figures of the fixture CSV with gates off (data only): change only deliberately.
    bars = read_bar_file(stubs.FIXTURE_CSV)
    run = run_backtest(load_config(None, {"gates.enabled": ["data"]}, environ={}), bars)
    result, returns = run.summary, metrics.equity_returns(run.equity.to_numpy(), 10_000.0)
    assert result["periods_per_year"] == 525_600
    assert result["annual_volatility_pct"] == pytest.approx(metrics.annual_volatility(returns, 525_600) * 100)
    assert result["sortino"] == pytest.approx(metrics.sortino_ratio(returns, 525_600))
    assert result["psr"] == pytest.approx(metrics.probabilistic_sharpe_ratio(returns))
    assert (result["max_drawdown_bars"], result["max_drawdown_duration"]) == (GOLDEN_DD_BARS, GOLDEN_DD_SPAN)
    assert round(result["buy_hold_return_pct"], 4) == GOLDEN_HOLD_PCT
    assert result["more_bars_needed"] is None  # a losing run: no track record is long enough
    assert result["blocks"] == [{"stage": "data", "reason": "insufficient_data", "count": 30}]


def test_backtest_when_equity_calendar_given_annualises_with_its_periods():
    # Arrange: the same bars read as 252 sessions of 390 one-minute bars
    bars = read_bar_file(stubs.FIXTURE_CSV)
    config = load_config(None, {"gates.enabled": ["data"]}, environ={})
    # Act
    crypto = run_backtest(config, bars).summary
    equities = run_backtest(config, bars, periods_per_year=252 * 390).summary
    # Assert: the per-bar Sharpe is the same; only the root of the year differs
    assert equities["periods_per_year"] == 252 * 390
    assert equities["sharpe"] == pytest.approx(crypto["sharpe"] * math.sqrt(252 * 390 / 525_600))
    assert equities["return_pct"] == crypto["return_pct"]
    assert crypto["annualisation"] == "annualised over 525,600 bars a year (24/7: 365 days)"


def test_backtest_when_session_calendar_is_fx_annualises_over_260_days():
    # Arrange
    bars = read_bar_file(stubs.FIXTURE_CSV)
    fx = load_config(None, {"gates.enabled": ["data"], "session.calendar": "fx"}, environ={})
    # Act
    result = run_backtest(fx, bars).summary
    # Assert
    assert result["periods_per_year"] == 260 * 1440
    assert result["annualisation"] == "annualised over 374,400 bars a year (fx: 260 days)"
    assert result["sharpe"] == pytest.approx(GOLDEN_SHARPE * math.sqrt(260 / 365), abs=1e-3)


def test_backtest_cli_when_guardrails_halt_prints_the_warning_and_top_blocks(tmp_path, capsys):
    # Arrange
    (tmp_path / "labkit.yaml").write_text("gates:\n  guardrails:\n    max_drawdown: 0.01\n")
    # Act
    code = main(["--home", str(tmp_path), "backtest", "--source", f"csv:{stubs.FIXTURE_CSV}", "--yes"])
    # Assert
    out = capsys.readouterr().out
    assert code == 0
    assert "blocked 45: data insufficient_data 30, guardrails drawdown_limit 15" in out
    assert (
        "warning: the guardrails refused every entry from 2026-01-05T01:45:00Z to the end "
        "(495 bars, 82% of the run; 15 entries refused: drawdown_limit)"
    ) in out
    assert "deflated Sharpe" in out and "(1 trial of BTC/USDT 1m)" in out


class _EveryBar(Strategy):
    """Propose BUY on even bars and SELL on odd ones, from the first bar (warm-up 10)."""

    name = "every_bar_test"

    def __init__(self) -> None:
        super().__init__()
        self.model_id, self.warmup = "every-bar", 10

    def propose(self, bars: pd.DataFrame) -> Signals:
        n = len(bars)
        side = np.where(np.arange(n) % 2 == 0, BUY_CODE, SELL_CODE).astype("int8")
        return Signals(side, np.full(n, np.nan), np.full(n, np.nan))


class _EveryGate(Gate):
    """Refuse proposals on bars whose minute is a multiple of `every`; with `runs`, answer for runs too."""

    name, reasons = "every_test", ("every",)

    def __init__(self, name: str, every: int, applies_to: frozenset[str], runs: bool) -> None:
        super().__init__()
        self.name, self.every, self.applies_to, self.runs = name, every, applies_to, runs  # type: ignore[misc]

    def check(self, ctx: DecisionContext) -> Block | None:
        return Block(self.name, f"every:{self.every}") if (ctx.ts // 60_000) % self.every == 0 else None

    def check_bars(self, facts: BarFacts) -> list[Block | None] | None:
        if not self.runs:
            return None
        hit = (facts.ts // 60_000) % self.every == 0
        return [Block(self.name, f"every:{self.every}") if h else None for h in hit.tolist()]

    def describe(self) -> str:
        return f"{self.name}: every {self.every} minutes"


def test_backtest_record_when_gates_answer_alone_and_for_runs_counts_the_first_refusal_of_each_bar(
    tmp_path,
):
    # Arrange: in chain order, an entry gate asked bar by bar ahead of `data` (which answers for
    # runs and refuses the warm-up bars: both refuse minutes 0, 4 and 8), an entry-only gate that
    # answers for runs, the built-in entry gates, and a gate judging every proposal that answers
    # for runs
    config = load_config(None, {}, environ={})
    gates = [
        _EveryGate("alone_first", 4, frozenset({BUY}), runs=False),
        *build_gates(config),
        _EveryGate("entry_runs", 3, frozenset({BUY}), runs=True),
        _EveryGate("all_runs", 5, frozenset({BUY, SELL, HOLD}), runs=True),
    ]
    journal = JournalWriter(tmp_path / "d.jsonl")
    record = BacktestRecord([gate.name for gate in gates if BUY in gate.applies_to])
    engine = Engine(
        engine_settings(config, "backtest"),
        _EveryBar(),
        gates,
        Portfolio.start(10_000.0),
        journal,
        observer=record,
    )
    bars = read_bar_file(stubs.FIXTURE_CSV)
    # Act
    engine.process(bars)
    journal.close()
    # Assert
    table = blocking_table(read_journal(tmp_path / "d.jsonl"))
    expected = [{"stage": r.stage, "reason": r.reason, "count": int(r.count)} for r in table.itertuples()]
    assert record.summary(bars.index)["blocks"] == expected
    assert {"alone_first", "data", "entry_runs", "all_runs"} <= {b["stage"] for b in expected}


GOLDEN_DD_BARS, GOLDEN_DD_SPAN, GOLDEN_HOLD_PCT = 561, "0 days 09:21:00", 0.6337
LOOSE_GUARDRAILS = {"max_loss_streak": 1000, "max_drawdown": 0.5, "daily_loss_limit": 0.5}


def test_metrics_doc_when_read_names_every_summary_field():
    # Arrange
    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")
    bars = read_bar_file(stubs.FIXTURE_CSV)
    # Act
    fields = [*run_backtest(load_config(None, {}, environ={}), bars).summary, "trials", "deflated_sharpe"]
    # Assert
    assert [f for f in fields if f"`{f}`" not in doc] == []
