"""The embedded market: seeded, deterministic bars for any symbol, timeframe and range.

A bar is a pure function of (seed, symbol, timeframe, time): asking for a range, or for one bar as
its time passes, gives the same numbers. Time is cut into blocks of 720 bars. Block boundaries sit
on a slow level path (a few sinusoids per symbol plus jitter), so consecutive blocks trend up or
down for a while; inside a block the path follows a regime drawn for that block: ``trend`` (quiet
noise, the slope dominates), ``mean_revert`` (oscillations that whipsaw crossovers), ``volatile``
and ``calm``. Every block starts where the previous one ended, so the market is continuous.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from labkit.data.bars import make_bars
from labkit.data.registry import Source, SourceContext
from labkit.errors import ConfigError
from labkit.timeutil import as_ms, timeframe_ms

BLOCK = 720


# BASE/QUOTE, as exchanges write pairs: letters and digits each side of one slash (or a dash,
# as Coinbase writes them: BTC-USD).
_PAIR = re.compile(r"[A-Za-z0-9]+[/-][A-Za-z0-9]+")


ANCHOR_MS = 946_684_800_000  # 2000-01-01T00:00:00Z: the market's first bar


REGIMES = ("trend", "mean_revert", "volatile", "calm")


_REGIME_P = (0.35, 0.30, 0.15, 0.20)


_NOISE = {"trend": 0.5, "mean_revert": 0.8, "volatile": 2.2, "calm": 0.35}


_REGIME_CUTS = np.cumsum(_REGIME_P)[:-1]


_NOISE_BY_INDEX = np.array([_NOISE[r] for r in REGIMES])


def synthetic_bars(symbol: str, timeframe: str, since_ms: int, until_ms: int, seed: int = 7) -> pd.DataFrame:
    """Return the synthetic bars whose open lies in ``[since_ms, until_ms)``.

    Examples
    --------
    >>> bars = synthetic_bars("BTC/USDT", "1m", 1767571200000, 1767571380000)
    >>> len(bars), str(bars.index[0])
    (3, '2026-01-05 00:00:00+00:00')
    """
    tf = timeframe_ms(timeframe)
    since_ms, until_ms = as_ms(since_ms, "since_ms"), as_ms(until_ms, "until_ms")  # dates too
    return _cut(_Market(symbol, tf, seed), tf, since_ms, until_ms)


def universe_bars(
    symbols: list[str], timeframe: str, since_ms: int, until_ms: int, seed: int = 7
) -> dict[str, pd.DataFrame]:
    """Return each symbol's bars in ``[since_ms, until_ms)`` as one correlated market.

    Every symbol's log price is its own path (as `synthetic_bars` makes it, with its own noise
    scaled by a seeded volatility) plus a seeded beta times a common market factor, plus a seeded
    yearly drift counted from 2026-01-01. Its bars depend on the seed and the symbol alone, never
    on the other members, so a symbol is the same in every universe it belongs to. A universe of
    one symbol is that symbol alone (`synthetic_bars`): the single-symbol market is unchanged.

    Examples
    --------
    >>> bars = universe_bars(["BTC/USDT", "ETH/USDT"], "1h", 1767571200000, 1767657600000)
    >>> sorted(bars), len(bars["ETH/USDT"])
    (['BTC/USDT', 'ETH/USDT'], 24)
    """
    tf = timeframe_ms(timeframe)
    if len(symbols) == 1:
        return {symbols[0]: synthetic_bars(symbols[0], timeframe, since_ms, until_ms, seed)}
    factor = _Market(MARKET_FACTOR, tf, seed)
    out = {}
    for symbol in symbols:
        beta, vol, drift = member_traits(symbol, seed)
        out[symbol] = _cut(_Market(symbol, tf, seed, vol), tf, since_ms, until_ms, (factor, beta, drift))
    return out


def member_traits(symbol: str, seed: int = 7) -> tuple[float, float, float]:
    """Return a universe member's (beta to the market factor, volatility scale, yearly log drift)."""
    rng = np.random.default_rng([seed, zlib.crc32(symbol.encode()), _TRAITS])
    beta, vol, drift = rng.uniform([0.5, 0.6, -0.4], [1.5, 1.6, 0.6])
    return float(beta), float(vol), float(drift)


# The universe's common factor is a market of its own, under a name no pair can take.
MARKET_FACTOR = "market factor"
_TRAITS = 0x5EED
_DRIFT_FROM_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: drift is nil there, so prices stay near it
_YEAR_MS = 365 * 86_400_000


def _cut(
    market: _Market,
    tf: int,
    since_ms: int,
    until_ms: int,
    factor: tuple[_Market, float, float] | None = None,
) -> pd.DataFrame:
    # The bars of `market` with an open in [since_ms, until_ms), cut from whole blocks.
    first = max(0, -(-(since_ms - ANCHOR_MS) // tf))  # first bar index whose open >= since
    end = max(first, -(-(until_ms - ANCHOR_MS) // tf))
    if end <= first:
        return make_bars(
            np.empty(0, "int64"), {c: np.empty(0) for c in ("open", "high", "low", "close", "volume")}
        )
    k0, k1 = first // BLOCK, (end - 1) // BLOCK
    shift = None
    if factor is not None:
        common, beta, drift = factor
        path = common.log_path(k0, k1 + 1)[0] - common.log_p0
        points = np.arange(k0, k1 + 1)[:, None] * BLOCK + np.arange(BLOCK + 1)
        years = (ANCHOR_MS + points * tf - _DRIFT_FROM_MS) / _YEAR_MS
        shift = beta * path + drift * years
    cols = market.blocks(k0, k1 + 1, shift)
    lo, hi = first - k0 * BLOCK, end - k0 * BLOCK
    idx = np.arange(first, end, dtype="int64")
    return make_bars(ANCHOR_MS + idx * tf, {name: arr[lo:hi] for name, arr in cols.items()})


def regime_at(symbol: str, timeframe: str, ts_ms: int, seed: int = 7) -> str:
    """Return the regime of the block holding the bar that opens at `ts_ms` (for notebooks)."""
    tf = timeframe_ms(timeframe)
    return _Market(symbol, tf, seed).regime((ts_ms - ANCHOR_MS) // tf // BLOCK)


class _Market:
    def __init__(self, symbol: str, tf_ms: int, seed: int, vol: float = 1.0) -> None:
        self.keys = [seed, zlib.crc32(symbol.encode()), tf_ms // 1000]
        rng = np.random.default_rng(self.keys[:2])
        self.log_p0 = np.log(10 ** rng.uniform(1.5, 4.8))
        self.volume_base = 10 ** rng.uniform(1, 4)
        self.periods = rng.uniform([6, 20, 60, 200], [12, 40, 120, 400])
        self.amplitudes = np.array([0.03, 0.06, 0.12, 0.25]) * rng.uniform(0.7, 1.3, 4)
        self.phases = rng.uniform(0, 2 * np.pi, 4)
        self.sigma = min(0.05, 0.0007 * np.sqrt(tf_ms / 60_000)) * vol

    def level(self, k: np.ndarray) -> np.ndarray:
        waves = self.amplitudes * np.sin(2 * np.pi * k[:, None] / self.periods + self.phases)
        return self.log_p0 + waves.sum(axis=1) + 0.01 * _hash_normal(k, self.keys)

    def regime(self, k: int) -> str:
        return REGIMES[int(np.searchsorted(_REGIME_CUTS, self._draws(k)[0]))]

    def _draws(self, k: int) -> tuple[float, int, np.ndarray]:
        # Every block draws the same fixed sequence from its own generator: regime, cycles, normals.
        rng = np.random.default_rng([*self.keys, int(k)])
        return float(rng.random()), int(rng.integers(8, 24)), rng.standard_normal(4 * BLOCK)

    def log_path(self, k0: int, k1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the log-price path of blocks ``k0 .. k1-1`` (a row of ``BLOCK + 1`` points each),
        the block's normal draws and its noise scale."""
        draws = [self._draws(k) for k in range(k0, k1)]
        regime = np.searchsorted(_REGIME_CUTS, np.array([d[0] for d in draws]))
        cycles = np.array([d[1] for d in draws], dtype="float64")[:, None]
        z = np.stack([d[2] for d in draws]).reshape(len(draws), 4, BLOCK)
        levels = self.level(np.arange(k0, k1 + 1, dtype="float64"))
        start, end = levels[:-1, None], levels[1:, None]
        steps = np.arange(BLOCK + 1) / BLOCK
        sigma = self.sigma * _NOISE_BY_INDEX[regime][:, None]
        walk = np.concatenate([np.zeros((len(draws), 1)), np.cumsum(z[:, 0] * sigma, axis=1)], axis=1)
        path = start + (end - start) * steps + walk - steps * walk[:, -1:]  # a bridge: pinned at both ends
        whipsaw = (regime == REGIMES.index("mean_revert"))[:, None]
        return path + whipsaw * 6 * self.sigma * np.sin(2 * np.pi * cycles * steps), z, sigma

    def blocks(self, k0: int, k1: int, shift: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Return the OHLCV of blocks ``k0 .. k1-1``, concatenated.

        `shift` (a row of ``BLOCK + 1`` log prices per block) is added to the path before the bars are
        cut from it: a universe's market factor and drift.
        """
        path, z, sigma = self.log_path(k0, k1)
        if shift is not None:
            path = path + shift
        prices = np.exp(path)
        opens, closes = prices[:, :-1], prices[:, 1:]
        highs = np.maximum(opens, closes) * np.exp(np.abs(z[:, 1]) * 0.5 * sigma)
        lows = np.minimum(opens, closes) * np.exp(-np.abs(z[:, 2]) * 0.5 * sigma)
        moves = np.abs(np.diff(path, axis=1)) / sigma
        volume = self.volume_base * (0.5 + moves) * np.exp(0.3 * z[:, 3])
        return {
            name: arr.ravel()
            for name, arr in (
                ("open", opens),
                ("high", highs),
                ("low", lows),
                ("close", closes),
                ("volume", volume),
            )
        }


def _hash_normal(k: np.ndarray, keys: list[int]) -> np.ndarray:
    # splitmix64 of (keys, k) -> two uniforms -> one normal (Box-Muller), vectorised and stateless.
    with np.errstate(over="ignore"):
        x = k.astype("uint64") * np.uint64(0x9E3779B97F4A7C15)
        for key in keys:
            x ^= np.uint64(key & 0xFFFFFFFF) * np.uint64(0xBF58476D1CE4E5B9)
        u = [_splitmix(x + np.uint64(i)) for i in (1, 2)]
    u1 = (u[0] >> np.uint64(11)).astype("float64") / 2.0**53
    u2 = (u[1] >> np.uint64(11)).astype("float64") / 2.0**53
    return np.sqrt(-2.0 * np.log(np.maximum(u1, 1e-300))) * np.cos(2 * np.pi * u2)


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class SyntheticSource(Source):
    """The embedded synthetic market: seeded, deterministic bars for any symbol and timeframe."""

    kinds = ("synthetic",)
    order = 10

    def __init__(self, seed: int = 7) -> None:
        self.seed = seed
        self.spec = "synthetic"

    @classmethod
    def open(cls, kind: str, arg: str, ctx: SourceContext) -> SyntheticSource:
        return cls(ctx.seed)

    def bars(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pd.DataFrame:
        check_pair(symbol)
        return synthetic_bars(symbol, timeframe, since_ms, until_ms, self.seed)

    def universe_bars(
        self, symbols: Sequence[str], timeframe: str, since_ms: int, until_ms: int
    ) -> dict[str, pd.DataFrame]:
        """Return the symbols as one correlated market (`universe_bars`), each a BASE/QUOTE pair."""
        for symbol in symbols:
            check_pair(symbol)
        return universe_bars(
            list(symbols), timeframe, as_ms(since_ms, "since"), as_ms(until_ms, "until"), self.seed
        )


def check_pair(symbol: str) -> str:
    """Return `symbol` when it is a BASE/QUOTE pair, else raise ConfigError saying what to use.

    The synthetic market trades around the clock like a crypto pair; served under a stock's name
    it would look like that stock while following neither its prices nor its calendar.
    """
    if _PAIR.fullmatch(symbol):
        return symbol
    raise ConfigError(
        f"symbol: {symbol!r} is not a pair; the synthetic source makes 24/7 crypto-like markets named "
        "BASE/QUOTE, e.g. BTC/USDT; for a stock or index use --source yfinance (or a bar file, csv:PATH)"
    )
