"""Equities and ETFs through yfinance, cached like exchange bars under ``data/ohlcv/yfinance/``.

Yahoo serves intraday bars only for recent days; the limits are checked before asking, so the error
says what is possible instead of returning an empty frame.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit.data.bars import COLUMNS, empty_bars, make_bars, validate_bars
from labkit.data.cache import CachedSource, cache_path, read_meta, subtract_ranges, write_meta, write_parquet
from labkit.data.registry import SourceContext
from labkit.data.retry import CircuitBreaker, DataConfig, TransientError, with_retries
from labkit.errors import ConfigError, SourceUnavailableError
from labkit.timeutil import DAY_MS, iso_s, now_ms, timeframe_ms

log = logging.getLogger(__name__)


# labkit timeframe -> (yfinance interval, how far back Yahoo serves it in days, days per request)
INTERVALS: dict[str, tuple[str, int | None, int]] = {
    "1m": ("1m", 30, 7),
    "2m": ("2m", 60, 59),
    "5m": ("5m", 60, 59),
    "15m": ("15m", 60, 59),
    "30m": ("30m", 60, 59),
    "1h": ("1h", 730, 729),
    "60m": ("60m", 730, 729),
    "90m": ("90m", 60, 59),
    "1d": ("1d", None, 36_500),
    "5d": ("5d", None, 36_500),
    "1w": ("1wk", None, 36_500),
}


class YahooSource(CachedSource):
    """Equities and ETFs through yfinance, through the cache under ``data/ohlcv/``."""

    kinds = ("yfinance",)
    order = 40
    spec = "yfinance"

    @classmethod
    def open(cls, kind: str, arg: str, ctx: SourceContext) -> YahooSource:
        return cls(ctx.home, ctx.data, live=ctx.live)

    def __init__(
        self,
        home: Path,
        data: DataConfig,
        live: bool = False,
        session: Any = None,
        clock: Callable[[], int] = now_ms,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.home = home
        self.data = data
        self.attempts = data.live_retries if live else data.retries
        self.session = session
        self.clock = clock
        self.sleep = sleep
        self.breaker = CircuitBreaker(self.spec, data.breaker_threshold, data.breaker_cooldown)

    def fetch(
        self, symbol: str, timeframe: str, since_ms: int, until_ms: int, refill_gaps: bool = False
    ) -> dict[str, int]:
        """Fetch the closed bars of ``[since, until)`` the cache lacks."""
        if timeframe not in INTERVALS:
            raise ConfigError(f"timeframe: yfinance serves {', '.join(INTERVALS)}, not {timeframe!r}")
        interval, back_days, chunk_days = INTERVALS[timeframe]
        tf = timeframe_ms(timeframe)
        now = self.clock()
        until_ms = min(until_ms, (now // tf) * tf)
        if back_days is not None and since_ms < now - back_days * DAY_MS:
            raise ConfigError(
                f"--since: Yahoo serves {timeframe} bars only for the last {back_days} days "
                f"(from {iso_s(now - back_days * DAY_MS)}); ask for a later --since or a longer timeframe"
            )
        path = cache_path(self.home, self.spec, symbol, timeframe)
        meta = read_meta(path)
        stats = {"requested": 0, "fetched": 0, "gaps": 0}
        for lo, hi in subtract_ranges([since_ms, until_ms], meta["covered"]) if until_ms > since_ms else []:
            for start in range(lo, hi, chunk_days * DAY_MS):
                end = min(hi, start + chunk_days * DAY_MS)
                bars = self.breaker.call(functools.partial(self._download, symbol, interval, start, end, tf))
                stats["requested"] += 1
                if len(bars):
                    validate_bars(bars, f"yfinance {symbol}")
                    write_parquet(bars, path)
                    stats["fetched"] += len(bars)
                meta = read_meta(path)
                write_meta(path, meta["covered"] + [[start, end]], meta["gaps"])
        return stats

    def _download(self, symbol: str, interval: str, start: int, end: int, tf: int) -> pd.DataFrame:
        import yfinance as yf

        yf.config.debug.hide_exceptions = False  # failures must raise, to be retried or reported

        def request() -> pd.DataFrame:
            try:
                ticker = yf.Ticker(symbol, session=self.session) if self.session else yf.Ticker(symbol)
                raw = ticker.history(
                    start=pd.Timestamp(start, unit="ms", tz="UTC"),
                    end=pd.Timestamp(end, unit="ms", tz="UTC"),
                    interval=interval,
                    auto_adjust=False,
                    actions=False,
                )
            except Exception as exc:  # noqa: BLE001 - yfinance raises many kinds
                text = str(exc)
                if "delisted" in text.lower() or "no data found" in text.lower() or "symbol" in text.lower():
                    raise ConfigError(f"--symbol: yfinance has no {symbol!r}: {text[:200]}") from exc
                raise TransientError(f"yfinance: {type(exc).__name__}: {text[:200]}") from exc
            return raw

        try:
            raw = with_retries(
                request, self.attempts, self.data.backoff_base, self.data.backoff_cap, sleep=self.sleep
            )
        except TransientError as exc:
            raise SourceUnavailableError(
                f"yfinance: still failing after {self.attempts} tries: {exc}"
            ) from exc
        frame = _from_yfinance(raw)
        times = np.asarray(frame.index.as_unit("ms").asi8)
        keep = (times >= start) & (times < end) & (times + tf <= self.clock())
        return frame[keep]


def _from_yfinance(raw: pd.DataFrame) -> pd.DataFrame:
    if raw is None or raw.empty:
        return empty_bars()
    lower = {str(c).lower(): c for c in raw.columns}
    index = pd.DatetimeIndex(raw.index)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    times = np.asarray(index.as_unit("ms").asi8, dtype="int64")
    values = {c: raw[lower[c]].to_numpy(dtype="float64") for c in COLUMNS}
    ok = np.all([np.isfinite(values[c]) for c in COLUMNS], axis=0)  # Yahoo pads halts with NaN rows
    return make_bars(times[ok], {c: v[ok] for c, v in values.items()})
