"""What the research notebooks compute: bars from a source, features against forward returns, a
small strategy grid and its cost sensitivity, and a trained model's out-of-sample record.

`notebooks/research/explore.ipynb` and `notebooks/research/train_model.ipynb` call these, so the
notebooks hold the story and this module the arithmetic (tested, typed). Every backtest here runs
through `labkit.research.backtest.run_backtest`, the engine and gates of ``labkit backtest``; every grid cell
is recorded as a trial (`labkit.research.trials`), so the deflated Sharpe ratio pays for the search.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labkit.analysis.formatting import money, number, percent, share, significant
from labkit.errors import ConfigError
from labkit.home import home_arg

if TYPE_CHECKING:
    from labkit.config.schema import LabkitConfig
    from labkit.research.backtest import BacktestResult

# Fees (of each fill's notional) the cost sensitivity runs the best grid cell at.
COST_FEES = (0.0, 0.0005, 0.001, 0.002)


# -- bars ----------------------------------------------------------------------------------------


def market_config(
    home: str | Path, source: str, symbol: str, timeframe: str, **overrides: Any
) -> LabkitConfig:
    """Return the home's config (``labkit.yaml``, ``LABKIT_*``) for one market, with `overrides`.

    `overrides` are config keys with dots written as double underscores
    (``broker__fee=0.0005``, ``strategies__sma_cross__fast=5``).
    """
    home = home_arg(home)
    from labkit.config.loading import load_config

    keys = {k.replace("__", "."): v for k, v in overrides.items()}
    return load_config(
        home,
        {"session.source": source, "session.symbol": symbol, "session.timeframe": timeframe, **keys},
    )


def load_bars(
    home: str | Path,
    source: str,
    symbol: str,
    timeframe: str,
    since: Any,
    until: Any,
    config: LabkitConfig | None = None,
) -> pd.DataFrame:
    """Return the bars of `symbol` `timeframe` from `source` whose open lies in ``[since, until)``.

    Any labkit source (``synthetic``, ``csv:PATH``, ``ccxt:EXCHANGE``, ``yfinance``...) through
    `labkit.data.registry.open_source`; file paths are relative to `home` (a str or Path; "" the usual home).
    `since` and `until` take a date string, date, datetime, pandas Timestamp or epoch ms. Raise
    `ConfigError` when the range is empty or holds no bar.
    """
    from labkit.data.registry import open_source
    from labkit.timeutil import instant_ms, iso_s

    home = home_arg(home)
    since_ms, until_ms = instant_ms(since, "since"), instant_ms(until, "until")
    if until_ms <= since_ms:
        raise ConfigError(f"until: {iso_s(until_ms)} is not after since {iso_s(since_ms)}")
    config = config or market_config(home, source, symbol, timeframe)
    bars = open_source(source, home, config.session.seed, data=config.data, exchanges=config.exchanges).bars(
        symbol, timeframe, since_ms, until_ms
    )
    if not len(bars):
        raise ConfigError(
            f"since/until: no bars of {symbol} {timeframe} from {source} between {iso_s(since_ms)} "
            f"and {iso_s(until_ms)}"
        )
    return bars


def bars_table(bars: pd.DataFrame, timeframe: str, currency: str) -> pd.DataFrame:
    """Return what was loaded: the bars, their first and last open (UTC), gaps, prices and volume."""
    from labkit.reports.tables import utc
    from labkit.timeutil import timeframe_ms

    step = pd.Timedelta(milliseconds=timeframe_ms(timeframe))
    gaps = bars.index.to_series().diff().dropna()
    missing = int(((gaps / step).round() - 1).clip(lower=0).sum())
    close = bars["close"]
    items = {
        "bars": f"{len(bars):,}",
        "first / last open": f"{utc(bars.index[0])} / {utc(bars.index[-1])}",
        "missing bars inside the range": f"{missing:,}",
        "first / last close": f"{money(float(close.iloc[0]), currency)} / "
        f"{money(float(close.iloc[-1]), currency)}",
        "lowest low / highest high": f"{money(float(bars['low'].min()), currency)} / "
        f"{money(float(bars['high'].max()), currency)}",
        "change over the range": f"{float(close.iloc[-1] / close.iloc[0] - 1):+.2%}",
        "total volume (units)": f"{float(bars['volume'].sum()):,.2f}",
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="bars"))


# -- features ------------------------------------------------------------------------------------


def feature_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Return each feature's rows (without NaN), mean, standard deviation and quantiles.

    Four significant digits; a feature's first ``lookback - 1`` rows are NaN (its warm-up).
    """
    described = frame.describe(percentiles=[0.05, 0.5, 0.95]).T
    described = described.rename(columns={"count": "rows", "std": "std", "50%": "median"})
    shown = described[["rows", "mean", "std", "min", "5%", "median", "95%", "max"]]
    return shown.apply(
        lambda col: [f"{int(v):,}" for v in col] if col.name == "rows" else [significant(v) for v in col]
    ).rename_axis("feature")


def forward_returns(bars: pd.DataFrame, horizon: int) -> pd.Series:
    """Return the log return from each bar's close to the close `horizon` bars later (NaN at the end).

    This looks forward: it is what a feature would have to predict, never a feature.
    """
    close = bars["close"].to_numpy(dtype=float)
    out = np.full(len(close), math.nan)
    if len(close) > horizon:
        out[:-horizon] = np.log(close[horizon:] / close[:-horizon])
    return pd.Series(out, index=bars.index, name=f"forward return ({horizon} bars)")


@dataclass(frozen=True)
class Correlations:
    """Each feature's correlation with the forward return, and the band chance alone stays within.

    `noise` is two standard errors of a correlation of zero, counting ``rows / horizon``
    independent returns (returns over overlapping windows are not independent).
    """

    table: pd.DataFrame  # numeric: spearman, pearson, rows; by |spearman|, largest first
    horizon: int
    noise: float

    def shown(self) -> pd.DataFrame:
        """Return the table formatted, with whether each correlation clears the noise band."""
        t = self.table
        return pd.DataFrame(
            {
                "Spearman": [f"{v:+.4f}" for v in t["spearman"]],
                "Pearson": [f"{v:+.4f}" for v in t["pearson"]],
                "rows": [f"{int(v):,}" for v in t["rows"]],
                f"beyond noise (±{self.noise:.3f})": [
                    "yes" if abs(v) > self.noise else "no" for v in t["spearman"]
                ],
            },
            index=t.index,
        )


def forward_correlations(bars: pd.DataFrame, frame: pd.DataFrame, horizon: int) -> Correlations:
    """Return the rank (Spearman) and linear (Pearson) correlation of each feature with the return
    over the next `horizon` bars, over the rows where both are known."""
    target = forward_returns(bars, horizon)
    rows = []
    for name in frame.columns:
        both = pd.DataFrame({"x": frame[name], "y": target}).dropna()
        spearman = pearson = math.nan
        if len(both) > 2 and both["x"].nunique() > 1:
            spearman = float(both["x"].rank().corr(both["y"].rank()))
            pearson = float(both["x"].corr(both["y"]))
        rows.append({"feature": name, "spearman": spearman, "pearson": pearson, "rows": len(both)})
    table = pd.DataFrame(rows).set_index("feature")
    table = table.reindex(table["spearman"].abs().sort_values(ascending=False, na_position="last").index)
    usable = int(table["rows"].max()) if len(table) else 0
    noise = 2.0 / math.sqrt(max(usable / horizon, 1.0))
    return Correlations(table, horizon, noise)


# -- the strategy grid ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """The sma_cross grid: one row per (fast, slow) with its figures; the best cell by Sharpe."""

    table: pd.DataFrame  # fast, slow, return_pct, sharpe, max_drawdown_pct, trades, fees
    best: tuple[int, int]
    best_result: Any  # labkit.research.backtest.BacktestResult of the best cell
    trials: int  # trials recorded for the market, these included
    deflated_sharpe: float | None  # the best cell's Sharpe deflated by those trials
    currency: str

    def pivot(self, value: str) -> pd.DataFrame:
        """Return `value` (``return_pct`` or ``sharpe``) as a fast x slow grid."""
        return self.table.pivot(index="fast", columns="slow", values=value)

    def shown(self) -> pd.DataFrame:
        """Return the grid as a table: money in the quote currency, the best cell marked."""
        t = self.table
        best = [(int(f), int(s)) == self.best for f, s in zip(t["fast"], t["slow"], strict=True)]
        return pd.DataFrame(
            {
                "return": [percent(v) for v in t["return_pct"]],
                "Sharpe": [number(v) for v in t["sharpe"]],
                "max drawdown": [percent(v) for v in t["max_drawdown_pct"]],
                "entries": [f"{int(v):,}" for v in t["trades"]],
                "fees paid": [money(float(v), self.currency) for v in t["fees"]],
                "best": ["best (by Sharpe)" if b else "" for b in best],
            },
            index=pd.MultiIndex.from_frame(t[["fast", "slow"]].astype(int)),
        )

    def best_table(self) -> pd.DataFrame:
        """Return the best cell, its figures, and its Sharpe ratio deflated by the trials recorded."""
        fast, slow = self.best
        row = self.table[(self.table["fast"] == fast) & (self.table["slow"] == slow)].iloc[0]
        dsr = self.deflated_sharpe
        items = {
            "best cell (by Sharpe)": f"sma_cross fast {fast}, slow {slow}",
            "its return / Sharpe": f"{percent(row['return_pct'])} / {number(row['sharpe'])}",
            "cells tried here": f"{len(self.table)}",
            "trials recorded for this market": f"{self.trials:,} (the trial ledger: this grid's variants "
            "and every other variant backtested, trained or run as a session on this market)",
            "deflated Sharpe ratio": "n/a"
            if dsr is None
            else f"{dsr:.3f}: the probability that its Sharpe beats the best that {self.trials:,} "
            "trials would show by luck alone",
        }
        return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="selection"))


def sma_grid(
    home: str | Path,
    config: LabkitConfig,
    bars: pd.DataFrame,
    fasts: Sequence[int],
    slows: Sequence[int],
    record: bool = True,
) -> Grid:
    """Backtest sma_cross at every (fast, slow) with fast < slow on `bars`; record each as a trial.

    `config` gives the market, costs and gates (`market_config`). The best cell is the one with
    the highest Sharpe ratio; its deflated Sharpe ratio counts every trial recorded for the market
    (this grid's included), so trying nine cells is paid for.
    """
    home = home_arg(home)
    from labkit.data.bars import quote_currency
    from labkit.research.backtest import run_backtest, trial_figures
    from labkit.research.trials import record_trial, trial_stats

    rows, results = [], {}
    for fast in fasts:
        for slow in slows:
            if fast >= slow:
                continue
            cell = _with(config, {"strategies.sma_cross.fast": fast, "strategies.sma_cross.slow": slow})
            result = run_backtest(cell, bars, home=home, trial=False)
            if record:
                record_trial(cell, bars, result.summary)
            results[(fast, slow)] = result
            rows.append(_figures(fast, slow, result))
    if not rows:
        raise ConfigError("grid: no (fast, slow) pair with fast < slow")
    table = pd.DataFrame(rows)
    ranked = table.assign(key=table["sharpe"].fillna(-math.inf)).sort_values("key", ascending=False)
    best = (int(ranked["fast"].iloc[0]), int(ranked["slow"].iloc[0]))
    s = config.session
    stats = trial_stats(s.source, s.symbol, s.timeframe)
    deflated = trial_figures(results[best], s.capital, stats.trials, stats.sharpe_variance)["deflated_sharpe"]
    return Grid(table, best, results[best], stats.trials, deflated, quote_currency(s.symbol))


def _figures(fast: int, slow: int, result: BacktestResult) -> dict[str, Any]:
    s = result.summary
    return {
        "fast": fast,
        "slow": slow,
        "return_pct": float(s["return_pct"]),
        "sharpe": float(s["sharpe"]),
        "max_drawdown_pct": float(s["max_drawdown_pct"]),
        "trades": int(s["trades"]),
        "fees": float(s["fees"]),
    }


def cost_sensitivity(
    home: str | Path,
    config: LabkitConfig,
    bars: pd.DataFrame,
    fast: int,
    slow: int,
    fees: Sequence[float] = COST_FEES,
) -> pd.DataFrame:
    """Return sma_cross (`fast`, `slow`) on `bars` at each fee: return, Sharpe, entries, fees paid.

    Slippage stays the config's. These runs are not recorded as trials: they do not choose a
    variant, they show how one chosen variant depends on its costs.
    """
    home = home_arg(home)
    from labkit.data.bars import quote_currency
    from labkit.research.backtest import run_backtest

    currency = quote_currency(config.session.symbol)
    rows = []
    for fee in fees:
        cell = _with(
            config,
            {"strategies.sma_cross.fast": fast, "strategies.sma_cross.slow": slow, "broker.fee": fee},
        )
        s = run_backtest(cell, bars, home=home, trial=False).summary
        rows.append(
            {
                "fee per fill": f"{fee:.2%}",
                "round trip (fees + slippage)": f"{2 * (fee + cell.broker.slippage):.2%}",
                "return": percent(s["return_pct"]),
                "Sharpe": number(s["sharpe"]),
                "max drawdown": percent(s["max_drawdown_pct"]),
                "entries": f"{int(s['trades']):,}",
                "fees paid": money(float(s["fees"]), currency),
                "final equity": money(float(s["final_equity"]), currency),
            }
        )
    return pd.DataFrame(rows).set_index("fee per fill")


def _with(config: LabkitConfig, overrides: Mapping[str, Any]) -> LabkitConfig:
    # The config again with dotted keys set, validated as a whole (slow > fast, fee >= 0...).
    from labkit.config.schema import LabkitConfig

    data = config.model_dump(mode="python")
    for key, value in overrides.items():
        *path, last = key.split(".")
        node = data
        for part in path:
            node = node.setdefault(part, {})
        node[last] = value
    return LabkitConfig.model_validate(data)


# -- a trained model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRecord:
    """A saved model read for its report: model.json and its walk-forward out-of-sample rows."""

    model_id: str
    meta: dict[str, Any]
    oos: pd.DataFrame  # index ts (UTC); label, probability
    folder: Path
    ensemble: Any = None  # labkit.models.ensemble.Ensemble, as load_model checked it

    @property
    def symbol(self) -> str:
        return str(self.meta["symbol"])

    @property
    def timeframe(self) -> str:
        return str(self.meta["timeframe"])

    @property
    def currency(self) -> str:
        from labkit.data.bars import quote_currency

        return quote_currency(self.symbol)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.meta.get("params") or {})

    @property
    def round_trip_cost(self) -> float:
        return float(self.params.get("round_trip_cost", 0.0))


def load_model_record(home: str | Path, model: str, symbol: str = "", timeframe: str = "") -> ModelRecord:
    """Load and check the model `model` (an id or ``latest``) and read its out-of-sample rows.

    Raise `ConfigError` as `labkit.models.artifacts.load_model` does, or when the model has no
    ``out_of_sample.parquet`` (trained before models kept it).
    """
    home = home_arg(home)
    from labkit.models.artifacts import load_model

    loaded = load_model(home, model, symbol or None, timeframe or None)
    path = loaded.path / "out_of_sample.parquet"
    if not path.is_file():
        raise ConfigError(
            f"model {loaded.model_id}: no out_of_sample.parquet beside model.json, so there is nothing "
            "out of sample to show; train it again with labkit train"
        )
    oos = pd.read_parquet(path)
    oos.index = pd.DatetimeIndex(oos.index).tz_convert("UTC")
    return ModelRecord(loaded.model_id, dict(loaded.meta), oos.sort_index(), loaded.path, loaded.ensemble)


def auc_outcome(meta: Mapping[str, Any]) -> str:
    """Return a model's out-of-sample AUC as the report index shows it: ``AUC 0.53 ± 0.01``.

    Examples
    --------
    >>> auc_outcome({"auc_mean": 0.5312, "auc_std": 0.0167}), auc_outcome({})
    ('AUC 0.53 ± 0.02', 'AUC n/a')
    """
    mean, std = meta.get("auc_mean"), meta.get("auc_std")
    if not isinstance(mean, int | float) or mean != mean:
        return "AUC n/a"
    spread = f" ± {std:.2f}" if isinstance(std, int | float) and std == std else ""
    return f"AUC {mean:.2f}{spread}"


def model_window(meta: Mapping[str, Any]) -> str:
    """Return the UTC days a model was trained on, ``YYYY-MM-DD to YYYY-MM-DD`` ("?" when unknown)."""
    window = meta.get("window") or {}
    days = []
    for key in ("since", "until"):
        try:
            days.append(pd.Timestamp(window[key]).tz_convert("UTC").date().isoformat())
        except (KeyError, TypeError, ValueError):
            days.append("?")
    return " to ".join(days)


def model_header(record: ModelRecord, parameters: Mapping[str, Any]) -> pd.DataFrame:
    """Return the table the train report starts with: what the model is and how it was trained."""
    from labkit.home import code_version
    from labkit.reports.tables import describe_code_version, shown_parameters, utc
    from labkit.timeutil import now_ms

    m, p = record.meta, record.params
    window = m.get("window") or {}
    members = ", ".join(
        f"{e.get('kind')} (weight {float(e.get('weight', math.nan)):.2f})" for e in m.get("members") or []
    )
    versions = m.get("versions") or {}
    git = versions.get("git_sha") or m.get("git")
    libraries = ", ".join(f"{k} {v}" for k, v in versions.items() if k != "git_sha" and v)
    # Training again with identical content keeps the folder's created_at: trained_at is the last run.
    last_trained = m.get("trained_at") or m.get("created_at")
    items = {
        "report": "train",
        "parameters": shown_parameters(parameters),
        "model": record.model_id,
        "market": f"{record.symbol} {record.timeframe} from {m.get('source')}; money in {record.currency}",
        "training window": f"{_utc_or(window.get('since'))} to {_utc_or(window.get('until'))} "
        f"({int(window.get('bars', 0)):,} bars, {int(window.get('rows', 0)):,} rows with features "
        "and labels)",
        "label": f"{p.get('label')} (horizon {m.get('horizon')} bars)",
        "walk forward": f"{p.get('folds')} purged folds x {p.get('seeds')} seeds; "
        f"{len(record.oos):,} rows tested out of sample",
        "members": members or "none",
        "trading": _trading(record),
        "features": f"{len((m.get('features') or {}).get('names') or [])} "
        f"(schema {(m.get('features') or {}).get('version')})",
        "data hash": str(m.get("data_hash")),
        "trained": f"{utc(last_trained) if last_trained else '?'} with {libraries}"
        + (f", git commit {str(git)[:12]}" if git else ""),
        "code version": f"{describe_code_version(code_version())} (this page)",
        "generated at": utc(pd.Timestamp(now_ms(), unit="ms", tz="UTC")),
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="item"))


def _trading(record: ModelRecord) -> str:
    # How the model trades: its own thresholds, or (a meta model) the gate it puts on a primary's entries.
    p = record.params
    cost = f"round trip cost {record.round_trip_cost:.3%}"
    if is_meta(record):
        primary = (record.meta.get("meta") or {}).get("primary")
        return f"the meta gate on {primary}'s entries: refused below p {p.get('min_probability')}; {cost}"
    return f"BUY at probability >= {p.get('entry')}, SELL at <= {p.get('exit')}; {cost}"


def is_meta(record: ModelRecord) -> bool:
    """Say whether `record` is a meta model (``labkit train --meta``), which judges a primary's entries."""
    return record.meta.get("kind") == "meta"


def meta_comparison(record: ModelRecord) -> pd.DataFrame:
    """Return a meta model's primary alone against it behind the `meta` gate, out of sample and net of costs.

    Both replayed through the engine with the training config's gates and costs on the folds'
    test blocks (model.json's ``oos_meta``): entries, net return over the blocks, hit rate.
    """
    oos = record.meta.get("oos_meta") or {}
    primary = (record.meta.get("meta") or {}).get("primary")
    rows = {}
    for key, label in (("primary", f"{primary} alone"), ("meta", f"{primary} behind the meta gate")):
        r = oos.get(key) or {}
        rows[label] = {
            "entries": "n/a" if r.get("trades") is None else f"{int(r['trades']):,}",
            "net return (costs in)": percent(r.get("return_pct")),
            "hit rate": share(r.get("hit_rate")),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("strategy")


def meta_conclusion(record: ModelRecord) -> str:
    """Say in plain words whether the meta gate improved its primary out of sample, and no more."""
    oos = record.meta.get("oos_meta") or {}
    alone, gated = oos.get("primary") or {}, oos.get("meta") or {}
    primary = (record.meta.get("meta") or {}).get("primary")
    said = _auc_sentence(record.meta)
    a, g = alone.get("return_pct"), gated.get("return_pct")
    if a is None or g is None:
        return said
    verdict = "improved on" if g > a else "did not improve on"
    return (
        f"{said} On the folds' test blocks, after costs, {primary} alone returned {percent(a, 1)} over "
        f"{alone.get('trades')} entries and behind the meta gate {percent(g, 1)} over {gated.get('trades')}: "
        f"the gate {verdict} the primary out of sample."
    )


def _utc_or(value: Any) -> str:
    from labkit.reports.tables import utc

    try:
        return utc(value)
    except (TypeError, ValueError):
        return "?"


def fold_spans(record: ModelRecord) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Return each fold's first and last tested bar (UTC), from the out-of-sample rows.

    The folds' test blocks follow one another, so the rows split by each fold's ``test_bars``;
    empty when the counts do not add up to the rows (a model.json from another layout).
    """
    sizes = [int(f.get("test_bars", 0)) for f in record.meta.get("folds") or []]
    if not sizes or sum(sizes) != len(record.oos):
        return []
    ends = np.cumsum(sizes)
    index = record.oos.index
    return [(index[end - size], index[end - 1]) for size, end in zip(sizes, ends, strict=True)]


def walk_forward_table(record: ModelRecord) -> pd.DataFrame:
    """Return the per-fold scores of model.json formatted: AUC with its spread over the seeds,
    accuracy beside the majority class's accuracy, and each fold's net return traded with costs."""
    spans = fold_spans(record)
    rows = []
    for i, f in enumerate(record.meta.get("folds") or []):
        first, last = (_minute(spans[i][0]), _minute(spans[i][1])) if spans else ("?", "?")
        accuracy, majority = f.get("accuracy"), f.get("majority_accuracy")
        beats = (
            "n/a"
            if accuracy is None or majority is None
            else ("above" if accuracy > majority else "not above")
        )
        rows.append(
            {
                "fold": int(f.get("fold", i)),
                "train rows": f"{int(f.get('train_bars', 0)):,}",
                "test rows": f"{int(f.get('test_bars', 0)):,}",
                "first tested (UTC)": first,
                "last tested (UTC)": last,
                "AUC (± over seeds)": f"{number(f.get('auc'), 3)} ± {number(_seed_spread(f), 3)}",
                "log loss": number(f.get("log_loss"), 4),
                "Brier": number(f.get("brier"), 4),
                "accuracy": share(accuracy),
                "majority accuracy": share(majority),
                "accuracy vs majority": beats,
                "net return (traded, costs in)": percent(f.get("net_return_pct")),
                "entries": "n/a" if f.get("trades") is None else f"{int(f['trades']):,}",
            }
        )
    return pd.DataFrame(rows).set_index("fold") if rows else pd.DataFrame()


def _minute(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%d %H:%M")


def _seed_spread(fold: Mapping[str, Any]) -> Any:
    # A fold's AUC spread across the seeds; models trained before it had its own key said auc_std.
    return fold.get("auc_seed_std", fold.get("auc_std"))


def auc_line(record: ModelRecord) -> str:
    """Say the model's AUC: the mean of its folds' ± their spread across the folds, the seeds' apart."""
    m = record.meta
    seeds, folds = record.params.get("seeds"), len(m.get("folds") or []) or record.params.get("folds")
    mean = number(m.get("auc_mean"), 3)
    if "auc_seed_std" not in m:  # trained before the spread across folds was kept: it is the seeds'
        return (
            f"Out-of-sample AUC {mean} ± {number(m.get('auc_std'), 3)}: the mean over the folds, ± its "
            f"standard deviation across the {seeds} seeds (retrain for the spread across folds). "
            "0.5 is a coin."
        )
    return (
        f"Out-of-sample AUC {mean} ± {number(m.get('auc_std'), 3)}: the mean of the {folds} folds' AUCs ± "
        f"their standard deviation across the folds, how much the edge moves from one stretch of the "
        f"market to the next; ± {number(m.get('auc_seed_std'), 3)} across the {seeds} seeds. 0.5 is a coin."
    )


def calibration_table(oos: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """Return the out-of-sample probabilities in `bins` equal-width bins over [0, 1]: each bin's
    rows, mean predicted probability and observed frequency of the label (empty bins left out)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    p = oos["probability"].to_numpy(dtype=float)
    y = oos["label"].to_numpy(dtype=float)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        if not inside.any():
            continue
        rows.append(
            {
                "bin": f"{edges[b]:.1f} to {edges[b + 1]:.1f}",
                "rows": int(inside.sum()),
                "mean probability": float(p[inside].mean()),
                "observed frequency": float(y[inside].mean()),
            }
        )
    table = pd.DataFrame(rows, columns=["bin", "rows", "mean probability", "observed frequency"])
    table["gap"] = table["observed frequency"] - table["mean probability"]
    return table.set_index("bin")


def calibration_tables(record: ModelRecord, bins: int = 10) -> dict[str, pd.DataFrame]:
    """Return `calibration_table` of every tested row, and of the folds after the first alone.

    The first fold has no earlier fold to learn a calibration from, so its probabilities are the
    members' raw blend; each later fold is calibrated on the folds before it.
    """
    out = {"every tested row": calibration_table(record.oos, bins)}
    spans = fold_spans(record)
    if len(spans) > 1:
        later = record.oos.loc[record.oos.index >= spans[1][0]]
        later_folds = "fold 1" if len(spans) == 2 else f"folds 1 to {len(spans) - 1}"
        out[f"{later_folds} alone (calibrated on the folds before)"] = calibration_table(later, bins)
    return out


def calibration_shown(table: pd.DataFrame) -> pd.DataFrame:
    """Return `calibration_table` formatted: counts with separators, shares in %."""
    return pd.DataFrame(
        {
            "rows": [f"{int(v):,}" for v in table["rows"]],
            "mean probability": [f"{v:.1%}" for v in table["mean probability"]],
            "observed frequency": [f"{v:.1%}" for v in table["observed frequency"]],
            "observed - predicted": [f"{v:+.1%}" for v in table["gap"]],
        },
        index=table.index,
    )


def importance_table(record: ModelRecord) -> pd.DataFrame:
    """Return each feature's XGBoost gain share and permutation AUC drop side by side, numeric,
    sorted by gain share then AUC drop (largest first).

    Both come from model.json's ``importance``; a gain it does not hold is read from the saved
    XGBoost member itself (`gain_shares`), the same total gain of the same final model.
    """
    meta = record.meta
    importance = meta.get("importance") or {}
    names = list((meta.get("features") or {}).get("names") or [])
    gain = importance.get("gain") or gain_shares(record.ensemble, names)
    drop = importance.get("permutation_auc_drop") or {}
    names = names or sorted(set(gain) | set(drop))
    table = pd.DataFrame(
        {
            "gain share": [float(gain.get(n, math.nan)) for n in names],
            "permutation AUC drop": [float(drop.get(n, math.nan)) for n in names],
        },
        index=pd.Index(names, name="feature"),
    )
    return table.sort_values(["gain share", "permutation AUC drop"], ascending=False, na_position="last")


def gain_shares(ensemble: Any, names: Sequence[str]) -> dict[str, float]:
    """Return the XGBoost member's total gain per feature as shares of the whole ({} without one)."""
    for member in getattr(ensemble, "members", None) or []:
        booster = getattr(member, "booster_", None)
        if getattr(member, "kind", None) == "xgboost" and booster is not None:
            scores = booster.get_score(importance_type="total_gain")
            total = sum(scores.values()) or 1.0
            return {name: float(scores.get(f"f{j}", 0.0)) / total for j, name in enumerate(names)}
    return {}


def importance_shown(table: pd.DataFrame) -> pd.DataFrame:
    """Return `importance_table` formatted: gain as a % share, the AUC drop with its sign."""
    return pd.DataFrame(
        {
            "XGBoost gain share": [share(v) for v in table["gain share"]],
            "permutation AUC drop": ["n/a" if v != v else f"{v:+.4f}" for v in table["permutation AUC drop"]],
        },
        index=table.index,
    )


@dataclass(frozen=True)
class OutOfSample:
    """The tested bars traded three ways, net of costs: the model, sma_cross and buy and hold."""

    curves: pd.DataFrame  # equity at each close, a column per strategy; index ts (UTC)
    summary: pd.DataFrame  # formatted, a row per strategy
    capital: float
    currency: str
    fee: float
    same_data: bool  # the bars reloaded hash as the bars the model was trained on
    data_hash: str
    fold_starts: list[pd.Timestamp] = field(default_factory=list)


def out_of_sample_equity(home: str | Path, record: ModelRecord) -> OutOfSample:
    """Trade the model's out-of-sample probabilities over its tested bars, beside sma_cross and buy
    and hold on the same bars; every fill pays the fee of the model's training costs.

    The bars of the model's window are loaded again from its source (`load_bars`) and checked
    against its data hash. The model trades with `labkit.research.training.FoldStrategy` (BUY at ``entry``,
    SELL at ``exit``), sma_cross with the home's config, both through `run_backtest` with the
    gates; buy and hold buys at the first bar's open, paying the fee, and holds. The fee of each
    fill is half the model's round trip cost, with no slippage on top.
    """
    home = home_arg(home)
    from labkit.research.backtest import run_backtest, summarize
    from labkit.research.training import FoldStrategy, TrainPlan
    from labkit.research.trials import data_hash
    from labkit.timeutil import parse_instant, timeframe_ms

    m, p = record.meta, record.params
    window = m.get("window") or {}
    tf_ms = timeframe_ms(record.timeframe)
    fee = record.round_trip_cost / 2.0
    source = str(m.get("source") or "synthetic")
    config = market_config(
        home, source, record.symbol, record.timeframe, broker__fee=fee, broker__slippage=0.0
    )
    until = parse_instant(str(window.get("until")), "window.until") + tf_ms
    bars = load_bars(home, source, record.symbol, record.timeframe, str(window.get("since")), until, config)
    digest = data_hash(bars)
    first, last = record.oos.index[0], record.oos.index[-1]
    span = bars.loc[(bars.index >= first) & (bars.index <= last)]
    if not len(span):
        raise ConfigError(f"model {record.model_id}: none of its tested bars is in the bars its source gave")
    probability = record.oos["probability"].reindex(span.index).to_numpy(dtype=float)
    plan = TrainPlan(
        horizon=int(m.get("horizon") or 1),
        entry=float(p.get("entry", 0.6)),
        exit=float(p.get("exit", 0.5)),
    )
    # Pictures of a trained model's folds, not new tries: its training run was the trial.
    model = run_backtest(
        config, span, home=home, strategy=FoldStrategy(probability, plan, record.model_id), trial=False
    )
    sma = run_backtest(config, span, home=home, trial=False)
    capital = float(config.session.capital)
    units = capital * (1.0 - fee) / float(span["open"].iloc[0])
    hold = pd.Series(units * span["close"].to_numpy(dtype=float), index=span.index)
    ppy = float(model.summary["periods_per_year"])
    hold_summary = summarize(hold, capital, tf_ms, ppy)
    hold_summary.update(trades=1, fees=capital * fee)
    names = (f"model {record.model_id}", sma.summary["strategy"], "buy and hold")
    curves = pd.DataFrame(
        {names[0]: model.equity.to_numpy(), names[1]: sma.equity.to_numpy(), names[2]: hold.to_numpy()},
        index=span.index,
    )
    summary = _equity_summary(
        dict(zip(names, (model.summary, sma.summary, hold_summary), strict=True)), record.currency
    )
    starts = [start for start, _ in fold_spans(record)]
    return OutOfSample(
        curves,
        summary,
        capital,
        record.currency,
        fee,
        digest == m.get("data_hash"),
        digest,
        starts,
    )


def _equity_summary(summaries: Mapping[str, Mapping[str, Any]], currency: str) -> pd.DataFrame:
    rows = {
        name: {
            "final equity": money(float(s["final_equity"]), currency),
            "return": percent(s.get("return_pct")),
            "Sharpe": number(s.get("sharpe")),
            "max drawdown": percent(s.get("max_drawdown_pct")),
            "entries": f"{int(s.get('trades') or 0):,}",
            "fees paid": money(float(s.get("fees") or 0.0), currency),
        }
        for name, s in summaries.items()
    }
    return pd.DataFrame(rows).T.rename_axis("strategy")


# -- the conclusion -------------------------------------------------------------------------------


def oos_returns(oos: OutOfSample) -> dict[str, float]:
    """Return each strategy's return in % over the tested bars, net of costs (the model first)."""
    last = oos.curves.iloc[-1]
    return {str(name): float(last[name]) / oos.capital * 100.0 - 100.0 for name in oos.curves.columns}


def train_conclusion(meta: Mapping[str, Any], returns: Mapping[str, float] | None = None) -> str:
    """Say in plain words what a trained model's figures show, and no more.

    `meta` is its model.json (``auc_mean``, ``auc_std``, ``folds`` with each fold's
    ``net_return_pct``); `returns` each strategy's return in % over the tested bars after costs,
    the model first, then the others (`oos_returns`), buy and hold named ``buy and hold``.

    Examples
    --------
    >>> train_conclusion({"auc_mean": 0.5, "auc_std": 0.01, "folds": []})
    'Out-of-sample AUC 0.50 ± 0.01 across 0 folds: no better than a coin (0.5).'
    """
    sentences = [_auc_sentence(meta), _folds_sentence(meta)]
    if returns:
        sentences.append(_against_sentence(returns, meta))
    return " ".join(s for s in sentences if s)


def _auc_sentence(meta: Mapping[str, Any]) -> str:
    mean, std = meta.get("auc_mean"), meta.get("auc_std")
    folds = len(meta.get("folds") or [])
    if not isinstance(mean, int | float) or mean != mean:
        return f"The model has no out-of-sample AUC across its {folds} folds."
    spread = std if isinstance(std, int | float) and std == std else 0.0
    lead = f"Out-of-sample AUC {mean:.2f} ± {spread:.2f} across {folds} fold{'s' if folds != 1 else ''}"
    if mean <= 0.5:
        return f"{lead}: no better than a coin (0.5)."
    if mean - spread <= 0.5:
        return f"{lead}: not clearly above a coin (0.5), from which it is within one fold-to-fold spread."
    return f"{lead}: above a coin (0.5) by more than its spread across the folds."


def _folds_sentence(meta: Mapping[str, Any]) -> str:
    nets = [
        float(f["net_return_pct"]) for f in meta.get("folds") or [] if f.get("net_return_pct") is not None
    ]
    if not nets:
        return ""
    folds, gained, lost = len(nets), sum(n > 0 for n in nets), sum(n < 0 for n in nets)
    if folds == 1:
        verb = "gained" if gained else ("lost" if lost else "ended flat")
        return f"Traded after costs, its 1 fold {verb} ({percent(nets[0], 1)})."
    spread = f"(from {percent(min(nets), 1)} to {percent(max(nets), 1)})"
    if gained == folds or lost == folds:
        return f"Traded after costs, all {folds} folds {'gained' if gained else 'lost'} {spread}."
    said = f"{gained} of its {folds} folds gained and {lost} lost"
    return f"Traded after costs, {said} {spread}."


def _against_sentence(returns: Mapping[str, float], meta: Mapping[str, Any]) -> str:
    names = list(returns)
    model, others = names[0], names[1:]
    shown = [f"the model returned {percent(returns[model], 1)}"]
    shown += [f"{name} {percent(returns[name], 1)}" for name in others]
    listed = ", ".join(shown[:-1]) + f" and {shown[-1]}" if len(shown) > 1 else shown[0]
    beaten = [name for name in others if returns[model] > returns[name]]
    if not others:
        verdict = ""
    elif len(beaten) == len(others):
        verdict = ": it beat both" if len(others) == 2 else ": it beat them all"
    elif not beaten:
        verdict = ": it beat neither" if len(others) == 2 else ": it beat none of them"
    else:
        missed = [name for name in others if name not in beaten]
        verdict = f": it beat {', '.join(beaten)} but not {', '.join(missed)}"
    said = f"Over all the tested bars, after costs, {listed}{verdict} (section 4)."
    mean = meta.get("auc_mean")
    if returns[model] < 0 and isinstance(mean, int | float) and mean > 0.5:
        said += " Ranking better than a coin did not pay for its costs here."
    return said
