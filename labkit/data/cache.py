"""The Parquet cache of downloaded bars under ``data/ohlcv/``, its sidecar of covered ranges and
confirmed gaps, and the base of sources that read through it.
"""

from __future__ import annotations

import logging
import os
import re
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit._io import read_json, short_hash, write_atomic, write_json_atomic
from labkit.data.bars import empty_bars, slice_range, ts_ms, validate_bars
from labkit.data.registry import Source
from labkit.errors import ConfigError
from labkit.home import check_symbol
from labkit.timeutil import iso_s, parse_instant, timeframe_ms

log = logging.getLogger(__name__)


# The label in each symbol's folder that records the exact symbol its bars are of.
SYMBOL_LABEL = "symbol.json"


def safe_name(text: str) -> str:
    """Return a file-system-safe name: ``ccxt:binance`` -> ``ccxt-binance``, ``BTC/USDT`` -> ``BTC-USDT``.

    Several texts share a safe name (``BTC/USDT`` and ``BTC-USDT``): a symbol's folder is named by
    `symbol_folder`, which tells them apart. Never ``.`` or ``..``.

    Examples
    --------
    >>> safe_name("ccxt:binance"), safe_name(".."), safe_name("^GSPC")
    ('ccxt-binance', '_', 'GSPC')
    """
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", text).strip("-.") or "_"


def symbol_folder(symbol: str) -> str:
    """Return the folder name of `symbol`'s bars: a readable slug, ``~``, a short hash of the exact symbol.

    Two spellings that read alike (``BTC/USDT`` and ``BTC-USDT``, ``^GSPC`` and ``GSPC``) get two
    folders; ``~`` never appeared in the names labkit used before, so no old folder is taken for a
    new one.

    Raises
    ------
    ConfigError
        When `symbol` has no letter or digit (``..``, ``/``): it names no market.

    Examples
    --------
    >>> symbol_folder("BTC/USDT"), symbol_folder("BTC-USDT")
    ('BTC-USDT~4d7eaaf19e71', 'BTC-USDT~1ee9b2200948')
    """
    check_symbol(symbol, "symbol")
    return f"{safe_name(symbol)[:40]}~{short_hash(symbol.encode('utf-8'))}"


def cache_path(home: Path, source: str, symbol: str, timeframe: str) -> Path:
    """Return ``data/ohlcv/<source>/<symbol folder>/<timeframe>.parquet`` under the home.

    The symbol's folder (`symbol_folder`) is labelled with the exact symbol when first named, and a
    file cached under the name labkit used before is moved here when it records this very symbol
    (`adopt_old_file`).

    Raises
    ------
    ConfigError
        When the symbol names no market, or its folder is labelled with another symbol.
    """
    source_dir = home / "data" / "ohlcv" / safe_name(source)
    folder = source_dir / symbol_folder(symbol)
    path = folder / f"{safe_name(timeframe)}.parquet"
    _label(folder, symbol)
    if not path.exists():
        adopt_old_file(source_dir / _old_name(symbol) / path.name, path, symbol)
    return path


def folder_symbol(folder: Path) -> str | None:
    """Return the exact symbol a cache folder's label records, or None when it records none."""
    recorded = (read_json(folder / SYMBOL_LABEL) or {}).get("symbol")
    return recorded if isinstance(recorded, str) else None


def adopt_old_file(old: Path, new: Path, symbol: str) -> bool:
    """Move a bar file and its sidecar from the name labkit used before to `new`, if provably `symbol`'s.

    The old name was shared (``BTC/USDT`` and ``BTC-USDT`` both wrote ``BTC-USDT/``), so the file
    moves only when its sidecar or its folder's label records exactly `symbol`. Otherwise it is
    left where it is, said once in the log, and the bars are fetched again: another symbol's bars
    are never served. Return True when the file moved.
    """
    if old.parent.name in (".", "..") or not old.is_file():
        return False
    recorded = _recorded_symbol(old)
    if recorded != symbol:
        whose = "nothing records whose bars it holds" if recorded is None else f"it holds {recorded!r}"
        log.warning(
            "%s: cached under the old name %r, which several symbols share, and %s; left in place, "
            "and %s's bars are fetched again into %s (delete the old file once it is not needed)",
            old,
            old.parent.name,
            whose,
            symbol,
            new.parent,
        )
        return False
    # The bars first: a crash between the two leaves bars without a sidecar (their range is asked
    # again and merged), never a sidecar claiming bars the file lacks.
    os.replace(old, new)
    if meta_path(old).exists():
        os.replace(meta_path(old), meta_path(new))
    log.info("%s: moved to %s (one folder per exact symbol)", old, new)
    return True


def _recorded_symbol(old: Path) -> str | None:
    recorded = (read_json(meta_path(old)) or {}).get("symbol")
    return recorded if isinstance(recorded, str) else folder_symbol(old.parent)


def _old_name(symbol: str) -> str:
    # The folder name labkit gave a symbol before one folder per exact symbol: shared by spellings.
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", symbol).strip("-") or "_"


def _label(folder: Path, symbol: str) -> None:
    # The hash tells spellings apart; the label says which one a folder holds, for `data info`,
    # and refuses the folder to another symbol whose short hash happens to be the same.
    recorded = folder_symbol(folder)
    if recorded is None:
        write_json_atomic(folder / SYMBOL_LABEL, {"symbol": symbol})
    elif recorded != symbol:
        raise ConfigError(
            f"{folder}: holds the bars of {recorded!r}, not {symbol!r} (their folder names collide); "
            "move that folder out of data/ohlcv/, or delete it to fetch its bars again"
        )


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
    """Describe every cached bar file: source, exact symbol, timeframe, range, count and gaps.

    ``old_name`` is True for a file under the name labkit used before, which records no symbol:
    its ``symbol`` is that shared folder name.
    """
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
        recorded = folder_symbol(path.parent)
        entries.append(
            {
                "source": path.parent.parent.name,
                # The exact symbol; a folder of the old shared names records none, and shows its name.
                "symbol": recorded if recorded is not None else path.parent.name,
                "old_name": recorded is None,
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
