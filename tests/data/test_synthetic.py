from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labkit.data.bars import validate_bars
from labkit.data.synthetic import BLOCK, REGIMES, regime_at, synthetic_bars
from labkit.timeutil import parse_instant, timeframe_ms

T0 = parse_instant("2026-01-05")


def test_synthetic_when_same_seed_gives_same_bars():
    a = synthetic_bars("BTC/USDT", "1m", T0, T0 + 3_000 * 60_000, seed=3)
    b = synthetic_bars("BTC/USDT", "1m", T0, T0 + 3_000 * 60_000, seed=3)
    pd.testing.assert_frame_equal(a, b)


def test_synthetic_when_ranges_overlap_bars_are_identical():
    # A bar is a function of its time alone: a live session asking bar by bar sees the backtest's bars.
    whole = synthetic_bars("ETH/USDT", "1m", T0, T0 + 2_000 * 60_000)
    part = synthetic_bars("ETH/USDT", "1m", T0 + 1_234 * 60_000, T0 + 1_240 * 60_000)
    pd.testing.assert_frame_equal(part, whole.iloc[1_234:1_240])


def test_synthetic_when_seed_or_symbol_differs_bars_differ():
    base = synthetic_bars("BTC/USDT", "1m", T0, T0 + 100 * 60_000, seed=1)["close"].to_numpy()
    other_seed = synthetic_bars("BTC/USDT", "1m", T0, T0 + 100 * 60_000, seed=2)["close"].to_numpy()
    other_symbol = synthetic_bars("SPY", "1m", T0, T0 + 100 * 60_000, seed=1)["close"].to_numpy()
    assert not np.allclose(base, other_seed) and not np.allclose(base, other_symbol)


@pytest.mark.parametrize("timeframe", ["1s", "5s", "1m", "15m", "1h", "1d"])
def test_synthetic_when_any_timeframe_bars_keep_every_rule(timeframe):
    tf = timeframe_ms(timeframe)
    bars = synthetic_bars("BTC/USDT", timeframe, T0, T0 + 2_000 * tf)
    assert len(bars) == 2_000
    validate_bars(bars)
    assert (np.diff(bars.index.asi8) == np.diff(bars.index.asi8)[0]).all()
    assert str(bars.index.tz) == "UTC"


def test_synthetic_when_blocks_join_the_market_is_continuous():
    bars = synthetic_bars("BTC/USDT", "1m", T0, T0 + 3 * BLOCK * 60_000)
    np.testing.assert_allclose(bars["open"].to_numpy()[1:], bars["close"].to_numpy()[:-1], rtol=1e-12)


def test_synthetic_when_many_blocks_every_regime_appears():
    seen = {regime_at("BTC/USDT", "1m", T0 + k * BLOCK * 60_000) for k in range(60)}
    assert seen == set(REGIMES)


def test_synthetic_when_range_starts_mid_bar_begins_at_next_open():
    bars = synthetic_bars("BTC/USDT", "1m", T0 + 30_000, T0 + 180_000)
    assert [str(t) for t in bars.index] == ["2026-01-05 00:01:00+00:00", "2026-01-05 00:02:00+00:00"]


# --- a market that only looks like a pair (issue 20) ------------------------------------------------


@pytest.mark.parametrize(
    "symbol", ["SPY", "^GSPC", "BTCUSDT", "BTC/", "/USDT", "BTC/USDT/X", "BTC-/USD", " BTC/USDT", ""]
)
def test_synthetic_source_when_symbol_is_not_a_pair_refuses_naming_the_form(symbol):
    from labkit.data.synthetic import SyntheticSource
    from labkit.errors import ConfigError

    # The synthetic market is a 24/7 crypto pair: "SPY" would get a made-up 24/7 stock.
    with pytest.raises(ConfigError, match=r"symbol: .*BASE/QUOTE, e\.g\. BTC/USDT.*yfinance"):
        SyntheticSource(7).bars(symbol, "1m", T0, T0 + 60_000)


@pytest.mark.parametrize("symbol", ["BTC/USDT", "ETH/BTC", "SOL/USDC", "1000PEPE/USDT", "BTC-USD"])
def test_synthetic_source_when_symbol_is_a_pair_serves_it(symbol):
    from labkit.data.synthetic import SyntheticSource

    assert len(SyntheticSource(7).bars(symbol, "1m", T0, T0 + 120_000)) == 2


def test_backtest_when_synthetic_symbol_is_not_a_pair_exits_2(tmp_path, capsys):
    from labkit.cli import main

    code = main(
        [
            "--home",
            str(tmp_path),
            "backtest",
            "--symbol",
            "SPY",
            "--since",
            "2026-01-05",
            "--until",
            "2026-01-06",
        ]
    )
    assert code == 2 and "symbol: 'SPY'" in capsys.readouterr().err
