"""Tables of a decision journal, whichever report shows it: trades, exits, months, blocks, ledgers.

A session's journal and a backtest's have the same lines (docs/journal.md), so the session, weekly
and backtest reports share these; money is in the currency given, shares in %.
"""

from __future__ import annotations

import pandas as pd

from labkit.analysis.formatting import money, share, significant
from labkit.analysis.trips import blocking_table, exit_reasons, round_trips


def ledger_table(table: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Return a gate ledger (`labkit.readiness.ledger`) with money in `currency` and shares in %."""
    return table.assign(
        net_pnl=[money(v, currency) for v in table["net_pnl"]],
        saved=[money(v, currency) for v in table["saved"]],
        forgone=[money(v, currency) for v in table["forgone"]],
        hit_rate=[share(v, 0) for v in table["hit_rate"]],
    ).set_index(["stage", "reason"])


def ledger_caption(table: pd.DataFrame) -> str:
    """Return what a gate ledger counted and what it was priced with, in words for its page.

    Reads the counts of the table (`labkit.readiness.ledger`) and the fee, slippage, fills, sizing
    and basis in its ``attrs``.

    Examples
    --------
    >>> t = pd.DataFrame({"blocks": [6], "trades": [2], "in_would_have": [3], "while_holding": [1]})
    >>> t.attrs.update(fee=0.001, slippage=0.0005, fills="bar opens", sizing="all in: 100% of the cash")
    >>> print(ledger_caption(t))
    6 entry proposals refused: 2 opened a would-have position (one at a time), 3 fell inside one \
already open, 1 came while a position was already held. Priced at a fee of 0.100% and slippage of \
0.050% per fill (the broker config), filled at bar opens, sized all in: 100% of the cash.
    """
    counts = {c: int(table[c].sum()) if len(table) else 0 for c in ("blocks", "trades", "in_would_have")}
    holding = int(table["while_holding"].sum()) if len(table) else 0
    blocks, trades, inside = counts["blocks"], counts["trades"], counts["in_would_have"]
    unfilled = blocks - trades - inside - holding
    words = (
        f"{blocks} entry proposals refused: {trades} opened a would-have position (one at a time), "
        f"{inside} fell inside one already open, {holding} came while a position was already held"
    )
    if unfilled:
        words += f", {unfilled} could not have filled (the last bar, or no size)"
    a = table.attrs
    basis = a.get("basis", "the broker config")
    return (
        f"{words}. Priced at a fee of {float(a.get('fee', 0.0)):.3%} and slippage of "
        f"{float(a.get('slippage', 0.0)):.3%} per fill ({basis}), filled at {a.get('fills', 'bar opens')}, "
        f"sized {a.get('sizing', 'all in')}."
    )


def exit_ledger_table(table: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Return an exit ledger (`labkit.readiness.counterfactual.exit_ledger`) with money in `currency`."""
    return table.assign(
        effect=[money(v, currency) for v in table["effect"]],
        saved=[money(v, currency) for v in table["saved"]],
        forgone=[money(v, currency) for v in table["forgone"]],
        hit_rate=[share(v, 0) for v in table["hit_rate"]],
    ).set_index("exit")


def blocks_table(journal: pd.DataFrame) -> pd.DataFrame:
    """Return `labkit.readiness.blocking_table` with the share shown as a percentage."""
    table = blocking_table(journal)
    return table.assign(share=[share(s, 2) for s in table["share"]])


def monthly_returns(journal: pd.DataFrame, capital: float) -> pd.DataFrame:
    """Return the return of each calendar month (UTC) in %, a row per year and a column per month.

    A month's return runs from the equity at the end of the month before (the starting capital for
    the first) to the equity at its last close; ``year`` is the year's compounded return. A book's
    journal is read the same way: its last line in a month holds the book's equity then.

    Examples
    --------
    >>> j = pd.DataFrame({"ts": pd.to_datetime(["2026-01-30", "2026-01-31", "2026-02-27"], utc=True),
    ...                   "equity": [100.0, 110.0, 99.0]})
    >>> monthly_returns(j, 100.0).to_dict("records")
    [{'Jan': 10.0, 'Feb': -10.0, 'year': -1.0}]
    """
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    if journal.empty:
        return pd.DataFrame(columns=[*months, "year"])
    ends = journal.set_index(pd.DatetimeIndex(journal["ts"]).tz_convert("UTC").tz_localize(None))["equity"]
    ends = ends.astype(float).groupby(pd.Grouper(freq="ME")).last().dropna()
    starts = ends.shift(1).fillna(capital)
    returns = (ends / starts - 1.0) * 100.0
    table = pd.DataFrame({"year": returns.index.year, "month": returns.index.month, "r": returns.to_numpy()})
    grid = table.pivot(index="year", columns="month", values="r").rename(columns=lambda m: months[m - 1])
    grid["year"] = [((1 + table[table["year"] == y]["r"] / 100).prod() - 1) * 100 for y in grid.index]
    return grid.round(2).rename_axis(index="year (UTC)", columns=None)


def trade_list(journal: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Return every closed trade with its times (UTC), units, prices and money in `currency`.

    A book's journal (more than one symbol) is paired one symbol at a time: its trades come in exit
    order with their ``symbol`` first.
    """
    from labkit.reports.books import book_trips, is_book

    book = is_book(journal)
    trips = book_trips(journal) if book else round_trips(journal)
    if trips.empty:
        return pd.DataFrame(
            columns=[
                "entry (UTC)",
                "exit (UTC)",
                "held",
                "units",
                "entry price",
                "exit price",
                "costs",
                "net PnL",
                "net return",
            ]
        )

    held = (trips["exit_ts"] - trips["entry_ts"]).map(lambda d: str(d).replace("0 days ", ""))
    symbol = {"symbol": trips["symbol"].tolist()} if book else {}
    return pd.DataFrame(
        {
            **symbol,
            # Plain lists throughout: the new index must not re-align any column.
            "entry (UTC)": trips["entry_ts"].dt.strftime("%Y-%m-%d %H:%M").tolist(),
            "exit (UTC)": trips["exit_ts"].dt.strftime("%Y-%m-%d %H:%M").tolist(),
            "held": held.tolist(),
            "units": [significant(u, 6) for u in trips["units"]],
            "entry price": [money(p, currency) for p in trips["entry_price"]],
            "exit price": [money(p, currency) for p in trips["exit_price"]],
            "costs": [money(f + s, currency) for f, s in zip(trips["fees"], trips["slippage"], strict=True)],
            "net PnL": [money(p, currency) for p in trips["net_pnl"]],
            "net return": [share(r, 3, sign=True) for r in trips["net_return"]],
        },
        index=pd.RangeIndex(1, len(trips) + 1, name="trade"),
    )


EXIT_ORDER = ("signal", "stop_loss", "take_profit", "trailing_stop", "time_stop", "emergency_stop")


def exits_table(journal: pd.DataFrame) -> pd.DataFrame:
    """Return the closed trades by why they were exited: count, mean net return, share that won.

    A book's trades are read one symbol at a time, all of them counted together.
    """
    from labkit.reports.books import book_exit_reasons, book_trips, is_book

    book = is_book(journal)
    trips = book_trips(journal) if book else round_trips(journal)
    reasons = book_exit_reasons(journal) if book else exit_reasons(journal)
    columns = ["trades", "mean net return", "hit rate"]
    if trips.empty or len(reasons) != len(trips):
        return pd.DataFrame(columns=columns, index=pd.Index([], name="exit"))
    frame = trips.assign(exit=reasons)
    rows = {}
    for reason in sorted(set(reasons), key=lambda r: (EXIT_ORDER.index(r) if r in EXIT_ORDER else 99, r)):
        group = frame[frame["exit"] == reason]
        rows[reason] = [
            f"{len(group):,}",
            share(group["net_return"].mean(), 3, sign=True),
            share((group["net_pnl"] > 0).mean()),
        ]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).rename_axis("exit")
