"""Research commands: backtest, sweep, train, and fetching or listing cached market data."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.analysis.formatting import duration, number, percent, share
from labkit.cli.common import (
    bar_progress,
    book_symbols_of,
    confirm_size,
    fetch_kinds,
    home_of,
    load,
    session_overrides,
)
from labkit.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from labkit.config.schema import LabkitConfig


def _check_journal(args: argparse.Namespace) -> Path | None:
    if not args.journal:
        if args.append:
            raise ConfigError("--append: it adds to the --journal file; give --journal PATH with it")
        return None
    path = Path(args.journal)
    if path.exists() and not args.append:
        raise ConfigError(
            f"--journal: {path} exists; pass --append to add these decisions to it, or choose another path"
        )
    return path


_BACKTEST_KEYS = (
    "symbol",
    "timeframe",
    "source",
    "since",
    "until",
    "max_bars",
    "strategy",
    "fast",
    "slow",
    "model",
    "seed",
    "capital",
    "calendar",
)
_TRAIN_KEYS = ("symbol", "timeframe", "source", "since", "until", "max_bars", "seed")


def _research_config(args: argparse.Namespace, keys: tuple[str, ...], mode: str | None) -> LabkitConfig:
    """Return the config of a backtest or a training run: the flags `keys` names, its costs and gates."""
    from labkit.config.loading import research_overrides
    from labkit.research.backtest import backtest_config
    from labkit.timeutil import now_ms, relative_day

    overrides = session_overrides(args, keys)
    now = now_ms()
    for key in ("since", "until"):
        overrides[f"session.{key}"] = relative_day(getattr(args, key, None), f"--{key}", now)
    gates = getattr(args, "gates", None)
    overrides.update(research_overrides(fee=args.fee, slippage=args.slippage, gates=gates, mode=mode))
    if "strategy" in keys and getattr(args, "meta", None) is not None:
        from labkit.gates.meta import meta_reference

        # A backtest's --meta: the meta gate's model.
        overrides["gates.meta.model"] = meta_reference(args.meta)
    return backtest_config(load(args, overrides))


def _research_bars(config: LabkitConfig, home: Path, yes: bool) -> pd.DataFrame:
    """Return the bars a research run reads, after the user confirmed a large run (or passed --yes)."""
    from labkit.research.backtest import load_backtest_bars, planned_bars
    from labkit.timeutil import now_ms

    s = config.session
    what = f"{s.symbol} {s.timeframe} from {s.source}"
    now = now_ms()
    # Generated or fetched bars are counted before any exists; a file's length is what runs.
    counted = planned_bars(config, now)
    if counted is not None:
        confirm_size(counted, what, yes)
    bars = load_backtest_bars(config, home, now)
    if counted is None:
        confirm_size(len(bars), what, yes)
    return bars


def cmd_backtest(args: argparse.Namespace) -> int:
    from labkit.config.assembly import build_strategy
    from labkit.engine.journal import JournalWriter
    from labkit.research.backtest import run_backtest, trial_figures
    from labkit.research.trials import record_trial

    journal_path = _check_journal(args)
    home = home_of(args)
    config = _research_config(args, _BACKTEST_KEYS, mode="paper")
    symbols = book_symbols_of(args, config)
    if symbols is not None and len(symbols) > 1:
        _refuse_meta_book(args)
        return _book_backtest(args, config, symbols, home, journal_path)
    if symbols is not None:  # a universe of one symbol is that symbol's own backtest
        args.symbol = symbols[0]
        config = _research_config(args, _BACKTEST_KEYS, mode="paper")
    config = _resolved_meta(config, home)
    s = config.session
    strategy = build_strategy(config, home)  # a model that cannot be loaded is refused before any bar is read
    bars = _research_bars(config, home, args.yes)
    journal = JournalWriter(journal_path) if journal_path is not None else None
    try:
        with bar_progress(len(bars), f"backtest {s.symbol} {s.timeframe}") as progress:
            result = run_backtest(config, bars, journal, progress, home=home, strategy=strategy, trial=False)
    finally:
        if journal is not None:
            journal.close()
    summary = result.summary
    # Every backtest is a trial of its market: the deflated Sharpe ratio pays for all of them.
    stats = record_trial(config, bars, summary)
    summary.update(trial_figures(result, s.capital, stats.trials, stats.sharpe_variance))
    _say_model(config, home, summary)
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print("\n".join(backtest_lines(summary, s.symbol, s.timeframe, s.source)))
    return 0


def _refuse_meta_book(args: argparse.Namespace) -> None:
    """Refuse ``--meta`` for a book: a meta model judges one symbol's primary (labkit.research.meta)."""
    if getattr(args, "meta", None) is not None:
        raise ConfigError("--meta: a meta model judges one symbol's strategy; give --symbol, not a universe")


def _resolved_meta(config: LabkitConfig, home: Path) -> LabkitConfig:
    """Return `config` with ``--meta latest`` resolved to the id it means now, said on stderr.

    The trial then names the meta model that judged it, as ``--model latest`` names its model.
    """
    from labkit.config.assembly import build_strategy

    meta = config.gates.meta  # type: ignore[attr-defined]
    if meta.model is None:
        return config
    if "meta" not in config.gates.enabled:
        raise ConfigError("--meta: the meta gate is disabled (gates.enabled); enable it or drop --meta")
    if meta.model != "latest":
        return config
    from labkit.strategies.meta_labeled import meta_models

    unmeta = config.gates.model_copy(update={"meta": meta.model_copy(update={"model": None})})
    primary = build_strategy(config.model_copy(update={"gates": unmeta}), home)
    s = config.session
    found = meta_models(home, primary.model_id, s.symbol, s.timeframe)
    if not found:
        raise ConfigError(
            f"--meta latest: no meta model of {primary.model_id} for {s.symbol} {s.timeframe}; train one "
            f"first (labkit train --meta {s.strategy})"
        )
    model = found[-1][1]
    print(
        f"labkit backtest: --meta latest: {model}, the newest meta model of {primary.model_id}",
        file=sys.stderr,
    )
    gates = config.gates.model_copy(update={"meta": meta.model_copy(update={"model": model})})
    return config.model_copy(update={"gates": gates})


def _book_backtest(
    args: argparse.Namespace, config: LabkitConfig, symbols: list[str], home: Path, journal: Path | None
) -> int:
    from labkit.research.backtest import planned_bars
    from labkit.research.book_backtest import load_universe, record_book_trial, run_book_backtest
    from labkit.timeutil import now_ms

    s = config.session
    what = f"{len(symbols)} symbols {s.timeframe} from {s.source}"
    now = now_ms()
    counted = planned_bars(config, now)
    if counted is not None:
        confirm_size(counted * len(symbols), what, args.yes)
    config = _pooled_latest(config, symbols, home)
    bars = load_universe(config, symbols, home, now)
    if counted is None:
        confirm_size(sum(len(b) for b in bars.values()), what, args.yes)
    result = run_book_backtest(config, bars, journal, home=home)
    summary = result.summary
    # A book is a trial too, of its own family: the deflated Sharpe ratio pays for every book tried.
    summary.update(record_book_trial(config, result))
    from labkit.research.backtest import in_sample_warning

    warning = in_sample_warning(summary)
    if warning is not None:
        print(f"labkit backtest: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print("\n".join(book_lines(summary, s.timeframe, s.source)))
    return 0


def book_lines(summary: dict[str, Any], timeframe: str, source: str) -> list[str]:
    """Return the lines `labkit backtest --symbols` prints: the book's headline, then a row per symbol."""
    symbols = summary["universe"]
    quotes = {symbol.split("/")[-1] if "/" in symbol else "USD" for symbol in symbols}
    cur = quotes.pop() if len(quotes) == 1 else "quote"
    lines = [
        f"{summary['strategy']} on a book of {len(symbols)} symbols {timeframe} ({source}), "
        f"{summary['bars']} times {summary['first_ts']} .. {summary['last_ts']}",
        f"  trades {summary['trades']} in {summary['symbols_traded']} symbols   "
        f"return {summary['return_pct']:.2f}%   final equity {summary['final_equity']:,.2f} {cur}   "
        f"max drawdown {summary['max_drawdown_pct']:.2f}%   sharpe {summary['sharpe']:.2f}   "
        f"fees {summary['fees']:,.2f} {cur}",
    ]
    limits = {k: v for k, v in summary["portfolio"].items() if k.startswith("max_") and v is not None}
    shown = ", ".join(f"{k} {v}" for k, v in limits.items()) or "no limits (portfolio: in labkit.yaml)"
    lines.append(f"  portfolio: {shown}")
    if summary["bars"]:
        lines.append("  " + _trust_line(summary, ",".join(symbols), timeframe))
    width = max(len("symbol"), *(len(symbol) for symbol in symbols))
    lines.append(
        f"  {'symbol':<{width}}  {'bars':>7}  {'trades':>6}  {'closed':>6}  {'hit rate':>8}  "
        f"{'net pnl':>12}  {'contrib':>8}  {'fees':>10}  top block"
    )
    for symbol, row in summary["symbols"].items():
        top = next(iter(row["blocks"].items()), None)
        lines.append(
            f"  {symbol:<{width}}  {row['bars']:>7,}  {row['trades']:>6,}  {row['closed_trades']:>6,}  "
            f"{percent(row['hit_rate_pct'], 1):>8}  {row['net_pnl']:>12,.2f}  "
            f"{percent(row['contribution_pct']):>8}  {row['fees']:>10,.2f}  "
            + (f"{top[0]} {top[1]:,}" if top else "-")
        )
    return lines


def _pooled_latest(config: LabkitConfig, symbols: list[str], home: Path) -> LabkitConfig:
    """Return `config` with ``--model latest`` of a book resolved: the latest model pooled over its symbols.

    Each symbol's strategy loads that one model; left to each symbol, latest would pick each its own.
    """
    import sys

    from labkit.config.schema import strategy_config
    from labkit.models.artifacts import latest_model, model_trained_at

    s = config.session
    if s.strategy != "model" or strategy_config(config).model != "latest":
        return config
    model = latest_model(home, None, s.timeframe, symbols)
    trained = model_trained_at(home, model) or "at an unknown time"
    print(
        f"labkit backtest: --model latest: {model}, the most recently trained for {','.join(symbols)} "
        f"{s.timeframe} (trained {trained})",
        file=sys.stderr,
    )
    params = strategy_config(config).model_copy(update={"model": model})
    return config.model_copy(update={"strategies": config.strategies.model_copy(update={"model": params})})


def _say_model(config: LabkitConfig, home: Path, summary: dict[str, Any]) -> None:
    # On stderr, so --json stays one object: which model `latest` was, and whether the model is
    # being judged on bars it was trained on.
    import sys

    from labkit.config.schema import strategy_config
    from labkit.models.artifacts import model_trained_at
    from labkit.research.backtest import in_sample_warning

    model, s = summary.get("model"), config.session
    if model and getattr(strategy_config(config), "model", None) == "latest":
        trained = model_trained_at(home, model) or "at an unknown time"
        print(
            f"labkit backtest: --model latest: {model}, the most recently trained for {s.symbol} "
            f"{s.timeframe} (trained {trained})",
            file=sys.stderr,
        )
    warning = in_sample_warning(summary)
    if warning is not None:
        print(f"labkit backtest: warning: {warning}", file=sys.stderr)


def backtest_lines(summary: dict[str, Any], symbol: str, timeframe: str, source: str) -> list[str]:
    """Return the lines `labkit backtest` prints for a summary (`labkit.research.backtest.run_backtest`)."""
    cur = symbol.split("/")[-1] if "/" in symbol else "USD"
    lines = [
        f"{summary['strategy']} on {symbol} {timeframe} ({source}), {summary['bars']} bars "
        f"{summary['first_ts']} .. {summary['last_ts']}",
        f"  trades {summary['trades']}   return {summary['return_pct']:.2f}%   final equity "
        f"{summary['final_equity']:,.2f} {cur}   max drawdown {summary['max_drawdown_pct']:.2f}%   "
        f"sharpe {summary['sharpe']:.2f}   fees {summary['fees']:,.2f} {cur}",
    ]
    if not summary["bars"]:
        return lines
    annual = f"{summary['annualisation']}{_extrapolated(summary)}"
    lines.append(
        f"  {annual}: return {percent(summary['annual_return_pct'])} "
        f"(CAGR {percent(summary['cagr_pct'])}), volatility {percent(summary['annual_volatility_pct'])}, "
        f"sortino {number(summary['sortino'])}, calmar {number(summary['calmar'])}"
    )
    dd_bars, dd_span = summary["max_drawdown_bars"], summary["max_drawdown_duration"]
    hold, hold_dd = summary["buy_hold_return_pct"], summary["buy_hold_max_drawdown_pct"]
    lines.append(
        f"  longest drawdown {dd_bars:,} bars"
        + (f" ({duration(dd_span)})" if dd_bars else "")
        + f"; buy and hold: return {percent(hold)}, max drawdown {percent(hold_dd)}"
    )
    if summary["closed_trades"]:
        lines.append(
            f"  closed trades {summary['closed_trades']}: hit rate {percent(summary['hit_rate_pct'], 1)}, "
            f"profit factor {number(summary['profit_factor'])}, "
            f"expectancy {number(summary['expectancy'])} {cur} a trade, "
            f"best {percent(summary['best_trade_pct'])}, worst {percent(summary['worst_trade_pct'])}, "
            f"held {duration(summary['avg_trade_duration'])} on average "
            f"(longest {duration(summary['max_trade_duration'])}); "
            f"exposure {percent(summary['exposure_pct'], 1)}"
        )
    lines.append("  " + _trust_line(summary, symbol, timeframe))
    if summary["blocked"]:
        top = ", ".join(f"{b['stage']} {b['reason']} {b['count']:,}" for b in summary["blocks"][:3])
        lines.append(f"  blocked {summary['blocked']:,}: {top}")
    halt = summary["guardrail_halt"]
    if halt:
        why = ", ".join(halt["reasons"])
        lines.append(
            f"  warning: the guardrails refused every entry from {halt['first_ts']} to the end "
            f"({halt['bars']:,} bars, {halt['bars'] / summary['bars']:.0%} of the run; "
            f"{halt['blocks']:,} entries refused: {why})"
        )
    return lines


# Annual figures from fewer days than this are extrapolations and say so, as the report tables do.
EXTRAPOLATED_DAYS = 30


def _extrapolated(summary: dict[str, Any]) -> str:
    # ", extrapolated from N days" when the run spans under a month: "CAGR -100%" from 5 days is
    # a projection, not a figure the run earned.
    from datetime import datetime

    first, last = summary.get("first_ts"), summary.get("last_ts")
    if not first or not last:
        return ""
    days = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds() / 86_400
    return f", extrapolated from {days:.1f} days" if days < EXTRAPOLATED_DAYS else ""


def _trust_line(summary: dict[str, Any], symbol: str, timeframe: str) -> str:
    if summary["psr"] is None:
        return "PSR n/a: too few returns, or none that differ, to judge a Sharpe ratio"
    text = f"PSR {number(summary['psr'])}"
    trials = summary.get("trials")
    if trials:
        dsr, plural = summary["deflated_sharpe"], "s" if trials > 1 else ""
        text += f", deflated Sharpe {number(dsr)} ({trials} trial{plural} of {symbol} {timeframe})"
    more = summary["more_bars_needed"]
    if more is None:
        return text + "; no track record is long enough to trust a Sharpe ratio that is not above 0"
    if more == 0:
        return text + "; the track record is long enough to trust this Sharpe ratio is above 0 (95%)"
    days = more * 365 / summary["periods_per_year"]
    return text + f"; at this Sharpe, about {more:,} more bars (~{days:,.1f} days) are needed (95%)"


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from labkit.data.cache import CachedSource
    from labkit.data.registry import open_source
    from labkit.timeutil import iso_s, now_ms, parse_instant, timeframe_ms

    home = home_of(args)
    config = load(
        args,
        {
            "session.source": args.source,
            "session.symbol": args.symbol,
            "session.timeframe": args.timeframe,
            "session.since": args.since,
            "session.until": args.until,
        },
    )
    tf = timeframe_ms(args.timeframe)
    until = parse_instant(args.until, "session.until") if args.until else now_ms()
    since = parse_instant(args.since, "session.since") if args.since else until - 1000 * tf
    source = open_source(args.source, home, data=config.data, exchanges=config.exchanges)
    if not isinstance(source, CachedSource):
        raise ConfigError(
            f"session.source: data fetch is for sources with a cache ({', '.join(fetch_kinds())}); "
            f"{args.source} needs no fetching"
        )
    stats = source.fetch(args.symbol, args.timeframe, since, until, refill_gaps=args.refill_gaps)
    print(
        f"{args.source} {args.symbol} {args.timeframe} {iso_s(since)} .. {iso_s(until)}: fetched "
        f"{stats['fetched']} bars in {stats['requested']} requests, {stats['gaps']} gap(s) confirmed"
    )
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from labkit.data.cache import cache_info, describe_gaps, safe_name

    entries = cache_info(home_of(args))
    wanted = {
        "source": args.source and safe_name(args.source),
        "symbol": args.symbol,  # entries hold the exact symbol: BTC/USDT is not BTC-USDT
        "timeframe": args.timeframe,
    }
    entries = [e for e in entries if all(v is None or e[k] == v for k, v in wanted.items())]
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    if not entries:
        print("nothing cached" + (" that matches" if any(wanted.values()) else ""))
    for e in entries:
        # A folder of the old shared names records no symbol: say so rather than guess whose it is.
        symbol = f"{e['symbol']} (old name, symbol not recorded)" if e["old_name"] else e["symbol"]
        print(
            f"{e['source']} {symbol} {e['timeframe']}: {e['bars']} bars {e['first']} .. {e['last']}, "
            f"{e['missing_bars']} missing in {len(e['gaps'])} gap(s), {len(e['confirmed_gaps'])} confirmed"
        )
        if e["gaps"]:
            print(f"  gaps: {describe_gaps(e['gaps'], e['timeframe'])}")
        if e["confirmed_gaps"]:
            print(f"  confirmed by the source: {describe_gaps(e['confirmed_gaps'], e['timeframe'])}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from labkit.research.training import train_model, train_pooled

    if getattr(args, "meta", None) is not None:
        return _train_meta(args)
    for flag in ("fast", "slow"):
        if getattr(args, flag, None) is not None:
            raise ConfigError(
                f"--{flag}: a parameter of the primary strategy; only labkit train --meta takes it"
            )
    home = home_of(args)
    config = _research_config(args, _TRAIN_KEYS, mode=None)
    plan = _train_plan(args)
    symbols = book_symbols_of(args, config)
    if plan.cross_sectional and (symbols is None or len(symbols) < 2):
        raise ConfigError(
            "--cross-sectional: ranks a symbol among its universe, so it needs one: give --symbols A,B "
            "or --universe NAME with at least 2 symbols"
        )
    if symbols is not None and len(symbols) == 1:  # a universe of one symbol is that symbol's model
        args.symbol = symbols[0]
        config = _research_config(args, _TRAIN_KEYS, mode=None)
    s = config.session
    steps = plan.seeds * plan.folds * len(plan.kinds) + len(plan.kinds)
    if symbols is not None and len(symbols) > 1:
        what = f"{len(symbols)} symbols ({','.join(symbols)}) {s.timeframe} from {s.source}"
        frames = _universe_bars(config, symbols, home, args.yes)
        with bar_progress(steps, f"train {len(symbols)} symbols {s.timeframe}", unit="fit") as progress:
            result = train_pooled(config, home, frames, plan, progress)
    else:
        what = f"{s.symbol} {s.timeframe} from {s.source}"
        bars = _research_bars(config, home, args.yes)
        with bar_progress(steps, f"train {s.symbol} {s.timeframe}", unit="fit") as progress:
            result = train_model(config, home, bars, plan, progress)
    if args.json:
        print(json.dumps(result.to_dict(), default=str))
        return 0
    print(f"model {result.model_id}: {what}, {result.bars:,} bars ({result.rows:,} with features and labels)")
    folds, seeds = len(result.folds), result.seeds
    labels = "sign labels"
    if result.barriers:
        take, stop = result.barriers["profit_take"], result.barriers["stop_loss"]
        labels = f"triple-barrier labels (+{take:g} / -{stop:g} ATR)"
    print(f"  horizon {result.horizon} bars, {labels}, {folds} purged walk-forward folds, {seeds} seeds")
    auc = f"{number(result.auc_mean, 3)} ± {number(result.auc_std, 3)}"
    print(
        f"  out-of-sample AUC {auc} (mean ± std across the {folds} folds; "
        f"± {number(result.auc_seed_std, 3)} across the {seeds} seeds)"
    )
    print("  fold  train    test     AUC     log loss  Brier   accuracy (majority)  net return")
    for row in result.folds:
        print(
            f"  {row['fold']:>4}  {row['train_bars']:>7,}  {row['test_bars']:>7,}  "
            f"{number(row['auc'], 3):>6}  {number(row['log_loss'], 4):>8}  {number(row['brier'], 4):>6}  "
            f"{share(row['accuracy'], 1):>8} ({share(row['majority_accuracy'], 1)})  "
            f"{percent(row.get('net_return_pct'))}"
        )
    book = f" --symbols {','.join(result.symbols)}" if result.symbols else ""
    print(f"  trade it: labkit backtest{book} --strategy model --model {result.model_id} ...")
    return 0


def _train_meta(args: argparse.Namespace) -> int:
    # `labkit train --meta STRATEGY`: a meta-label model of that strategy's entries on one symbol.
    from labkit.config.schema import strategy_config
    from labkit.research.meta import MetaPlan, train_meta
    from labkit.strategies.registry import registered_strategies

    if args.meta not in registered_strategies():
        allowed = ", ".join(registered_strategies())
        raise ConfigError(f"--meta: unknown strategy {args.meta!r}; allowed: {allowed}")
    if (
        getattr(args, "cross_sectional", False)
        or getattr(args, "symbols", None)
        or getattr(args, "universe", None)
    ):
        raise ConfigError("--meta: a meta model is of one symbol's primary; give --symbol, not a universe")
    home = home_of(args)
    config = _research_config(args, (*_TRAIN_KEYS, "fast", "slow"), mode=None)
    params = strategy_config(config, args.meta).model_dump(mode="json")
    base = _train_plan(args)
    plan = MetaPlan(
        strategy=args.meta,
        params=params,
        horizon=base.horizon,
        profit_take=base.profit_take,
        stop_loss=base.stop_loss,
        folds=base.folds,
        model=base.model,
        min_probability=config.gates.meta.min_probability,  # type: ignore[attr-defined]
    )
    s = config.session
    bars = _research_bars(config, home, args.yes)
    with bar_progress(
        plan.folds + 1, f"train meta {args.meta} {s.symbol} {s.timeframe}", unit="fit"
    ) as progress:
        result = train_meta(config, home, bars, plan, progress)
    if args.json:
        print(json.dumps(result.to_dict(), default=str))
        return 0
    primary, oos = result.meta["primary"], result.oos
    print(
        f"meta model {result.model_id} of {primary}: {s.symbol} {s.timeframe}, {result.samples} entries "
        f"({share(result.positive_share, 1)} reached the profit barrier)"
    )
    print(f"  out-of-sample AUC {number(result.auc_mean, 3)} (mean of {len(result.folds)} folds)")
    for label in ("primary", "meta"):
        row = oos[label]
        print(
            f"  {label:>7}: {row['trades']} trades, net {percent(row['return_pct'])}, "
            f"hit rate {share(row['hit_rate'], 1)}"
        )
    print(f"  gate it: labkit backtest --strategy {args.meta} --meta {result.model_id} ...")
    return 0


def _universe_bars(
    config: LabkitConfig, symbols: list[str], home: Path, yes: bool
) -> dict[str, pd.DataFrame]:
    """Return each symbol's bars for a pooled training run, after a large run is confirmed."""
    from labkit.research.backtest import planned_bars
    from labkit.research.book_backtest import load_universe
    from labkit.timeutil import now_ms

    s = config.session
    what = f"{len(symbols)} symbols {s.timeframe} from {s.source}"
    now = now_ms()
    counted = planned_bars(config, now)
    if counted is not None:
        confirm_size(counted * len(symbols), what, yes)
    frames = load_universe(config, symbols, home, now)
    if counted is None:
        confirm_size(sum(len(b) for b in frames.values()), what, yes)
    return frames


def _train_plan(args: argparse.Namespace) -> Any:
    from labkit.research.training import TrainPlan

    plan = TrainPlan(
        horizon=15 if args.horizon is None else args.horizon,
        folds=5 if args.folds is None else args.folds,
        seeds=3 if args.seeds is None else args.seeds,
        model=args.model,
        cross_sectional=bool(getattr(args, "cross_sectional", False)),
        labels=getattr(args, "labels", "sign"),
        profit_take=2.0 if getattr(args, "profit_take", None) is None else args.profit_take,
        stop_loss=2.0 if getattr(args, "stop_loss", None) is None else args.stop_loss,
    )
    for flag, value in (("--profit-take", plan.profit_take), ("--stop-loss", plan.stop_loss)):
        if not (math.isfinite(value) and 0 < value <= 1000):
            raise ConfigError(
                f"{flag}: the barrier's distance from the close in ATRs, > 0 up to 1000 (got {value})"
            )
    barriers = getattr(args, "profit_take", None) is not None or getattr(args, "stop_loss", None) is not None
    if barriers and plan.labels == "sign" and getattr(args, "meta", None) is None:
        raise ConfigError(
            "--profit-take/--stop-loss: set the barriers of --labels triple-barrier; give it too"
        )
    if not 1 <= plan.horizon <= 10_000:
        raise ConfigError(f"--horizon: bars the label looks ahead, 1 to 10000 (got {plan.horizon})")
    if not 2 <= plan.folds <= 50:
        raise ConfigError(f"--folds: walk-forward test folds, 2 to 50 (got {plan.folds})")
    if not 3 <= plan.seeds <= 50:
        raise ConfigError(
            f"--seeds: at least 3, so the spread over seeds means something; at most 50 (got {plan.seeds})"
        )
    return plan


def cmd_models(args: argparse.Namespace) -> int:
    from labkit.models.artifacts import list_models

    models = list_models(home_of(args))
    if args.json:
        print(json.dumps(models, default=str))
        return 0
    if not models:
        print("no trained models; train one with labkit train")
        return 0
    for m in models:
        if m.get("error"):
            print(f"{m.get('id', '?')}: unreadable: {m['error']}")
            continue
        window = m.get("window") or {}
        market = f"pooled over {','.join(m['symbols'])}" if m.get("symbols") else m.get("symbol")
        print(
            f"{m['id']}  {market} {m.get('timeframe')}  {m.get('features')} features  "
            f"{window.get('since', '?')} .. {window.get('until', '?')}  AUC {number(m.get('auc_mean'), 3)}  "
            f"trained {m.get('trained_at')}"
        )
    return 0


# A grid of more runs than this is announced, and confirmed first on a terminal.
CONFIRM_RUNS = 10_000


def cmd_sweep(args: argparse.Namespace) -> int:
    from labkit.research.sweep.grid import load_grid
    from labkit.research.sweep.plan import SweepPlan
    from labkit.research.sweep.runner import run_sweep

    home = home_of(args)
    grid = load_grid(Path(args.grid))
    plan = SweepPlan(grid, home)
    what = f"{grid.strategy} on {grid.source}"
    _confirm_runs(plan.total, what, args.yes)
    confirm_size(plan.max_run_bars(), f"{what}, in its longest run", args.yes)
    try:
        with _run_progress(grid.name) as progress:
            result = run_sweep(
                plan, workers=args.workers, dask=args.dask, resume=args.resume, progress=progress
            )
    except KeyboardInterrupt:
        import sys

        print(
            f"labkit sweep: interrupted; the finished runs are kept in data/sweeps/{grid.name}: "
            "run the same command with --resume to continue",
            file=sys.stderr,
        )
        raise
    varying = _varying_columns(grid)
    if args.json:
        top = [{k: row.get(k) for k in ("run_id", "sharpe", "return_pct", *varying)} for row in result.top]
        print(
            json.dumps(
                {
                    "name": result.name,
                    "runs": result.runs,
                    "ran": result.ran,
                    "skipped": result.skipped,
                    "failed": result.failed,
                    "seconds": round(result.seconds, 3),
                    "workers": result.workers,
                    "table": str(result.table),
                    "blocks": str(result.blocks),
                    "top": top,
                    "failures": _failures(result, varying),
                },
                default=str,
            )
        )
        return 0
    print(sweep_line(result, varying))
    failures = _failures(result, varying)
    for failure in failures:
        shown = " ".join(f"{k}={v}" for k, v in failure["params"].items())
        print(f"  failed {failure['run_id']}" + (f" ({shown})" if shown else "") + f": {failure['error']}")
    if result.failed > len(failures):
        print(f"  ... {result.failed - len(failures):,} more in {result.table} (its error column)")
    return 0


def _failures(result: Any, varying: list[str], most: int = 5) -> list[dict[str, Any]]:
    # A count of failures sends the user to a Parquet file; the first few are printed as they are.
    if not result.failed or not result.table.exists():
        return []
    import pandas as pd

    table = pd.read_parquet(result.table)
    failed = table[table["error"].notna()].head(most)
    return [
        {
            "run_id": str(row["run_id"]),
            "params": {k: _plain(row[k]) for k in varying if k in row.index},
            "error": str(row["error"]),
        }
        for _, row in failed.iterrows()
    ]


def _plain(value: Any) -> Any:
    # numpy scalars print as themselves but are not JSON: give their Python value.
    return value.item() if hasattr(value, "item") else value


def sweep_line(result: Any, varying: list[str]) -> str:
    """Return the line `labkit sweep` prints: runs, failures, time, the table and the best three by Sharpe."""
    before = f" ({result.skipped:,} finished before)" if result.skipped else ""
    failed = (
        f", {result.failed:,} failed (below; the table's error column says why; the sweep finished, exit 0)"
        if result.failed
        else ", none failed"
    )
    text = f"sweep {result.name}: {result.runs:,} runs{before}{failed}, {result.seconds:,.1f} s"
    text += f"; {result.table}"
    if not result.top:
        return text + "; no run has a Sharpe ratio"
    best = []
    for row in result.top:
        shown = " ".join(f"{k}={row.get(k)}" for k in varying)
        best.append(f"{row['sharpe']:.2f} {row['run_id']}" + (f" ({shown})" if shown else ""))
    return text + "; top sharpe: " + ", ".join(best)


def _varying_columns(grid: Any) -> list[str]:
    # What tells the best runs apart: the grid's dimensions with more than one value.
    dims = {"symbol": grid.symbols, "timeframe": grid.timeframes, "since": grid.windows}
    names = [name for name, values in dims.items() if len(values) > 1]
    if len(grid.costs) > 1:
        names += ["fee", "slippage"]
    return names + [name for name, values in grid.params.items() if len(values) > 1]


def _confirm_runs(runs: int, what: str, yes: bool) -> None:
    import sys

    if runs <= CONFIRM_RUNS:
        return
    print(f"about to run {runs:,} backtests of {what}", file=sys.stderr, flush=True)
    if yes or not (sys.stdin.isatty() and sys.stderr.isatty()):
        return  # a script or a pipe cannot answer; the count above stays in its log
    print("continue? [y/N] ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise ConfigError(
            f"--yes: not confirmed, nothing was run; pass --yes to run {runs:,} backtests without being "
            "asked, or make the grid smaller"
        )


@contextmanager
def _run_progress(name: str) -> Iterator[Callable[[int, int, int], object] | None]:
    # A progress bar over runs on a terminal (tqdm gives the rate and the time left), nothing elsewhere.
    import sys

    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    bars: list[Any] = []

    def update(total: int, done: int, failed: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, initial=done, unit="run", desc=f"sweep {name}", file=sys.stderr))
        bar = bars[0]
        bar.set_postfix(done=done, failed=failed, refresh=False)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        if bars:
            bars[0].close()
