"""The `labkit` command line. Each subcommand turns flags into config overrides and calls labkit.

Exit codes (DESIGN.md): 0 ok, 1 a check failed, 2 bad input, 3 another instance holds the session,
4 a data source stayed unavailable.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from labkit.errors import ConfigError, LabkitError

log = logging.getLogger("labkit")

# Config keys and the flags that set them, so an error can name what the user typed.
_FLAGS = {
    "session.name": "--session",
    "session.mode": "--mode",
    "session.symbol": "--symbol",
    "session.timeframe": "--timeframe",
    "session.interval": "--interval",
    "session.capital": "--capital",
    "session.source": "--source",
    "session.pace": "--pace",
    "session.since": "--since",
    "session.until": "--until",
    "session.max_bars": "--max-bars",
    "session.strategy": "--strategy",
    "session.fast": "--fast",
    "session.slow": "--slow",
    "session.seed": "--seed",
    "broker.fee": "--fee",
    "broker.slippage": "--slippage",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    # A session logs its gates and progress; other commands print results and only warn.
    default = logging.INFO if args.command == "run" else logging.WARNING
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else default,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.handler(args) or 0)
    except LabkitError as exc:
        print(f"labkit {args.command}: {_with_flags(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _with_flags(message: str) -> str:
    for key, flag in _FLAGS.items():
        message = message.replace(f"{key}:", f"{key} ({flag}):")
    return message


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit",
        description="Research and paper trading, every decision explained. labkit never places a real order.",
        epilog="Files live under the home: --home, else $LABKIT_HOME, else the labkit checkout, else the "
        "current directory. Exit codes: 0 ok, 1 check failed, 2 bad input, 3 session busy, "
        "4 data source unavailable.",
    )
    parser.add_argument("--home", help="directory holding labkit.yaml, data/ and reports/")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run (or resume) a shadow or paper session",
        description="Run a shadow or paper session bar by bar, or resume it where it "
        "stopped. --pace fast replays a historical range as fast as the engine goes; "
        "--pace clock decides each bar as it closes.",
    )
    run.epilog = (
        "example: labkit run --mode paper --pace fast --since 2026-01-05 --until 2026-01-08 --session mine"
    )
    _market_flags(run)
    run.add_argument(
        "--mode", metavar="{shadow,paper}", help="shadow (record what would be done) or paper (fill on paper)"
    )
    run.add_argument("--session", metavar="NAME", help="session name (default: default)")
    run.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help="seconds between heartbeats while waiting (default 60)",
    )
    run.add_argument(
        "--capital", type=float, metavar="CASH", help="starting cash in quote currency (default 10000)"
    )
    run.add_argument("--pace", metavar="{clock,fast}", help="clock (default) or fast")
    run.add_argument("--strategy", metavar="NAME", help="sma_cross (default)")
    run.add_argument("--fast", type=int, metavar="N", help="sma_cross fast window (default 10)")
    run.add_argument("--slow", type=int, metavar="N", help="sma_cross slow window (default 30)")
    run.set_defaults(handler=_cmd_run)

    bt = sub.add_parser(
        "backtest",
        help="replay a range through the engine and print the result",
        description="Backtest a strategy on a range of bars through the same engine and "
        "gates as paper sessions. sma_cross fills at the next open, all-in with "
        "fractional units, fee on each fill's notional (see DESIGN.md).",
    )
    _market_flags(bt)
    bt.add_argument(
        "--strategy", default="sma_cross", help="sma_cross (default); model arrives with training"
    )
    bt.add_argument("--fast", type=int, help="fast SMA window (default 10)")
    bt.add_argument("--slow", type=int, help="slow SMA window (default 30)")
    bt.add_argument("--fee", type=float, help="fee, a fraction of each fill's notional (default 0.001)")
    bt.add_argument("--slippage", type=float, help="adverse slippage, a fraction of price (default 0.0)")
    bt.add_argument("--capital", type=float, help="starting cash (default 10000)")
    bt.add_argument(
        "--gates",
        choices=("on", "off"),
        default="on",
        help="off keeps only the data stage, for comparisons with tools without gates",
    )
    bt.add_argument("--journal", metavar="PATH", help="also write every decision to this JSONL file")
    bt.add_argument("--json", action="store_true", help="print one JSON object")
    bt.set_defaults(handler=_cmd_backtest)

    status = sub.add_parser(
        "status",
        help="show a session's state (works while it runs)",
        description="Show sessions from state.json, falling back to heartbeat.json. "
        "Without --session, every session under the home.",
    )
    status.add_argument("--session", help="session name (default: all sessions)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=_cmd_status)

    report = sub.add_parser(
        "report",
        help="render a session, daily or weekly report to HTML",
        description="Execute the matching notebook with papermill and render it to "
        "HTML under reports/, updating reports/index.html. Exits 1 when the notebook "
        "fails; its HTML still shows the failure.",
    )
    report.add_argument("kind", choices=("session", "daily", "weekly"))
    report.add_argument("--session", default="default", help="session name (default: default)")
    report.add_argument("--date", help="daily: the UTC day, YYYY-MM-DD (default: the last one decided)")
    report.add_argument("--week", help="weekly: the ISO week, YYYY-Www (default: the last one decided)")
    report.set_defaults(handler=_cmd_report)
    return parser


def _market_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", metavar="SPEC", help="synthetic (default), csv:PATH or parquet:PATH")
    p.add_argument("--symbol", metavar="SYM", help="e.g. BTC/USDT (default)")
    p.add_argument("--timeframe", metavar="TF", help="bar length: 1s, 5s, 1m (default), 15m, 1h, 1d ...")
    p.add_argument(
        "--since", metavar="T", help="first bar open, ISO 8601 (UTC if no zone) or epoch ms; included"
    )
    p.add_argument("--until", metavar="T", help="end of the range, ISO 8601 or epoch ms; excluded")
    p.add_argument("--max-bars", type=int, metavar="N", help="only the last N bars of the range")
    p.add_argument("--seed", type=int, metavar="N", help="seed of the synthetic market (default 7)")


def _home(args: argparse.Namespace) -> Path:
    from labkit.home import resolve_home

    return resolve_home(args.home)


def _load(args: argparse.Namespace, overrides: dict[str, Any]) -> Any:
    from labkit.config import load_config

    return load_config(_home(args), overrides)


def _session_overrides(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    dest = {"session": "name", "max_bars": "max_bars"}
    return {f"session.{dest.get(n, n)}": getattr(args, n, None) for n in names}


def _cmd_run(args: argparse.Namespace) -> int:
    from labkit.session import run_session

    overrides = _session_overrides(
        args,
        (
            "session",
            "mode",
            "symbol",
            "timeframe",
            "interval",
            "capital",
            "source",
            "pace",
            "since",
            "until",
            "max_bars",
            "strategy",
            "fast",
            "slow",
            "seed",
        ),
    )
    config = _load(args, overrides)
    result = run_session(config, _home(args))
    print(
        f"session {result.session}: decided {result.decided} bars ({result.total} in all), "
        f"equity {result.equity:,.2f}; files in {result.directory}"
    )
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    from labkit.backtest import run_backtest
    from labkit.journal import JournalWriter
    from labkit.session import replay_range
    from labkit.sources import open_source
    from labkit.timeutil import now_ms

    if args.strategy == "model":
        raise ConfigError(
            "session.strategy: no trained model yet; the model strategy arrives with "
            "`labkit train`; allowed now: sma_cross"
        )
    overrides = _session_overrides(
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
    home = _home(args)
    config = _load(args, overrides)
    s = config.session
    source = open_source(s.source, home, s.seed)
    if s.source == "synthetic" and not (s.since or s.max_bars):
        config = _load(args, {**overrides, "session.max_bars": 10_000})
        s = config.session
    if s.since or s.until or s.max_bars or s.source == "synthetic":
        since, until = replay_range(config, now_ms()) if (s.since or s.max_bars) else (0, 2**62)
    else:
        since, until = 0, 2**62
    bars = source.bars(s.symbol, s.timeframe, since, until)
    if s.max_bars:
        bars = bars.iloc[-s.max_bars :]
    if not len(bars):
        raise ConfigError(f"session.since: no bars of {s.symbol} {s.timeframe} in the requested range")
    journal = JournalWriter(Path(args.journal)) if args.journal else None
    try:
        result = run_backtest(config, bars, journal)
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


def _cmd_status(args: argparse.Namespace) -> int:
    from labkit.session import session_status
    from labkit.state import list_sessions

    home = _home(args)
    names = [args.session] if args.session else list_sessions(home)
    statuses = [session_status(home, name) for name in names]
    if args.json:
        print(json.dumps(statuses[0] if args.session else statuses, indent=1))
        return 0
    if not statuses:
        print(f"no sessions under {home / 'data' / 'sessions'}")
    for st in statuses:
        equity = "-" if st.get("equity") is None else f"{st['equity']:,.2f}"
        print(
            f"{st['session']}: {st['status_word']}  {st.get('mode')} {st.get('symbol')} "
            f"{st.get('timeframe') or ''}  "
            f"decisions {st.get('decisions')}  last bar {st.get('last_decision_ts')}  equity {equity}  "
            f"position {st.get('position')}  pid {st.get('pid')}  last beat {st.get('last_beat')}"
            + ("  HALTED: " + str(st.get("halt_reason")) if st.get("halted") else "")
        )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from labkit.reports import render_report

    home = _home(args)
    config = _load(args, {})
    result = render_report(args.kind, args.session, home, config, date=args.date, week=args.week)
    print(f"{args.kind} report for {args.session}: {result.html}")
    return 0


Handler = Callable[[argparse.Namespace], int]

if __name__ == "__main__":
    raise SystemExit(main())
