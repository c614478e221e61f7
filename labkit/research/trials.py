"""Trials: every variant tried, one line each in ``data/trials.jsonl`` under the home.

Every backtest appends what it tried: the config's hash, strategy and parameters, gates and costs,
the data's range and hash, the Sharpe ratio and the number of returns it was measured on. The
deflated Sharpe ratio (`labkit.analysis.metrics.deflated_sharpe_ratio`) takes the number of
trials recorded for the same symbol and timeframe and the variance of their Sharpe ratios
(`trial_stats`), so trying many variants is paid for: the best of many must show a higher Sharpe
than one tried alone. Running the same config on the same data again tries nothing new: it is
recorded, and counts once.

Each trial is one whole line, appended and flushed to disk (``O_APPEND``, so processes running side
by side never interleave); a line torn by a crash is cut before the next one is written, and never
counted. The file is private (0600).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from labkit._io import append_line, iter_lines, make_private_dir, repair_torn_tail
from labkit.analysis.formatting import finite
from labkit.errors import DataError
from labkit.timeutil import iso_ms, now_ms

if TYPE_CHECKING:
    import pandas as pd

    from labkit.config.schema import LabkitConfig

log = logging.getLogger(__name__)

SCHEMA = 1
# What decides a backtest's result; names, paces, reports and credentials do not.
_SESSION_KEYS = ("source", "symbol", "timeframe", "since", "until", "max_bars", "strategy", "seed", "capital")


def trials_path(home: Path) -> Path:
    """Return the trials file of a home: ``<home>/data/trials.jsonl``."""
    return home / "data" / "trials.jsonl"


@dataclass(frozen=True)
class TrialStats:
    """What the deflated Sharpe ratio needs from the trials of one symbol and timeframe.

    ``trials`` counts the variants tried: a run repeated with the same config on the same data
    (``config_hash`` and data ``hash``) tried nothing new and counts once. ``sharpe_variance`` is
    the variance (``ddof=1``) of their Sharpe ratios per observation (each annualised Sharpe divided
    by the root of its ``periods_per_year``), NaN with fewer than two. ``runs`` counts every line.
    """

    trials: int
    sharpe_variance: float
    runs: int = 0


def config_hash(config: LabkitConfig) -> str:
    """Return a short hash of what in `config` decides a backtest's result.

    The session's market, range, strategy, seed and capital, the gates, the strategy's parameters,
    risk and broker; not the session's name, pace or mode, and never the exchanges' credentials.
    """
    data = config.model_dump(mode="json")
    session = data["session"]
    decisive = {
        "session": {key: session[key] for key in _SESSION_KEYS},
        "gates": data["gates"],
        "strategy": data["strategies"][session["strategy"]],
        "risk": data["risk"],
        "broker": data["broker"],
    }
    return hashlib.sha256(orjson.dumps(decisive, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def data_hash(bars: pd.DataFrame) -> str:
    """Return a short hash of the bars: their times and OHLCV values, so the same data hashes the same.

    Examples
    --------
    >>> import pandas as pd
    >>> bars = pd.DataFrame({c: [1.0, 2.0] for c in ("open", "high", "low", "close", "volume")},
    ...                     index=pd.to_datetime([0, 60_000], unit="ms", utc=True))
    >>> data_hash(bars) == data_hash(bars.copy()), data_hash(bars) == data_hash(bars * 2)
    (True, False)
    """
    import numpy as np

    from labkit.data.bars import COLUMNS, ts_ms

    digest = hashlib.sha256(np.ascontiguousarray(ts_ms(bars)).data)
    for column in COLUMNS:
        digest.update(np.ascontiguousarray(bars[column].to_numpy(dtype="float64")).data)
    return digest.hexdigest()[:16]


def trial_record(
    config: LabkitConfig, bars: pd.DataFrame, summary: Mapping[str, Any], kind: str = "backtest"
) -> dict[str, Any]:
    """Return the line that records one trial: what was tried, on which data, and its Sharpe ratio.

    `summary` is a backtest's (`labkit.research.backtest.run_backtest`): ``sharpe`` (annualised),
    ``periods_per_year``, ``bars`` (the returns it was measured on), ``first_ts``, ``last_ts``.
    """
    from labkit._version import __version__
    from labkit.config.schema import strategy_config

    s = config.session
    return {
        "schema": SCHEMA,
        "time": iso_ms(now_ms()),
        "kind": kind,
        "symbol": s.symbol,
        "timeframe": s.timeframe,
        "source": s.source,
        "strategy": s.strategy,
        "params": strategy_config(config).model_dump(mode="json"),
        "model": summary.get("strategy"),
        "gates": list(config.gates.enabled),
        "fee": config.broker.fee,
        "slippage": config.broker.slippage,
        "config_hash": config_hash(config),
        "data": {
            "first_ts": summary.get("first_ts"),
            "last_ts": summary.get("last_ts"),
            "bars": len(bars),
            "hash": data_hash(bars),
        },
        "sharpe": finite(summary.get("sharpe")),
        "periods_per_year": finite(summary.get("periods_per_year")),
        "returns": summary.get("bars", len(bars)),
        "return_pct": finite(summary.get("return_pct")),
        "max_drawdown_pct": finite(summary.get("max_drawdown_pct")),
        "trades": summary.get("trades"),
        "labkit": __version__,
    }


def append_trial(home: Path, record: Mapping[str, Any]) -> Path:
    """Append one trial line to the home's trials file (0600, fsynced) and return the file's path."""
    path = trials_path(home)
    make_private_dir(path.parent)
    repair_torn_tail(path)  # a line torn by a crash would swallow the start of this one
    append_line(path, orjson.dumps(record) + b"\n")
    return path


def record_trial(
    home: Path,
    config: LabkitConfig,
    bars: pd.DataFrame,
    summary: Mapping[str, Any],
    kind: str = "backtest",
) -> TrialStats:
    """Record a trial of `config` on `bars` and return the stats of its symbol and timeframe, it included."""
    append_trial(home, trial_record(config, bars, summary, kind))
    return trial_stats(home, config.session.symbol, config.session.timeframe)


def read_trials(
    home: Path, symbol: str | None = None, timeframe: str | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the recorded trials, oldest first, of `symbol` and `timeframe` when given.

    A last line torn by a crash is skipped. Raises DataError naming the file and line when a
    complete line is not a trial.
    """
    path = trials_path(home)
    if not path.exists():
        return
    lines = iter_lines(path)
    number = 0
    while True:
        number += 1
        try:
            trial = next(lines)
        except StopIteration:
            return
        except orjson.JSONDecodeError:
            raise DataError(f"{path}: line {number} is not a trial (not JSON); remove or repair it") from None
        if not isinstance(trial, dict):
            raise DataError(f"{path}: line {number} is not a trial (not a JSON object); remove or repair it")
        if (symbol is None or trial.get("symbol") == symbol) and (
            timeframe is None or trial.get("timeframe") == timeframe
        ):
            yield trial


def trial_stats(home: Path, symbol: str, timeframe: str) -> TrialStats:
    """Return how many trials `symbol` and `timeframe` have had and the variance of their Sharpe ratios.

    A run repeated with the same config on the same data counts once (see `TrialStats`); the
    variance is of per-observation Sharpe ratios; trials without a finite Sharpe ratio count as
    trials but not in the variance.
    """
    runs = 0
    variants: dict[object, dict[str, Any]] = {}
    for trial in read_trials(home, symbol, timeframe):
        runs += 1
        config, data = trial.get("config_hash"), trial.get("data")
        data_hash = data.get("hash") if isinstance(data, dict) else None
        key = (config, data_hash) if isinstance(config, str) and isinstance(data_hash, str) else runs
        variants[key] = trial  # the latest run of a variant stands for it
    per_observation: list[float] = []
    for trial in variants.values():
        sharpe, periods = finite(trial.get("sharpe")), finite(trial.get("periods_per_year"))
        if sharpe is not None and periods is not None and periods > 0:
            per_observation.append(sharpe / math.sqrt(periods))
    return TrialStats(len(variants), _variance(per_observation), runs)


def _variance(values: list[float]) -> float:
    n = len(values)
    if n < 2:
        return math.nan
    mean = sum(values) / n
    return sum((v - mean) ** 2 for v in values) / (n - 1)
