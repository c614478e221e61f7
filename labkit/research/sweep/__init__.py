"""Sweeps: many backtests of one grid, on a local process pool or a Dask cluster, into one table.

``grid`` reads and checks a grid file, ``plan`` turns it into runs (each a configuration and its
hash), ``worker`` runs one backtest from a small task, ``store`` keeps each finished run in its own
file and rebuilds the tables from them, and ``runner`` drives an executor over the runs not yet
finished. The names below load lazily: importing this package (as every worker process does
first) loads neither pandas nor pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Grid": "labkit.research.sweep.grid",
    "load_grid": "labkit.research.sweep.grid",
    "SweepPlan": "labkit.research.sweep.plan",
    "SweepResult": "labkit.research.sweep.runner",
    "run_sweep": "labkit.research.sweep.runner",
}
__all__ = ["Grid", "SweepPlan", "SweepResult", "load_grid", "run_sweep"]

if TYPE_CHECKING:
    from labkit.research.sweep.grid import Grid, load_grid
    from labkit.research.sweep.plan import SweepPlan
    from labkit.research.sweep.runner import SweepResult, run_sweep


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'labkit.research.sweep' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
