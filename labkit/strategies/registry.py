"""Strategies by name: labkit's own (a module each) and plug-ins' (entry points ``labkit.strategies``)."""

from __future__ import annotations

import functools
from typing import Any

from labkit._plugins import discover
from labkit.errors import ConfigError
from labkit.strategies.base import Strategy, StrategyConfig

GROUP = "labkit.strategies"


@functools.cache
def registered_strategies() -> dict[str, type[Strategy]]:
    """Return every registered strategy class by name."""
    return discover("labkit.strategies", Strategy, GROUP)


def strategy_class(name: str) -> type[Strategy]:
    """Return the strategy class called `name`, or raise ConfigError listing the allowed names."""
    try:
        return registered_strategies()[name]
    except KeyError:
        allowed = ", ".join(registered_strategies())
        raise ConfigError(f"session.strategy: unknown strategy {name!r}; allowed: {allowed}") from None


def make_strategy(name: str, config: StrategyConfig | dict[str, Any] | None = None) -> Strategy:
    """Return the strategy `name` with its parameters (a config object or a mapping of them)."""
    cls = strategy_class(name)
    if isinstance(config, StrategyConfig):
        return cls(config)
    return cls(cls.Config(**(config or {})))
