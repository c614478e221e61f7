"""A user's CSV or Parquet file of OHLCV bars, read and validated once.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from labkit.data.bars import COLUMNS, make_bars, slice_range, validate_bars
from labkit.data.registry import Source, SourceContext
from labkit.errors import DataError

log = logging.getLogger(__name__)
_TIME_COLUMNS = ("timestamp", "ts", "date", "datetime", "time")


class FileSource(Source):
    """A CSV or Parquet file of OHLCV bars, read and validated once (a relative PATH is under the home)."""

    kinds = ("csv", "parquet")
    order = 20
    argument = "PATH"

    @classmethod
    def open(cls, kind: str, arg: str, ctx: SourceContext) -> FileSource:
        path = Path(arg).expanduser()
        path = path if path.is_absolute() or path.exists() else ctx.home / path
        return cls(f"{kind}:{arg}", path)

    def __init__(self, spec: str, path: Path) -> None:
        self.spec = spec
        self.path = path
        self._bars: pd.DataFrame | None = None

    def bars(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pd.DataFrame:
        if self._bars is None:
            self._bars = read_bar_file(self.path)
        return slice_range(self._bars, since_ms, until_ms)


def is_file_spec(spec: str) -> bool:
    """Return True when a source spec names a bar file (``csv:PATH``, ``parquet:PATH``)."""
    return spec.partition(":")[0] in FileSource.kinds


def read_bar_file(path: Path) -> pd.DataFrame:
    """Read and validate a user's CSV or Parquet file of bars.

    The time column is ``timestamp``, ``ts``, ``date``, ``datetime`` or ``time`` (else the first
    column), then ``open``, ``high``, ``low``, ``close``, ``volume`` in any letter case. Times are ISO
    8601 or epoch milliseconds; times without a zone are read as UTC, with a warning.
    """
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
