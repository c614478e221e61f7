"""Time parsing shared by the command line, sources and the engine: timeframes and instants.

Inside labkit an instant is an int of epoch milliseconds (UTC); pandas timestamps appear only
at the edges (files, notebooks).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pandas as pd

from labkit.errors import ConfigError

_TIMEFRAME = re.compile(r"^(\d+)([smhdw])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
DAY_MS = 86_400_000


def timeframe_ms(timeframe: str, field: str = "timeframe") -> int:
    """Return the length of a timeframe such as ``1m`` or ``4h`` in milliseconds.

    Examples
    --------
    >>> timeframe_ms("15m")
    900000
    """
    match = _TIMEFRAME.match(str(timeframe))
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(
            f"{field}: {timeframe!r} is not a timeframe; use a number and a unit s, m, h, d or w "
            "(e.g. 1s, 5s, 1m, 15m, 1h, 1d)"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_instant(value: str | int, field: str = "time") -> int:
    """Return epoch milliseconds for an ISO 8601 date/datetime (UTC if no zone) or epoch ms.

    Examples
    --------
    >>> parse_instant("2026-01-05")
    1767571200000
    >>> parse_instant("1767571200000")
    1767571200000
    """
    text = str(value).strip()
    if re.fullmatch(r"-?\d{10,}", text):
        return int(text)
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{field}: {text!r} is not a time; use an ISO 8601 date or datetime "
            "(2026-01-05, 2026-01-05T09:30:00Z) or epoch milliseconds"
        ) from exc
    if ts is pd.NaT:
        raise ConfigError(f"{field}: {text!r} is not a time")
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.tz_convert("UTC").value // 1_000_000)


def iso_ms(ms: int) -> str:
    """Return an instant as ``YYYY-MM-DDTHH:MM:SS.mmmZ``.

    Examples
    --------
    >>> iso_ms(1767571200123)
    '2026-01-05T00:00:00.123Z'
    """
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def iso_s(ms: int) -> str:
    """Return an instant as ``YYYY-MM-DDTHH:MM:SSZ`` (bar times are whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def now_ms() -> int:
    """Return the wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def to_datetime(ms: int) -> datetime:
    """Return an instant as a tz-aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
