"""labkit: a Jupyter-first research and paper-trading kit. It never places a real order."""

from __future__ import annotations

__version__ = "0.1.0"

from labkit.backtest import BacktestResult, run_backtest  # noqa: E402
from labkit.config import LabkitConfig, load_config  # noqa: E402
from labkit.errors import ConfigError, DataError, LabkitError  # noqa: E402
from labkit.session import run_session, session_status  # noqa: E402
from labkit.synthetic import synthetic_bars  # noqa: E402

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
