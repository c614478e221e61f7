"""Report figures, built on `matplotlib.figure.Figure` directly (no pyplot state), so they render
the same under any backend and a cell shows each figure once, through `show`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from labkit.readiness.metrics import drawdowns
from labkit.readiness.trips import reason_code
from labkit.strategies.base import BUY, SELL

GREEN, RED, BLUE, GREY, ORANGE = "#1a7f37", "#cf222e", "#0969da", "#6e7781", "#bc4c00"
UNDERWATER = "#eca4a6"  # RED at 40% on white


def equity_figure(
    journal: pd.DataFrame,
    start_equity: float | None = None,
    title: str = "Equity",
    currency: str = "",
    buy_and_hold: bool = True,
) -> Figure:
    """Return equity (top, with buy-and-hold over the same bars) and the underwater curve (bottom).

    Equity is marked at each bar's close without the exit fee; buy and hold puts the same starting
    equity into the market at the first close and holds it (no costs).
    """
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    if len(journal):
        x = times(journal["ts"])
        equity = journal["equity"].to_numpy(dtype=float)
        base = equity[0] if start_equity is None else start_equity
        top.plot(*envelope(x, equity), color=BLUE, lw=1, label="strategy")
        if buy_and_hold:
            prices = journal["price"].to_numpy(dtype=float)
            top.plot(*envelope(x, base * prices / prices[0]), color=ORANGE, lw=0.8, label="buy and hold")
            top.legend(loc="best")
        top.axhline(base, color=GREY, lw=0.8, ls="--")
        # opaque: with alpha, the sub-pixel slivers of a long curve show as stripes
        bottom.fill_between(*envelope(x, -drawdowns(equity, base) * 100), 0, color=UNDERWATER, lw=0)
    top.set(title=title, ylabel=f"equity ({currency})" if currency else "equity")
    bottom.set(ylabel="underwater %")
    _time_axis(bottom)
    return fig


def rolling_sharpe_figure(
    journal: pd.DataFrame, window: int, periods_per_year: float, title: str = "Rolling Sharpe ratio"
) -> Figure:
    """Return the Sharpe ratio of bar returns over a trailing `window` of bars, annualised.

    Same definition as the summary's Sharpe (mean over standard deviation with ddof=1, zero
    risk-free rate), computed over each trailing window; NaN until a window is full.
    """
    fig = Figure(figsize=(10, 3), layout="constrained")
    ax = fig.subplots()
    if len(journal) > window:
        returns = journal["equity"].astype(float).pct_change()
        roll = returns.rolling(window)
        sharpe = roll.mean() / roll.std(ddof=1) * periods_per_year**0.5
        shown = sharpe.where(roll.std(ddof=1) > 0).to_numpy(dtype=float)
        ax.plot(*envelope(times(journal["ts"]), shown), color=BLUE, lw=0.8)
        ax.axhline(0, color=GREY, lw=0.8)
    ax.set(title=f"{title} ({window} bars, annualised)", ylabel="Sharpe")
    _time_axis(ax)
    return fig


def actions_figure(journal: pd.DataFrame, title: str = "Actions on price") -> Figure:
    """Return the close price with the BUY and SELL decisions marked where they were taken."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    if len(journal):
        x = times(journal["ts"])
        ax.plot(*envelope(x, journal["price"].to_numpy(dtype=float)), color=GREY, lw=0.8, label="close")
        for side, marker, colour in ((BUY, "^", GREEN), (SELL, "v", RED)):
            taken = (journal["action"] == side).to_numpy()
            rows = journal[taken]
            ax.scatter(
                x[taken],
                rows["price"],
                marker=marker,
                color=colour,
                s=36,
                zorder=3,
                label=f"{side} ({len(rows)})",
            )
        ax.legend(loc="best")
    ax.set(title=title, ylabel="price")
    _time_axis(ax)
    return fig


def blocks_figure(journal: pd.DataFrame, title: str = "Decisions by blocking stage and reason") -> Figure:
    """Return a horizontal bar chart of decisions per stage/reason, passed ones included."""
    fig = Figure(figsize=(10, 3.5), layout="constrained")
    ax = fig.subplots()
    if len(journal):
        labels = [
            f"{s}/{reason_code(r)}" if s != "passed" else "passed"
            for s, r in zip(journal["stage"].fillna("passed"), journal["reason"], strict=True)
        ]
        counts = pd.Series(labels).value_counts().sort_values()
        colours = [GREEN if label == "passed" else RED for label in counts.index]
        ax.barh(list(counts.index), counts.to_numpy(), color=colours)
        ax.set_xscale("log")
        ax.set_xlim(right=counts.max() * 4)  # room for the largest count's label
        for y, value in enumerate(counts.to_numpy()):
            ax.annotate(str(value), (value, y), xytext=(3, 0), textcoords="offset points", va="center")
    ax.set(title=title, xlabel="decisions (log scale)")
    return fig


def coverage_figure(
    per_day: list[Mapping[str, Any]] | tuple[Mapping[str, Any], ...], threshold: float
) -> Figure:
    """Return the coverage of each day as bars, with the threshold line."""
    fig = Figure(figsize=(10, 3), layout="constrained")
    ax = fig.subplots()
    days = [d["day"] for d in per_day]
    values = [(d["coverage"] if d["coverage"] == d["coverage"] else 0.0) * 100 for d in per_day]
    ax.bar(days, values, color=[GREEN if v >= threshold * 100 else RED for v in values])
    ax.axhline(threshold * 100, color=GREY, ls="--", lw=1)
    ax.set(title="Coverage per day", xlabel="day (UTC)", ylabel="decisions / bars expected %", ylim=(0, 105))
    return fig


def show(fig: Figure) -> None:
    """Display a figure as an embedded PNG in the notebook."""
    from IPython.display import Image, display

    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    display(Image(data=png(fig), format="png"), metadata={"alt": titles[0] if titles else "figure"})


def png(fig: Figure) -> bytes:
    """Return a figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def times(ts: pd.Series) -> np.ndarray:
    """Return UTC times as matplotlib date numbers: plotting floats is far cheaper than datetimes."""
    return np.asarray(mdates.date2num(pd.DatetimeIndex(ts).tz_convert("UTC").tz_localize(None).to_numpy()))


def envelope(x: np.ndarray, y: np.ndarray, width: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """Return the points of `y` a `width`-pixel-wide line can show: each column's first, lowest,
    highest and last point, in order.

    A week of minute bars or a million-bar backtest draws the same picture, the troughs and peaks
    included (a drawdown is never smoothed away), at the cost of a few thousand points.
    """
    n = len(y)
    if n <= 4 * width:
        return x, y
    size = -(-n // width)
    grid = np.concatenate([y, np.full(size * width - n, np.nan)]).reshape(width, size)
    starts = np.arange(width) * size
    low = np.where(np.isnan(grid), np.inf, grid).argmin(axis=1)
    high = np.where(np.isnan(grid), -np.inf, grid).argmax(axis=1)
    ends = np.minimum(starts + size, n) - 1
    keep = np.unique(np.concatenate([starts, starts + low, starts + high, ends]))
    keep = keep[keep < n]
    return x[keep], y[keep]


def _time_axis(ax: Any) -> None:
    locator = mdates.AutoDateLocator(tz="UTC")
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz="UTC"))
    ax.set_xlabel("time (UTC)")
