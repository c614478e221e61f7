"""A user's CSV or Parquet file of OHLCV bars, read and validated once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from labkit.data.bars import COLUMNS, make_bars, slice_range, ts_ms, validate_bars
from labkit.data.registry import Source, SourceContext
from labkit.errors import ConfigError, DataError
from labkit.home import as_path
from labkit.timeutil import INSTANT_RANGE, MAX_INSTANT_MS, MIN_INSTANT_MS, timeframe_ms

log = logging.getLogger(__name__)
_TIME_COLUMNS = ("timestamp", "ts", "date", "datetime", "time")


class FileSource(Source):
    """A CSV or Parquet file of OHLCV bars, read and validated once (a relative PATH is under the home).

    One file is one market's bars, whatever symbol is asked for. For a universe (or to keep one
    file per symbol) PATH may be a folder, holding ``<SYMBOL>.csv`` (or ``.parquet``) for each
    symbol, or a pattern with ``{symbol}`` in it (``data/{symbol}.csv``); in both, a symbol is
    written with ``-`` for ``/``, ``:`` and ``\\`` (``BTC/USDT`` is ``BTC-USDT.csv``).
    """

    kinds = ("csv", "parquet")
    order = 20
    argument = "PATH"

    @classmethod
    def open(cls, kind: str, arg: str, ctx: SourceContext) -> FileSource:
        path = Path(arg).expanduser()
        path = path if path.is_absolute() or path.exists() else ctx.home / path
        # Checked when opened, not when first read: a session opens its source before it writes
        # any file, so a missing file or folder is refused with nothing left behind.
        if SYMBOL_FIELD in str(path):
            if not path.parent.is_dir() and SYMBOL_FIELD not in str(path.parent):
                raise DataError(f"{path.parent}: no such folder (the folder of {arg})")
        elif not path.is_dir():
            check_bar_file(path)
        return cls(f"{kind}:{arg}", path, kind)

    def __init__(self, spec: str, path: Path, kind: str = "csv") -> None:
        self.spec = spec
        self.path = path
        self.kind = kind
        self._read: dict[Path, tuple[pd.DataFrame, int | None]] = {}

    def file_of(self, symbol: str) -> Path:
        """Return the file holding `symbol`'s bars: the one file, or its file in the folder or pattern."""
        name = file_symbol(symbol)
        if SYMBOL_FIELD in str(self.path):
            return Path(str(self.path).replace(SYMBOL_FIELD, name))
        if self.path.is_dir():
            return self.path / f"{name}.{self.kind}"
        return self.path

    def bars(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pd.DataFrame:
        path = self.file_of(symbol)
        if path not in self._read:
            if path != self.path:
                try:
                    check_bar_file(path)
                except DataError as exc:
                    raise DataError(
                        f"{exc} ({self.spec} holds a file per symbol: {symbol}'s is {path.name})"
                    ) from None
            bars = read_bar_file(path)
            self._read[path] = (bars, median_spacing_ms(bars))
        bars, spacing = self._read[path]
        check_spacing(spacing, timeframe, path)
        return slice_range(bars, since_ms, until_ms)

    def universe_bars(
        self, symbols: Sequence[str], timeframe: str, since_ms: int, until_ms: int
    ) -> dict[str, pd.DataFrame]:
        """Return each symbol's bars from its own file; one file cannot hold a universe."""
        if len(symbols) > 1 and SYMBOL_FIELD not in str(self.path) and not self.path.is_dir():
            raise ConfigError(
                f"session.source: {self.spec} is one market's bars; for a universe give a folder "
                f"({self.kind}:DIR holding a file per symbol, e.g. BTC-USDT.{self.kind}) or a pattern "
                f"({self.kind}:data/{{symbol}}.{self.kind})"
            )
        return super().universe_bars(symbols, timeframe, since_ms, until_ms)


# Where a symbol's name goes in a bar-file pattern.
SYMBOL_FIELD = "{symbol}"


def file_symbol(symbol: str) -> str:
    """Return `symbol` as a bar file of a folder or pattern names it: ``BTC/USDT`` is ``BTC-USDT``.

    Examples
    --------
    >>> file_symbol("BTC/USDT:USDT")
    'BTC-USDT-USDT'
    """
    return symbol.replace("/", "-").replace(":", "-").replace("\\", "-")


def is_file_spec(spec: str) -> bool:
    """Return True when a source spec names a bar file (``csv:PATH``, ``parquet:PATH``)."""
    return spec.partition(":")[0] in FileSource.kinds


def check_bar_file(path: Path) -> None:
    """Raise DataError naming `path` unless it is a regular file (not missing, not a directory)."""
    if path.is_dir():
        raise DataError(f"{path}: is a directory; a bar source is one CSV or Parquet file")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: is not a regular file (a device or a pipe); give a CSV or Parquet file")


def median_spacing_ms(bars: pd.DataFrame) -> int | None:
    """Return the most common time between consecutive bars of a whole file (ms), or None for one bar.

    The most common spacing, not the mean or the median: gaps (nights, weekends, an outage, the
    quiet minutes of an illiquid market) do not change what the file's bars are. A median would:
    a thin market's 1m file that has no bar for most minutes has a median spacing of 2m or more.

    Examples
    --------
    >>> hours = pd.DataFrame(index=pd.to_datetime([0, 4, 24, 28, 48, 52], unit="h", utc=True))
    >>> median_spacing_ms(hours) // 3_600_000
    4
    """
    if len(bars) < 2:
        return None
    spacings, counts = np.unique(np.diff(ts_ms(bars)), return_counts=True)
    return int(spacings[np.argmax(counts)])


def check_spacing(spacing_ms: int | None, timeframe: str, path: Path) -> None:
    """Raise ConfigError naming both when a file's most common bar spacing is not `timeframe`.

    Bars 1m apart read as 5m would count five bars where the calendar has one (coverage above
    100%), and every indicator's window would span a fifth of the time it says.
    """
    if spacing_ms is None or spacing_ms == timeframe_ms(timeframe):
        return
    spacing = spacing_text(spacing_ms)
    raise ConfigError(
        f"{path}: the file's bars are {spacing} apart (most of them); --timeframe is {timeframe}; "
        f"give --timeframe {spacing}, or a file of {timeframe} bars"
    )


_SPACING_UNITS = (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000))


def spacing_text(ms: int) -> str:
    """Return a spacing as a timeframe is written (``1m``, ``4h``, ``90s``), else in milliseconds.

    Examples
    --------
    >>> spacing_text(60_000), spacing_text(5_400_000), spacing_text(90_000), spacing_text(1_500)
    ('1m', '90m', '90s', '1500ms')
    """
    for unit, size in _SPACING_UNITS:
        if ms > 0 and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def read_bar_file(path: str | Path) -> pd.DataFrame:
    """Read and validate a user's CSV or Parquet file of bars.

    The time column is ``timestamp``, ``ts``, ``date``, ``datetime`` or ``time`` (else the first
    column), then ``open``, ``high``, ``low``, ``close``, ``volume`` in any letter case. Times are ISO
    8601 or epoch milliseconds, within 1970-01-01 .. 2200-01-01; times with a zone or offset are
    converted to UTC, times without one are read as UTC (with a warning), and a file mixing the two
    is refused. Every refusal is a DataError naming the file, and the row and column when there is one.
    """
    path = as_path(path, "path")  # a notebook passes a string
    check_bar_file(path)
    is_csv = path.suffix.lower() not in (".parquet", ".pq")
    kind = "CSV" if is_csv else "Parquet"
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; a bar file needs a header row and one row per bar")
    if is_csv:
        _check_text(path)
    try:
        raw = pd.read_csv(path) if is_csv else pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many kinds; all mean "cannot be read as this"
        raise DataError(f"{path}: cannot be read as {kind}: {_one_line(exc)}") from None
    if not is_csv and isinstance(raw.index, pd.DatetimeIndex):
        raw = raw.reset_index()
    row_offset = 2 if is_csv else 1
    lower = {str(c).strip().lower(): c for c in raw.columns}
    time_col = next(
        (lower[c] for c in _TIME_COLUMNS if c in lower), raw.columns[0] if len(raw.columns) else None
    )
    missing = [c for c in COLUMNS if c not in lower]
    if time_col is None or str(time_col).strip().lower() in COLUMNS:
        missing.insert(0, "time")
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; a bar file needs a "
            f"time column ({', '.join(_TIME_COLUMNS)} or the first) and open, high, low, close, volume"
        )
    if not len(raw):
        raise DataError(f"{path}: no bars; the file has a header and no rows")
    times = _parse_times(raw[time_col], path, row_offset)
    values = {}
    for c in COLUMNS:
        given = raw[lower[c]]
        numbers = pd.to_numeric(given, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        present = given.notna().to_numpy()
        _fail_first(path, row_offset, np.isnan(numbers) & present, given, f"{c} {{!r}} is not a number")
        # 1e400 is read as inf: a number, but not one a price or a volume can be.
        _fail_first(path, row_offset, np.isinf(numbers), given, f"{c} {{!r}} is not a finite number")
        values[c] = numbers
    return validate_bars(make_bars(times, values), str(path), row_offset)


def _check_text(path: Path) -> None:
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if head.startswith(b"PAR1"):
        raise DataError(f"{path}: is a Parquet file, not CSV; name it .parquet or give parquet:PATH")
    if b"\0" in head:
        raise DataError(f"{path}: is binary, not CSV text; a bar file is CSV (with a header) or Parquet")


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail_first(path: Path, row_offset: int, bad: np.ndarray, given: pd.Series, rule: str) -> None:
    rows = np.flatnonzero(bad)
    if rows.size:
        first = int(rows[0])
        value = given.iloc[first]
        if isinstance(value, pd.Timestamp):
            value = value.isoformat()
        shown = rule.format(value.item() if isinstance(value, np.generic) else value)
        raise DataError(
            f"{path}: row {first + row_offset}: {shown}"
            + (f" ({rows.size} rows in all)" if rows.size > 1 else "")
        )


# A time with a zone ends in Z or an offset after its clock time (a bare date's "-05" is a day).
_ZONED = r"[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?\s*(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)"
_ACCEPTED_TIMES = f"use ISO 8601 or epoch milliseconds, within {INSTANT_RANGE}"
_UNPARSED = "time {!r} cannot be parsed; " + _ACCEPTED_TIMES
_OUTSIDE = "time {!r} is outside " + INSTANT_RANGE


def _parse_times(column: pd.Series, path: Path, row_offset: int) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        index = pd.DatetimeIndex(column)
        _fail_first(path, row_offset, index.isna(), column, _UNPARSED)
        if index.tz is None:
            log.warning("%s: times have no zone; reading them as UTC", path)
            index = index.tz_localize("UTC")
        return _in_range(
            np.asarray(index.tz_convert("UTC").as_unit("ms").asi8, "int64"), column, path, row_offset
        )
    if pd.api.types.is_bool_dtype(column.dtype):  # numeric to numpy, but True is no time
        _fail_first(path, row_offset, np.ones(len(column), bool), column, _UNPARSED)
    if pd.api.types.is_numeric_dtype(column.dtype):
        return _epoch_ms(column.to_numpy(dtype="float64", na_value=np.nan), column, path, row_offset)
    text = column.astype("string").str.strip()
    digits = text.str.fullmatch(r"[0-9]{10,}").fillna(False).to_numpy(dtype=bool)
    if digits.all():
        # Past 13 digits a number is beyond 2200 (and beyond int64 past 19): out of range, not parsed.
        short = (text.str.len() <= 13).to_numpy(dtype=bool)
        ms = np.where(short, pd.to_numeric(text.where(short, "0")).to_numpy(dtype="float64"), np.inf)
        return _epoch_ms(ms, column, path, row_offset)
    zoned = text.str.fullmatch(f".*{_ZONED}", case=False).fillna(False).to_numpy(dtype=bool)
    try:
        # Apart: pandas refuses a column mixing zoned and naive times with an error naming no row.
        aware = pd.to_datetime(text.where(zoned), errors="coerce", format="ISO8601", utc=True)
        naive = pd.to_datetime(text.where(~zoned), errors="coerce", format="ISO8601")
    except (ValueError, OverflowError, TypeError) as exc:
        raise DataError(f"{path}: times cannot be read: {_one_line(exc)}; {_ACCEPTED_TIMES}") from None
    unparsed = np.where(zoned, aware.isna().to_numpy(), naive.isna().to_numpy())
    _fail_first(path, row_offset, unparsed, column, _UNPARSED)
    if zoned.any() and not zoned.all():
        first = int(np.flatnonzero(zoned != zoned[0])[0])
        has, lacks = ("a zone", "none") if zoned[first] else ("no zone", "one")
        raise DataError(
            f"{path}: row {first + row_offset}: time {column.iloc[first]!r} has {has} but row "
            f"{row_offset} has {lacks}; give every time a zone or offset (e.g. 2026-01-05T09:30:00Z), or none"
        )
    if zoned.all():
        index = pd.DatetimeIndex(aware)
    else:
        log.warning("%s: times have no zone; reading them as UTC", path)
        index = pd.DatetimeIndex(naive).tz_localize("UTC")
    return _in_range(
        np.asarray(index.tz_convert("UTC").as_unit("ms").asi8, "int64"), column, path, row_offset
    )


def _epoch_ms(ms: np.ndarray, column: pd.Series, path: Path, row_offset: int) -> np.ndarray:
    _fail_first(path, row_offset, np.isnan(ms), column, _UNPARSED)
    outside = ~((ms >= MIN_INSTANT_MS) & (ms <= MAX_INSTANT_MS))
    _fail_first(path, row_offset, outside, column, _OUTSIDE)
    return ms.astype("int64")


def _in_range(ms: np.ndarray, column: pd.Series, path: Path, row_offset: int) -> np.ndarray:
    outside = (ms < MIN_INSTANT_MS) | (ms > MAX_INSTANT_MS)
    _fail_first(path, row_offset, outside, column, _OUTSIDE)
    return ms
