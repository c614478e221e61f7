"""Market data sources: the embedded synthetic market and a user's CSV or Parquet bar file.

A source answers one question, `bars(symbol, timeframe, since_ms, until_ms)`, with validated bars
whose open lies in the half-open range. Exchange sources (``ccxt:EXCHANGE``, ``yfinance``) live in
`labkit.exchange` and `labkit.yahoo` and go through the Parquet cache.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from labkit.errors import ConfigError, DataError
from labkit.store import COLUMNS, make_bars, slice_range, validate_bars
from labkit.synthetic import synthetic_bars

if TYPE_CHECKING:
    from labkit.config import LabkitConfig

log = logging.getLogger(__name__)
SOURCE_KINDS = ("synthetic", "csv:PATH", "parquet:PATH", "ccxt:EXCHANGE", "yfinance")
_TIME_COLUMNS = ("timestamp", "ts", "date", "datetime", "time")


class Source(Protocol):
    @property
    def spec(self) -> str: ...

    def bars(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pd.DataFrame:
        """Return validated bars with ``since_ms <= open < until_ms``."""
        ...


def check_source_spec(spec: str) -> str:
    """Return `spec` when it names a known kind of source, else raise ConfigError."""
    kind, _, arg = spec.partition(":")
    if spec == "synthetic" or spec == "yfinance":
        return spec
    if kind in ("csv", "parquet", "ccxt") and arg:
        return spec
    raise ConfigError(f"source: {spec!r} is not a source; allowed: {', '.join(SOURCE_KINDS)}")


def open_source(
    spec: str, home: Path, seed: int = 7, config: LabkitConfig | None = None, live: bool = False
) -> Source:
    """Return the source a spec names; file paths are relative to the home.

    Exchange sources read and fill the cache under ``data/ohlcv/``; `live` gives them the short retry
    policy of a clock-paced session, which must keep deciding (and say why it holds) during an outage.
    """
    check_source_spec(spec)
    kind, _, arg = spec.partition(":")
    if spec == "synthetic":
        return SyntheticSource(seed)
    if kind in ("csv", "parquet"):
        path = Path(arg).expanduser()
        path = path if path.is_absolute() or path.exists() else home / path
        return FileSource(spec, path)
    from labkit.config import LabkitConfig as _Config

    config = config or _Config()
    if kind == "ccxt":
        from labkit.exchange import CcxtSource

        return CcxtSource(arg, home, dict(config.exchanges.get(arg, {})), config.data, live=live)
    from labkit.yahoo import YahooSource

    return YahooSource(home, config.data, live=live)


@dataclass(frozen=True)
class SyntheticSource:
    seed: int = 7
    spec: str = "synthetic"

    def bars(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pd.DataFrame:
        return synthetic_bars(symbol, timeframe, since_ms, until_ms, self.seed)


class FileSource:
    """A CSV or Parquet file of OHLCV bars, read and validated once."""

    def __init__(self, spec: str, path: Path) -> None:
        self.spec = spec
        self.path = path
        self._bars: pd.DataFrame | None = None

    def bars(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pd.DataFrame:
        if self._bars is None:
            self._bars = read_bar_file(self.path)
        return slice_range(self._bars, since_ms, until_ms)


def read_bar_file(path: Path) -> pd.DataFrame:
    """Read and validate a user's CSV or Parquet file of bars (DESIGN.md's bar file rules)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    is_csv = path.suffix.lower() not in (".parquet", ".pq")
    try:
        raw = pd.read_csv(path) if is_csv else pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many kinds; all mean "cannot read this file"
        raise DataError(f"{path}: cannot be read as {'CSV' if is_csv else 'Parquet'}: {exc}") from None
    if not is_csv and isinstance(raw.index, pd.DatetimeIndex):
        raw = raw.reset_index()
    row_offset = 2 if is_csv else 1
    lower = {str(c).lower(): c for c in raw.columns}
    time_col = next(
        (lower[c] for c in _TIME_COLUMNS if c in lower), raw.columns[0] if len(raw.columns) else None
    )
    missing = [c for c in COLUMNS if c not in lower]
    if time_col is None or missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing) or 'time'}; a bar file needs a "
            f"time column ({', '.join(_TIME_COLUMNS)} or the first) and open, high, low, close, volume"
        )
    times = _parse_times(raw[time_col], path, row_offset)
    values = {}
    for c in COLUMNS:
        numbers = pd.to_numeric(raw[lower[c]], errors="coerce")
        bad = np.flatnonzero(numbers.isna().to_numpy() & raw[lower[c]].notna().to_numpy())
        if bad.size:
            raise DataError(
                f"{path}: row {int(bad[0]) + row_offset}: {c} {raw[lower[c]].iloc[bad[0]]!r} is not a number"
            )
        values[c] = numbers.to_numpy(dtype="float64", na_value=np.nan)
    return validate_bars(make_bars(times, values), str(path), row_offset)


def _parse_times(column: pd.Series, path: Path, row_offset: int) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        parsed = column
    elif pd.api.types.is_numeric_dtype(column.dtype):
        parsed = pd.to_datetime(column, unit="ms", utc=True, errors="coerce")
    else:
        text = column.astype("string").str.strip()
        numeric = text.str.fullmatch(r"\d{10,}").fillna(False).to_numpy(dtype=bool)
        if numeric.all():
            parsed = pd.to_datetime(text.astype("int64"), unit="ms", utc=True)
        else:
            parsed = pd.to_datetime(text, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        raise DataError(
            f"{path}: row {int(bad[0]) + row_offset}: time {column.iloc[bad[0]]!r} cannot be "
            "parsed; use ISO 8601 or epoch milliseconds"
        )
    index = pd.DatetimeIndex(parsed)
    if index.tz is None:
        log.warning("%s: times have no zone; reading them as UTC", path)
        index = index.tz_localize("UTC")
    return np.asarray(index.tz_convert("UTC").as_unit("ms").asi8, dtype="int64")
