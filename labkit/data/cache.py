"""The Parquet cache of downloaded bars under ``data/ohlcv/``, its sidecar of covered ranges and
confirmed gaps, and the base of sources that read through it.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit._io import read_json, write_atomic, write_json_atomic
from labkit.data.bars import empty_bars, slice_range, ts_ms, validate_bars
from labkit.data.registry import Source
from labkit.errors import ConfigError
from labkit.timeutil import iso_s, parse_instant, timeframe_ms


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
    write_atomic(path, bars.to_parquet)


def read_parquet(path: Path) -> pd.DataFrame:
    """Read a cached bar file written by `write_parquet`."""
    return pd.read_parquet(path)


def meta_path(path: Path) -> Path:
    return path.with_name(path.name.replace(".parquet", ".meta.json"))


def read_meta(path: Path) -> dict[str, list[list[int]]]:
    """Return a cache file's sidecar: ``covered`` ranges asked and answered, ``gaps`` confirmed."""
    data = read_json(meta_path(path)) or {}
    return {"covered": data.get("covered", []), "gaps": data.get("gaps", [])}


def write_meta(path: Path, covered: list[list[int]], gaps: list[list[int]]) -> None:
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


class CachedSource(Source):
    """A remote source read through the cache: `bars` fetches what is missing, then reads the file."""

    home: Path

    @abstractmethod
    def fetch(
        self, symbol: str, timeframe: str, since_ms: int, until_ms: int, refill_gaps: bool = False
    ) -> dict[str, int]:
        """Fetch the closed bars of ``[since, until)`` the cache lacks; return counts of what happened."""

    def bars(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pd.DataFrame:
        self.fetch(symbol, timeframe, since_ms, until_ms)
        path = cache_path(self.home, self.spec, symbol, timeframe)
        return slice_range(read_parquet(path), since_ms, until_ms) if path.exists() else empty_bars()


def describe_gaps(gaps: list[list[str]], timeframe: str, first: int = 3) -> str:
    """Return where the first gaps start and how many bars each lacks, and how many more there are.

    Parameters
    ----------
    gaps
        Half-open ``[start, end)`` ranges of absent bar opens, as `cache_info` lists them.
    timeframe
        The bar length the gaps are counted in.
    first
        How many gaps to name; the rest are only counted.

    Examples
    --------
    >>> gaps = [["2026-01-05T10:00:00Z", "2026-01-05T12:00:00Z"], ["2026-01-06T00:00Z", "2026-01-06T00:05Z"]]
    >>> describe_gaps(gaps, "1m", first=1)
    '2026-01-05T10:00:00Z +120 bars, and 1 more'
    """
    tf = timeframe_ms(timeframe)
    named = [f"{lo} +{(parse_instant(hi) - parse_instant(lo)) // tf} bars" for lo, hi in gaps[:first]]
    more = len(gaps) - len(named)
    return ", ".join(named) + (f", and {more} more" if more > 0 else "")


def cache_info(home: Path) -> list[dict[str, Any]]:
    """Describe every cached bar file: source, symbol, timeframe, range, count and gaps."""
    root = home / "data" / "ohlcv"
    entries = []
    for path in sorted(root.glob("*/*/*.parquet")):
        bars = read_parquet(path)
        meta = read_meta(path)
        tf_name = path.stem
        try:
            tf = timeframe_ms(tf_name)
        except ConfigError:
            continue
        holes = missing_bars(bars, tf)
        times = ts_ms(bars)
        entries.append(
            {
                "source": path.parent.parent.name,
                "symbol": path.parent.name,
                "timeframe": tf_name,
                "path": str(path),
                "bars": len(bars),
                "first": iso_s(int(times[0])) if len(times) else None,
                "last": iso_s(int(times[-1])) if len(times) else None,
                "missing_bars": int(sum((hi - lo) // tf for lo, hi in holes)),
                "gaps": [[iso_s(lo), iso_s(hi)] for lo, hi in holes],
                "confirmed_gaps": [[iso_s(lo), iso_s(hi)] for lo, hi in meta["gaps"]],
            }
        )
    return entries
