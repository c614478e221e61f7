"""The interactive price chart of the backtest and session pages: candles, fills and the strategy's lines.

`price_chart` builds a Plotly figure from OHLC bars and a decision journal (docs/journal.md);
`chart_bundle` is what a notebook cell displays. The bundle carries the figure twice: as Plotly's
own JSON, which JupyterLab draws natively, and as HTML whose script loads plotly.js from the
placeholder `ASSET`. `labkit.reports.assets` rewrites that placeholder to one copy of plotly.js
shared by every page under ``reports/``, so a page neither embeds 4 MB of script nor loads any
from another host.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labkit.reports.figures import GREEN, RED
from labkit.timeutil import timeframe_ms

# The script tag's src in a chart's HTML; rendering a page points it at the shared copy.
ASSET = "labkit-asset:plotly.min.js"

# More bars than this are drawn as wider candles: a page's data stays a few hundred kB.
MAX_CANDLES = 5_000

# A candle widened to a round number of bars reads better ("5-minute", not "3-minute").
_ROUND_FACTORS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 240, 360, 720, 1440)

_SMA = re.compile(r"sma_cross-(\d+)-(\d+)")
_PX_WIDTH = 1180  # fits the 1280 px page beside its margins


@dataclass(frozen=True)
class Candles:
    """OHLC bars as drawn: `bars` (maybe widened), how many source bars make one, and their width."""

    bars: pd.DataFrame
    factor: int
    words: str  # "5-minute candles from 1-minute bars"


def candles(bars: pd.DataFrame, timeframe: str = "", limit: int = MAX_CANDLES) -> Candles:
    """Return `bars` as at most `limit` candles, each from consecutive bars taken together.

    A wider candle opens at its first bar's open and time, closes at its last bar's close, and
    keeps the highest high and the lowest low, so no extreme is lost. Bars are grouped by position,
    not by clock, so a market's closed hours do not leave empty candles.
    """
    factor = 1
    if len(bars) > limit:
        need = math.ceil(len(bars) / limit)
        factor = next((f for f in _ROUND_FACTORS if f >= need), need)
    unit = _width_words(timeframe, 1)
    if factor == 1:
        return Candles(bars[["open", "high", "low", "close"]], 1, f"{unit} candles" if unit else "candles")
    group = np.arange(len(bars)) // factor
    frame = bars[["open", "high", "low", "close"]].reset_index(drop=True)
    wide = frame.groupby(group).agg({"open": "first", "high": "max", "low": "min", "close": "last"})
    wide.index = bars.index[::factor]
    wider = _width_words(timeframe, factor)
    words = f"{wider} candles from {unit} bars" if unit else f"candles of {factor} bars"
    return Candles(wide, factor, words)


def _width_words(timeframe: str, factor: int) -> str:
    """Return the width of `factor` bars of `timeframe` in words, "" when the timeframe is unknown.

    Examples
    --------
    >>> _width_words("1m", 5), _width_words("1m", 60), _width_words("1h", 1), _width_words("1d", 2)
    ('5-minute', '1-hour', '1-hour', '2-day')
    """
    try:
        ms = timeframe_ms(timeframe) * factor
    except Exception:  # noqa: BLE001 - an unreadable timeframe only costs the words
        return ""
    for size, name in ((86_400_000, "day"), (3_600_000, "hour"), (60_000, "minute"), (1_000, "second")):
        if ms % size == 0:
            return f"{ms // size}-{name}"
    return f"{ms}-millisecond"


def fills(journal: pd.DataFrame) -> pd.DataFrame:
    """Return every fill of `journal` at its own bar and price: ts, side, price, units, entry, reason.

    A line's ``fill`` (at the bar's open) comes before its ``exit_fill`` (an exit on the same bar's
    range). A fill that realised no profit or loss (``pnl`` null) opened the position: an entry.
    """
    rows = []
    if len(journal):
        for column in ("fill", "exit_fill"):
            if column not in journal.columns:
                continue
            for ts, fill in zip(journal["ts"], journal[column], strict=True):
                if isinstance(fill, Mapping) and fill.get("side") in ("BUY", "SELL"):
                    rows.append(
                        {
                            "ts": ts,
                            "side": str(fill["side"]),
                            "price": float(fill["price"]),
                            "units": float(fill["units"]),
                            "entry": fill.get("pnl") is None,
                            "reason": str(fill.get("reason") or ""),
                        }
                    )
    table = pd.DataFrame(rows, columns=["ts", "side", "price", "units", "entry", "reason"])
    return table.sort_values("ts", kind="stable").reset_index(drop=True)


def sma_windows(journal: pd.DataFrame) -> tuple[int, int] | None:
    """Return the fast and slow windows of the journal's ``sma_cross-F-S`` model, None for another."""
    models = [str(m) for m in journal["model"].dropna()] if "model" in journal.columns else []
    found = _SMA.fullmatch(models[-1]) if models else None
    return (int(found[1]), int(found[2])) if found else None


def price_chart(
    bars: pd.DataFrame | None,
    journal: pd.DataFrame,
    title: str = "Price and trades",
    timeframe: str = "",
    why_no_bars: str = "",
) -> Any:
    """Return a Plotly figure of `bars` as candles with the fills of `journal` and the strategy's lines.

    `bars` is indexed by UTC time with open, high, low and close. Without them (None or empty) the
    price is the journal's closes as a line and the title says why (`why_no_bars`). An
    ``sma_cross-F-S`` strategy gets its two moving averages, computed on every bar before any
    candle is widened; a journal with decision confidences gets them in a second row.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    # A moving-average cross decides with full confidence: only a model's confidences say anything.
    confidence = _confidence(journal) if sma_windows(journal) is None else None
    rows = 2 if confidence is not None else 1
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        row_heights=[0.75, 0.25] if rows == 2 else [1.0],
    )
    has_bars = bars is not None and len(bars) > 0
    if has_bars:
        assert bars is not None
        drawn = candles(_decided(bars, journal), timeframe)
        x = _times(drawn.bars.index)
        fig.add_trace(
            go.Candlestick(
                x=x,
                open=drawn.bars["open"].to_numpy(float),
                high=drawn.bars["high"].to_numpy(float),
                low=drawn.bars["low"].to_numpy(float),
                close=drawn.bars["close"].to_numpy(float),
                name="price",
                increasing_line_color=GREEN,
                decreasing_line_color=RED,
            ),
            row=1,
            col=1,
        )
        subtitle = drawn.words
        windows = sma_windows(journal)
        if windows is not None:
            closes = bars["close"].astype(float)
            for window, colour, speed in zip(windows, ("#0969da", "#bf8700"), ("fast", "slow"), strict=True):
                line = closes.rolling(window).mean().loc[drawn.bars.index]
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=line.to_numpy(float),
                        mode="lines",
                        name=f"SMA {window} ({speed})",
                        line={"color": colour, "width": 1.2},
                        hovertemplate=f"SMA {window}: %{{y:,.2f}}<extra></extra>",
                    ),
                    row=1,
                    col=1,
                )
    else:
        closes = journal["price"].astype(float) if len(journal) else pd.Series(dtype=float)
        fig.add_trace(
            go.Scatter(
                x=_times(pd.DatetimeIndex(journal["ts"])),
                y=closes.to_numpy(float),
                mode="lines",
                name="close",
                line={"color": "#57606a", "width": 1},
            ),
            row=1,
            col=1,
        )
        subtitle = "the journal's closes: " + (why_no_bars or "no bars were given")
    _add_fills(fig, fills(journal))
    if confidence is not None:
        fig.add_trace(
            go.Scatter(
                x=_times(pd.DatetimeIndex(confidence.index)),
                y=confidence.to_numpy(float),
                mode="lines",
                name="confidence",
                line={"color": "#8250df", "width": 1},
            ),
            row=2,
            col=1,
        )
        fig.update_yaxes(title_text="confidence", row=2, col=1)
    fig.update_layout(
        title={
            "text": f"{html.escape(title, quote=False)}<br><sup>{html.escape(subtitle, quote=False)}</sup>"
        },
        template="simple_white",
        width=_PX_WIDTH,
        height=620 if rows == 2 else 520,
        dragmode="pan",
        hovermode="closest",
        legend={"orientation": "h", "y": -0.14},
        margin={"l": 60, "r": 20, "t": 70, "b": 70},
    )
    fig.update_xaxes(rangeslider_visible=False, type="date")
    fig.update_yaxes(title_text="price", row=1, col=1)
    return fig


def _decided(bars: pd.DataFrame, journal: pd.DataFrame) -> pd.DataFrame:
    # The bars of the journal's first..last decision: a session's warm-up bars only feed the lines.
    if not len(journal):
        return bars
    times = pd.DatetimeIndex(journal["ts"])
    shown = bars[(bars.index >= times.min()) & (bars.index <= times.max())]
    return shown if len(shown) else bars


def _confidence(journal: pd.DataFrame) -> pd.Series | None:
    # The decision confidences of a model's run, by time; None when no line has one.
    if "confidence" not in journal.columns or not len(journal):
        return None
    values = pd.to_numeric(journal["confidence"], errors="coerce")
    values.index = pd.DatetimeIndex(journal["ts"])
    values = values.dropna()
    return values if len(values) else None


def _add_fills(fig: Any, table: pd.DataFrame) -> None:
    import plotly.graph_objects as go

    for entry, symbol, label in ((True, "triangle-up", "entry"), (False, "triangle-down", "exit")):
        for side, colour in (("BUY", GREEN), ("SELL", RED)):
            rows = table[(table["entry"] == entry) & (table["side"] == side)]
            if not len(rows):
                continue
            texts = [
                f"{t:%Y-%m-%d %H:%M:%S} UTC<br>{s} {label} at {p:,.6g}<br>units {u:,.6g}"
                + (f"<br>exit: {html.escape(r, quote=False)}" if not entry and r else "")
                for t, s, p, u, r in zip(
                    rows["ts"], rows["side"], rows["price"], rows["units"], rows["reason"], strict=True
                )
            ]
            fig.add_trace(
                go.Scatter(
                    x=_times(pd.DatetimeIndex(rows["ts"])),
                    y=rows["price"].to_numpy(float),
                    mode="markers",
                    name=f"{side} {label} ({len(rows)})",
                    marker={
                        "symbol": symbol,
                        "size": 11,
                        "color": colour,
                        "line": {"color": "#24292f", "width": 1},
                    },
                    text=texts,
                    hovertemplate="%{text}<extra></extra>",
                ),
                row=1,
                col=1,
            )


def _times(index: pd.DatetimeIndex) -> np.ndarray:
    # Epoch milliseconds, which a date axis reads as UTC: a compact typed array in the page's JSON.
    times = pd.DatetimeIndex(index)
    times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
    return np.asarray(times.as_unit("ms").asi8, dtype="float64")


@dataclass(frozen=True)
class ChartBundle:
    """A figure as a notebook shows it: Plotly's JSON for JupyterLab, HTML with a caption for a page."""

    figure: Any
    caption: str = ""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        spec = json.loads(self.figure.to_json())
        div = self.figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            config={"scrollZoom": True, "displaylogo": False, "responsive": False},
        )
        caption = f'<p style="max-width:1180px">{html.escape(self.caption)}</p>' if self.caption else ""
        page = f'<script src="{ASSET}"></script>\n{div}\n{caption}'
        return {
            "application/vnd.plotly.v1+json": spec,
            "text/html": page,
            "text/plain": self.caption or "chart",
        }


def chart_bundle(figure: Any, caption: str = "") -> ChartBundle:
    """Return `figure` with its `caption`, for a notebook cell to display."""
    return ChartBundle(figure, caption)


def journal_chart(
    bars: pd.DataFrame | None, where: str, journal: pd.DataFrame, timeframe: str
) -> ChartBundle:
    """Return the chart of a run for its page: `bars` as candles, else the closes and why (`where`).

    `where` says where the bars came from, or why there are none. A book's journal (more than one
    symbol) draws its first symbol's lines, and the caption says so: `bars` must be that symbol's.
    """
    from labkit.reports.books import is_book, universe

    book = ""
    title = "Price and trades"
    if is_book(journal):
        symbols = universe(journal)
        journal = journal[journal["symbol"] == symbols[0]]
        journal = journal[journal["price"].notna()].reset_index(drop=True)
        title = f"Price and trades of {symbols[0]}"
        book = (
            f" This run is a book of {len(symbols)} symbols: the chart shows the first, {symbols[0]} "
            f"(the others, {', '.join(symbols[1:])}, are in the tables and figures below)."
        )
    has_bars = bars is not None and len(bars) > 0
    figure = price_chart(bars, journal, title, timeframe, why_no_bars=where)
    if has_bars:
        caption = f"Candles of {where}. Drag to pan, scroll to zoom, double-click to see it all again."
    else:
        caption = f"No candles: {where}. The line is the journal's closes; the markers are its fills."
    return ChartBundle(figure, caption + book)


def session_bars(view: Any) -> tuple[pd.DataFrame | None, str]:
    """Return the bars of a session's chart (`labkit.reports.sessions.SessionView`) and whence, in words.

    They are the bars the session consumed, from its tape; None, and why, when it holds none.
    """
    bars = view.bars()
    if not len(bars):
        return None, "the session's tape holds no bars"
    return bars, f"the {len(bars):,} bars the session consumed, from its tape"
