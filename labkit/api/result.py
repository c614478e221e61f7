"""`Result`: what a notebook backtest returns, with its headline figures in HTML and one plot."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from labkit.analysis.formatting import money, number, percent

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The headline figures `_repr_html_` shows: (label, summary field, formatter).
HEADLINE = (
    ("Return", "return_pct", percent),
    ("Buy and hold", "buy_hold_return_pct", percent),
    ("Max drawdown", "max_drawdown_pct", percent),
    ("Sharpe", "sharpe", number),
    ("Deflated Sharpe", "deflated_sharpe", number),
    ("Trades", "trades", str),
    ("Hit rate", "hit_rate_pct", percent),
    ("Fees", "fees", money),
    ("Final equity", "final_equity", money),
)


@dataclass(frozen=True, repr=False)
class Result:
    """One backtest: its figures, equity curve, round trips and every decision.

    Attributes
    ----------
    summary
        The ``labkit backtest --json`` fields, as a pandas Series (``summary["sharpe"]``).
    equity
        Equity at each bar's close, the open position marked at the close.
    trades
        The closed round trips (`labkit.analysis.trips.round_trips` columns).
    journal
        Every decision, as `labkit.read_journal` returns a journal.
    bars
        The bars the backtest ran on.
    capital
        The starting equity.
    """

    summary: pd.Series
    equity: pd.Series
    trades: pd.DataFrame
    journal: pd.DataFrame
    bars: pd.DataFrame = field(default_factory=pd.DataFrame)
    capital: float = 0.0

    def plot(self) -> Figure:
        """Return a figure: price with entries and exits, equity against buy and hold, and drawdown."""
        from labkit.api.plot import result_figure

        return result_figure(self.bars, self.equity, self.journal, self.capital, self._title())

    def _title(self) -> str:
        s = self.summary
        return f"{s.get('strategy', 'backtest')}: {s.get('first_ts')} .. {s.get('last_ts')}"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{label}</th><td style='text-align:right'>"
            f"{html.escape(shown(self.summary.get(key)))}</td></tr>"
            for label, key, shown in _headline_formats()
        )
        caption = html.escape(f"{self._title()} ({self.summary.get('bars', 0):,} bars)")
        return f"<table><caption style='text-align:left'>{caption}</caption>{rows}</table>"

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"Result({s.get('strategy')}, {s.get('bars')} bars, return {percent(s.get('return_pct'))}, "
            f"sharpe {number(s.get('sharpe'))}, {s.get('trades')} trades)"
        )


def _headline_formats() -> tuple[tuple[str, str, Any], ...]:
    return tuple((label, key, _or_na(shown)) for label, key, shown in HEADLINE)


def _or_na(shown: Any) -> Any:
    # `str` would print None as "None"; the formatters already say n/a.
    return (lambda value: "n/a" if value is None else shown(value)) if shown is str else shown
