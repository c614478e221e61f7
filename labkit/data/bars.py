"""Bars inside labkit: one validated frame shape, and the Parquet cache under ``data/ohlcv/``.

A bar frame has a tz-aware UTC ``DatetimeIndex`` named ``ts`` (the bar's open) and float columns
``open, high, low, close, volume``. Nothing reaches the engine without passing `validate_bars`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.errors import DataError

COLUMNS = ("open", "high", "low", "close", "volume")


def make_bars(ts_ms: np.ndarray, ohlcv: dict[str, np.ndarray]) -> pd.DataFrame:
    """Return a bar frame from epoch-millisecond opens and OHLCV arrays (not validated)."""
    index = pd.DatetimeIndex(pd.to_datetime(np.asarray(ts_ms, dtype="int64"), unit="ms", utc=True), name="ts")
    return pd.DataFrame({c: np.asarray(ohlcv[c], dtype="float64") for c in COLUMNS}, index=index)


def empty_bars() -> pd.DataFrame:
    """Return a bar frame with no bars."""
    return make_bars(np.empty(0, "int64"), {c: np.empty(0) for c in COLUMNS})


# Integer steps per millisecond of the units pandas keeps times in.
_PER_MS = {"ns": 1_000_000, "us": 1_000, "ms": 1}


def ts_ms(bars: pd.DataFrame) -> np.ndarray:
    """Return the bar opens as int64 epoch milliseconds."""
    return _index_ms(bars.index)


def _index_ms(index: pd.Index, start: int = 0) -> np.ndarray:
    # Integer division of the raw ticks is far cheaper than as_unit, which copies the index.
    per_ms = _PER_MS.get(str(getattr(index, "unit", "")))
    if per_ms is None:
        return np.asarray(index[start:].as_unit("ms").asi8, dtype="int64")
    return np.asarray(index.asi8[start:], dtype="int64") // per_ms


def bar_columns(bars: pd.DataFrame, last: int | None = None) -> dict[str, np.ndarray]:
    """Return a bar frame's columns as arrays (``ts`` as int64 epoch ms), only the `last` rows if given.

    A frame of exactly the float64 columns ``open, high, low, close, volume`` (as `make_bars` builds
    it) is read without a copy.
    """
    n = len(bars)
    start = 0 if last is None else max(n - last, 0)
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise ValueError("bars need a DatetimeIndex of bar opens (tz-aware UTC)")
    plain = _plain(bars.columns)
    values = bars.to_numpy()[start:] if plain else bars.iloc[start:][list(COLUMNS)].to_numpy()
    block = np.ascontiguousarray(values.T, dtype="float64")
    cols = dict(zip(COLUMNS, block, strict=True))
    cols["ts"] = _index_ms(bars.index, start)
    return cols


# The last column index seen to hold exactly COLUMNS in order. An Index is immutable, so the same
# object has the same labels, and comparing labels (slow on string indexes) happens once per frame.
_PLAIN_SEEN: list[pd.Index] = []


def _plain(columns: pd.Index) -> bool:
    if _PLAIN_SEEN and columns is _PLAIN_SEEN[0]:
        return True
    if tuple(columns) != COLUMNS:
        return False
    _PLAIN_SEEN[:] = [columns]
    return True


def validate_bars(bars: pd.DataFrame, name: str = "bars", row_offset: int = 1) -> pd.DataFrame:
    """Return `bars` when every bar keeps the rules, else raise DataError naming the row and rule.

    The rules: tz-aware UTC times, strictly increasing, no duplicates, finite numbers, positive
    prices, ``low <= min(open, close)``, ``high >= max(open, close)``, ``volume >= 0``.

    `row_offset` turns positions into the row numbers a user sees (2 for a CSV with a header).
    """
    missing = [c for c in COLUMNS if c not in bars.columns]
    if missing:
        raise DataError(
            f"{name}: missing column(s) {', '.join(missing)}; a bar file needs a time "
            "column and open, high, low, close, volume"
        )
    if not isinstance(bars.index, pd.DatetimeIndex) or bars.index.tz is None:
        raise DataError(f"{name}: bar times must be tz-aware UTC")
    values = {c: bars[c].to_numpy(dtype="float64", na_value=np.nan) for c in COLUMNS}
    times = ts_ms(bars)

    def fail(mask: np.ndarray, rule: str) -> None:
        bad = np.flatnonzero(mask)
        if bad.size:
            pos = int(bad[0])
            raise DataError(
                f"{name}: row {pos + row_offset} ({bars.index[pos].isoformat()}): {rule}"
                + (f" ({bad.size} rows in all)" if bad.size > 1 else "")
            )

    for column in COLUMNS:
        fail(~np.isfinite(values[column]), f"{column} is NaN or infinite")
    if times.size > 1:
        step = np.diff(times)
        fail(np.concatenate([[False], step == 0]), "duplicate time")
        fail(
            np.concatenate([[False], step < 0]),
            "time goes backwards (bars must be sorted, strictly increasing)",
        )
    o, h, low, c, v = (values[k] for k in COLUMNS)
    fail(low > np.minimum(o, c), "low is above open or close")
    fail(h < np.maximum(o, c), "high is below open or close")
    fail(v < 0, "volume is negative")
    fail(np.minimum(o, c) <= 0, "price is not positive")
    return bars


def slice_range(bars: pd.DataFrame, since_ms: int | None, until_ms: int | None) -> pd.DataFrame:
    """Return the bars with ``since <= ts < until`` (half-open, either end optional)."""
    times = ts_ms(bars)
    lo = 0 if since_ms is None else int(np.searchsorted(times, since_ms, side="left"))
    hi = len(times) if until_ms is None else int(np.searchsorted(times, until_ms, side="left"))
    return bars.iloc[lo:hi]


def quote_currency(symbol: str) -> str:
    """Return the currency a market's prices are in: the quote of a pair, else USD (equities).

    Examples
    --------
    >>> quote_currency("BTC/USDT"), quote_currency("EUR/USD"), quote_currency("AAPL")
    ('USDT', 'USD', 'USD')
    """
    return symbol.split("/")[-1] if "/" in symbol else "USD"
