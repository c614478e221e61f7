"""What the sweep report shows: the runs of a `labkit sweep`, heatmaps over its grid, the best run
with its deflated Sharpe ratio, and the probability of backtest overfitting of each group of runs.

`notebooks/research/sweep.ipynb` calls these, so the notebook holds the story and this module the
arithmetic. A sweep lives under ``data/sweeps/<name>/`` in the home:

- ``results.parquet``: one row per run: ``run_id``; the grid keys ``symbol``, ``timeframe``,
  ``since``, ``until``, ``fee``, ``slippage``; one column per strategy parameter; the backtest's
  summary figures (``sharpe``, ``return_pct``, ``psr``, ``periods_per_year``, ``bars``...);
  ``config_hash``, ``trial`` (its trial line as JSON text), ``error`` (None, or why it failed) and
  ``seconds``;
- ``blocks.parquet``: for each completed run, its per-bar equity returns cut into 64 consecutive
  blocks, each kept as ``run_id, block, n, sum, sumsq`` (`labkit.analysis.overfitting`);
- ``grid.json`` (or ``grid.yaml``): the grid it ran.

Runs that share a symbol, timeframe and window (``since``, ``until``) ran on the same bars: only
they can be ranked against one another, so the PBO is computed within each such group, over its
parameter and cost variants.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.formatting import as_float, money, number, percent, ratio
from labkit.analysis.overfitting import Overfitting, pbo_from_blocks
from labkit.errors import ConfigError, DataError
from labkit.research.sweep.paths import BLOCKS, GRIDS, RESULTS, sweep_names, sweep_paths

PARTITIONS = 16  # S: 64 blocks make 16 partitions of 4 (12,870 combinations)
MAKE_ONE = "make one with `labkit sweep --grid GRID.yaml`"
# Runs that share these ran on the same bars: only they are compared.
GROUP_KEYS = ("symbol", "timeframe", "since", "until")
COST_KEYS = ("fee", "slippage")
# Columns of results.parquet that are not strategy parameters (a fallback when no trial line says).
_NOT_PARAMETERS = frozenset(
    {
        "run_id", "symbol", "timeframe", "since", "until", "fee", "slippage", "config_hash", "trial",
        "error", "seconds", "window", "costs", "source", "strategy", "gates", "model",
        # the backtest summary (docs/metrics.md)
        "bars", "first_ts", "last_ts", "final_equity", "return_pct", "max_drawdown_pct", "sharpe",
        "periods_per_year", "annualisation", "annual_return_pct", "cagr_pct", "annual_volatility_pct",
        "sortino", "calmar", "max_drawdown_bars", "max_drawdown_duration", "psr",
        "min_track_record_bars", "more_bars_needed", "trades", "fills", "closed_trades",
        "open_position", "fees", "slippage_rate", "hit_rate_pct", "profit_factor", "expectancy",
        "avg_trade_pct", "best_trade_pct", "worst_trade_pct", "avg_trade_duration",
        "max_trade_duration", "exposure_pct", "buy_hold_return_pct", "buy_hold_max_drawdown_pct",
        "blocked", "blocks", "guardrail_halt", "trials", "deflated_sharpe", "slippage_paid",
        # a book's (symbol holds its symbols joined by commas)
        "symbols", "open_positions", "symbols_traded",
    }
)  # fmt: skip


@dataclass(frozen=True)
class SweepRecord:
    """A sweep read for its report: its runs, their blocks, and its grid as written."""

    name: str
    folder: Path
    results: pd.DataFrame  # results.parquet, with a `window` column ("2026-01-05 to 2026-01-07")
    blocks: pd.DataFrame  # blocks.parquet (empty when missing)
    grid_text: str | None  # the grid as the sweep wrote it (None when missing)
    parameters: tuple[str, ...]  # the strategy parameters' columns
    strategy: str | None

    @property
    def completed(self) -> pd.DataFrame:
        """The runs that ran to the end (``error`` empty)."""
        return self.results[self.results["error"].isna()]

    @property
    def failed(self) -> pd.DataFrame:
        """The runs that failed, with why (``error``)."""
        return self.results[self.results["error"].notna()]

    @property
    def keys(self) -> list[str]:
        """What the grid varies over: the strategy's parameters, the costs, the market and window."""
        return [*self.parameters, "costs", "symbol", "timeframe", "window"]

    @property
    def grid_file(self) -> str | None:
        """The grid file beside the results (``grid.yaml``), None without one."""
        return next((name for name in GRIDS if (self.folder / name).is_file()), None)


def load_sweep(home: Path, name: str) -> SweepRecord:
    """Read the sweep `name` (``""``: the newest) under `home` for its report.

    Raise `ConfigError` when the name is not one a sweep can have, or the sweep has no
    ``results.parquet`` (naming how to make one and the sweeps there are), `DataError` when
    ``results.parquet`` lacks a column the report needs or ``blocks.parquet`` repeats a block.
    """
    home = Path(home)
    if name == "":
        names = sweep_names(home)
        if not names:
            raise ConfigError(f"sweep: no sweep with results under data/sweeps/ yet; {MAKE_ONE}")
        name = names[0]
    folder = sweep_paths(home, name).root
    path = folder / RESULTS
    if not path.is_file():
        known = sweep_names(home)
        there = f"; sweeps with results: {', '.join(known[:20])}" if known else ""
        raise ConfigError(f"sweep {name}: no data/sweeps/{name}/{RESULTS}; {MAKE_ONE}{there}")
    results = pd.read_parquet(path)
    missing = [c for c in ("run_id", *GROUP_KEYS, *COST_KEYS, "sharpe", "error") if c not in results.columns]
    if missing:
        raise DataError(f"data/sweeps/{name}/{RESULTS}: no column {', '.join(missing)}; run the sweep again")
    results = results.reset_index(drop=True)
    results["window"] = [window_label(s, u) for s, u in zip(results["since"], results["until"], strict=True)]
    blocks = pd.DataFrame(columns=["run_id", "block", "n", "sum", "sumsq"])
    if (folder / BLOCKS).is_file():
        blocks = pd.read_parquet(folder / BLOCKS)
        if blocks.duplicated(["run_id", "block"]).any():
            raise DataError(
                f"data/sweeps/{name}/{BLOCKS}: a run has the same block twice; run the sweep again"
            )
    # A grid's fee and slippage come as pairs (its `costs`): one key of the grid, not two.
    results["costs"] = [
        f"fee {_tick('fee', f)}, slippage {_tick('slippage', s)}"
        for f, s in zip(results["fee"], results["slippage"], strict=True)
    ]
    grid = next((folder / g for g in GRIDS if (folder / g).is_file()), None)
    grid_text = grid.read_text(encoding="utf-8", errors="replace") if grid is not None else None
    parameters, strategy = _parameters(results)
    return SweepRecord(name, folder, results, blocks, grid_text, parameters, strategy)


def _trial(text: Any) -> dict[str, Any]:
    import orjson

    if not isinstance(text, str | bytes):
        return {}
    try:
        found = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}


def _parameters(results: pd.DataFrame) -> tuple[tuple[str, ...], str | None]:
    # The strategy's parameters are those its trial lines name; without one, every column that is
    # neither the grid's, the run's nor a backtest figure.
    names: dict[str, None] = {}
    strategy = None
    for text in results["trial"] if "trial" in results.columns else []:
        trial = _trial(text)
        params = trial.get("params")
        if isinstance(params, dict):
            names.update(dict.fromkeys(str(k) for k in params))
        strategy = strategy or (str(trial["strategy"]) if trial.get("strategy") else None)
    # A parameter named like a grid column (fee, trial...) has its column as param_<name>.
    found = [f"param_{n}" if f"param_{n}" in results.columns else n for n in names]
    found = [n for n in found if n in results.columns]
    if not found:
        found = [c for c in results.columns if c not in _NOT_PARAMETERS]
    return tuple(found), strategy


def window_label(since: Any, until: Any) -> str:
    """Return a run's window as the page shows it: ``2026-01-05 to 2026-01-07`` (UTC).

    Days when both ends are midnights, else minutes (``2026-01-05 09:30 UTC``).

    Examples
    --------
    >>> window_label("2026-01-05", "2026-01-07T00:00:00Z")
    '2026-01-05 to 2026-01-07'
    >>> window_label("2026-01-05T09:30:00Z", "2026-01-06")
    '2026-01-05 09:30 UTC to 2026-01-06 00:00 UTC'
    """
    from labkit.reports.tables import utc

    stamps = []
    for value in (since, until):
        try:
            stamp = pd.Timestamp(value)
        except (TypeError, ValueError):
            return f"{since} to {until}"
        if stamp is pd.NaT:
            return f"{since} to {until}"
        stamps.append(stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC"))
    if all(s == s.normalize() for s in stamps):
        return " to ".join(s.date().isoformat() for s in stamps)
    return " to ".join(utc(s) for s in stamps)


def sweep_period(record: SweepRecord) -> str:
    """Return the span of the sweep's windows, ``2026-01-05 to 2026-01-09``, for the index."""
    windows = sorted(set(record.results["window"]))
    if not windows:
        return "no runs"
    if len(windows) == 1:
        return str(windows[0])
    firsts = sorted(w.split(" to ")[0] for w in windows)
    lasts = sorted(w.split(" to ")[-1] for w in windows)
    return f"{firsts[0]} to {lasts[-1]}"


# -- the runs ------------------------------------------------------------------------------------


def sweep_header(record: SweepRecord, parameters: Mapping[str, Any]) -> pd.DataFrame:
    """Return the table the sweep report starts with: the sweep, its runs and files, the code."""
    from labkit._io import file_hash
    from labkit.home import code_version
    from labkit.reports.tables import describe_code_version, shown_parameters, utc
    from labkit.timeutil import now_ms

    r = record.results
    markets = ", ".join(sorted({f"{s} {t}" for s, t in zip(r["symbol"], r["timeframe"], strict=True)}))
    files = [
        f"{name} sha256 {file_hash(record.folder / name)}"
        for name in (RESULTS, BLOCKS, *GRIDS)
        if (record.folder / name).is_file()
    ]
    groups = len(record.completed.groupby(list(GROUP_KEYS), dropna=False)) if len(record.completed) else 0
    items = {
        "report": "sweep",
        "parameters": shown_parameters(parameters),
        "sweep": f"{record.name} (data/sweeps/{record.name}/)",
        "strategy": record.strategy or "not recorded",
        "runs": f"{len(r):,} ({len(record.completed):,} completed, {len(record.failed):,} failed); "
        f"{groups} group{'s' if groups != 1 else ''} of runs on the same bars",
        "markets": markets or "none",
        "windows": ", ".join(sorted(set(r["window"]))) or "none",
        "files": "; ".join(files),
        "code version": f"{describe_code_version(code_version())} (this page)",
        "generated at": utc(pd.Timestamp(now_ms(), unit="ms", tz="UTC")),
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="item"))


def grid_table(record: SweepRecord) -> pd.DataFrame:
    """Return each key of the grid with the values its runs took, and whether it varies."""
    rows = []
    for key in record.keys:
        values = _ordered(record.results[key].dropna().unique())
        rows.append(
            {
                "key": key,
                "values": ", ".join(_tick(key, v) for v in values[:30]) + (" ..." * (len(values) > 30)),
                "distinct": len(values),
                "varies": "yes" if len(values) > 1 else "no",
            }
        )
    return pd.DataFrame(rows).set_index("key")


def runs_table(record: SweepRecord) -> pd.DataFrame:
    """Return the counts: runs, completed, failed, and how long the runs took."""
    seconds = record.results["seconds"] if "seconds" in record.results.columns else pd.Series(dtype=float)
    items = {
        "runs": f"{len(record.results):,}",
        "completed": f"{len(record.completed):,}",
        "failed": f"{len(record.failed):,}",
        "run time": "n/a"
        if not seconds.notna().any()
        else f"{float(seconds.sum()):,.1f} s in all, {float(seconds.median()):,.2f} s a run (median)",
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="runs"))


def failures_table(record: SweepRecord) -> pd.DataFrame:
    """Return the failed runs grouped by their error: how many, and which (the first five)."""
    failed = record.failed
    if not len(failed):
        return pd.DataFrame(columns=["runs", "run ids"]).rename_axis("error")
    errors = failed["error"].astype(str).str.strip().str.split("\n").str[0].str.slice(0, 300)
    rows = []
    for error, ids in failed["run_id"].groupby(errors.to_numpy(), sort=False):
        shown = [str(i) for i in ids.iloc[:5]]
        rows.append(
            {"error": error, "runs": len(ids), "run ids": ", ".join(shown) + (" ..." if len(ids) > 5 else "")}
        )
    return pd.DataFrame(rows).sort_values("runs", ascending=False, kind="stable").set_index("error")


def grid_html(record: SweepRecord) -> str:
    """Return grid.yaml as written, escaped, in a preformatted block (or a line saying it is missing)."""
    if record.grid_text is None:
        return f"<p>No grid file ({', '.join(GRIDS)}) beside the results.</p>"
    return (
        f"<details><summary>{record.grid_file} (the grid as run)</summary>"
        f'<pre style="white-space:pre-wrap">{html.escape(record.grid_text)}</pre></details>'
    )


# -- heatmaps ------------------------------------------------------------------------------------


def varying_keys(record: SweepRecord) -> list[str]:
    """Return the grid keys whose value differs between the completed runs, in the grid's order."""
    runs = record.completed
    return [k for k in record.keys if runs[k].nunique(dropna=True) > 1]


def heatmap_pairs(record: SweepRecord) -> list[tuple[str, str]]:
    """Return every pair of varying keys, (x, y), the first strategy parameter on the y axis."""
    keys = varying_keys(record)
    return [(keys[j], keys[i]) for i in range(len(keys)) for j in range(i + 1, len(keys))]


@dataclass(frozen=True)
class Heatmap:
    """A metric's mean over the runs in each (y, x) cell, averaging over the other keys."""

    x: str
    y: str
    metric: str
    mean: pd.DataFrame  # index: y values, columns: x values
    count: pd.DataFrame  # runs with a finite metric in each cell
    best: tuple[Any, Any] | None  # the (y, x) cell of the best run

    def x_labels(self) -> list[str]:
        return [_tick(self.x, v) for v in self.mean.columns]

    def y_labels(self) -> list[str]:
        return [_tick(self.y, v) for v in self.mean.index]


def check_metric(record: SweepRecord, metric: str) -> str:
    """Return `metric` when it is a numeric column of results.parquet, else raise `ConfigError`."""
    numeric = [c for c in record.results.columns if pd.api.types.is_numeric_dtype(record.results[c])]
    if metric not in numeric:
        raise ConfigError(f"metric: {metric!r} is not a figure of the runs; use one of {', '.join(numeric)}")
    return metric


def heatmap(record: SweepRecord, x: str, y: str, metric: str = "sharpe") -> Heatmap:
    """Return `metric` averaged over the completed runs in each (`y`, `x`) cell, with the counts.

    Runs whose metric is not finite (NaN, ±inf) are left out of a cell's mean and count.
    """
    check_metric(record, metric)
    runs = record.completed
    values = runs[metric].astype(float).replace([np.inf, -np.inf], np.nan)
    frame = pd.DataFrame({"x": runs[x].to_numpy(), "y": runs[y].to_numpy(), "v": values.to_numpy()})
    grouped = frame.groupby(["y", "x"])["v"]
    mean, count = grouped.mean().unstack("x"), grouped.count().unstack("x")
    xs, ys = _ordered(frame["x"].dropna().unique()), _ordered(frame["y"].dropna().unique())
    mean = mean.reindex(index=ys, columns=xs)
    count = count.reindex(index=ys, columns=xs).fillna(0).astype(int)
    best_row = best_run_row(record)
    best = None if best_row is None else (best_row[y], best_row[x])
    return Heatmap(x, y, metric, mean, count, best)


def one_way_table(record: SweepRecord, key: str, metric: str = "sharpe") -> pd.DataFrame:
    """Return `metric` averaged over the completed runs at each value of `key`, with the counts."""
    check_metric(record, metric)
    runs = record.completed
    values = runs[metric].astype(float).replace([np.inf, -np.inf], np.nan)
    grouped = values.groupby(runs[key].to_numpy())
    ordered = _ordered(grouped.mean().index.to_numpy())
    return pd.DataFrame(
        {
            f"mean {metric}": [number(grouped.mean().get(v)) for v in ordered],
            "runs": [int(grouped.count().get(v, 0)) for v in ordered],
        },
        index=pd.Index([_tick(key, v) for v in ordered], name=key),
    )


# -- the best run and its deflated Sharpe ratio ---------------------------------------------------


def best_run_row(record: SweepRecord, metric: str = "sharpe") -> pd.Series | None:
    """Return the completed run with the highest `metric` (the first of equals), None without one."""
    runs = record.completed
    values = runs[metric].astype(float).replace([np.inf, -np.inf], np.nan)
    if not values.notna().any():
        return None
    return runs.loc[values.idxmax()]


@dataclass(frozen=True)
class BestRun:
    """The best run of a sweep by Sharpe ratio, and its Sharpe deflated by the runs tried."""

    row: pd.Series
    trials: int  # distinct variants completed (config_hash)
    sharpe_variance: float  # of the runs' per-bar Sharpe ratios (ddof=1)
    benchmark: float  # the Sharpe the best of `trials` unskilled runs would show, per bar
    deflated_sharpe: float
    moments_from_psr: bool  # skewness and kurtosis came in through the run's PSR
    periods_per_year: float

    @property
    def currency(self) -> str:
        from labkit.data.bars import quote_currency

        # A book's symbol is its symbols joined by commas; its money is in each one's quote.
        quotes = dict.fromkeys(quote_currency(s) for s in str(self.row["symbol"]).split(","))
        return "/".join(quotes)


def deflated_sharpe(
    sharpe: float, periods_per_year: float, bars: int, psr: float | None, trials: int, sharpe_variance: float
) -> tuple[float, bool]:
    """Return a run's deflated Sharpe ratio from its summary, and whether its PSR gave the moments.

    `labkit.analysis.metrics`' definitions: the PSR of the per-bar Sharpe ratio
    ``SR = sharpe / √periods_per_year`` over `bars` returns against the Sharpe ratio the best of
    `trials` unskilled trials would show (`expected_max_sharpe`, from `sharpe_variance`, the
    variance of the trials' per-bar Sharpe ratios), with the moments the run's own PSR implies
    (`implied_moments`). When it implies none (missing, saturated, or of the other sign), the
    returns are taken as normal (skewness 0, kurtosis 3) and the second value is False.

    Examples
    --------
    >>> from labkit.analysis import metrics
    >>> sr, n = 0.05, 2_000
    >>> psr = metrics.psr_from_moments(sr, n, skew=-1.0, kurtosis=8.0)
    >>> dsr, exact = deflated_sharpe(sr * 252**0.5, 252, n, psr, trials=20, sharpe_variance=0.02**2)
    >>> benchmark = metrics.expected_max_sharpe(20, 0.02**2)
    >>> exact, round(dsr, 9) == round(metrics.psr_from_moments(sr, n, -1.0, 8.0, benchmark), 9)
    (True, True)
    """
    from labkit.analysis.metrics import expected_max_sharpe, implied_moments, psr_from_moments

    if not (periods_per_year > 0 and math.isfinite(sharpe) and bars >= 2):
        return math.nan, False
    sr = sharpe / math.sqrt(periods_per_year)
    benchmark = expected_max_sharpe(trials, sharpe_variance)
    moments = implied_moments(psr, sr, bars)
    if moments is not None:
        return psr_from_moments(sr, bars, moments.skew, moments.kurtosis, benchmark), True
    return psr_from_moments(sr, bars, 0.0, 3.0, benchmark), False


def best_run(record: SweepRecord) -> BestRun | None:
    """Return the run with the highest Sharpe ratio and its Sharpe deflated by the sweep's runs.

    The trials are the sweep's completed variants (distinct ``config_hash``; every completed run
    when there is none), the variance that of their per-bar Sharpe ratios (``sharpe`` over
    ``√periods_per_year``, ``ddof=1``). None when no run has a Sharpe ratio.
    """
    row = best_run_row(record)
    if row is None:
        return None
    runs = record.completed
    hashes = runs["config_hash"].dropna() if "config_hash" in runs.columns else pd.Series(dtype=object)
    trials = int(hashes.nunique()) if len(hashes) == len(runs) else len(runs)
    ppy = as_float(row.get("periods_per_year"))
    per_bar = pd.Series(dtype=float)
    if "periods_per_year" in runs.columns:
        per_bar = runs["sharpe"].astype(float) / np.sqrt(runs["periods_per_year"].astype(float))
    per_bar = per_bar.replace([np.inf, -np.inf], np.nan).dropna()
    variance = float(per_bar.var(ddof=1)) if len(per_bar) > 1 else math.nan
    bars = int(as_float(row.get("bars"), 0.0))
    if not math.isfinite(ppy) or ppy <= 0:
        return BestRun(row, trials, variance, math.nan, math.nan, False, math.nan)
    from labkit.analysis.metrics import expected_max_sharpe

    psr = as_float(row.get("psr"))
    dsr, exact = deflated_sharpe(float(row["sharpe"]), ppy, bars, psr, trials, variance)
    return BestRun(row, trials, variance, expected_max_sharpe(trials, variance), dsr, exact, ppy)


def best_table(best: BestRun, parameters: Sequence[str]) -> pd.DataFrame:
    """Return the best run: where and how it ran, its figures (money in the quote currency)."""
    r = best.row
    items = {
        "run": str(r["run_id"]),
        "market and window": f"{r['symbol']} {r['timeframe']}, {r['window']} (UTC)",
        "parameters": _params(r, parameters) or "none",
        "costs per fill": f"fee {_tick('fee', r['fee'])}, slippage {_tick('slippage', r['slippage'])}",
        "final equity": money(r.get("final_equity"), best.currency),
        "return": percent(r.get("return_pct")),
        "Sharpe (annualised)": number(r.get("sharpe")),
        "Sortino / Calmar": f"{ratio(r.get('sortino'))} / {ratio(r.get('calmar'))}",
        "max drawdown": percent(r.get("max_drawdown_pct")),
        "entries": number(r.get("trades"), 0),
        "bars": number(r.get("bars"), 0),
        "probabilistic Sharpe ratio (against 0)": number(r.get("psr"), 3),
        "deflated Sharpe ratio": number(best.deflated_sharpe, 3),
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="best run"))


def dsr_line(best: BestRun) -> str:
    """Say the best run's deflated Sharpe ratio, what it is measured against, and what it assumes."""
    if best.deflated_sharpe != best.deflated_sharpe:
        return (
            "Deflated Sharpe ratio n/a: the best run has no Sharpe ratio, or no periods a year to read it by"
        )
    root = math.sqrt(best.periods_per_year)
    spread = math.sqrt(best.sharpe_variance) * root if best.sharpe_variance > 0 else math.nan
    moments = (
        "skewness and kurtosis from the run's own PSR"
        if best.moments_from_psr
        else "returns taken as normal (skewness 0, kurtosis 3): the run's PSR could not give its moments"
    )
    return (
        f"Deflated Sharpe ratio {best.deflated_sharpe:.3f}: the probability that the best run's true Sharpe "
        f"ratio beats {best.benchmark * root:.2f} (annualised), the best that {best.trials:,} runs without "
        f"skill would show by luck, their Sharpe ratios spreading by {number(spread)} ({moments})"
    )


# -- the probability of backtest overfitting ------------------------------------------------------


@dataclass(frozen=True)
class GroupOverfitting:
    """The PBO of one group of runs on the same bars (None with fewer than 2 to compare)."""

    label: str  # "BTC/USDT 1m, 2026-01-05 to 2026-01-07"
    runs: pd.DataFrame  # the group's completed runs compared, in the order of the PBO's configurations
    completed: int  # the group's completed runs (some may lack blocks)
    overfitting: Overfitting | None
    note: str
    periods_per_year: float


def group_overfitting(record: SweepRecord, partitions: int = PARTITIONS) -> list[GroupOverfitting]:
    """Return the PBO of each group of completed runs that share a symbol, timeframe and window.

    The configurations are the group's runs (its parameter and cost variants), each given by its
    blocks; runs missing a block are left out (the note says how many). The blocks are grouped
    into `partitions` partitions when they divide evenly, else the largest even count below that
    does. Sharpe ratios are annualised by the group's ``periods_per_year``.
    """
    out: list[GroupOverfitting] = []
    completed = record.completed
    if not len(completed):
        return out
    for _, runs in completed.groupby(list(GROUP_KEYS), sort=True, dropna=False):
        first = runs.iloc[0]
        label = f"{first['symbol']} {first['timeframe']}, {first['window']}"
        ppy = as_float(first.get("periods_per_year"))
        ppy = ppy if math.isfinite(ppy) and ppy > 0 else 1.0
        ids = runs["run_id"].tolist()
        blocks = record.blocks[record.blocks["run_id"].isin(ids)]
        moments = [blocks.pivot(index="run_id", columns="block", values=v) for v in ("n", "sum", "sumsq")]
        whole = pd.concat(moments, axis=1).notna().all(axis=1)
        kept = [i for i in ids if i in whole.index and whole[i]]
        compared = runs[runs["run_id"].isin(kept)]
        left_out = len(ids) - len(kept)
        notes = [f"{left_out} run(s) without all blocks left out"] if left_out else []
        if len(kept) < 2:
            notes.append(f"PBO needs at least 2 configurations with blocks (got {len(kept)})")
            out.append(GroupOverfitting(label, compared, len(runs), None, "; ".join(notes), ppy))
            continue
        matrices = [m.loc[kept].to_numpy(dtype=float) for m in moments]
        count = matrices[0].shape[1]
        s = _partitions(count, partitions)
        if s is None:
            notes.append(f"{count} blocks cannot be split into an even number of equal partitions")
            out.append(GroupOverfitting(label, compared, len(runs), None, "; ".join(notes), ppy))
            continue
        if s != partitions:
            notes.append(f"{count} blocks: {s} partitions")
        result = pbo_from_blocks(matrices[0], matrices[1], matrices[2], s, periods_per_year=ppy)
        ordered = compared.set_index("run_id").loc[kept].reset_index()  # the configurations' order
        out.append(GroupOverfitting(label, ordered, len(runs), result, "; ".join(notes), ppy))
    return out


def _partitions(blocks: int, preferred: int) -> int | None:
    for s in range(min(preferred, blocks), 1, -1):
        if s % 2 == 0 and blocks % s == 0:
            return s
    return None


def pbo_outcome(groups: Sequence[GroupOverfitting]) -> str:
    """Return the sweep report's outcome for the index: ``PBO 0.62``, a range over groups, or n/a.

    Examples
    --------
    >>> pbo_outcome([])
    'PBO n/a'
    """
    values = sorted(g.overfitting.pbo for g in groups if g.overfitting is not None)
    if not values:
        return "PBO n/a"
    low, high = f"{values[0]:.2f}", f"{values[-1]:.2f}"
    return f"PBO {high}" if low == high else f"PBO {low} to {high}"


def pbo_table(groups: Sequence[GroupOverfitting], parameters: Sequence[str]) -> pd.DataFrame:
    """Return a row per group: runs compared, combinations, PBO, the out-of-sample loss and
    degradation, and the run chosen in sample most often."""
    rows = []
    for g in groups:
        o = g.overfitting
        row: dict[str, Any] = {"group (same bars)": g.label}
        row["runs compared"] = f"{len(g.runs)} of {g.completed}"
        if o is None:
            row.update({"PBO": "n/a", "note": g.note})
            rows.append(row)
            continue
        picks = np.bincount(o.chosen, minlength=o.configurations)
        top = int(picks.argmax())
        chosen = g.runs.iloc[top]
        row.update(
            {
                "partitions / combinations": f"{o.partitions} / {o.combinations:,}",
                "PBO": f"{o.pbo:.2f}",
                "median logit": f"{o.median_logit:+.2f}",
                "out-of-sample Sharpe < 0": f"{o.probability_of_loss:.0%}",
                "degradation slope": number(o.degradation_slope),
                "chosen in sample most often": f"{chosen['run_id']} ({_variant(chosen, parameters)}), "
                f"{picks[top] / o.combinations:.0%} of combinations",
                "note": g.note,
            }
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index("group (same bars)").fillna("") if rows else pd.DataFrame()


def pbo_words(pbo: float) -> str:
    """Say what a PBO means for the grid's best cell, in a sentence.

    Examples
    --------
    >>> pbo_words(0.62)[:40]
    'PBO 0.62: in 62% of the splits, the conf'
    """
    lead = (
        f"PBO {pbo:.2f}: in {pbo:.0%} of the splits, the configuration best in sample was at or below the "
        "median out of sample."
    )
    if pbo >= 0.5:
        return f"{lead} High: the grid's best cell is likely luck, not a better configuration."
    if pbo >= 0.2:
        return (
            f"{lead} The best cell's lead often does not hold on bars it was not chosen on: treat it with "
            "suspicion."
        )
    return (
        f"{lead} Low: the configurations that lead in sample keep leading out of sample (which says nothing "
        "yet about costs or markets to come)."
    )


# -- labels ---------------------------------------------------------------------------------------


def _ordered(values: Any) -> list[Any]:
    # Numbers in order; text in natural order, its numbers read as numbers ("fee 0.05%" < "fee 0.1%").
    items = list(values)
    if items and all(isinstance(v, str) for v in items):
        return sorted(items, key=_natural)
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=str)


def _natural(text: str) -> list[Any]:
    parts = re.split(r"(\d+(?:\.\d+)?)", text)
    return [(float(p), "") if i % 2 else (-1.0, p) for i, p in enumerate(parts)]


def _tick(key: str, value: Any) -> str:
    if key in COST_KEYS and isinstance(value, int | float | np.number) and not isinstance(value, bool):
        return f"{float(value) * 100:.4g}%"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _params(row: pd.Series, parameters: Sequence[str]) -> str:
    return ", ".join(f"{p}={_tick(p, row[p])}" for p in parameters if p in row.index)


def _variant(row: pd.Series, parameters: Sequence[str]) -> str:
    costs = f"fee {_tick('fee', row['fee'])}, slippage {_tick('slippage', row['slippage'])}"
    params = _params(row, parameters)
    return f"{params}; {costs}" if params else costs


# -- the conclusion -------------------------------------------------------------------------------


def sweep_conclusion(
    completed: pd.DataFrame,
    failed: int = 0,
    pbos: Sequence[float] = (),
    deflated_sharpe: float | None = None,
    trials: int = 0,
) -> str:
    """Say in plain words what a sweep's figures show, and no more.

    `completed` holds the completed runs' ``return_pct`` and ``buy_hold_return_pct``; `pbos` the
    PBO of each group of runs on the same bars; `deflated_sharpe` that of the best run, deflated
    by `trials` runs.

    Examples
    --------
    >>> sweep_conclusion(pd.DataFrame({"return_pct": [-1.0, -2.0], "buy_hold_return_pct": [3.0, 3.0]}))
    'Both runs lose money after costs; none beats buy and hold of the same bars.'
    """
    runs = len(completed)
    tail = ""
    if failed:
        plural = failed != 1
        tail = f" {failed:,} run{'s' if plural else ''} failed and {'are' if plural else 'is'} left out."
    if not runs:
        return f"No run completed: there is nothing to conclude.{tail}"
    clauses = [_money_clause(completed), _holding_clause(completed), _pbo_clause(pbos)]
    text = "; ".join(c for c in clauses if c) + "."
    if deflated_sharpe is not None and deflated_sharpe == deflated_sharpe:
        text += f" {_dsr_sentence(deflated_sharpe, trials or runs)}"
    return text + tail


def sweep_conclusion_of(record: SweepRecord, best: BestRun | None, groups: Sequence[GroupOverfitting]) -> str:
    """Return `sweep_conclusion` of a sweep as its report computed it."""
    pbos = [g.overfitting.pbo for g in groups if g.overfitting is not None]
    dsr, trials = (best.deflated_sharpe, best.trials) if best is not None else (None, 0)
    return sweep_conclusion(record.completed, len(record.failed), pbos, dsr, trials)


def _how_many(count: int, runs: int) -> str:
    # "All 18", "Both", "The one", "none" or "3 of 18": a count said of the sweep's runs.
    if count == runs:
        return {1: "the one run", 2: "both runs"}.get(runs, f"all {runs:,} runs")
    return "none" if count == 0 else f"{count:,} of {runs:,}"


def _money_clause(completed: pd.DataFrame) -> str:
    returns = pd.to_numeric(completed["return_pct"], errors="coerce")
    runs, lose, gain = len(returns), int((returns < 0).sum()), int((returns > 0).sum())
    flat = runs - lose - gain
    if lose == runs or gain == runs:
        verb = "lose" if lose == runs else "make"
        said = f"{_how_many(runs, runs)} {verb}{'s' if runs == 1 else ''} money after costs"
    else:
        parts = [f"{gain:,} gain{'s' if gain == 1 else ''}"] if gain else []
        parts += [f"{flat:,} end{'s' if flat == 1 else ''} flat"] if flat else []
        said = (
            f"{_how_many(lose, runs)} runs lose{'s' if lose == 1 else ''} money after costs"
            if lose
            else "no run loses money after costs"
        )
        said += f", {' and '.join(parts)}"
    return said[0].upper() + said[1:]


def _holding_clause(completed: pd.DataFrame) -> str:
    if "buy_hold_return_pct" not in completed.columns:
        return ""
    returns = pd.to_numeric(completed["return_pct"], errors="coerce")
    holding = pd.to_numeric(completed["buy_hold_return_pct"], errors="coerce")
    known = holding.notna() & returns.notna()
    if not known.any():
        return ""
    beats, runs = int((returns[known] > holding[known]).sum()), int(known.sum())
    if beats == 0:
        return "none beats buy and hold of the same bars"
    if beats == runs:
        return f"{_how_many(runs, runs)} beat{'s' if runs == 1 else ''} buy and hold of the same bars"
    return f"{beats:,} of {runs:,} beat{'s' if beats == 1 else ''} buy and hold of the same bars"


def _pbo_clause(pbos: Sequence[float]) -> str:
    if not pbos:
        return ""
    worst = max(pbos)
    lead = f"PBO {worst:.2f}" if len(pbos) == 1 else f"PBO up to {worst:.2f} across {len(pbos)} groups"
    if worst >= 0.5:
        return f"{lead}: the best run's lead is likely luck"
    if worst >= 0.2:
        return f"{lead}: the best run's lead often fails on bars it was not chosen on"
    return (
        f"{lead}: the runs that lead in sample keep leading out of sample, which does not say they will "
        "make money"
    )


def _dsr_sentence(dsr: float, trials: int) -> str:
    said = f"The best run's deflated Sharpe ratio is {dsr:.2f}: its Sharpe ratio is"
    if dsr >= 0.95:
        return f"{said} above what luck gives the best of {trials:,} runs, on these bars only."
    return f"{said} not shown to beat what luck gives the best of {trials:,} runs."
