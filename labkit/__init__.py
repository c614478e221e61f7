"""labkit: a Jupyter-first research and paper-trading kit. It never places a real order.

The public names load lazily (PEP 562): ``import labkit`` costs nothing until one is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from labkit._version import __version__

_EXPORTS = {
    "Result": "labkit.api.result",
    "backtest": "labkit.api.backtest",
    "load_bars": "labkit.api.bars",
    "synthetic_bars": "labkit.api.bars",  # plain dates as well as epoch ms
    "Signals": "labkit.strategies.base",
    "Strategy": "labkit.strategies.base",
    "read_journal": "labkit.engine.journal",
    "BacktestResult": "labkit.research.backtest",
    "run_backtest": "labkit.research.backtest",
    "LabkitConfig": "labkit.config.schema",
    "load_config": "labkit.config.loading",
    "ConfigError": "labkit.errors",
    "DataError": "labkit.errors",
    "LabkitError": "labkit.errors",
    "run_session": "labkit.session.runner",
    "session_status": "labkit.session.status",
}
__all__ = [
    "BacktestResult",
    "Result",
    "Signals",
    "Strategy",
    "ConfigError",
    "DataError",
    "LabkitConfig",
    "LabkitError",
    "backtest",
    "load_bars",
    "load_config",
    "read_journal",
    "run_backtest",
    "run_session",
    "session_status",
    "synthetic_bars",
    "__version__",
]

if TYPE_CHECKING:
    from labkit.api.backtest import backtest
    from labkit.api.bars import load_bars, synthetic_bars
    from labkit.api.result import Result
    from labkit.config.loading import load_config
    from labkit.config.schema import LabkitConfig
    from labkit.engine.journal import read_journal
    from labkit.errors import ConfigError, DataError, LabkitError
    from labkit.research.backtest import BacktestResult, run_backtest
    from labkit.session.runner import run_session
    from labkit.session.status import session_status
    from labkit.strategies.base import Signals, Strategy


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'labkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
