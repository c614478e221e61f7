"""A universe: correlated synthetic members, bars aligned on the union of times, symbols parsed."""

import numpy as np
import pandas as pd
import pytest

from labkit.data.synthetic import member_traits, synthetic_bars, universe_bars
from labkit.data.universe import align, parse_symbols
from labkit.errors import ConfigError

DAY = 86_400_000
T0 = 1_767_571_200_000  # 2026-01-05
FIVE = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT"]


def test_universe_members_share_a_market_factor_but_keep_their_own_moves() -> None:
    bars = universe_bars(FIVE, "1m", T0, T0 + 3 * DAY)
    returns = np.array([np.diff(np.log(bars[s]["close"].to_numpy())) for s in FIVE])
    corr = np.corrcoef(returns)[np.triu_indices(len(FIVE), 1)]
    assert (corr > 0.2).all() and (corr < 0.95).all()


def test_a_member_is_the_same_in_every_universe_and_a_universe_of_one_is_the_symbol_alone() -> None:
    one = universe_bars(["ETH/USDT", "BTC/USDT"], "5m", T0, T0 + DAY)["ETH/USDT"]
    other = universe_bars(["DOGE/USDT", "ETH/USDT", "SOL/USDT"], "5m", T0, T0 + DAY)["ETH/USDT"]
    pd.testing.assert_frame_equal(one, other)
    alone = universe_bars(["ETH/USDT"], "5m", T0, T0 + DAY)["ETH/USDT"]
    pd.testing.assert_frame_equal(alone, synthetic_bars("ETH/USDT", "5m", T0, T0 + DAY))


def test_universe_bars_are_valid_bars_and_deterministic() -> None:
    first = universe_bars(FIVE[:3], "1h", T0, T0 + 10 * DAY, seed=3)
    again = universe_bars(FIVE[:3], "1h", T0, T0 + 10 * DAY, seed=3)
    for symbol, bars in first.items():
        pd.testing.assert_frame_equal(bars, again[symbol])
        assert len(bars) == 240
        assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
        assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert member_traits("BTC/USDT", 3) != member_traits("ETH/USDT", 3)


def test_align_takes_the_union_of_times_and_marks_missing_bars() -> None:
    a = synthetic_bars("BTC/USDT", "1h", T0, T0 + 6 * 3_600_000)
    b = synthetic_bars("ETH/USDT", "1h", T0 + 2 * 3_600_000, T0 + 8 * 3_600_000).drop(
        pd.Timestamp(T0 + 4 * 3_600_000, unit="ms", tz="UTC")
    )
    u = align({"ETH/USDT": b, "BTC/USDT": a})
    assert u.symbols == ("ETH/USDT", "BTC/USDT")
    assert len(u) == 8
    assert u.present[:, 1].tolist() == [True] * 6 + [False] * 2
    assert u.present[:, 0].tolist() == [False, False, True, True, False, True, True, True]
    assert np.isnan(u.columns["close"][4, 0])
    pd.testing.assert_frame_equal(u.bars("ETH/USDT"), b)
    pd.testing.assert_frame_equal(u.bars("BTC/USDT"), a)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("BTC/USDT,,ETH/USDT", "separated by commas"),
        ("", "separated by commas"),
        ("BTC/USDT, BTC/USDT", "twice"),
    ],
)
def test_parse_symbols_refuses_blanks_and_repeats(text: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named) as err:
        parse_symbols(text)
    assert "--symbols" in str(err.value)


def test_parse_symbols_keeps_the_order_given() -> None:
    assert parse_symbols(" SOL/USDT,BTC/USDT ") == ["SOL/USDT", "BTC/USDT"]
