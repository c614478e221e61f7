from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labkit.backtest import run_backtest
from labkit.config_loader import load_config
from labkit.data.files import read_bar_file
from tests import stubs


def _reference_sma_cross(
    bars: pd.DataFrame, fast: int, slow: int, fee: float, slippage: float, capital: float
) -> dict[str, float]:
    """DESIGN.md's sma_cross written the plain way, independently of labkit's engine."""
    close = bars["close"]
    f, s = close.rolling(fast).mean().to_numpy(), close.rolling(slow).mean().to_numpy()
    opens, closes = bars["open"].to_numpy(), close.to_numpy()
    cash, units, pending, entries = capital, 0.0, 0, 0
    equity = []
    for t in range(len(bars)):
        if pending == 1 and units == 0:
            price = opens[t] * (1 + slippage)
            units = cash / (price * (1 + fee))
            cash, entries = 0.0, entries + 1
        elif pending == -1 and units > 0:
            cash, units = units * opens[t] * (1 - slippage) * (1 - fee), 0.0
        pending = 0
        equity.append(cash + units * closes[t])
        if t >= 1 and f[t - 1] < s[t - 1] and f[t] > s[t]:
            pending = 1
        elif t >= 1 and f[t - 1] > s[t - 1] and f[t] < s[t]:
            pending = -1
    curve = np.array([capital, *equity])
    drawdown = float(np.max(1 - curve / np.maximum.accumulate(curve)))
    return {"final_equity": equity[-1], "trades": entries, "max_drawdown_pct": drawdown * 100}


@pytest.mark.parametrize(
    ("fast", "slow", "fee", "slippage"), [(10, 30, 0.001, 0.0), (5, 20, 0.0, 0.0), (10, 30, 0.002, 0.001)]
)
def test_backtest_when_gates_off_matches_reference_sma_cross(fast, slow, fee, slippage):
    # Arrange
    bars = read_bar_file(stubs.FIXTURE_CSV)
    config = load_config(
        None,
        {
            "strategies.sma_cross.fast": fast,
            "strategies.sma_cross.slow": slow,
            "broker.fee": fee,
            "broker.slippage": slippage,
            "gates.enabled": ["data"],
        },
        environ={},
    )
    expected = _reference_sma_cross(bars, fast, slow, fee, slippage, 10_000.0)
    # Act
    result = run_backtest(config, bars).summary
    # Assert
    assert result["trades"] == expected["trades"] > 0
    assert result["final_equity"] == pytest.approx(expected["final_equity"], rel=1e-9)
    assert result["max_drawdown_pct"] == pytest.approx(expected["max_drawdown_pct"], rel=1e-9)


def test_backtest_when_run_on_fixture_gives_golden_numbers():
    # Golden figures of the fixture CSV: change only deliberately, with the reason in the commit.
    bars = read_bar_file(stubs.FIXTURE_CSV)
    config = load_config(None, {"gates.enabled": ["data"]}, environ={})
    result = run_backtest(config, bars).summary
    assert result["bars"] == 600
    assert result["first_ts"] == "2026-01-05T00:00:00Z" and result["last_ts"] == "2026-01-05T09:59:00Z"
    assert (result["trades"], round(result["final_equity"], 2)) == (GOLDEN_TRADES, GOLDEN_FINAL)
    assert round(result["sharpe"], 3) == GOLDEN_SHARPE


def test_backtest_when_flat_market_has_zero_sharpe_and_no_trades():
    bars = stubs.bars(np.full(100, 50.0))
    result = run_backtest(load_config(None, {}, environ={}), bars).summary
    assert result["trades"] == 0
    assert result["sharpe"] == 0.0 and result["return_pct"] == 0.0 and result["max_drawdown_pct"] == 0.0


GOLDEN_TRADES, GOLDEN_FINAL, GOLDEN_SHARPE = 17, 8882.18, -268.732
