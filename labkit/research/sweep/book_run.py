"""A book run of a sweep, in a worker: its members' bars read by path, one book over them, its trial line.

A book run is what ``labkit backtest --symbols A,B,C`` runs (`run_book_backtest` on the bars
`load_universe` returns), on the bars the sweep's process prepared (`SweepPlan.prepare_bars`).
Like a single run, it writes nothing: its trial line is returned for the sweep's process to
append, and it is the line `record_book_trial` appends for the same book, of kind ``sweep``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labkit.config.schema import LabkitConfig
    from labkit.research.book_backtest import BookResult


def run_book(
    task: dict[str, Any], config: LabkitConfig
) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[float]]]:
    """Run the book of `task` (``book``: [symbol, bar file] pairs) and return its summary, trial and blocks.

    Raises
    ------
    ConfigError
        When a member has no bar in the run's window, naming ``session.since`` as
        `load_universe` does, or the worker's labkit hashes the run's configuration differently.
    """
    from labkit.analysis.metrics import equity_returns
    from labkit.errors import ConfigError
    from labkit.research.book_backtest import run_book_backtest
    from labkit.research.sweep.bar_files import read_bars
    from labkit.research.sweep.plan import book_config
    from labkit.research.sweep.store import return_blocks
    from labkit.research.trials import config_hash

    members = [(str(symbol), str(path)) for symbol, path in task["book"]]
    symbols = [symbol for symbol, _ in members]
    if config_hash(book_config(config, symbols)) != task["run_id"]:
        raise ConfigError(
            "the worker's labkit reads this run's configuration differently; install the same "
            "labkit version on every worker"
        )
    s = config.session
    bars = {}
    for symbol, path in members:
        frame = read_bars(path, task["since_ms"], task["until_ms"], keep=len(members))
        if s.max_bars:
            frame = frame.iloc[-s.max_bars :]  # as `load_universe` keeps each member's last bars
        if not len(frame):
            raise ConfigError(f"session.since: no bars of {symbol} {s.timeframe} in {s.since} .. {s.until}")
        bars[symbol] = frame
    result = run_book_backtest(config, bars)
    trial = book_trial_line(config, result, kind="sweep")
    returns = equity_returns(result.equity.to_numpy(dtype="float64"), s.capital)
    return result.summary, trial, return_blocks(returns)


def book_trial_line(config: LabkitConfig, result: BookResult, kind: str = "sweep") -> dict[str, Any]:
    """Return the trial line of a book run without appending it (`trial_ledger.book_trial_line`).

    The line `labkit.research.book_backtest.record_book_trial` appends, so a book swept and the
    same book backtested are one trial.
    """
    from labkit.analysis.trial_ledger import book_trial_line as line_of
    from labkit.research.book_backtest import book_data

    summary = result.summary
    return line_of(config, list(summary["universe"]), kind, summary, book_data(result))
