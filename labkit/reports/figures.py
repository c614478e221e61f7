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

from labkit.analysis.metrics import drawdowns, rolling_sharpe
from labkit.analysis.trips import reason_code
from labkit.strategies.sides import BUY, SELL

GREEN, RED, BLUE, GREY, ORANGE = "#1a7f37", "#cf222e", "#0969da", "#6e7781", "#bc4c00"
UNDERWATER = "#eca4a6"  # RED at 40% on white
PURPLE = "#8250df"


def equity_figure(
    journal: pd.DataFrame,
    start_equity: float | None = None,
    title: str = "Equity",
    currency: str = "",
    buy_and_hold: bool = True,
    log_scale: bool = False,
) -> Figure:
    """Return equity (top, with buy-and-hold over the same bars) and the underwater curve (bottom).

    Equity is marked at each bar's close without the exit fee; buy and hold puts the same starting
    equity into the market at the first close and holds it (no costs). `log_scale` draws equity on
    a log axis, where equal percentage moves are equal heights (for long runs that compound).
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
    if log_scale:
        _plain_log_axis(top)
    bottom.set(ylabel="underwater %")
    _time_axis(bottom)
    return fig


def rolling_sharpe_figure(
    journal: pd.DataFrame, window: int, periods_per_year: float, title: str = "Rolling Sharpe ratio"
) -> Figure:
    """Return the Sharpe ratio of bar returns over a trailing `window` of bars, annualised.

    Same definition as the summary's Sharpe (`labkit.analysis.metrics.rolling_sharpe`), computed
    over each trailing window; NaN until a window is full.
    """
    fig = Figure(figsize=(10, 3), layout="constrained")
    ax = fig.subplots()
    if len(journal) > window:
        returns = journal["equity"].astype(float).pct_change()
        shown = rolling_sharpe(returns, window, periods_per_year).to_numpy(dtype=float)
        ax.plot(*envelope(times(journal["ts"]), shown), color=BLUE, lw=0.8)
        ax.axhline(0, color=GREY, lw=0.8)
    ax.set(title=f"{title} ({window} bars, annualised)", ylabel="Sharpe")
    _time_axis(ax)
    return fig


def _plain_log_axis(ax: Any) -> None:
    # A log axis labelled 9,000 and 10,000 rather than 9x10^3: the tables never use powers of ten.
    # Within a decade the minor ticks carry the labels, else only the powers of ten do.
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_yscale("log")
    ax.set_ylabel(f"{ax.get_ylabel()}, log scale")
    plain = FuncFormatter(lambda v, _: f"{v:,.10g}")
    ax.yaxis.set_major_formatter(plain)
    low, high = ax.get_ylim()
    ax.yaxis.set_minor_formatter(plain if low > 0 and high / low < 10 else NullFormatter())


def rolling_risk_figure(
    journal: pd.DataFrame, window: int, periods_per_year: float, start_equity: float | None = None
) -> Figure:
    """Return the annualised volatility (top) beside the Sharpe ratio (bottom) over a trailing window.

    Both from the same per-bar returns and window (`labkit.analysis.tearsheet.rolling_volatility`,
    `labkit.analysis.metrics.rolling_sharpe`), so a Sharpe that jumps can be read against the
    volatility it divides by. NaN until a window is full.
    """
    from labkit.analysis.tearsheet import rolling_volatility

    fig = Figure(figsize=(10, 4.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    if len(journal) > window:
        equity = journal["equity"].astype(float)
        returns = equity.pct_change()
        if start_equity is not None:
            returns.iloc[0] = float(equity.iloc[0]) / start_equity - 1.0
        x = times(journal["ts"])
        volatility = rolling_volatility(returns, window, periods_per_year).to_numpy(dtype=float) * 100
        top.plot(*envelope(x, volatility), color=ORANGE, lw=0.8)
        sharpe = rolling_sharpe(returns, window, periods_per_year).to_numpy(dtype=float)
        bottom.plot(*envelope(x, sharpe), color=BLUE, lw=0.8)
        bottom.axhline(0, color=GREY, lw=0.8)
    top.set(title=f"Rolling volatility and Sharpe ratio ({window} bars, annualised)", ylabel="volatility %")
    bottom.set(ylabel="Sharpe")
    _time_axis(bottom)
    return fig


def returns_histogram_figure(journal: pd.DataFrame, start_equity: float) -> Figure:
    """Return the per-bar returns as a histogram (in %), with the 95% historical VaR and CVaR marked.

    Returns are `labkit.analysis.metrics.equity_returns`, the first from `start_equity`.
    """
    from labkit.analysis.metrics import equity_returns
    from labkit.analysis.tearsheet import conditional_value_at_risk, value_at_risk

    fig = Figure(figsize=(10, 3.2), layout="constrained")
    ax = fig.subplots()
    returns = (
        equity_returns(journal["equity"].to_numpy(dtype=float), start_equity) if len(journal) else np.empty(0)
    )
    var, cvar = value_at_risk(returns), conditional_value_at_risk(returns)
    values = np.asarray(returns, dtype=float)
    values = values[np.isfinite(values)] * 100
    if len(values):
        ax.hist(values, bins=min(80, max(10, len(values) // 20)), color=GREY)
        for value, colour, label in ((var, ORANGE, "VaR 95%"), (cvar, RED, "CVaR 95%")):
            if value == value:
                ax.axvline(value * 100, color=colour, lw=1.2, ls="--", label=f"{label} {value:.3%}")
        ax.legend(loc="best")
        _plain_log_axis(ax)
    ax.set(title="Distribution of the per-bar returns", xlabel="return a bar %", ylabel="bars, log scale")
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


# -- research ------------------------------------------------------------------------------------


def price_volume_figure(bars: pd.DataFrame, title: str = "Price and volume", currency: str = "") -> Figure:
    """Return the close (top) and the volume (bottom) on a shared UTC time axis.

    Up to 600 bars show a volume bar each; more are summed into 600 or fewer equal groups of
    consecutive bars (the axis label says how many bars a group holds).
    """
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    per = 1
    if len(bars):
        x = times(bars.index.to_series())
        top.plot(*envelope(x, bars["close"].to_numpy(dtype=float)), color=BLUE, lw=0.8)
        volume = bars["volume"].to_numpy(dtype=float)
        per = max(1, -(-len(bars) // 600))
        starts = np.arange(0, len(bars), per)
        sums = np.add.reduceat(volume, starts)
        step = float(np.median(np.diff(x))) if len(x) > 1 else 1.0 / 1440
        bottom.bar(x[starts], sums, width=step * per, align="edge", color=GREY, lw=0)
    top.set(title=title, ylabel=f"close ({currency})" if currency else "close")
    bottom.set(ylabel="volume" if per == 1 else f"volume per {per} bars")
    _thousands(top)
    _thousands(bottom)
    _time_axis(bottom)
    return fig


def correlation_figure(table: pd.DataFrame, noise: float, horizon: int) -> Figure:
    """Return each feature's Spearman correlation with the forward return as bars, with the band
    (± `noise`) a correlation of zero stays within by chance."""
    fig = Figure(figsize=(10, max(3.0, 0.28 * len(table) + 1.2)), layout="constrained")
    ax = fig.subplots()
    shown = table.iloc[::-1]
    values = shown["spearman"].fillna(0.0).to_numpy(dtype=float)
    colours = [BLUE if abs(v) > noise else GREY for v in values]
    ax.barh(list(shown.index), values, color=colours)
    ax.axvspan(-noise, noise, color=GREY, alpha=0.15, lw=0, zorder=0, label=f"noise band ±{noise:.3f}")
    ax.axvline(0, color=GREY, lw=0.8)
    ax.legend(loc="lower right")
    ax.set(
        title=f"Spearman correlation of each feature with the return over the next {horizon} bars",
        xlabel="correlation",
    )
    return fig


def exposure_figure(table: pd.DataFrame, title: str = "Exposure and heat") -> Figure:
    """Return a book's gross exposure and heat in % of its equity (top) and the symbols it held (bottom).

    `table` has a row per bar time with ``gross`` and ``heat`` (fractions) and ``held``
    (`labkit.reports.books.exposure`).
    """
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    if len(table):
        x = times(pd.Series(table.index))
        top.fill_between(
            *envelope(x, table["gross"].to_numpy(dtype=float) * 100),
            0,
            color=BLUE,
            lw=0,
            alpha=0.6,
            label="gross exposure",
        )
        if "heat" in table:
            top.step(
                x,
                table["heat"].to_numpy(dtype=float) * 100,
                where="post",
                color=RED,
                lw=0.9,
                label="heat (stop risk)",
            )
            top.legend(loc="upper left", fontsize="small")
        top.axhline(100, color=GREY, lw=0.8, ls="--")
        bottom.step(x, table["held"].to_numpy(dtype=float), where="post", color=ORANGE, lw=0.8)
        bottom.set_ylim(-0.2, max(1.0, float(table["held"].max())) + 0.4)
        bottom.yaxis.get_major_locator().set_params(integer=True)
    top.set(title=title, ylabel="% of equity")
    bottom.set(ylabel="symbols held")
    _time_axis(bottom)
    return fig


def symbol_correlation_figure(matrix: pd.DataFrame, title: str = "Correlation of bar returns") -> Figure:
    """Return a symbol-by-symbol correlation grid as a heatmap, each cell printed (-1 red to 1 blue)."""
    n = len(matrix)
    fig = Figure(figsize=(max(4.0, 0.9 * n + 2.5), max(3.2, 0.8 * n + 1.6)), layout="constrained")
    ax = fig.subplots()
    values = matrix.to_numpy(dtype=float)
    image = ax.imshow(values, cmap="RdBu", vmin=-1.0, vmax=1.0)
    labels = [str(s) for s in matrix.columns]
    ax.set_xticks(range(n), labels, rotation=30, ha="right")
    ax.set_yticks(range(n), labels)
    for i in range(n):
        for j in range(n):
            shown = "n/a" if values[i, j] != values[i, j] else f"{values[i, j]:.2f}"
            ax.text(
                j, i, shown, ha="center", va="center", color="white" if abs(values[i, j]) > 0.6 else "black"
            )
    fig.colorbar(image, ax=ax, label="Pearson correlation")
    ax.set(title=title)
    return fig


def grid_figure(panels: Mapping[str, pd.DataFrame], best: tuple[int, int]) -> Figure:
    """Return one heatmap per panel (a fast x slow grid of a figure), each cell labelled, the best
    cell outlined."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels))
    axes = np.atleast_1d(axes)
    for ax, (name, grid) in zip(axes, panels.items(), strict=True):
        values = grid.to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        bound = float(np.max(np.abs(finite))) if len(finite) else 1.0
        image = ax.imshow(values, cmap="RdYlGn", vmin=-bound or -1, vmax=bound or 1, aspect="auto")
        ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns])
        ax.set_yticks(range(grid.shape[0]), [str(i) for i in grid.index])
        ax.set(title=name, xlabel="slow SMA (bars)", ylabel="fast SMA (bars)")
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                v = values[i, j]
                ax.text(j, i, "" if v != v else f"{v:.2f}", ha="center", va="center", fontsize=9)
        if best[0] in grid.index and best[1] in grid.columns:
            i, j = list(grid.index).index(best[0]), list(grid.columns).index(best[1])
            ax.add_patch(_outline(j, i))
        fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def _outline(x: float, y: float) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="black", lw=2.5)


def calibration_figure(tables: Mapping[str, pd.DataFrame], probability: np.ndarray) -> Figure:
    """Return observed frequency against mean predicted probability per bin, one line per table
    (`labkit.reports.research.calibration_table`), with the diagonal a calibrated model lies on
    (top), and how many out-of-sample rows each probability had (bottom)."""
    fig = Figure(figsize=(8, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], color=GREY, ls="--", lw=1, label="perfectly calibrated")
    for (name, table), colour, marker in zip(tables.items(), (BLUE, ORANGE), ("o", "s"), strict=False):
        if not len(table):
            continue
        sizes = 20 + 200 * table["rows"].to_numpy(dtype=float) / max(1.0, float(table["rows"].max()))
        top.plot(table["mean probability"], table["observed frequency"], color=colour, lw=1)
        top.scatter(
            table["mean probability"],
            table["observed frequency"],
            s=sizes,
            color=colour,
            marker=marker,
            zorder=3,
            label=name,
        )
    top.set(
        title="Calibration out of sample (marker size: rows in the bin)",
        ylabel="observed frequency of an up move",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    top.legend(loc="upper left")
    bottom.hist(probability, bins=np.linspace(0, 1, 41), color=GREY)
    bottom.set(xlabel="predicted probability", ylabel="rows")
    return fig


def importance_figure(table: pd.DataFrame) -> Figure:
    """Return the XGBoost gain share (left) and the permutation AUC drop (right) of each feature,
    side by side on the same feature order."""
    fig = Figure(figsize=(10, max(3.5, 0.28 * len(table) + 1.5)), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    shown = table.iloc[::-1]
    names = list(shown.index)
    left.barh(names, shown["gain share"].fillna(0.0).to_numpy(dtype=float) * 100, color=BLUE)
    left.set(title="XGBoost gain share (final model)", xlabel="% of total gain")
    drop = shown["permutation AUC drop"].fillna(0.0).to_numpy(dtype=float)
    right.barh(names, drop, color=[GREEN if v > 0 else RED for v in drop])
    right.axvline(0, color=GREY, lw=0.8)
    right.set(title="Permutation AUC drop (last fold, out of sample)", xlabel="AUC lost when shuffled")
    return fig


def comparison_figure(
    curves: pd.DataFrame,
    capital: float,
    currency: str = "",
    title: str = "Equity",
    marks: list[pd.Timestamp] | None = None,
) -> Figure:
    """Return the equity of several strategies over the same bars, one line each, with the starting
    capital dashed and vertical dotted lines at `marks` (e.g. where each fold's test block starts)."""
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    colours = [BLUE, ORANGE, PURPLE, GREEN, RED]
    if len(curves):
        x = times(curves.index.to_series())
        for colour, name in zip(colours, curves.columns, strict=False):
            ax.plot(*envelope(x, curves[name].to_numpy(dtype=float)), color=colour, lw=1, label=str(name))
        for i, mark in enumerate(marks or []):
            ax.axvline(
                float(times(pd.Series([mark]))[0]),
                color=GREY,
                ls=":",
                lw=1,
                label="a fold's test block starts" if i == 0 else None,
            )
        ax.legend(loc="best")
    ax.axhline(capital, color=GREY, lw=0.8, ls="--")
    ax.set(title=title, ylabel=f"equity ({currency})" if currency else "equity")
    _thousands(ax)
    _time_axis(ax)
    return fig


def _thousands(ax: Any) -> None:
    # Amounts read as in the tables: 10,000 rather than 10000.
    from matplotlib.ticker import FuncFormatter, ScalarFormatter

    if isinstance(ax.yaxis.get_major_formatter(), ScalarFormatter):
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))


# -- sweeps --------------------------------------------------------------------------------------

# Figures where a lower value is the better one: their heatmaps run green at the low end.
_LOWER_IS_BETTER = ("max_drawdown_pct", "max_drawdown_bars", "annual_volatility_pct", "fees", "seconds")
# Figures whose sign says good or bad: their colours are centred on 0, so a loss is never green.
_SIGNED = (
    "sharpe", "sortino", "calmar", "return_pct", "annual_return_pct", "cagr_pct", "expectancy",
    "avg_trade_pct", "best_trade_pct", "worst_trade_pct", "buy_hold_return_pct",
)  # fmt: skip


def sweep_heatmap_figure(heat: Any) -> Figure:
    """Return a heatmap of a sweep's metric over two grid keys (`labkit.reports.sweeps.Heatmap`):
    each cell the mean over its runs, labelled with the mean and the count of runs, the best run's
    cell outlined. A metric that can be negative is coloured around 0."""
    mean, count = heat.mean, heat.count
    rows, cols = mean.shape
    fig = Figure(
        figsize=(min(12.0, max(7.0, 3.0 + 1.1 * cols)), min(9.0, 2.2 + 0.6 * rows)), layout="constrained"
    )
    ax = fig.subplots()
    values = mean.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    cmap = "RdYlGn_r" if heat.metric in _LOWER_IS_BETTER else "RdYlGn"
    if len(finite) and (heat.metric in _SIGNED or finite.min() < 0):
        bound = float(np.max(np.abs(finite))) or 1.0
        low, high = -bound, bound
    else:
        low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        if low == high:
            low, high = low - 1.0, high + 1.0
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=low, vmax=high, aspect="auto")
    # A window or costs read on two lines ("2026-01-05" over "to 2026-01-07") rather than tilted.
    ax.set_xticks(range(cols), [x.replace(" to ", "\nto ").replace(", ", "\n") for x in heat.x_labels()])
    ax.set_yticks(range(rows), heat.y_labels())
    ax.set(
        title=f"mean {heat.metric} by {heat.y} and {heat.x}\n(averaged over the other keys; n = runs)",
        xlabel=heat.x,
        ylabel=heat.y,
    )
    if rows * cols <= 225:
        size = 9 if rows * cols <= 64 else 7
        for i in range(rows):
            for j in range(cols):
                v, n = values[i, j], int(count.iat[i, j])
                text = ("n/a" if v != v else f"{v:,.2f}" if abs(v) < 1e5 else f"{v:.2g}") + f"\nn={n}"
                ax.text(j, i, text, ha="center", va="center", fontsize=size)
    if heat.best is not None and heat.best[0] in mean.index and heat.best[1] in mean.columns:
        ax.add_patch(_outline(list(mean.columns).index(heat.best[1]), list(mean.index).index(heat.best[0])))
    fig.colorbar(image, ax=ax, shrink=0.8, label=f"mean {heat.metric}")
    return fig


def overfitting_figure(result: Any, label: str = "", annualised: bool = True) -> Figure:
    """Return the logits of a PBO (`labkit.analysis.overfitting.Overfitting`) as a histogram with
    the λ = 0 line, PBO in the title (left), and the chosen configuration's out-of-sample Sharpe
    ratio against its in-sample one in each combination, with their least-squares line (right)."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    logits = np.asarray(result.logits, dtype=float)
    values, counts = np.unique(logits, return_counts=True)
    labels = ("at or below the median (λ ≤ 0)", "above the median (λ > 0)")
    if len(values) <= 60:
        # λ takes one value per out-of-sample rank: a bar each, rather than bins that split them
        width = 0.8 * float(np.min(np.diff(values))) if len(values) > 1 else 0.5
        for side, colour, legend in ((values <= 0, RED, labels[0]), (values > 0, BLUE, labels[1])):
            left.bar(values[side], counts[side], width=width, color=colour, label=legend)
    else:
        edges = np.histogram_bin_edges(logits, bins=40)
        left.hist(logits[logits <= 0], bins=edges, color=RED, label=labels[0])
        left.hist(logits[logits > 0], bins=edges, color=BLUE, label=labels[1])
    left.axvline(0.0, color="black", ls="--", lw=1)
    left.legend(loc="best", fontsize=8, framealpha=0.9)
    left.set(
        title=f"PBO {result.pbo:.2f}: λ ≤ 0 in {result.pbo:.0%} of {result.combinations:,} splits",
        xlabel="logit λ of the in-sample best's out-of-sample rank",
        ylabel="combinations",
    )
    x = np.asarray(result.in_sample_sharpe, dtype=float)
    y = np.asarray(result.out_of_sample_sharpe, dtype=float)
    right.scatter(x, y, s=4, alpha=0.25, color=BLUE, lw=0)
    right.axhline(0.0, color=GREY, lw=0.8)
    slope, intercept = result.degradation_slope, result.degradation_intercept
    keep = np.isfinite(x) & np.isfinite(y)
    if slope == slope and keep.any():
        span = np.array([x[keep].min(), x[keep].max()])
        right.plot(span, intercept + slope * span, color=ORANGE, lw=1.5, label=f"fit: slope {slope:+.2f}")
        right.legend(loc="best", fontsize=8)
    unit = "Sharpe (annualised)" if annualised else "Sharpe (per bar)"
    right.set(
        title="The chosen run of each split: out of sample vs in sample",
        xlabel=f"in-sample {unit}",
        ylabel=f"out-of-sample {unit}",
    )
    if label:
        fig.suptitle(label)
    return fig
