"""The bars a fast-paced run covers, read from its session config (``since``, ``until``, ``max_bars``).

A backtest and a paper session replaying a range both ask here, so they cover the same bars.
"""

from __future__ import annotations

from labkit.config.schema import LabkitConfig
from labkit.errors import ConfigError
from labkit.timeutil import bars_between, iso_s, parse_instant, timeframe_ms


def replay_range(config: LabkitConfig, now: int) -> tuple[int, int]:
    """Return the half-open range ``[since, until)`` of bar opens a fast-paced run replays."""
    s = config.session
    tf = timeframe_ms(s.timeframe)
    until = parse_instant(s.until, "session.until") if s.until else (now // tf) * tf
    if s.since:
        since = parse_instant(s.since, "session.since")
    elif s.max_bars:
        since = max(0, until - s.max_bars * tf)  # a count reaching back before 1970 stops there
    else:
        raise ConfigError("session.since: a fast-paced run needs --since or --max-bars")
    if since >= until:
        raise ConfigError(f"session.since: {iso_s(since)} is not before until {iso_s(until)}")
    return since, until


def bars_to_decide(config: LabkitConfig, now: int, last_decided: int | None = None) -> int:
    """Return how many bars a fast-paced run of `config` will decide, counted without loading them.

    A resumed session (`last_decided`, the open of its last bar) decides only the bars after it.
    """
    s = config.session
    tf = timeframe_ms(s.timeframe)
    since, until = replay_range(config, now)
    if s.max_bars:
        since = max(since, until - s.max_bars * tf)
    if last_decided is not None:
        since = max(since, last_decided + tf)
    return bars_between(since, until, tf)
