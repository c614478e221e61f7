"""A book run of a sweep, in a worker: its members' bars read by path, one book over them, its trial line.

A book run is what ``labkit backtest --symbols A,B,C`` runs (`run_book_backtest` on the bars
`load_universe` returns), on the bars the sweep's process prepared (`SweepPlan.prepare_bars`).
Like a single run, it writes nothing: its trial line is returned for the sweep's process to
append, and it is the line `record_book_trial` appends for the same book, of kind ``sweep``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import orjson

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
    from labkit.research.sweep.plan import book_config
    from labkit.research.sweep.store import return_blocks
    from labkit.research.sweep.worker import read_bars
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
    """Return the trial line of a book run without appending it.

    The line `labkit.research.book_backtest.record_book_trial` appends: the family and identity
    name every symbol, and the identity holds the book's gates and ``portfolio`` limits, so a
    book swept and the same book backtested are one trial.
    """
    from labkit.analysis.trial_ledger import identity_fields, trial_line
    from labkit.research.sweep.plan import book_config
    from labkit.research.trials import data_hash

    summary = result.summary
    symbols = list(summary["universe"])
    as_book = book_config(config, symbols)
    digest = hashlib.sha256("".join(data_hash(bars) for bars in result.bars.values()).encode())
    data = {
        "first_ts": summary.get("first_ts"),
        "last_ts": summary.get("last_ts"),
        "bars": summary["bars"],
        "hash": digest.hexdigest()[:16],
    }
    model = summary.get("strategy")
    line = trial_line(as_book, kind, summary, data)
    fields = {
        **identity_fields(as_book, str(model) if model is not None else None),
        "symbols": symbols,
        "book_gates": list(config.gates.enabled),
        "portfolio": summary["portfolio"],
    }
    line["identity"] = hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    line.update(symbols=symbols, gates=list(config.gates.enabled), portfolio=summary["portfolio"])
    return line
