"""What every report's tables share: a table shown in full, UTC times, a header's parameters and
data range, and what a code version string means."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import pandas as pd


def table(frame: pd.DataFrame | Any) -> None:
    """Display a table (a frame or a pandas Styler) in full: no truncated cells or rows."""
    from IPython.display import display

    with pd.option_context("display.max_colwidth", None, "display.max_rows", 1000):
        display(frame)


def utc(ts: Any) -> str:
    """Return an instant as ``YYYY-MM-DD HH:MM UTC`` (seconds shown when it has any).

    Examples
    --------
    >>> utc(pd.Timestamp("2026-01-05T09:30:00Z")), utc(pd.Timestamp("2026-01-05 09:30:15", tz="UTC"))
    ('2026-01-05 09:30 UTC', '2026-01-05 09:30:15 UTC')
    """
    stamp = pd.Timestamp(ts)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC" if stamp.second else "%Y-%m-%d %H:%M UTC")


def data_range(frame: pd.DataFrame) -> str:
    """Return the first and last bar decided (UTC) and how many bars were decided."""
    if not len(frame):
        return "no bars decided"
    return f"{utc(frame['ts'].iloc[0])} to {utc(frame['ts'].iloc[-1])} ({len(frame):,} bars decided)"


def shown_parameters(parameters: Mapping[str, Any]) -> str:
    """Return a report's parameters as ``name='value'`` pairs, without the home (a local path)."""
    return ", ".join(f"{k}={v!r}" for k, v in parameters.items() if k != "home") or "none"


def describe_code_version(version: str) -> str:
    """Say what a `labkit.home.code_version` string means: version, git commit, dirty or clean tree.

    Examples
    --------
    >>> describe_code_version("0.1.0+ge4fe642d7a09.dirty")
    'labkit 0.1.0, git commit e4fe642d7a09, dirty tree (uncommitted changes)'
    >>> describe_code_version("0.1.0")
    'labkit 0.1.0 (no git checkout: commit unknown)'
    """
    import re

    found = re.fullmatch(r"(?P<version>[^+]+)\+g(?P<commit>[0-9a-f]+)(?P<dirty>\.dirty)?", version)
    if found is None:
        return f"labkit {version} (no git checkout: commit unknown)"
    tree = "dirty tree (uncommitted changes)" if found["dirty"] else "clean tree"
    return f"labkit {found['version']}, git commit {found['commit']}, {tree}"


# -- the tearsheet: what a QuantStats user looks at first ------------------------------------------

# Annual figures from less data than this are extrapolations, and say so.
_EXTRAPOLATED_DAYS = 30
# Beyond this an annual figure (a fraction) says nothing but "huge": 10,000% a year.
_SHOWN_ANNUAL = 100.0


def _bar_returns(journal: pd.DataFrame, capital: float) -> Any:
    from labkit.analysis.metrics import equity_returns

    return equity_returns(journal["equity"].to_numpy(dtype=float), capital)


def extrapolation_note(journal: pd.DataFrame) -> str:
    """Return " (extrapolated from N days)" when the journal spans under a month, else "".

    An annual figure of five days of bars ("CAGR -100%") is a projection, not a figure the run
    earned; the CLI and every table mark it the same way.
    """
    days = _span_days(journal)
    return f" (extrapolated from {days:.1f} days)" if days < _EXTRAPOLATED_DAYS else ""


def _span_days(journal: pd.DataFrame) -> float:
    if len(journal) < 2:
        return 0.0
    return float((journal["ts"].iloc[-1] - journal["ts"].iloc[0]) / pd.Timedelta(days=1))


def _annual_share(value: float, days: float) -> str:
    # An annual fraction: "n/a", a percentage, "beyond ±10,000%" when it explodes; marked when
    # it is extrapolated from under a month of bars.
    from labkit.analysis.formatting import share

    if value != value:
        return share(value)
    shown = share(value, 2) if abs(value) < _SHOWN_ANNUAL else f"beyond {'+' if value > 0 else '-'}10,000%"
    return shown + (f" (extrapolated from {days:.1f} days)" if days < _EXTRAPOLATED_DAYS else "")


def _annual_ratio(value: float, days: float) -> str:
    from labkit.analysis.formatting import ratio

    marked = value == value and days < _EXTRAPOLATED_DAYS
    return ratio(value) + (f" (extrapolated from {days:.1f} days)" if marked else "")


def _figure_table(items: Mapping[str, tuple[str, str]], name: str = "figure") -> pd.DataFrame:
    return pd.DataFrame(
        {"value": [v for v, _ in items.values()], "definition": [d for _, d in items.values()]},
        index=pd.Index(list(items), name=name),
    )


def drawdown_periods_table(journal: pd.DataFrame, capital: float, top: int = 5) -> pd.DataFrame:
    """Return the `top` deepest drawdown periods of a journal's equity (`analysis.tearsheet`).

    Times are UTC; a period still open at the last bar says "not recovered", its length running
    to that bar.
    """
    from labkit.analysis.formatting import duration, share
    from labkit.analysis.tearsheet import drawdown_periods

    columns = ["peak (UTC)", "valley (UTC)", "recovery (UTC)", "depth", "bars", "length"]
    if journal.empty:
        return pd.DataFrame(columns=columns)
    periods = drawdown_periods(journal["equity"].to_numpy(dtype=float), capital, journal["ts"], top)
    rows = [
        [
            utc(p.peak),
            utc(p.valley),
            "not recovered" if p.recovery is pd.NaT else utc(p.recovery),
            share(-p.depth, 2),
            f"{p.bars:,}",
            duration(p.length),
        ]
        for p in periods.itertuples()
    ]
    return pd.DataFrame(rows, columns=columns, index=pd.RangeIndex(1, len(rows) + 1, name="rank"))


def benchmark_table(
    journal: pd.DataFrame, capital: float, periods_per_year: float, annualisation: str = ""
) -> pd.DataFrame:
    """Return alpha, beta, information ratio and correlation against buy and hold of the same market.

    Per-bar returns, the benchmark holding from the first close (`analysis.tearsheet`), annualised
    by `periods_per_year`, the bars a year of the market's calendar holds (`annualisation` says so).
    """
    from labkit.analysis.formatting import ratio
    from labkit.analysis.tearsheet import against_benchmark, buy_and_hold_returns

    returns = _bar_returns(journal, capital)
    benchmark = buy_and_hold_returns(journal["price"].to_numpy(dtype=float))
    fig = against_benchmark(returns, benchmark, periods_per_year)
    days = _span_days(journal)
    per_year = annualisation or f"annualised over {periods_per_year:,.0f} bars a year"
    items = {
        "alpha (annual)": (
            _annual_share(fig.alpha, days),
            f"(1 + mean(r - beta x b))^(bars a year) - 1; {per_year}",
        ),
        "beta": (ratio(fig.beta), "cov(r, b) / var(b): 1 moves with the market, 0 ignores it"),
        "information ratio (annual)": (
            _annual_ratio(fig.information_ratio, days),
            "mean(r - b) / std(r - b, ddof=1) x √(bars a year)",
        ),
        "correlation": (ratio(fig.correlation), "Pearson's, of r with b"),
        "bars compared": (
            f"{fig.bars:,}",
            "r: the run's per-bar returns; b: buy and hold's, from the first close",
        ),
    }
    return _figure_table(items)


def distribution_table(
    journal: pd.DataFrame, capital: float, trips: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Return the per-bar return distribution and the closed trades' streaks, Kelly and SQN.

    VaR and CVaR are historical at 95% and per bar, negative for a loss; kurtosis is excess (0 for a
    normal distribution). The trade figures read the closed round trips (`analysis.trips`), or
    `trips` when given (a book's, read one symbol at a time).
    """
    from labkit.analysis import tearsheet as ts
    from labkit.analysis.formatting import ratio, share
    from labkit.analysis.trips import round_trips

    returns = _bar_returns(journal, capital) if len(journal) else np.empty(0)
    trips = round_trips(journal) if trips is None else trips
    pnl = trips["net_pnl"].to_numpy(dtype=float) if len(trips) else np.empty(0)
    trade_returns = trips["net_return"].to_numpy(dtype=float) if len(trips) else np.empty(0)
    wins, losses = ts.streaks(pnl)
    items = {
        "VaR 95% (a bar)": (share(ts.value_at_risk(returns), 3), "the 5th percentile of the per-bar returns"),
        "CVaR 95% (a bar)": (
            share(ts.conditional_value_at_risk(returns), 3),
            "the mean of the worst 5% of the per-bar returns",
        ),
        "skew": (ratio(ts.skewness(returns)), "bias-corrected; below 0: a longer tail of losses"),
        "kurtosis (excess)": (
            ratio(ts.excess_kurtosis(returns)),
            "bias-corrected, 0 for a normal distribution",
        ),
        "tail ratio": (ratio(ts.tail_ratio(returns)), "|95th percentile| / |5th percentile| of the returns"),
        "most wins in a row": (f"{wins:,}", f"of {len(trips):,} closed trades"),
        "most losses in a row": (f"{losses:,}", f"of {len(trips):,} closed trades"),
        "Kelly fraction": (
            share(ts.kelly_fraction(trade_returns), 1),
            "p - (1 - p) / (mean win / mean loss) of the trades' net returns; n/a without a win and a loss",
        ),
        "SQN": (
            ratio(ts.system_quality_number(pnl)),
            "√trades x mean / std(ddof=1) of the trades' net results",
        ),
    }
    return _figure_table(items)


def yearly_returns_table(journal: pd.DataFrame, capital: float) -> pd.DataFrame:
    """Return each UTC year's return in %, the run's and buy and hold's (from the first close)."""
    from labkit.analysis.tearsheet import yearly_returns

    columns = ["return %", "buy and hold %", "difference %"]
    if journal.empty:
        return pd.DataFrame(columns=columns)
    times = pd.DatetimeIndex(journal["ts"])
    run = yearly_returns(pd.Series(journal["equity"].to_numpy(dtype=float), index=times), capital)
    prices = journal["price"].to_numpy(dtype=float)
    held = yearly_returns(pd.Series(prices, index=times), float(prices[0]))
    table = pd.DataFrame({columns[0]: run * 100.0, columns[1]: held * 100.0})
    table[columns[2]] = table[columns[0]] - table[columns[1]]
    return table.round(2).rename_axis("year (UTC)")


class _Tearsheeted(Protocol):
    @property
    def journal(self) -> pd.DataFrame: ...
    @property
    def capital(self) -> float: ...
    @property
    def periods_per_year(self) -> float: ...
    @property
    def annualisation(self) -> str: ...
    @property
    def is_book(self) -> bool: ...
    @property
    def per_bar(self) -> pd.DataFrame: ...
    def trips(self) -> pd.DataFrame: ...


class TearsheetTables:
    """The tearsheet tables of a report view that has `journal`, `capital`, `periods_per_year` and
    `annualisation` (`labkit.reports.sessions.SessionView`, `labkit.reports.backtests.BacktestView`).

    A book's journal (more than one symbol) is read per bar time (`per_bar`): the book's equity at
    each bar's end, and as its ``price`` the universe's equal-weight buy and hold, so every table
    sets the book against holding the universe; its trades are paired symbol by symbol.
    """

    @property
    def is_book(self: _Tearsheeted) -> bool:
        """True when the journal is a book's over a universe (more than one symbol)."""
        from labkit.reports.books import is_book

        return is_book(self.journal)

    @cached_property
    def per_bar(self: _Tearsheeted) -> pd.DataFrame:
        """The run as one line per bar: the journal itself, or a book's last line at each time.

        A book's per-bar ``price`` is the universe's equal-weight buy and hold
        (`labkit.reports.books.book_bars`).
        """
        if not self.is_book:
            return self.journal
        from labkit.reports.books import book_bars

        return book_bars(self.journal, self.capital)

    def symbol_journal(self: _Tearsheeted, symbol: str) -> pd.DataFrame:
        """Return one symbol's lines (all of them for a single symbol)."""
        from labkit.reports.books import symbol_frames

        return symbol_frames(self.journal)[symbol] if self.is_book else self.journal

    def trips(self: _Tearsheeted) -> pd.DataFrame:
        """Return the closed round trips, a book's paired per symbol (`labkit.reports.books.book_trips`)."""
        from labkit.analysis.trips import round_trips
        from labkit.reports.books import book_trips

        return book_trips(self.journal) if self.is_book else round_trips(self.journal)

    def drawdown_periods(self: _Tearsheeted, top: int = 5) -> pd.DataFrame:
        """Return the `top` deepest drawdown periods of the equity, formatted: peak, valley, recovery."""
        return drawdown_periods_table(self.per_bar, self.capital, top)

    def against_benchmark(self: _Tearsheeted) -> pd.DataFrame:
        """Return alpha, beta, information ratio and correlation against buy and hold of the market
        (a book's: the universe's, in equal parts).

        Per-bar returns, annualised by the market's calendar (`annualisation`).
        """
        return benchmark_table(self.per_bar, self.capital, self.periods_per_year, self.annualisation)

    def return_distribution(self: _Tearsheeted) -> pd.DataFrame:
        """Return VaR/CVaR (95%, per bar), skew, excess kurtosis, tail ratio, streaks, Kelly and SQN."""
        return distribution_table(self.per_bar, self.capital, self.trips() if self.is_book else None)

    def yearly_returns(self: _Tearsheeted) -> pd.DataFrame:
        """Return each UTC year's return in %, beside buy and hold's (a book's: the universe's)."""
        return yearly_returns_table(self.per_bar, self.capital)
