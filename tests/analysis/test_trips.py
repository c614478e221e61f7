"""Round trips over columns: the same trips, to the bit, as walking the fills one by one (issue 17)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labkit.analysis.trips import round_trips


def _walked(fills: pd.DataFrame) -> pd.DataFrame:
    # The definition, fill by fill: a trip opens with the first BUY on a flat book, later BUYs add
    # to it, the SELL that follows closes it; a SELL with no BUY before it is not a trip.
    rows, trip = [], None
    for row in fills.itertuples(index=False):
        units, price = float(row.fill_units), float(row.fill_price)
        fee, slip = float(row.fill_fee or 0.0), float(row.fill_slippage_cost or 0.0)
        if row.fill_side == "BUY":
            if trip is None:
                trip = {"entry_ts": row.ts, "units": 0.0, "notional": 0.0, "cost": 0.0, "fees": 0.0, "slip": 0.0}
            trip["units"] += units
            trip["notional"] += units * price
            trip["cost"] += units * price + fee
            trip["fees"] += fee
            trip["slip"] += slip
        elif trip is not None:
            net = units * price - fee - trip["cost"]
            fees, slippage = trip["fees"] + fee, trip["slip"] + slip
            rows.append(
                {
                    "entry_ts": trip["entry_ts"],
                    "exit_ts": row.ts,
                    "units": units,
                    "entry_price": trip["notional"] / trip["units"],
                    "exit_price": price,
                    "entry_cost": trip["cost"],
                    "fees": fees,
                    "slippage": slippage,
                    "gross_pnl": net + fees + slippage,
                    "net_pnl": net,
                    "net_return": net / trip["cost"],
                }
            )
            trip = None
    return pd.DataFrame(rows)


def _journal(sides: list[str | None], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(sides)
    return pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-05", periods=n, freq="min", tz="UTC"),
            "fill_side": sides,
            "fill_units": rng.random(n) * 3,
            "fill_price": 100 + rng.standard_normal(n).cumsum(),
            "fill_fee": rng.random(n) * 0.1,
            "fill_slippage_cost": rng.random(n) * 0.05,
        }
    )


@pytest.mark.parametrize("seed", range(8))
def test_round_trips_when_computed_over_columns_equal_walking_the_fills(seed):
    # Arrange: trips of one to five entries, exits with no entry before them, holds between, and a
    # position still open at the end
    rng = np.random.default_rng(seed)
    sides: list[str | None] = ["SELL"]
    for _ in range(60):
        sides += [None] * int(rng.integers(0, 3)) + ["BUY"] * int(rng.integers(1, 6)) + ["SELL"]
        if rng.random() < 0.2:
            sides.append("SELL")
    sides += ["BUY", "BUY"]
    journal = _journal(sides, seed)
    # Act
    result = round_trips(journal)
    # Assert
    expected = _walked(journal[journal["fill_side"].isin(("BUY", "SELL"))])
    pd.testing.assert_frame_equal(result, expected, check_exact=True)


@pytest.mark.parametrize("seed", range(4))
def test_round_trips_when_exits_fill_on_the_entry_bar_equal_walking_every_fill_in_order(seed):
    # Arrange: some exits fill on the range of the bar whose open filled the trip's last BUY, so
    # their line has both fills (`fill` the BUY, `exit_fill` the SELL)
    rng = np.random.default_rng(seed)
    sides: list[str | None] = []
    second: list[bool] = []
    for _ in range(40):
        entries = int(rng.integers(1, 4))
        same_bar = bool(rng.random() < 0.4)
        sides += [None] + ["BUY"] * entries + ([] if same_bar else ["SELL"])
        second += [False] * (entries + (0 if same_bar else 1)) + [same_bar]
    journal = _journal(sides, seed)
    exits = _journal(["SELL" if two else None for two in second], seed + 100)
    for key in ("side", "units", "price", "fee", "slippage_cost"):
        journal[f"exit_fill_{key}"] = exits[f"fill_{key}"]
    # Act
    result = round_trips(journal)
    # Assert: the same trips as walking every fill, a line's `fill` before its `exit_fill`
    keys = ("side", "units", "price", "fee", "slippage_cost")
    flat = [
        {"ts": journal["ts"].iloc[i], **{f"fill_{k}": journal[f"{prefix}{k}"].iloc[i] for k in keys}}
        for i in range(len(journal))
        for prefix in ("fill_", "exit_fill_")
        if journal[f"{prefix}side"].iloc[i] in ("BUY", "SELL")
    ]
    expected = _walked(pd.DataFrame(flat))
    assert sum(second) > 5 and len(result) == 40
    pd.testing.assert_frame_equal(result, expected, check_exact=True)


def test_round_trips_when_fees_are_missing_count_them_as_zero():
    # Arrange: fills written without fee or slippage (an object column holding None)
    journal = _journal(["BUY", "BUY", "BUY", "SELL"], 0)
    journal["fill_fee"] = pd.Series([None, 0.5, None, None], dtype=object)
    # Act
    result = round_trips(journal)
    # Assert
    pd.testing.assert_frame_equal(result, _walked(journal), check_exact=True)
    assert result["fees"].iloc[0] == 0.5


def test_round_trips_when_no_trip_closes_is_empty_with_the_columns():
    result = round_trips(_journal(["SELL", "BUY", "BUY"], 1))
    assert result.empty and list(result.columns)[:2] == ["entry_ts", "exit_ts"]


def test_entry_blocks_when_entries_are_proposed_in_a_position_counts_only_those_from_flat():
    # Arrange: BUYs from flat (one refused, one taken), then BUYs refused while a position is held
    from labkit.analysis.trips import entry_blocks

    journal = pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-05", periods=5, freq="min", tz="UTC"),
            "proposed": ["BUY", "BUY", "BUY", "BUY", "HOLD"],
            "stage": ["scalping", "passed", "risk_budget", "risk_budget", "passed"],
            "reason": [
                "scalping_trend_too_strong",
                None,
                "risk_budget_exhausted",
                "risk_budget_exhausted",
                None,
            ],
            "position": [0.0, 0.0, 2.0, 2.0, 2.0],
        }
    )
    # Act
    entries, table = entry_blocks(journal)
    # Assert
    assert entries == 2
    assert table[["stage", "reason", "count", "share"]].to_dict("records") == [
        {"stage": "scalping", "reason": "scalping_trend_too_strong", "count": 1, "share": 0.5}
    ]
