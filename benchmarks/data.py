"""Market data speed: fetching from a local Binance stand-in into the cache, and loading the cache.

Prints bars per second for fetching 100,000 1-minute bars through ccxt's real binance class from a
server on 127.0.0.1 (with ccxt's rate limiter on, as labkit runs it, and off, to show the raw cost),
and for loading 1,000,000 cached bars the way backtests and sessions read them.

    .venv/bin/python benchmarks/data.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.config.loading import load_config  # noqa: E402
from labkit.data.cache import cache_path, write_meta, write_parquet  # noqa: E402
from labkit.data.ccxt import CcxtSource  # noqa: E402
from labkit.data.synthetic import synthetic_bars  # noqa: E402
from labkit.timeutil import parse_instant  # noqa: E402
from tests.data.fake_binance import FakeBinance  # noqa: E402

T0 = parse_instant("2025-01-01")
MIN = 60_000


def fetch(n: int, rate_limit: bool) -> tuple[float, int]:
    fake = FakeBinance(now_ms=T0 + (n + 10) * MIN).start()
    try:
        with tempfile.TemporaryDirectory() as home:
            options = {**fake.ccxt_config(timeout_ms=10_000), "enableRateLimit": rate_limit}
            source = CcxtSource("binance", Path(home), options, load_config(None, {}, environ={}).data,
                                progress=False)
            start = time.perf_counter()
            stats = source.fetch("BTC/USDT", "1m", T0, T0 + n * MIN)
            return time.perf_counter() - start, stats["fetched"]
    finally:
        fake.close()


def load(n: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as home:
        bars = synthetic_bars("BTC/USDT", "1m", T0, T0 + n * MIN)
        path = cache_path(Path(home), "ccxt:binance", "BTC/USDT", "1m")
        write_parquet(bars, path)
        write_meta(path, [[T0, T0 + n * MIN]], [])
        source = CcxtSource("binance", Path(home), {}, load_config(None, {}, environ={}).data, progress=False)
        start = time.perf_counter()
        loaded = source.bars("BTC/USDT", "1m", T0, T0 + n * MIN)  # all cached: no request is made
        return time.perf_counter() - start, len(loaded)


def main() -> None:
    print(f"{'case':<48}{'seconds':>9}{'bars':>10}{'bars/s':>12}")
    for label, (seconds, bars) in (
        ("fetch 100,000 1m bars, ccxt rate limiter on", fetch(100_000, True)),
        ("fetch 100,000 1m bars, rate limiter off", fetch(100_000, False)),
        ("load 1,000,000 cached 1m bars", load(1_000_000)),
    ):
        print(f"{label:<48}{seconds:>9.2f}{bars:>10,}{bars / seconds:>12,.0f}")


if __name__ == "__main__":
    main()
