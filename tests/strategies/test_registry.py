"""Strategies by name, with their own parameters under `strategies.<name>`."""

from __future__ import annotations

import pytest

from labkit.config.loading import load_config
from labkit.errors import ConfigError
from labkit.strategies.registry import make_strategy, registered_strategies, strategy_class
from labkit.strategies.sma_cross import SmaCross, SmaCrossConfig


def test_registry_when_listing_finds_sma_cross_with_its_parameters():
    assert registered_strategies()["sma_cross"] is SmaCross
    assert set(SmaCross.Config.model_fields) == {"fast", "slow"}
    assert SmaCross.describe().startswith("Buy when the fast SMA")


@pytest.mark.parametrize("params", [{"fast": 5, "slow": 20}, SmaCrossConfig(fast=5, slow=20)])
def test_make_strategy_when_given_params_or_config_builds_it(params):
    strategy = make_strategy("sma_cross", params)
    assert (strategy.model_id, strategy.warmup, strategy.params()) == (
        "sma_cross-5-20",
        21,
        {"fast": 5, "slow": 20},
    )


def test_strategy_class_when_unknown_names_the_key_and_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"session.strategy: unknown strategy 'vibes'; allowed: model, sma_cross"):
        strategy_class("vibes")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"session.strategy": "vibes"}, r"session.strategy: unknown strategy 'vibes'"),
        (
            {"strategies.sma_cross.fast": 0},
            r"strategies.sma_cross.fast: Input should be greater than or equal to 1",
        ),
        (
            {"strategies.sma_cross.window": 3},
            r"strategies.sma_cross.window: unknown key; allowed: fast, slow",
        ),
    ],
)
def test_load_config_when_strategy_settings_are_bad_names_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides, environ={})


def test_load_config_when_params_set_reach_the_strategy():
    config = load_config(None, {"strategies.sma_cross.fast": 3, "strategies.sma_cross.slow": 9}, environ={})
    assert config.strategies.sma_cross == SmaCrossConfig(fast=3, slow=9)  # type: ignore[attr-defined]
