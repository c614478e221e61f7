"""What every report's tables share: a table shown in full, UTC times, a header's parameters and
data range, and what a code version string means."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def table(frame: pd.DataFrame | Any) -> None:
    """Display a table (a frame or a pandas Styler) in full: no truncated cells or rows."""
    from IPython.display import display

    with pd.option_context("display.max_colwidth", None, "display.max_rows", 1000):
        display(frame)


def utc(ts: Any) -> str:
    """Return an instant as ``YYYY-MM-DD HH:MM UTC`` (seconds shown when it has any).

    Examples
    --------
    >>> utc(pd.Timestamp("2026-01-05T09:30:00Z")), utc(pd.Timestamp("2026-01-05 09:30:15", tz="UTC"))
    ('2026-01-05 09:30 UTC', '2026-01-05 09:30:15 UTC')
    """
    stamp = pd.Timestamp(ts)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC" if stamp.second else "%Y-%m-%d %H:%M UTC")


def data_range(frame: pd.DataFrame) -> str:
    """Return the first and last bar decided (UTC) and how many bars were decided."""
    if not len(frame):
        return "no bars decided"
    return f"{utc(frame['ts'].iloc[0])} to {utc(frame['ts'].iloc[-1])} ({len(frame):,} bars decided)"


def shown_parameters(parameters: Mapping[str, Any]) -> str:
    """Return a report's parameters as ``name='value'`` pairs, without the home (a local path)."""
    return ", ".join(f"{k}={v!r}" for k, v in parameters.items() if k != "home") or "none"


def describe_code_version(version: str) -> str:
    """Say what a `labkit.home.code_version` string means: version, git commit, dirty or clean tree.

    Examples
    --------
    >>> describe_code_version("0.1.0+ge4fe642d7a09.dirty")
    'labkit 0.1.0, git commit e4fe642d7a09, dirty tree (uncommitted changes)'
    >>> describe_code_version("0.1.0")
    'labkit 0.1.0 (no git checkout: commit unknown)'
    """
    import re

    found = re.fullmatch(r"(?P<version>[^+]+)\+g(?P<commit>[0-9a-f]+)(?P<dirty>\.dirty)?", version)
    if found is None:
        return f"labkit {version} (no git checkout: commit unknown)"
    tree = "dirty tree (uncommitted changes)" if found["dirty"] else "clean tree"
    return f"labkit {found['version']}, git commit {found['commit']}, {tree}"
