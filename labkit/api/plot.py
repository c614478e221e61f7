"""The figure `Result.plot` draws: what was traded, what it earned against holding, and how deep it fell."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from labkit.analysis.metrics import drawdowns
from labkit.reports.figures import BLUE, GREEN, GREY, ORANGE, RED, UNDERWATER, envelope, times
from labkit.strategies.sides import BUY, SELL


def result_figure(
    bars: pd.DataFrame, equity: pd.Series, journal: pd.DataFrame, capital: float, title: str
) -> Figure:
    """Return three panels on one time axis: price with entries and exits, equity and buy and hold, drawdown.

    Fills are marked at the price they filled at, on the bar they filled on; buy and hold puts the
    starting capital into the market at the first close and holds it, without costs.
    """
    fig = Figure(figsize=(10, 7.5), layout="constrained")
    price_ax, equity_ax, drawdown_ax = fig.subplots(3, 1, sharex=True, height_ratios=[2, 2, 1])
    if len(equity):
        x = times(equity.index.to_series())
        close = bars["close"].reindex(equity.index).to_numpy(dtype="float64")
        price_ax.plot(*envelope(x, close), color=GREY, lw=0.8, label="close")
        _fills(price_ax, journal)
        values = equity.to_numpy(dtype="float64")
        equity_ax.plot(*envelope(x, values), color=BLUE, lw=1, label="strategy")
        equity_ax.plot(*envelope(x, capital * close / close[0]), color=ORANGE, lw=0.8, label="buy and hold")
        equity_ax.axhline(capital, color=GREY, lw=0.8, ls="--")
        equity_ax.legend(loc="best")
        drawdown_ax.fill_between(*envelope(x, -drawdowns(values, capital) * 100), 0, color=UNDERWATER, lw=0)
    price_ax.set(title=title, ylabel="price")
    equity_ax.set(ylabel="equity")
    drawdown_ax.set(ylabel="drawdown %")
    drawdown_ax.xaxis_date()
    return fig


def _fills(ax: object, journal: pd.DataFrame) -> None:
    # A line's own fill and the exit that filled on the entry's bar (a stop or target) both count.
    for prefix in ("fill", "exit_fill"):
        side_col, price_col = f"{prefix}_side", f"{prefix}_price"
        if side_col not in journal or not len(journal):
            continue
        for side, marker, color, label in ((BUY, "^", GREEN, "entry"), (SELL, "v", RED, "exit")):
            rows = journal[journal[side_col] == side]
            if len(rows):
                ax.scatter(  # type: ignore[attr-defined]
                    times(rows["ts"]),
                    rows[price_col].to_numpy(dtype="float64"),
                    marker=marker,
                    color=color,
                    s=36,
                    zorder=3,
                    label=label if prefix == "fill" else None,
                )
    if journal.get("fill_side") is not None and journal["fill_side"].notna().any():
        ax.legend(loc="best")  # type: ignore[attr-defined]
