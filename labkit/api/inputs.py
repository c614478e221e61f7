"""What a notebook hands the API, made into what labkit works with: instants and the home."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from labkit.errors import ConfigError
from labkit.timeutil import parse_instant

# What a public date argument may be, for the messages that refuse one.
DATE_FORMS = "a date string (2026-01-05), a datetime, a date, a pandas Timestamp or epoch milliseconds"


def instant_ms(value: Any, field: str) -> int:
    """Return epoch milliseconds for `value`: a str, date, datetime, pandas Timestamp or epoch ms.

    A datetime without a zone is UTC, as a date string without one is.

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
        raise ConfigError(f"{field}: {value!r} is not a time; give {DATE_FORMS}")
    return parse_instant(value, field)


def home_path(home: str | Path | None) -> Path:
    """Return the labkit home: `home` when given (str or Path), else ``LABKIT_HOME`` or the usual one."""
    from labkit.home import resolve_home

    return resolve_home(str(home) if home is not None else None)
