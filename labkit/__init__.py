"""labkit: a Jupyter-first research and paper-trading kit. It never places a real order.

The public names load lazily (PEP 562): ``import labkit`` costs nothing until one is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from labkit._version import __version__

_EXPORTS = {
    "BacktestResult": "labkit.research.backtest",
    "run_backtest": "labkit.research.backtest",
    "LabkitConfig": "labkit.config.schema",
    "load_config": "labkit.config.loading",
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
    from labkit.config.loading import load_config
    from labkit.config.schema import LabkitConfig
    from labkit.data.synthetic import synthetic_bars
    from labkit.errors import ConfigError, DataError, LabkitError
    from labkit.research.backtest import BacktestResult, run_backtest
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
