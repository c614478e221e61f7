"""What a sweep's worker process runs: one backtest from a small task, its bars read by path.

A task is plain data: the run's id and grid values, its configuration (credentials left out), the
home and the Parquet file of its bars (a book's: each member's, `labkit.research.sweep.book_run`).
The worker reads the bars of the run's window from that file (keeping the last files it read, as
the runs of one market follow each other), runs the backtest and returns the row, the trial line
and the return blocks. It writes nothing: the sweep's process appends the trial and writes the
run's file, so workers on other machines only read the home.

This module imports nothing heavy at the top: a process pool's initializer sets the thread limits
before numpy, pandas or a model library is loaded.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from labkit.research.sweep.bar_files import read_bars

# Thread pools (OpenMP, BLAS) of one run: N workers on N cores must not start N pools each.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# Summary fields that are not one value per run (the gates, the blocks by reason, the halt).
NOT_SCALAR = frozenset({"gates", "blocks", "guardrail_halt"})
# Summary fields the grid's columns already hold (`fee`, `slippage`), and the money slippage cost.
DROPPED = frozenset({"fee", "slippage_rate"})
RENAMED = {"slippage": "slippage_paid"}


def init_worker(parent_pid: int) -> None:
    """Set up a process pool's worker: one thread per library, and an exit when the parent dies.

    A parent killed outright (kill -9) cannot stop its pool; each worker notices within a second
    that its parent changed and exits instead of waiting for tasks forever.
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()
    # Loaded once here rather than inside the first run's time.
    import pyarrow.parquet  # noqa: F401

    import labkit.research.backtest  # noqa: F401
    import labkit.research.trials  # noqa: F401


def probe(home: str) -> dict[str, Any]:
    """Return what a sweep needs to know of a worker: labkit's version and whether it sees the home."""
    import socket

    from labkit._version import __version__

    return {"labkit": __version__, "home": os.path.isdir(home), "host": socket.gethostname()}


def run_one(task: dict[str, Any]) -> dict[str, Any]:
    """Run one backtest and return its ``row``, ``trial`` (the record, or None) and ``blocks``.

    Never raises for the run's own failure: a run that raises returns a row whose ``error`` says
    why, without figures, so the sweep goes on.
    """
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, "1")  # a Dask worker has no initializer
    start = time.perf_counter()
    row: dict[str, Any] = {"run_id": task["run_id"], **task["key"]}
    try:
        summary, trial, blocks = _backtest(task)
    except Exception as exc:  # the run's failure is its row's, not the sweep's
        row.update(config_hash=task["run_id"], trial=None, error=_error_text(exc))
        row["seconds"] = time.perf_counter() - start
        return {"row": row, "trial": None, "blocks": None}
    for name, value in summary.items():
        column = RENAMED.get(name, name)
        if name in NOT_SCALAR or name in DROPPED or column in row:
            continue
        if value is None or isinstance(value, bool | int | float | str):
            row[column] = value
    row.update(config_hash=trial["config_hash"], trial=None, error=None)
    row["seconds"] = time.perf_counter() - start
    return {"row": row, "trial": trial, "blocks": blocks}


def _backtest(task: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[float]]]:
    from pathlib import Path

    from labkit.analysis.metrics import equity_returns
    from labkit.config.schema import LabkitConfig
    from labkit.errors import ConfigError
    from labkit.research.backtest import run_backtest
    from labkit.research.sweep.store import return_blocks
    from labkit.research.trials import config_hash, trial_record

    config = LabkitConfig.model_validate(task["config"])
    if "book" in task:
        from labkit.research.sweep.book_run import run_book

        return run_book(task, config)
    if config_hash(config) != task["run_id"]:
        # Another labkit on this worker would read the same configuration otherwise.
        raise ConfigError(
            "the worker's labkit reads this run's configuration differently; install the same "
            "labkit version on every worker"
        )
    s = config.session
    bars = read_bars(task["bars"], task["since_ms"], task["until_ms"])
    if not len(bars):
        raise ConfigError(f"session.since: no bars of {s.symbol} {s.timeframe} in {s.since} .. {s.until}")
    home = Path(task["home"])
    result = run_backtest(config, bars, home=home, trial=False)  # the sweep's process appends it
    trial = trial_record(config, bars, result.summary, kind="sweep")
    returns = equity_returns(result.equity.to_numpy(dtype="float64"), s.capital)
    return result.summary, trial, return_blocks(returns)


def _error_text(exc: BaseException) -> str:
    from labkit.errors import LabkitError

    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, LabkitError) else f"{type(exc).__name__}: {text}"


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(1)
