"""Time parsing shared by the command line, sources and the engine: timeframes and instants.

Inside labkit an instant is an int of epoch milliseconds (UTC); pandas timestamps appear only
at the edges (files, notebooks).
"""

from __future__ import annotations

import numbers
import re
import time
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from labkit.errors import ConfigError

# ASCII digits only: int() reads Arabic-Indic and other digits, which no source or file name expects.
# No leading zero, so one length has one spelling (the cache and the journal key on the text).
_TIMEFRAME = re.compile(r"([1-9][0-9]{0,8})([smhdw])", re.ASCII)
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
DAY_MS = 86_400_000
# A bar longer than a year has no source and would put a whole range inside one bar.
MAX_TIMEFRAME_MS = 365 * DAY_MS
# Epoch milliseconds have 12 digits or more from 1973 on; fewer digits are refused, not guessed.
_EPOCH_MS = re.compile(r"[0-9]{12,}", re.ASCII)
_ISO_8601 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?",
    re.IGNORECASE | re.ASCII,
)
_SEPARATED_DATE = re.compile(r"[0-9]{1,4}[/.][0-9]{1,2}[/.][0-9]{1,4}", re.ASCII)
# Instants labkit accepts: nothing traded before the epoch, and a far future is a typo that would
# otherwise ask a source for centuries of bars (or overflow the nanosecond times pandas keeps).
MIN_INSTANT_MS = 0  # 1970-01-01T00:00:00Z
MAX_INSTANT_MS = 7_258_118_400_000  # 2200-01-01T00:00:00Z
INSTANT_RANGE = "1970-01-01 .. 2200-01-01"
ACCEPTED_INSTANTS = (
    "an ISO 8601 date (2026-01-05), datetime (2026-01-05T09:30:00Z, offsets like +01:00 allowed) "
    f"or epoch milliseconds (1767571200000), within {INSTANT_RANGE}"
)


def timeframe_ms(timeframe: str, field: str = "timeframe") -> int:
    """Return the length of a timeframe such as ``1m`` or ``4h`` in milliseconds.

    Examples
    --------
    >>> timeframe_ms("15m")
    900000
    """
    # fullmatch: with match and $, "1m\n" would pass and name a different cache file.
    match = _TIMEFRAME.fullmatch(timeframe) if isinstance(timeframe, str) else None
    ms = int(match.group(1)) * _UNIT_MS[match.group(2)] if match else 0
    if not 0 < ms <= MAX_TIMEFRAME_MS:
        raise ConfigError(
            f"{field}: {_shown(timeframe)} is not a timeframe; use a number and a unit s, m, h, d or w, "
            "from 1s to 365d, without spaces or leading zeros (e.g. 1s, 5s, 1m, 15m, 1h, 1d)"
        )
    return ms


def parse_instant(value: str | int, field: str = "time") -> int:
    """Return epoch milliseconds for an ISO 8601 date/datetime (UTC if no zone) or epoch ms.

    Only unambiguous forms are accepted: ``05/01/2026`` could be May or January, and ten digits
    are epoch seconds a millisecond reader would place in 1970, so both are refused. Instants
    outside 1970-01-01 .. 2200-01-01 (`INSTANT_RANGE`) are refused too.

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
        # Counting digits first: int() of thousands of digits is slow, and refused past 4300.
        ms = int(text) if len(text) <= len(str(MAX_INSTANT_MS)) else MAX_INSTANT_MS + 1
    elif _ISO_8601.fullmatch(text):
        ms = _iso_ms(text, field)
    else:
        raise ConfigError(f"{field}: {_shown(text)} {_why_refused(text)}; use {ACCEPTED_INSTANTS}")
    if not MIN_INSTANT_MS <= ms <= MAX_INSTANT_MS:
        raise ConfigError(
            f"{field}: {_shown(text)} is outside {INSTANT_RANGE}; use a time within it (e.g. 2026-01-05, "
            "2026-01-05T09:30:00Z or 1767571200000)"
        )
    return ms


# The days a research command's --since/--until may name relative to the clock, and how far back.
RELATIVE_DAYS = {"today": 0, "yesterday": 1}


def relative_day(value: str | None, flag: str, now: int) -> str | None:
    """Return `value`, with ``today`` or ``yesterday`` replaced by that UTC day as ``YYYY-MM-DD``.

    Only the command line reads these words, so a scheduled job can say "the previous day"
    without ``date +%F`` (cron would need its ``%`` escaped). The day is written out before the
    config is built, so what a run records names fixed bars that read the same tomorrow.
    Anything else is returned as given, for `parse_instant` to judge.

    Raises
    ------
    ConfigError
        When `value` is a word other than ``today`` or ``yesterday``, naming `flag`.

    Examples
    --------
    >>> relative_day("yesterday", "--since", now=1767614400000)  # 2026-01-05T12:00Z
    '2026-01-04'
    >>> relative_day("2026-01-02T10:00", "--since", now=1767614400000)
    '2026-01-02T10:00'
    """
    if value is None:
        return None
    word = str(value).strip().lower()
    if word in RELATIVE_DAYS:
        midnight = now - now % DAY_MS - RELATIVE_DAYS[word] * DAY_MS
        return time.strftime("%Y-%m-%d", time.gmtime(midnight // 1000))
    if word.isascii() and word.replace("-", "").isalpha():
        raise ConfigError(
            f"session.{flag.lstrip('-')} ({flag}): {_shown(value)} is not a time; use today or "
            f"yesterday (UTC midnight of that day), or {ACCEPTED_INSTANTS}"
        )
    return value


# What a public time argument may be, for the messages that refuse one.
DATE_FORMS = "a date string (2026-01-05), a datetime, a date, a pandas Timestamp or epoch milliseconds"


def instant_ms(value: Any, field: str) -> int:
    """Return epoch milliseconds for `value`: a str, date, datetime, pandas Timestamp or epoch ms.

    A datetime without a zone is UTC, as a date string without one is. Epoch milliseconds are
    checked as `parse_instant` checks them (12 digits or more, within `INSTANT_RANGE`).

    Examples
    --------
    >>> instant_ms("2026-01-05", "since"), instant_ms(date(2026, 1, 5), "since")
    (1767571200000, 1767571200000)
    >>> instant_ms(datetime(2026, 1, 5), "since"), instant_ms(1767571200000, "since")
    (1767571200000, 1767571200000)
    """
    if isinstance(value, datetime):  # pandas' Timestamp is one too
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return parse_instant(str(round(aware.timestamp() * 1000)), field)
    if isinstance(value, date):
        return parse_instant(value.isoformat(), field)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f"{field}: {_shown(value)} is not a time; give {DATE_FORMS}")
    return parse_instant(value, field)


def as_ms(value: Any, field: str) -> int:
    """Return `value` as epoch ms: a number as it is, any other form through `instant_ms`.

    For the lower layers (sources, the synthetic market) that always took raw epoch ms, small
    ones included (tests and grids start at 0): only the forms they used to refuse are coerced.

    Examples
    --------
    >>> as_ms(60_000, "since_ms"), as_ms("2026-01-05", "since_ms")
    (60000, 1767571200000)
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return value  # type: ignore[return-value]  # as before: a computed float passes through
    return instant_ms(value, field)


def _iso_ms(text: str, field: str) -> int:
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(f"{field}: {_shown(text)} is not a time; use {ACCEPTED_INSTANTS}") from exc
    if ts is pd.NaT:
        raise ConfigError(f"{field}: {_shown(text)} is not a time; use {ACCEPTED_INSTANTS}")
    ts = (ts.tz_localize("UTC") if ts.tzinfo is None else ts).tz_convert("UTC")
    # Compared before `.value`: a time outside pandas' nanosecond range (year 1, 9999) has none.
    if ts < pd.Timestamp(MIN_INSTANT_MS, unit="ms", tz="UTC"):
        return MIN_INSTANT_MS - 1
    if ts > pd.Timestamp(MAX_INSTANT_MS, unit="ms", tz="UTC"):
        return MAX_INSTANT_MS + 1
    return int(ts.value // 1_000_000)


def _shown(value: object, limit: int = 40) -> str:
    # An error quotes what was typed; a pasted megabyte would bury the reason.
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-1]} ({len(str(value))} characters)"


def _why_refused(text: str) -> str:
    if re.fullmatch(r"-[0-9]+", text, re.ASCII):
        return "is before 1970-01-01 (epoch milliseconds are never negative)"
    if re.fullmatch(r"[0-9]{9,11}", text, re.ASCII):
        return "looks like epoch seconds; labkit reads a plain number as epoch milliseconds (12+ digits)"
    if _SEPARATED_DATE.search(text):
        return "is ambiguous (with / or . the order of day and month is a guess)"
    if not text.isascii():
        return "is not a time (only ASCII digits are read)"
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
