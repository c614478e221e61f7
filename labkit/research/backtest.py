"""Backtests: replay a range of bars through the engine and summarise the result.

The summary's definitions are fixed so results can be checked against other backtesters:
`trades` counts entries (a position opened, closed or still open); the open position is marked at
the last close without an exit fee; `sharpe` is the mean over the standard deviation of per-bar
equity returns (``ddof=1``, the first from the starting capital), annualised with the bars a year
of the market's calendar holds (`labkit.analysis.calendar`): 365 days for crypto, which trades
every day; ``annualisation`` says which. Every figure comes from `labkit.analysis.metrics`.

The summary also says what the gates refused, by stage and reason, and whether the guardrails
stopped all entries for good; a backtest counts them without writing a journal, as the engine
reports them (`labkit.research.record`).

A backtest of a saved model says how much of it the model had already seen: ``model`` is the
resolved id (``latest`` resolved), ``model_in_sample`` the model's training window plus its
label horizon (`labkit.models.artifacts.in_sample_span`) and ``in_sample_fraction`` the share of
the backtest's bars that open inside it: 1.0 on the training window, 0.0 after it, and 0.0 for a
strategy that no model decides (nothing was fit to any bar); None when the model's window is not
recorded. ``calendar`` is the market calendar the figures were annualised over; a journal's
summary file (`save_summary`) keeps both for the backtest report, and how the run sized its entries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit._io import read_json, write_json_atomic
from labkit.analysis import metrics
from labkit.analysis.calendar import session_calendar
from labkit.analysis.formatting import finite
from labkit.config.assembly import build_engine
from labkit.config.ranges import bars_to_decide, replay_range
from labkit.config.schema import LabkitConfig
from labkit.data.bars import ts_ms
from labkit.data.files import is_file_spec
from labkit.data.registry import open_source
from labkit.engine.core import SLICE_BARS
from labkit.engine.journal import JournalWriter
from labkit.errors import ConfigError
from labkit.gates.base import BUY
from labkit.research.record import BacktestRecord
from labkit.strategies.base import Strategy
from labkit.timeutil import DAY_MS, iso_s, timeframe_ms


@dataclass(frozen=True)
class BacktestResult:
    summary: dict[str, Any]
    equity: pd.Series  # equity at each close
    trips: pd.DataFrame | None = None  # closed round trips (`labkit.analysis.trips.round_trips` columns)


# A synthetic backtest given no range runs the market's latest bars, this many.
DEFAULT_SYNTHETIC_BARS = 10_000


def backtest_config(config: LabkitConfig) -> LabkitConfig:
    """Return `config` with the default range filled in: the last 10,000 synthetic bars when unsaid."""
    s = config.session
    if s.source == "synthetic" and not (s.since or s.max_bars):
        return config.model_copy(
            update={"session": s.model_copy(update={"max_bars": DEFAULT_SYNTHETIC_BARS})}
        )
    return config


def planned_bars(config: LabkitConfig, now: int) -> int | None:
    """Return how many bars a backtest of `config` runs, counted without loading them.

    None when only the data can say: a bar file, or a source read without a range.
    """
    s = config.session
    if is_file_spec(s.source) or not (s.since or s.max_bars):
        return None
    return bars_to_decide(config, now)


def load_backtest_bars(config: LabkitConfig, home: Path, now: int) -> pd.DataFrame:
    """Return the bars a backtest of `config` runs: its range, or the source's whole history.

    Raises ConfigError naming ``session.since`` when the range holds no bar.
    """
    s = config.session
    since, until = replay_range(config, now) if (s.since or s.max_bars) else (0, 2**62)
    source = open_source(s.source, home, s.seed, data=config.data, exchanges=config.exchanges)
    bars = source.bars(s.symbol, s.timeframe, since, until)
    if s.max_bars:
        bars = bars.iloc[-s.max_bars :]
    if not len(bars):
        raise ConfigError(f"session.since: no bars of {s.symbol} {s.timeframe} in the requested range")
    return bars


def run_backtest(
    config: LabkitConfig,
    bars: pd.DataFrame,
    journal: JournalWriter | None = None,
    progress: Callable[[int], object] | None = None,
    periods_per_year: float | None = None,
    home: Path | None = None,
    strategy: Strategy | None = None,
    trial: bool = True,
) -> BacktestResult:
    """Replay `bars` through a fresh engine and return its summary, equity curve and round trips.

    `progress`, when given, is called with the number of bars decided after each slice (a progress
    bar's ``update``); the engine decides a range the same whole or in slices. `periods_per_year`
    annualises the figures; None means the bars a year of the market's calendar holds
    (``session.calendar``; for ``auto``, 365 days for 24/7 sources, 252 sessions for equities).
    The run is a trial of its market, appended to the user's trial ledger
    (`labkit.research.trials`); ``trial=False`` leaves that to a caller that records it itself.
    """
    engine = build_engine(config, "backtest", journal=journal, home=home, strategy=strategy)
    record = BacktestRecord([gate.name for gate in engine.chains[BUY]])
    engine.observer = record
    if progress is None:
        engine.process(bars)
    else:
        for lo in range(0, len(bars), SLICE_BARS):
            progress(engine.process(bars.iloc[lo : lo + SLICE_BARS]))
    equity = pd.Series(engine.equity_curve(), index=bars.index, name="equity")
    port = engine.portfolio
    tf_ms = timeframe_ms(config.session.timeframe)
    recorded_calendar = None
    if periods_per_year is None:
        s = config.session
        calendar = session_calendar(s.source, s.calendar, ts_ms(bars), tf_ms, s.exchange)
        periods_per_year, annualisation = calendar.periods_per_year(tf_ms), calendar.annualisation(tf_ms)
        recorded_calendar = calendar.to_dict()
    else:
        annualisation = f"annualised over {periods_per_year:,.6g} bars a year (as given)"
    summary = summarize(equity, config.session.capital, tf_ms, periods_per_year)
    summary["annualisation"] = annualisation
    summary["calendar"] = recorded_calendar
    summary.update(
        trades=port.entries,
        fills=port.entries + port.exits,
        closed_trades=port.exits,
        open_position=port.position,
        fees=port.fees_paid,
        slippage=port.slippage_paid,
        strategy=engine.strategy.model_id,
        gates=list(config.gates.enabled),
        fee=config.broker.fee,
        slippage_rate=config.broker.slippage,
    )
    trips, open_since = record.round_trips(bars.index)
    summary.update(trade_summary(trips, bars, open_since if port.position > 0 else None))
    summary.update(record.summary(bars.index))
    summary.update(model_evidence(engine.strategy, home, ts_ms(bars)))
    meta_model = getattr(engine.strategy, "meta_id", None)
    if meta_model is not None:  # the meta gate judged the entries (labkit.gates.meta)
        summary["meta_model"] = meta_model
        # The meta model was fit to bars too: judged on them, its gate proves as little.
        summary.update(_meta_in_sample(home, meta_model, ts_ms(bars)))
    if journal is not None:
        settings = engine.settings
        s = config.session
        recorded = {
            "risk": settings.risk.model_dump(mode="json"),
            "confidence_floor": settings.confidence_floor,
            # Where the bars came from, so the report can draw them again (a journal has closes only).
            "source": s.source,
            "symbol": s.symbol,
            "timeframe": s.timeframe,
            "seed": s.seed,
        }
        save_summary(journal.path, summary, recorded)
    if trial:
        from labkit.research.trials import append_trial, trial_record

        append_trial(trial_record(config, bars, summary))
    return BacktestResult(summary, equity, trips)


def model_evidence(strategy: Strategy, home: Path | None, times_ms: Any) -> dict[str, Any]:
    """Return ``model``, ``model_in_sample`` and ``in_sample_fraction`` of a backtest's bars.

    `strategy` decided the bars whose open times are `times_ms`; only the model strategy bound to
    a saved model of `home` (None: the usual home) has a training window to be inside.
    """
    from labkit.home import resolve_home
    from labkit.models.artifacts import in_sample_span, model_trained_at
    from labkit.strategies.model import ModelStrategy

    nothing_fit = {"model": None, "model_in_sample": None, "in_sample_fraction": 0.0}
    # A primary behind a meta gate is still what decides: judge its own model's window.
    strategy = getattr(strategy, "primary", strategy)
    if not isinstance(strategy, ModelStrategy):
        return nothing_fit
    root = home if home is not None else resolve_home(None)
    model_id = strategy.model_id
    if model_trained_at(root, model_id) is None:
        return nothing_fit  # bound to no model (a session's model that could not load): it held
    span = in_sample_span(root, model_id)
    if span is None:
        return {"model": model_id, "model_in_sample": None, "in_sample_fraction": None}
    return {
        "model": model_id,
        "model_in_sample": {"since": iso_s(span[0]), "until": iso_s(span[1])},
        "in_sample_fraction": in_sample_fraction(times_ms, span),
    }


def in_sample_fraction(times_ms: Any, span: tuple[int, int]) -> float:
    """Return the share of bars opening inside the half-open `span` of epoch ms (0.0 without bars).

    Examples
    --------
    >>> in_sample_fraction([0, 60_000, 120_000, 180_000], (0, 120_000))
    0.5
    """
    times = np.asarray(times_ms, dtype="int64")
    if not len(times):
        return 0.0
    return float(np.mean((times >= span[0]) & (times < span[1])))


def _meta_in_sample(home: Path | None, meta_model: str, times_ms: Any) -> dict[str, Any]:
    # ``meta_model_in_sample`` and ``meta_in_sample_fraction``, as `model_evidence` says a model's.
    from labkit.home import resolve_home
    from labkit.models.artifacts import in_sample_span

    span = in_sample_span(home if home is not None else resolve_home(None), meta_model)
    if span is None:
        return {"meta_model_in_sample": None, "meta_in_sample_fraction": None}
    return {
        "meta_model_in_sample": {"since": iso_s(span[0]), "until": iso_s(span[1])},
        "meta_in_sample_fraction": in_sample_fraction(times_ms, span),
    }


def in_sample_warning(summary: dict[str, Any]) -> str | None:
    """Return, in plain words, why a backtest of a model on bars it was trained on proves little.

    None when no model decided or none of the bars were inside its training window and embargo
    (``in_sample_fraction`` 0); a meta model (``meta_model``) is judged the same way.
    """
    meta = summary.get("meta_model")
    if meta is not None and summary.get("meta_in_sample_fraction") != 0:
        warned = in_sample_warning(
            {
                "model": f"{meta} (the meta gate's)",
                "in_sample_fraction": summary.get("meta_in_sample_fraction"),
                "model_in_sample": summary.get("meta_model_in_sample"),
            }
        )
        if warned is not None:
            return warned
    model, fraction = summary.get("model"), summary.get("in_sample_fraction")
    if model is None or fraction == 0:
        return None
    span = summary.get("model_in_sample")
    if fraction is None or not span:
        return (
            f"model {model} does not record the bars it was trained on, so this backtest cannot "
            "tell whether it is judging the model on its own training data"
        )
    share = "under 1%" if fraction < 0.01 else f"{fraction:.0%}"
    return (
        f"{share} of these bars were already seen by model {model}: it was trained on "
        f"{span['since']} .. {span['until']} (its training window, and the bars its labels looked "
        "ahead to). A model looks good on data it was fit to, so these figures are no evidence that "
        f"it works; backtest it on bars from {span['until']} on"
    )


def summary_path(journal: Path) -> Path:
    """Return where the summary of the last backtest that wrote `journal` is kept: beside it."""
    return journal.with_name(journal.name + ".summary.json")


def save_summary(journal: Path, summary: dict[str, Any], sizing: dict[str, Any] | None = None) -> None:
    """Keep `summary` beside `journal`, for the report: its calendar, what the model had seen, its sizing.

    `sizing` is how the run sized its entries, which its journal does not say: ``risk`` (the
    config's ``risk`` section) and ``confidence_floor`` (a model's entry threshold, None for other
    strategies), as `labkit.analysis.execution.session_sizing` gives them. The backtest report's gate
    ledger sizes its would-have entries by them. `run_backtest` adds the ``source``, ``symbol``,
    ``timeframe`` and ``seed`` of its bars, from which the report reloads them for its price chart.
    """
    write_json_atomic(summary_path(journal), _json_safe({**summary, **(sizing or {})}))


def _json_safe(value: Any) -> Any:
    # A figure that is not finite is "no value" in the file, as in the --json figures.
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_summary(journal: Path) -> dict[str, Any] | None:
    """Return the summary `save_summary` kept beside `journal`, or None when there is none."""
    return read_json(summary_path(journal))


def summarize(
    equity: pd.Series, capital: float, tf_ms: int, periods_per_year: float | None = None
) -> dict[str, Any]:
    """Return the equity curve's figures (the --json fields): return, risk, ratios, drawdown.

    ``periods_per_year`` annualises (None: the bars in a 365-day year). A Sharpe ratio without
    dispersion (no trade on a flat market) is 0.0; other figures that are not defined are None.
    """
    ppy = float(periods_per_year) if periods_per_year else 365 * DAY_MS / tf_ms
    values = equity.to_numpy(dtype="float64")
    if not len(values):
        return {
            "bars": 0,
            "first_ts": None,
            "last_ts": None,
            "final_equity": capital,
            "return_pct": 0.0,
            "max_drawdown_pct": 0.0,
            "sharpe": 0.0,
            "periods_per_year": ppy,
        }
    returns = metrics.equity_returns(values, capital)
    sharpe = metrics.sharpe_ratio(returns, ppy)
    times = ts_ms(equity.to_frame())
    drawdown = metrics.max_drawdown(values, capital)
    underwater = metrics.drawdown_duration(values, capital, equity.index)
    years = (int(times[-1]) + tf_ms - int(times[0])) / (metrics.YEAR_DAYS * DAY_MS)
    moments = metrics.sharpe_moments(returns)
    psr = mintrl = math.nan
    if moments is not None:
        psr = metrics.psr_from_moments(moments.sharpe, moments.n, moments.skew, moments.kurtosis)
        mintrl = metrics.mintrl_from_moments(moments.sharpe, moments.skew, moments.kurtosis)
    return {
        "bars": len(values),
        "first_ts": iso_s(int(times[0])),
        "last_ts": iso_s(int(times[-1])),
        "final_equity": float(values[-1]),
        "return_pct": float((values[-1] / capital - 1.0) * 100.0),
        "max_drawdown_pct": drawdown * 100.0,
        "sharpe": sharpe if math.isfinite(sharpe) else 0.0,
        "periods_per_year": ppy,
        "annual_return_pct": _pct(metrics.annual_return(returns, ppy)),
        "cagr_pct": _pct(metrics.cagr(returns, years)),
        "annual_volatility_pct": _pct(metrics.annual_volatility(returns, ppy)),
        "sortino": finite(metrics.sortino_ratio(returns, ppy)),
        "calmar": finite(metrics.calmar_ratio(returns, ppy, drawdown=drawdown)),
        "max_drawdown_bars": underwater.bars,
        "max_drawdown_duration": _duration(underwater.span),
        "psr": finite(psr),
        "min_track_record_bars": finite(mintrl),
        "more_bars_needed": max(0, math.ceil(mintrl - len(values))) if math.isfinite(mintrl) else None,
    }


def trade_summary(trips: pd.DataFrame, bars: pd.DataFrame, open_since: Any = None) -> dict[str, Any]:
    """Return the closed trades' figures, the exposure and buy and hold over the same bars.

    `trips` are round trips (`labkit.analysis.trips.round_trips`); `open_since` the entry of a position
    still open after the last bar. Figures that are not defined (no closed trade) are None.
    """
    stats = metrics.trade_stats(trips)
    hold_return, hold_drawdown = metrics.buy_and_hold(bars["close"].to_numpy(dtype="float64"))
    return {
        "hit_rate_pct": _pct(stats["hit_rate"]),
        "profit_factor": finite(stats["profit_factor"]),
        "expectancy": finite(stats["expectancy"]),
        "avg_trade_pct": _pct(stats["avg_return"]),
        "best_trade_pct": _pct(stats["best_trade"]),
        "worst_trade_pct": _pct(stats["worst_trade"]),
        "avg_trade_duration": _duration(stats["avg_duration"]),
        "max_trade_duration": _duration(stats["max_duration"]),
        "exposure_pct": _pct(metrics.exposure(trips, bars.index, open_since)),
        "buy_hold_return_pct": _pct(hold_return),
        "buy_hold_max_drawdown_pct": _pct(hold_drawdown),
    }


def trial_figures(
    result: BacktestResult, capital: float, trials: int, sharpe_variance: float
) -> dict[str, Any]:
    """Return ``trials`` and ``deflated_sharpe``: the backtest's Sharpe deflated by the trials of its market.

    `trials` and `sharpe_variance` (per observation) are those recorded for the symbol and
    timeframe (`labkit.research.trials.record_trial`), this backtest included.
    """
    returns = metrics.equity_returns(result.equity.to_numpy(dtype="float64"), capital)
    dsr = metrics.deflated_sharpe_ratio(returns, trials, sharpe_variance)
    return {"trials": trials, "deflated_sharpe": finite(dsr)}


def _pct(value: float) -> float | None:
    fraction = finite(value)
    return None if fraction is None else fraction * 100.0


def _duration(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(pd.Timedelta(value).round("s"))
