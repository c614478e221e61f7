"""`backtest`: one backtest of a strategy on bars, as the CLI runs it, returned as a `Result`.

It is ``labkit backtest`` without the command line: the same config (the home's ``labkit.yaml``
under the given overrides), engine, gates, costs and summary, and it counts as a trial of its
market, so its deflated Sharpe ratio pays for every variant tried in the notebook too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labkit.api.inputs import as_path, home_path
from labkit.api.result import Result
from labkit.api.strategies import SideFunction, bind, notebook_strategy
from labkit.errors import ConfigError
from labkit.strategies.base import Strategy, StrategyContext

if TYPE_CHECKING:
    from labkit.config.schema import LabkitConfig
    from labkit.research.backtest import BacktestResult

# Units of a timeframe, largest first, to name a frame's bar spacing.
_UNITS = (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000))


def backtest(
    bars: pd.DataFrame,
    strategy: str | Strategy | type[Strategy] | SideFunction | None = None,
    *,
    fee: float | None = None,
    slippage: float | None = None,
    capital: float | None = None,
    gates: str | list[str] | None = None,
    journal: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    home: str | Path | None = None,
    **params: Any,
) -> Result:
    """Backtest `strategy` on `bars` through labkit's engine, gates and costs; return a `Result`.

    Parameters
    ----------
    bars
        OHLCV bars indexed by UTC open time, as `labkit.load_bars` returns them (its market is read
        from ``bars.attrs``; other frames run as ``session.symbol`` with the spacing of their index).
    strategy
        A registered name (``"sma_cross"``), a `labkit.Strategy` instance or class, or a function
        of bars returning one side per bar (1 buy, 0 hold, -1 sell). None: ``session.strategy``.
    fee, slippage
        Each fill's fee and slippage as fractions of its notional; None keeps ``broker.*``.
    capital
        Starting equity; None keeps ``session.capital``.
    gates
        Gate names to enable in order, or ``"off"`` for the ``data`` stage alone; None keeps
        ``gates.enabled``.
    journal
        A path (str or Path) to write every decision to; it must not exist yet.
    config
        Dotted config overrides, e.g. ``{"risk.sizing": "risk"}``; they win over the arguments above.
    home
        The labkit home (its ``labkit.yaml``, models); None: the usual one.
    **params
        The strategy's parameters: ``strategies.<name>.*`` for a name, the keywords of a function.

    Raises
    ------
    ConfigError
        For an unknown strategy, parameter or config key, a bad side, or a journal that exists.
    """
    from labkit.config.loading import load_config, research_overrides
    from labkit.research.backtest import trial_figures
    from labkit.research.trials import record_trial

    if not len(bars):
        raise ConfigError("bars: the frame holds no bar; load some with labkit.load_bars(...)")
    root = home_path(home)
    named = strategy if isinstance(strategy, str) else None
    overrides = {
        **_market(bars),
        **research_overrides(
            fee=fee, slippage=slippage, gates=gates if gates == "off" else None, mode="paper"
        ),
        "session.capital": capital,
        **_gate_list(gates),
        **_strategy_overrides(named, params),
        **dict(config or {}),
    }
    settings = load_config(root, overrides)
    engine_strategy = _engine_strategy(settings, root, strategy, {} if named else params)
    journal_path = _new_journal(journal)
    result, decisions = _run(settings, bars, root, engine_strategy, journal_path)
    summary = result.summary
    stats = record_trial(settings, bars, summary)
    summary.update(trial_figures(result, settings.session.capital, stats.trials, stats.sharpe_variance))
    return Result(
        summary=pd.Series(summary, dtype="object", name="summary"),
        equity=result.equity,
        trades=result.trips if result.trips is not None else pd.DataFrame(),
        journal=decisions,
        bars=bars,
        capital=settings.session.capital,
    )


def _run(
    settings: LabkitConfig,
    bars: pd.DataFrame,
    home: Path,
    strategy: Strategy,
    journal_path: Path | None,
) -> tuple[BacktestResult, pd.DataFrame]:
    # Every decision is journaled, to the user's file or to one thrown away after it is read.
    from labkit.engine.journal import JournalWriter, read_journal
    from labkit.research.backtest import run_backtest

    with tempfile.TemporaryDirectory(prefix="labkit-backtest-") as scratch:
        path = journal_path if journal_path is not None else Path(scratch) / "journal.jsonl"
        writer = JournalWriter(path)
        try:
            result = run_backtest(settings, bars, writer, home=home, strategy=strategy, trial=False)
        finally:
            writer.close()
        return result, read_journal(path)


def _market(bars: pd.DataFrame) -> dict[str, Any]:
    # The market `load_bars` named, else the spacing of the index as the timeframe.
    attrs = bars.attrs
    market = {f"session.{key}": attrs[key] for key in ("source", "symbol") if attrs.get(key)}
    market["session.timeframe"] = attrs.get("timeframe") or _spacing(bars.index)
    return market


def _spacing(index: pd.Index) -> str:
    """Return the timeframe of bars opening at `index`: its commonest step, e.g. ``1m``."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        raise ConfigError(
            "bars: cannot tell their timeframe; give bars indexed by open time (labkit.load_bars), "
            "or config={'session.timeframe': '1m'}"
        )
    steps = np.diff(index.as_unit("ms").asi8)
    step = int(pd.Series(steps).mode().iloc[0])
    for unit, ms in _UNITS:
        if step > 0 and step % ms == 0:
            return f"{step // ms}{unit}"
    raise ConfigError(
        f"bars: their spacing of {step} ms is not a timeframe; give config={{'session.timeframe': ...}}"
    )


def _gate_list(gates: str | list[str] | None) -> dict[str, Any]:
    if gates is None or gates == "off":
        return {}
    return {"gates.enabled": [gates] if isinstance(gates, str) else list(gates)}


def _strategy_overrides(name: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
    if name is None:
        return {}
    return {"session.strategy": name, **{f"strategies.{name}.{key}": value for key, value in params.items()}}


def _engine_strategy(settings: LabkitConfig, home: Path, strategy: Any, params: dict[str, Any]) -> Strategy:
    from labkit.config.assembly import build_strategy

    if strategy is None or isinstance(strategy, str):
        if params:
            raise ConfigError(f"{', '.join(sorted(params))}: parameters need a strategy to go to")
        return build_strategy(settings, home)
    s = settings.session
    return bind(notebook_strategy(strategy, params), StrategyContext(home, s.symbol, s.timeframe))


def _new_journal(journal: str | Path | None) -> Path | None:
    if journal is None:
        return None
    path = as_path(journal, "journal").expanduser()
    if path.exists():
        raise ConfigError(f"journal: {path} exists; choose another path, or delete it to write it again")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
