"""Round trips and blocks: what a journal traded, and what its gates refused."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from labkit.strategies.sides import BUY, SELL

DATA_ERRORS = ("stale_data", "data_unavailable")


_TRIP_COLUMNS = (
    "entry_ts",
    "exit_ts",
    "units",
    "entry_price",
    "exit_price",
    "entry_cost",
    "fees",
    "slippage",
    "gross_pnl",
    "net_pnl",
    "net_return",
)


def reason_code(reason: str | None) -> str | None:
    """Return a block reason without its detail suffix, so that counts group by cause.

    Examples
    --------
    >>> reason_code("insufficient_data:12")
    'insufficient_data'
    >>> reason_code("halted:daily_loss_limit")
    'halted'
    """
    if reason is None or (isinstance(reason, float) and math.isnan(reason)):
        return None
    return str(reason).split(":", 1)[0]


def round_trips(journal: pd.DataFrame) -> pd.DataFrame:
    """Return the closed trades of a journal, one row per round trip, in exit order.

    A trip opens with the first BUY fill on a flat book (later BUYs add to it) and closes with the
    SELL fill that flattens it. ``entry_cost`` is the cash spent, fees included; ``net_pnl`` is the
    exit's net proceeds minus the entry cost; ``gross_pnl`` is the same trade without fees and
    slippage (``net_pnl + fees + slippage``); ``net_return`` is ``net_pnl / entry_cost``. A position
    still open at the end, or a SELL whose entry lies before the frame, is not a closed trade.
    A line's ``exit_fill`` (a stop or target reached on the entry's own bar) follows its ``fill``:
    such a trip enters and exits on the same bar.
    """
    journal = _columns(journal)
    if journal.empty:
        return _no_trips()
    fills = _fills_in_order(journal)
    return fill_trips(
        fills["ts"],
        (fills["fill_side"] == BUY).to_numpy(),
        _floats(fills["fill_units"]),
        _floats(fills["fill_price"]),
        _floats(fills["fill_fee"], none=0.0),
        _floats(fills["fill_slippage_cost"], none=0.0),
    )


_FILL_FIELDS = ("side", "units", "price", "fee", "slippage_cost", "pnl")


def journal_fills(journal: pd.DataFrame) -> pd.DataFrame:
    """Return every fill of a journal frame as a row, in the order they happened.

    Columns: ``ts`` (the bar the fill is on) and ``fill_side``, ``fill_units``, ``fill_price``,
    ``fill_fee``, ``fill_slippage_cost`` and ``fill_pnl``. A line's ``fill`` comes first, then its
    ``exit_fill`` (an exit on the range of the bar whose open filled the entry), so counting or
    summing fills over these rows counts both. Use it wherever one row per line would miss one.
    """
    return _fills_in_order(_columns(journal))


def _fills_in_order(journal: pd.DataFrame) -> pd.DataFrame:
    # Every fill as a row of ts and fill_* columns, in the order they happened: a line's `fill`,
    # then its `exit_fill`. Lines with two fills are rare: without them, the rows are the lines'.
    names = ["ts", *(f"fill_{key}" for key in _FILL_FIELDS)]
    at_open = journal["fill_side"].isin((BUY, SELL)).to_numpy()
    on_range = journal["exit_fill_side"].isin((BUY, SELL)).to_numpy()
    if not on_range.any():
        return journal.loc[at_open, names]
    second = journal.loc[on_range, ["ts", *(f"exit_fill_{key}" for key in _FILL_FIELDS)]]
    second.columns = pd.Index(names)
    first = journal.loc[at_open, names]
    # Each fill's place: twice its line's position, plus one for the line's second fill.
    place = np.concatenate([2 * np.flatnonzero(at_open), 2 * np.flatnonzero(on_range) + 1])
    both = pd.concat([first, second], ignore_index=True)
    return both.iloc[np.argsort(place, kind="stable")].reset_index(drop=True)


def fill_trips(
    ts: pd.Series | pd.Index,
    buy: np.ndarray,
    units: np.ndarray,
    price: np.ndarray,
    fee: np.ndarray,
    slippage: np.ndarray,
) -> pd.DataFrame:
    """Return the closed round trips of fills given as columns, one entry per fill in time order.

    `buy` is True for a BUY fill, False for a SELL; `fee` and `slippage` are what each fill paid.
    The trips are those of `round_trips`, computed over the columns at once.
    """
    buy = np.asarray(buy, dtype=bool)
    n = len(buy)
    if not n:
        return _no_trips()
    # Each SELL ends a group: the BUYs since the previous SELL, then itself. A group with a BUY is a
    # closed trip; a SELL with none (its entry before the frame) is not.
    sell = ~buy
    group = np.cumsum(sell) - sell  # the SELLs before each fill
    exits = np.flatnonzero(sell)
    bought = np.bincount(group[buy], minlength=len(exits) + 1)[: len(exits)]
    closed = exits[bought > 0]
    if not len(closed):
        return _no_trips()
    count = bought[bought > 0]
    first = closed - count  # the BUYs of a trip are the fills just before its exit
    cost = units * price + fee
    columns = {"units": units, "notional": units * price, "cost": cost, "fees": fee, "slippage": slippage}
    entry = {name: _sums(values, first, closed, count) for name, values in columns.items()}
    net = units[closed] * price[closed] - fee[closed] - entry["cost"]
    fees, slip = entry["fees"] + fee[closed], entry["slippage"] + slippage[closed]
    times = pd.Series(ts).reset_index(drop=True)
    return pd.DataFrame(
        {
            "entry_ts": times.take(first).reset_index(drop=True),
            "exit_ts": times.take(closed).reset_index(drop=True),
            "units": units[closed],
            "entry_price": entry["notional"] / entry["units"],
            "exit_price": price[closed],
            "entry_cost": entry["cost"],
            "fees": fees,
            "slippage": slip,
            "gross_pnl": net + fees + slip,
            "net_pnl": net,
            "net_return": net / entry["cost"],
        },
        columns=list(_TRIP_COLUMNS),
    )


def _sums(values: np.ndarray, first: np.ndarray, last: np.ndarray, count: np.ndarray) -> np.ndarray:
    # The sum over each trip's BUYs, added in fill order as a position grows: one or two terms add
    # the same in any order, so only trips of three or more BUYs are summed one by one.
    out = np.zeros(len(first))
    out += values[first]
    two = count >= 2
    out[two] += values[first[two] + 1]
    for k in np.flatnonzero(count > 2).tolist():
        total = 0.0
        for value in values[first[k] : last[k]].tolist():
            total += value
        out[k] = total
    return out


def _floats(column: pd.Series, none: float | None = None) -> np.ndarray:
    # None (a fill without the field) counts as `none`; NaN stays NaN.
    if column.dtype == object:
        fill = math.nan if none is None else none
        return np.array([fill if v is None else float(v) for v in column], dtype="float64")
    return column.to_numpy(dtype="float64")


def _no_trips() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in _TRIP_COLUMNS})


def exit_reasons(journal: pd.DataFrame) -> list[str]:
    """Return why each closed trade of `round_trips(journal)` was exited, in the same order.

    The exit fill's ``reason``: ``signal``, ``stop_loss``, ``take_profit``, ``trailing_stop``,
    ``time_stop`` or ``emergency_stop``; fills written before exits existed have none but
    ``emergency_stop`` ones, and count as ``signal``. Reads the journal's ``fill`` and
    ``exit_fill`` dicts.
    """
    reasons: list[str] = []
    if journal.empty or "fill" not in journal.columns:
        return reasons
    second = journal["exit_fill"] if "exit_fill" in journal.columns else [None] * len(journal)
    holding = False
    for pair in zip(journal["fill"], second, strict=True):
        for fill in pair:
            if not isinstance(fill, dict):
                continue
            if fill.get("side") == BUY:
                holding = True
            elif fill.get("side") == SELL and holding:
                reasons.append(str(fill.get("reason") or "signal"))
                holding = False
    return reasons


def blocking_table(journal: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """Return blocked decisions by stage and reason code: ``count`` and ``share`` of all decisions.

    Reasons are grouped by `reason_code` (``insufficient_data:7`` counts as ``insufficient_data``).
    """
    columns = ["stage", "reason", "count", "share"]
    journal = _columns(journal)
    if journal.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    table = _blocks(journal, len(journal))
    return table.head(top).reset_index(drop=True) if top else table


def entry_blocks(journal: pd.DataFrame) -> tuple[int, pd.DataFrame]:
    """Return the entry proposals made when flat (blocked or taken) and their blocks by stage and reason.

    An entry proposal is a BUY proposed while the book held no position (``position`` 0 at the
    decision; a journal without the column counts every BUY). The table has ``count`` and
    ``share`` of those proposals per stage and reason code, most frequent first. HOLD and exit
    proposals are left out, and so are BUYs proposed while a position was held: a gate that refuses
    every entry refuses the strategy, however many quiet bars, or BUYs with nothing left to buy,
    surround those entries.
    """
    columns = ["stage", "reason", "count", "share"]
    journal = _columns(journal)
    entries = journal[(journal["proposed"] == BUY) & _flat(journal)]
    if (entries["stage"].fillna("passed") == "passed").all():
        return len(entries), pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return len(entries), _blocks(entries, len(entries))


def _flat(journal: pd.DataFrame) -> pd.Series:
    # Whether each decision was made with no position held (the position a line records is the
    # one its decision saw: fills happen at the open, before it). No column: every line is flat.
    if "position" not in journal.columns:
        return pd.Series(True, index=journal.index)
    return ~(pd.to_numeric(journal["position"], errors="coerce").fillna(0.0) > 0)


def _blocks(rows: pd.DataFrame, out_of: int) -> pd.DataFrame:
    # Blocked rows by stage and reason code, with their share of `out_of`, most frequent first.
    blocked = rows[rows["stage"].fillna("passed") != "passed"]
    table = (
        blocked.assign(reason=[reason_code(r) for r in blocked["reason"]])
        .groupby(["stage", "reason"], dropna=False)
        .size()
        .rename("count")
        .reset_index()
    )
    table["share"] = table["count"] / out_of
    return table.sort_values(["count", "stage", "reason"], ascending=[False, True, True]).reset_index(
        drop=True
    )


_NEEDED = {
    "ts": "datetime64[ns, UTC]",
    "decided_at": "datetime64[ns, UTC]",
    "action": "object",
    "proposed": "object",
    "stage": "object",
    "reason": "object",
    "equity": "float64",
    "price": "float64",
    "model": "object",
    "fill_side": "object",
    "fill_units": "float64",
    "fill_price": "float64",
    "fill_fee": "float64",
    "fill_slippage_cost": "float64",
    "fill_pnl": "float64",
    "exit_fill_side": "object",
    "exit_fill_units": "float64",
    "exit_fill_price": "float64",
    "exit_fill_fee": "float64",
    "exit_fill_slippage_cost": "float64",
    "exit_fill_pnl": "float64",
}


def _columns(journal: pd.DataFrame) -> pd.DataFrame:
    # An empty journal (a session that decided nothing yet) lacks the flattened fill columns, and
    # a frame built by hand or refilled (`labkit.analysis.execution`) may lack the exit_fill ones.
    missing = {
        name: pd.Series(dtype=dtype, index=journal.index)
        for name, dtype in _NEEDED.items()
        if name not in journal.columns
    }
    return journal.assign(**missing) if missing else journal


def _between(journal: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    if journal.empty:
        return journal
    return journal[(journal["ts"] >= start) & (journal["ts"] < end)]


def _equity_before(journal: pd.DataFrame, start: pd.Timestamp, capital: float | None) -> float:
    before = journal["equity"][journal["ts"] < start] if len(journal) else journal.get("equity")
    if before is not None and len(before):
        return float(before.iloc[-1])
    if capital is not None:
        return float(capital)
    after = journal["equity"][journal["ts"] >= start] if len(journal) else None
    return float(after.iloc[0]) if after is not None and len(after) else math.nan


def _data_errors(rows: pd.DataFrame) -> int:
    if rows.empty:
        return 0
    return int(((rows["stage"] == "data") & rows["reason"].isin(DATA_ERRORS)).sum())


def _ms(ts: pd.Timestamp) -> int:
    return int(ts.value // 1_000_000)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value
