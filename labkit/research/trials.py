"""Trials of research runs: every backtest, training run and sweep run is one line in the user's ledger.

The ledger (`labkit.analysis.trial_ledger`) is per user and shared by every home:
``$LABKIT_TRIALS``, else ``$XDG_DATA_HOME/labkit/trials.jsonl``, else
``~/.local/share/labkit/trials.jsonl``. Each run appends what it tried (its identity: market,
strategy and parameters, the resolved model id, a training run's plan, gates, risk and costs), on
which data (range and hash) and the Sharpe ratio it measured. The deflated Sharpe ratio
(`labkit.analysis.metrics.deflated_sharpe_ratio`) takes the number of distinct identities of the
same family (source, symbol, timeframe) and the variance of their Sharpe ratios (`trial_stats`),
so trying many variants is paid for: the best of many must show a higher Sharpe than one tried
alone. Running a variant again, with other capital, on other bars or under another name, tries
nothing new: it is recorded, and counts once.

A library `labkit.research.backtest.run_backtest` records its own trial (``record=True``); the
command line, sweeps and training pass ``record=False`` and record theirs here, once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from labkit.analysis.trial_ledger import (
    SCHEMA,
    TrialStats,
    append_trial,
    config_hash,
    identity_fields,
    read_trials,
    trial_identity,
    trial_line,
    trial_stats,
    trials_path,
)

if TYPE_CHECKING:
    import pandas as pd

    from labkit.config.schema import LabkitConfig

__all__ = [
    "SCHEMA",
    "TrialStats",
    "append_trial",
    "config_hash",
    "data_hash",
    "identity_fields",
    "read_trials",
    "record_trial",
    "trial_identity",
    "trial_record",
    "trial_stats",
    "trials_path",
]


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
    config: LabkitConfig,
    bars: pd.DataFrame,
    summary: Mapping[str, Any],
    kind: str = "backtest",
    plan: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the line that records one trial: what was tried, on which data, and its Sharpe ratio.

    `summary` is a backtest's (`labkit.research.backtest.run_backtest`): ``strategy`` (the id of
    what decided: a model's resolved id), ``sharpe`` (annualised), ``periods_per_year``, ``bars``
    (the returns it was measured on), ``first_ts``, ``last_ts``. `plan` is a training run's plan.
    """
    data = {
        "first_ts": summary.get("first_ts"),
        "last_ts": summary.get("last_ts"),
        "bars": len(bars),
        "hash": data_hash(bars),
    }
    return trial_line(config, kind, {"bars": len(bars), **summary}, data, plan)


def record_trial(
    config: LabkitConfig,
    bars: pd.DataFrame,
    summary: Mapping[str, Any],
    kind: str = "backtest",
    plan: Mapping[str, Any] | None = None,
) -> TrialStats:
    """Record a trial of `config` on `bars` and return the stats of its family, it included."""
    append_trial(trial_record(config, bars, summary, kind, plan))
    s = config.session
    return trial_stats(s.source, s.symbol, s.timeframe)
