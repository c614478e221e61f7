from __future__ import annotations

import pytest

from labkit.engine.portfolio import Portfolio


def test_fill_when_buying_all_in_spends_cash_on_units_and_fee():
    # Arrange
    port = Portfolio.start(10_000.0)
    # Act
    fill = port.fill(1, open_price=100.0, fee=0.001, slippage=0.002, position_frac=1.0, order_seq=7)
    # Assert: units = cash / (price * (1 + fee)) at the slipped price
    price = 100.0 * 1.002
    assert fill is not None
    assert fill["units"] == pytest.approx(10_000.0 / (price * 1.001))
    assert fill["price"] == pytest.approx(price)
    assert fill["fee"] == pytest.approx(fill["units"] * price * 0.001)
    assert fill["slippage_cost"] == pytest.approx(fill["units"] * 100.0 * 0.002)
    assert fill["order_seq"] == 7
    assert 0.0 <= port.cash < 1e-6


def test_fill_when_round_trip_records_pnl_after_both_fees():
    # Arrange
    port = Portfolio.start(1_000.0)
    port.fill(1, 100.0, 0.01, 0.0, 1.0, 0)
    units = port.position
    # Act
    fill = port.fill(-1, 110.0, 0.01, 0.0, 1.0, 1)
    # Assert
    assert fill is not None
    assert port.position == 0.0
    assert port.cash == pytest.approx(units * 110.0 * 0.99)
    assert fill["pnl"] == pytest.approx(units * 110.0 * 0.99 - 1_000.0)
    assert port.loss_streak == 0 and port.exits == 1


def test_fill_when_losing_round_trips_counts_the_streak():
    port = Portfolio.start(1_000.0)
    for _ in range(3):
        port.fill(1, 100.0, 0.001, 0.0, 1.0, 0)
        port.fill(-1, 99.0, 0.001, 0.0, 1.0, 1)
    assert port.loss_streak == 3


@pytest.mark.parametrize("frac", [1.0, 0.5, 0.1])
def test_fill_when_buying_never_leaves_cash_negative(frac):
    port = Portfolio.start(1234.5678)
    for price in (3.3, 97.13, 12345.6789):
        port.fill(1, price, 0.00075, 0.0003, frac, 0)
        assert port.cash >= 0.0
        port.fill(-1, price * 1.01, 0.00075, 0.0003, frac, 1)


def test_fill_when_selling_flat_does_nothing():
    port = Portfolio.start(100.0)
    assert port.fill(-1, 10.0, 0.001, 0.0, 1.0, 0) is None
    assert port.cash == 100.0


def test_portfolio_when_serialised_round_trips():
    port = Portfolio.start(500.0)
    port.fill(1, 10.0, 0.001, 0.0, 0.5, 3)
    assert Portfolio.from_dict(port.to_dict()) == port
