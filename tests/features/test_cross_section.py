"""Cross-sectional ranks: a symbol's momentum and volatility ranked across its universe at each time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labkit.data.bars import make_bars
from labkit.features.cross_section import (
    MOMENTUM_BARS,
    NAMES,
    XS_MOMENTUM,
    XS_VOLATILITY,
    percentile_ranks,
    with_ranks,
)
from labkit.features.featureset import FeatureSet
from labkit.features.schema import FeatureSchema

MINUTE = 60_000
T0 = 1_767_571_200_000
N = MOMENTUM_BARS


def _bars(close: np.ndarray, start: int = 0) -> pd.DataFrame:
    times = T0 + (start + np.arange(len(close))) * MINUTE
    cols = {
        "open": close,
        "high": close * 1.001,
        "low": close * 0.999,
        "close": close,
        "volume": np.ones(len(close)),
    }
    return make_bars(times, cols)


def _planted() -> dict[str, pd.DataFrame]:
    # A rises fast and smoothly, B rises slowly and smoothly, C swings: a clear order on both ranks.
    n = 200
    steps = np.arange(n)
    swing = np.where(steps % 2 == 0, 0.01, -0.01)
    return {
        "A": _bars(100.0 * np.exp(0.002 * steps)),
        "B": _bars(100.0 * np.exp(0.001 * steps)),
        "C": _bars(100.0 * np.exp(np.cumsum(swing))),
    }


def test_ranks_on_a_planted_universe_order_the_symbols_by_momentum_and_volatility() -> None:
    ranked = with_ranks(_planted())
    t = N + 20
    assert [ranked[s][XS_MOMENTUM].iloc[t] for s in "ABC"] == pytest.approx([1.0, 0.5, 0.0])
    assert ranked["C"][XS_VOLATILITY].iloc[t] == pytest.approx(1.0)  # the swinging one
    # The warm-up: no momentum before N bars, so no rank either.
    assert ranked["A"][XS_MOMENTUM].iloc[:N].isna().all()
    assert ranked["A"][XS_MOMENTUM].iloc[N:].notna().all()


def test_ranks_count_only_the_symbols_with_a_bar_at_that_time() -> None:
    frames = _planted()
    # B misses one bar: at that time only A and C are ranked, A above C.
    gap = N + 30
    frames["B"] = frames["B"].drop(frames["B"].index[gap])
    ranked = with_ranks(frames)
    at = frames["A"].index[gap]
    assert ranked["A"].loc[at, XS_MOMENTUM] == 1.0 and ranked["C"].loc[at, XS_MOMENTUM] == 0.0
    assert at not in ranked["B"].index


def test_percentile_ranks_average_ties_and_give_a_lone_symbol_the_middle() -> None:
    values = np.array([[1.0, 1.0, 2.0, 0.0], [np.nan, 3.0, np.nan, np.nan], [np.nan] * 4])
    out = percentile_ranks(values)
    np.testing.assert_allclose(out[0], [0.5, 0.5, 1.0, 0.0])
    np.testing.assert_array_equal(out[1], [np.nan, 0.5, np.nan, np.nan])
    assert np.isnan(out[2]).all()


def test_a_rank_at_t_does_not_change_when_any_symbols_bars_after_t_change() -> None:
    frames = _planted()
    t = N + 40
    before = with_ranks(frames)
    rng = np.random.default_rng(7)
    changed = {}
    for symbol, bars in frames.items():
        later = bars.copy()
        later.iloc[t + 1 :, :] *= rng.uniform(0.5, 2.0, size=(len(bars) - t - 1, 1))
        changed[symbol] = later
    # And a new symbol whose first bar comes after t ranks nobody at t.
    changed["D"] = _bars(np.full(50, 100.0), start=t + 1)
    after = with_ranks(changed)
    for symbol in frames:
        for name in NAMES:
            np.testing.assert_array_equal(
                after[symbol][name].iloc[: t + 1], before[symbol][name].iloc[: t + 1]
            )


def test_a_feature_set_with_the_ranks_is_flagged_and_hashes_apart_from_one_without() -> None:
    plain = FeatureSet()
    ranked = FeatureSet([*plain.names, *NAMES])
    assert ranked.cross_sectional == NAMES and plain.cross_sectional == ()
    assert ranked.schema.cross_sectional and ranked.schema.to_dict()["cross_sectional"] is True
    assert ranked.schema.version != plain.schema.version
    # A schema without the ranks is what it always was: no new key, the same hash.
    assert "cross_sectional" not in plain.schema.to_dict()
    assert plain.schema.version == FeatureSchema.of(plain.features).version
    assert FeatureSchema.from_dict(ranked.schema.to_dict()) == ranked.schema


def test_a_feature_set_reads_the_ranks_from_the_bars_batch_and_last_alike() -> None:
    features = FeatureSet(["ret_1", XS_MOMENTUM])
    bars = with_ranks(_planted())["B"]
    full = features.compute(bars)
    np.testing.assert_array_equal(full[:, 1], np.r_[np.full(N, np.nan), bars[XS_MOMENTUM].to_numpy()[N:]])
    for t in (N, N + 5, len(bars) - 1):
        np.testing.assert_allclose(features.compute_last(bars.iloc[: t + 1]), full[t], rtol=0, atol=1e-9)


def test_a_feature_set_with_the_ranks_refuses_bars_of_one_symbol_alone() -> None:
    with pytest.raises(ValueError, match="cross-sectional"):
        FeatureSet([XS_MOMENTUM]).compute(_planted()["A"])
