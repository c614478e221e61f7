"""labkit: a Jupyter-first research and paper-trading kit. It never places a real order.

The public names load lazily (PEP 562): ``import labkit`` costs nothing until one is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "BacktestResult": "labkit.backtest",
    "run_backtest": "labkit.backtest",
    "LabkitConfig": "labkit.config",
    "load_config": "labkit.config_loader",
    "ConfigError": "labkit.errors",
    "DataError": "labkit.errors",
    "LabkitError": "labkit.errors",
    "run_session": "labkit.session.runner",
    "session_status": "labkit.session.status",
    "synthetic_bars": "labkit.data.synthetic",
}
__all__ = [
    "BacktestResult",
    "ConfigError",
    "DataError",
    "LabkitConfig",
    "LabkitError",
    "load_config",
    "run_backtest",
    "run_session",
    "session_status",
    "synthetic_bars",
    "__version__",
]

if TYPE_CHECKING:
    from labkit.backtest import BacktestResult, run_backtest
    from labkit.config import LabkitConfig
    from labkit.config_loader import load_config
    from labkit.data.synthetic import synthetic_bars
    from labkit.errors import ConfigError, DataError, LabkitError
    from labkit.session.runner import run_session
    from labkit.session.status import session_status


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'labkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
