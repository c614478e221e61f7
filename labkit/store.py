"""Bars inside labkit: one validated frame shape, and the Parquet cache under ``data/ohlcv/``.

A bar frame has a tz-aware UTC ``DatetimeIndex`` named ``ts`` (the bar's open) and float columns
``open, high, low, close, volume``. Nothing reaches the engine without passing `validate_bars`.
"""

from __future__ import annotations

import re
from pathlib import Path

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


def ts_ms(bars: pd.DataFrame) -> np.ndarray:
    """Return the bar opens as int64 epoch milliseconds."""
    return np.asarray(bars.index.as_unit("ms").asi8, dtype="int64")


def validate_bars(bars: pd.DataFrame, name: str = "bars", row_offset: int = 1) -> pd.DataFrame:
    """Return `bars` when every bar keeps DESIGN.md's rules, else raise DataError naming the row.

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


def safe_name(text: str) -> str:
    """Return a file-system-safe name: ``ccxt:binance`` -> ``ccxt-binance``, ``BTC/USDT`` -> ``BTC-USDT``."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", text).strip("-") or "_"


def cache_path(home: Path, source: str, symbol: str, timeframe: str) -> Path:
    """Return ``data/ohlcv/<source>/<symbol>/<timeframe>.parquet`` under the home."""
    return home / "data" / "ohlcv" / safe_name(source) / safe_name(symbol) / f"{safe_name(timeframe)}.parquet"


def write_parquet(bars: pd.DataFrame, path: Path) -> None:
    """Write bars atomically, merged with what the file already holds (new bars win)."""
    if path.exists():
        bars = pd.concat([read_parquet(path), bars])
        bars = bars[~bars.index.duplicated(keep="last")].sort_index()
    validate_bars(bars, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".parquet.tmp")
    bars.to_parquet(tmp)
    tmp.replace(path)


def read_parquet(path: Path) -> pd.DataFrame:
    """Read a cached bar file written by `write_parquet`."""
    return pd.read_parquet(path)


def meta_path(path: Path) -> Path:
    return path.with_name(path.name.replace(".parquet", ".meta.json"))


def read_meta(path: Path) -> dict[str, list[list[int]]]:
    """Return a cache file's sidecar: ``covered`` ranges asked and answered, ``gaps`` confirmed."""
    import json

    try:
        data = json.loads(meta_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"covered": [], "gaps": []}
    return {"covered": data.get("covered", []), "gaps": data.get("gaps", [])}


def write_meta(path: Path, covered: list[list[int]], gaps: list[list[int]]) -> None:
    from labkit.state import write_json_atomic

    write_json_atomic(meta_path(path), {"covered": merge_ranges(covered), "gaps": merge_ranges(gaps)})


def merge_ranges(ranges: list[list[int]]) -> list[list[int]]:
    """Return half-open ranges sorted and merged where they touch or overlap.

    Examples
    --------
    >>> merge_ranges([[5, 8], [0, 2], [2, 4], [7, 9]])
    [[0, 4], [5, 9]]
    """
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        elif hi > lo:
            merged.append([lo, hi])
    return merged


def subtract_ranges(want: list[int], have: list[list[int]]) -> list[list[int]]:
    """Return the parts of the half-open range `want` not covered by `have`.

    Examples
    --------
    >>> subtract_ranges([0, 10], [[2, 4], [6, 12]])
    [[0, 2], [4, 6]]
    """
    missing, cursor = [], want[0]
    for lo, hi in merge_ranges(have):
        if hi <= cursor or lo >= want[1]:
            continue
        if lo > cursor:
            missing.append([cursor, lo])
        cursor = max(cursor, hi)
    if cursor < want[1]:
        missing.append([cursor, want[1]])
    return missing


def missing_bars(bars: pd.DataFrame, tf_ms: int) -> list[list[int]]:
    """Return the ranges of bar opens absent between the first and the last bar."""
    times = ts_ms(bars)
    if len(times) < 2:
        return []
    steps = np.diff(times)
    holes = np.flatnonzero(steps > tf_ms)
    return [[int(times[i] + tf_ms), int(times[i + 1])] for i in holes]


class CachedSource:
    """A remote source read through the cache: `bars` fetches what is missing, then reads the file."""

    spec: str
    home: Path

    def fetch(
        self, symbol: str, timeframe: str, since_ms: int, until_ms: int, refill_gaps: bool = False
    ) -> dict[str, int]:
        raise NotImplementedError

    def bars(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pd.DataFrame:
        self.fetch(symbol, timeframe, since_ms, until_ms)
        path = cache_path(self.home, self.spec, symbol, timeframe)
        return slice_range(read_parquet(path), since_ms, until_ms) if path.exists() else empty_bars()
