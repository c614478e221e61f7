"""Research commands: backtest, and fetching or listing cached market data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from labkit.cli.common import bar_progress, confirm_size, fetch_kinds, home_of, load, session_overrides
from labkit.errors import ConfigError


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


def cmd_backtest(args: argparse.Namespace) -> int:
    from labkit.backtest import backtest_config, load_backtest_bars, planned_bars, run_backtest
    from labkit.journal import JournalWriter
    from labkit.timeutil import now_ms

    if args.strategy == "model":
        raise ConfigError(
            "session.strategy: no trained model yet; the model strategy arrives with "
            "`labkit train`; allowed now: sma_cross"
        )
    journal_path = _check_journal(args)
    overrides = session_overrides(
        args,
        (
            "symbol",
            "timeframe",
            "source",
            "since",
            "until",
            "max_bars",
            "strategy",
            "fast",
            "slow",
            "seed",
            "capital",
        ),
    )
    overrides.update(
        {
            "broker.fee": args.fee,
            "broker.slippage": args.slippage,
            "session.pace": "fast",
            "session.mode": "paper",
        }
    )
    if args.gates == "off":
        overrides["gates.enabled"] = ["data"]
    home = home_of(args)
    config = backtest_config(load(args, overrides))
    s = config.session
    what = f"{s.symbol} {s.timeframe} from {s.source}"
    now = now_ms()
    # Generated or fetched bars are counted before any exists; a file's length is what runs.
    counted = planned_bars(config, now)
    if counted is not None:
        confirm_size(counted, what, args.yes)
    bars = load_backtest_bars(config, home, now)
    if counted is None:
        confirm_size(len(bars), what, args.yes)
    journal = JournalWriter(journal_path) if journal_path is not None else None
    try:
        with bar_progress(len(bars), f"backtest {s.symbol} {s.timeframe}") as progress:
            result = run_backtest(config, bars, journal, progress)
    finally:
        if journal is not None:
            journal.close()
    summary = result.summary
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print(
            f"{summary['strategy']} on {s.symbol} {s.timeframe} ({s.source}), {summary['bars']} bars "
            f"{summary['first_ts']} .. {summary['last_ts']}"
        )
        print(
            f"  trades {summary['trades']}   return {summary['return_pct']:.2f}%   final equity "
            f"{summary['final_equity']:,.2f}   max drawdown {summary['max_drawdown_pct']:.2f}%   "
            f"sharpe {summary['sharpe']:.2f}   fees {summary['fees']:,.2f}"
        )
    return 0


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
    source = open_source(args.source, home, config=config)
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
        "symbol": args.symbol and safe_name(args.symbol),
        "timeframe": args.timeframe,
    }
    entries = [e for e in entries if all(v is None or e[k] == v for k, v in wanted.items())]
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    if not entries:
        print("nothing cached" + (" that matches" if any(wanted.values()) else ""))
    for e in entries:
        print(
            f"{e['source']} {e['symbol']} {e['timeframe']}: {e['bars']} bars {e['first']} .. {e['last']}, "
            f"{e['missing_bars']} missing in {len(e['gaps'])} gap(s), {len(e['confirmed_gaps'])} confirmed"
        )
        if e["gaps"]:
            print(f"  gaps: {describe_gaps(e['gaps'], e['timeframe'])}")
        if e["confirmed_gaps"]:
            print(f"  confirmed by the source: {describe_gaps(e['confirmed_gaps'], e['timeframe'])}")
    return 0
