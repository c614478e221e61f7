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
# Epoch milliseconds have 12 digits or more from 1973 on; fewer digits are refused, not guessed.
_EPOCH_MS = re.compile(r"-?\d{12,}")
_ISO_8601 = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?",
    re.IGNORECASE,
)
_SEPARATED_DATE = re.compile(r"\d{1,4}[/.]\d{1,2}[/.]\d{1,4}")
ACCEPTED_INSTANTS = (
    "an ISO 8601 date (2026-01-05), datetime (2026-01-05T09:30:00Z, offsets like +01:00 allowed) "
    "or epoch milliseconds (1767571200000)"
)


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

    Only unambiguous forms are accepted: ``05/01/2026`` could be May or January, and ten digits
    are epoch seconds a millisecond reader would place in 1970, so both are refused.

    Examples
    --------
    >>> parse_instant("2026-01-05")
    1767571200000
    >>> parse_instant("2026-01-05T10:30:00+01:00")
    1767605400000
    >>> parse_instant("1767571200000")
    1767571200000
    """
    text = str(value).strip()
    if _EPOCH_MS.fullmatch(text):
        return int(text)
    if not _ISO_8601.fullmatch(text):
        raise ConfigError(f"{field}: {text!r} {_why_refused(text)}; use {ACCEPTED_INSTANTS}")
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{field}: {text!r} is not a time; use {ACCEPTED_INSTANTS}") from exc
    if ts is pd.NaT:
        raise ConfigError(f"{field}: {text!r} is not a time; use {ACCEPTED_INSTANTS}")
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.tz_convert("UTC").value // 1_000_000)


def _why_refused(text: str) -> str:
    if re.fullmatch(r"-?\d{9,11}", text):
        return "looks like epoch seconds; labkit reads a plain number as epoch milliseconds (12+ digits)"
    if _SEPARATED_DATE.search(text):
        return "is ambiguous (with / or . the order of day and month is a guess)"
    return "is not a time"


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


def human_duration(seconds: float) -> str:
    """Return a duration in the unit read at a glance: ``12 s``, ``3 min``, ``2 h`` or ``4 d``.

    Each unit is used up to 90 of it (48 for hours), so "1 min" never stands for 119 seconds.

    Examples
    --------
    >>> human_duration(12.4), human_duration(200), human_duration(7_300), human_duration(400_000)
    ('12 s', '3 min', '2 h', '4 d')
    """
    seconds = max(0.0, float(seconds))
    for unit, size, below in (("s", 1, 90), ("min", 60, 90 * 60), ("h", 3_600, 48 * 3_600)):
        if seconds < below:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds // 86_400)} d"


def ago(instant: str | int, now: int | None = None) -> str:
    """Return how long before `now` (default: the wall clock) an instant was, as ``12 s ago``.

    Examples
    --------
    >>> ago("2026-01-05T00:00:00Z", now=1767571200000 + 180_000)
    '3 min ago'
    """
    now = now_ms() if now is None else now
    seconds = (now - parse_instant(instant)) / 1000
    # A clock a little ahead of ours is no reason to print a negative age.
    return f"in {human_duration(-seconds)}" if seconds < -1 else f"{human_duration(seconds)} ago"


def to_datetime(ms: int) -> datetime:
    """Return an instant as a tz-aware UTC datetime."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def bars_between(since_ms: int, until_ms: int, timeframe_ms: int) -> int:
    """Return how many bar opens of the timeframe's grid lie in ``[since, until)``.

    Examples
    --------
    >>> bars_between(30_000, 240_000, 60_000)  # opens at 1, 2 and 3 minutes
    3
    """
    first = -(-since_ms // timeframe_ms) * timeframe_ms  # the first open at or after `since`
    return max(0, -(-(until_ms - first) // timeframe_ms))
