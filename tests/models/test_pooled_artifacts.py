"""A model pooled over a universe: loaded for any of its symbols, `latest` of a universe by its list."""

from __future__ import annotations

import pytest

from labkit.errors import ConfigError
from labkit.models.artifacts import latest_model, list_models, load_model, save_model

from .conftest import META

UNIVERSE = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
POOLED = {**META, "symbol": ",".join(UNIVERSE), "symbols": UNIVERSE, "horizon": 5}


def test_load_model_when_pooled_loads_for_every_symbol_of_its_list_and_refuses_others(ensemble, tmp_path):
    # Arrange
    model_id = save_model(tmp_path, ensemble, POOLED)
    # Act
    loaded = [load_model(tmp_path, model_id, symbol, "1h").model_id for symbol in UNIVERSE]
    with pytest.raises(ConfigError) as caught:
        load_model(tmp_path, model_id, "ADA/USDT", "1h")
    # Assert
    assert loaded == [model_id] * 3
    assert f"model {model_id} was trained on BTC/USDT,ETH/USDT,SOL/USDT 1h, not ADA/USDT 1h" in str(
        caught.value
    )


def test_latest_when_models_of_one_symbol_and_of_a_universe_exist_resolves_each_by_its_own(
    ensemble, tmp_path
):
    # Arrange: the pooled model is the most recently trained of all
    single = save_model(tmp_path, ensemble, META)
    pooled = save_model(tmp_path, ensemble, POOLED)
    other = save_model(tmp_path, ensemble, {**POOLED, "symbols": UNIVERSE[:2], "symbol": "BTC/USDT,ETH/USDT"})
    pooled = save_model(tmp_path, ensemble, POOLED)  # trained again: now the latest
    # Act
    by_universe = latest_model(tmp_path, None, "1h", UNIVERSE)
    by_symbol = latest_model(tmp_path, "BTC/USDT", "1h")
    # Assert
    assert by_universe == pooled != other
    assert by_symbol == single  # a pooled model is not one symbol's latest
    with pytest.raises(ConfigError, match=r"no model for ETH/USDT,BTC/USDT 1h"):
        latest_model(tmp_path, None, "1h", ["ETH/USDT", "BTC/USDT"])  # another order is another list


def test_list_models_when_pooled_shows_its_symbols(ensemble, tmp_path):
    # Arrange
    pooled = save_model(tmp_path, ensemble, POOLED)
    single = save_model(tmp_path, ensemble, META)
    # Act
    listed = {m["id"]: m for m in list_models(tmp_path)}
    # Assert
    assert listed[pooled]["symbols"] == UNIVERSE
    assert listed[single]["symbols"] is None


@pytest.mark.parametrize("symbols", [[], ["BTC/USDT", "BTC/USDT"], ["BTC/USDT", ""], "BTC/USDT"])
def test_save_model_when_symbols_is_not_a_list_of_distinct_symbols_refuses(ensemble, tmp_path, symbols):
    # Act
    with pytest.raises(ConfigError, match="meta.symbols must be a list of distinct non-empty symbols"):
        save_model(tmp_path, ensemble, {**POOLED, "symbols": symbols})
