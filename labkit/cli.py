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
    "strategies.sma_cross.fast": "--fast",
    "strategies.sma_cross.slow": "--slow",
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
    report.add_argument(
        "--date", help="daily: the UTC day, YYYY-MM-DD, today or yesterday (default: the last one decided)"
    )
    report.add_argument(
        "--week", help="weekly: the ISO week, YYYY-Www, this or last (default: the last one decided)"
    )
    report.set_defaults(handler=_cmd_report)

    for name, text, handler in (
        ("stop", "stop a running session gracefully (after its current bar)", _cmd_stop),
        (
            "emergency-stop",
            "halt: flatten at the next open, refuse entries, stay halted until resume",
            _cmd_emergency_stop,
        ),
        ("resume", "lift an emergency stop, a halt or reduce-only", _cmd_resume),
    ):
        cmd = sub.add_parser(
            name,
            help=text,
            description=text[0].upper() + text[1:] + ". Works on a "
            "running session (applied between bars) and on a stopped one (applied at once).",
        )
        cmd.add_argument(
            "--session", default="default", metavar="NAME", help="session name (default: default)"
        )
        cmd.set_defaults(handler=handler)

    ro = sub.add_parser(
        "reduce-only",
        help="allow exits, refuse entries (until resume or --off)",
        description="Put a session in reduce-only: exits are allowed, entries refused.",
    )
    _session_arg(ro)
    ro.add_argument("--off", action="store_true", help="lift reduce-only")
    ro.set_defaults(handler=_cmd_reduce_only)

    tr = sub.add_parser(
        "transition",
        help="move a session to shadow or paper",
        description="Move a session between shadow and paper. Promotion to paper is refused "
        "(exit 1) unless the latest weekly readiness verdict passes; --force overrides it "
        "and the override is recorded in the session's state and control log.",
    )
    tr.add_argument("--to", required=True, metavar="{shadow,paper}", help="the mode to move to")
    _session_arg(tr)
    tr.add_argument("--force", action="store_true", help="promote without a passing readiness verdict")
    tr.set_defaults(handler=_cmd_transition)

    ver = sub.add_parser(
        "verify",
        help="check a running session's health; exit 1 listing failures",
        description="Check that the session's heartbeat is fresh, its pid alive and holding "
        "the run lock, exactly one engine process runs it, decisions advance and it is not "
        "halted. Exit 1 lists every failed check.",
    )
    _session_arg(ver)
    ver.add_argument("--max-age", type=float, metavar="SECONDS", help="oldest acceptable heartbeat")
    ver.add_argument("--json", action="store_true", help="print JSON")
    ver.set_defaults(handler=_cmd_verify)

    rep = sub.add_parser(
        "replay",
        help="re-run a session's recorded tape and compare its decisions",
        description="Feed the bars a session recorded (its tape) through the engine again "
        "and compare every decision field by field, wall-clock fields aside. Exit 0 when "
        "identical, 1 naming the first differing seq and field.",
    )
    _session_arg(rep)
    rep.set_defaults(handler=_cmd_replay)

    data = sub.add_parser(
        "data",
        help="fetch market data into the cache, or show what is cached",
        description="Exchange and yfinance bars are cached under data/ohlcv/ as Parquet; backtests and "
        "sessions read the cache and fetch only what it lacks.",
    )
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = data_sub.add_parser(
        "fetch",
        help="fetch bars into the cache (only what is missing)",
        description="Fetch closed bars of [--since, --until) into the cache, asking only for ranges not "
        "fetched before. Exit 4 when the source stays unavailable (what was fetched is kept), 2 when it "
        "refuses the request.",
    )
    fetch.add_argument("--source", required=True, metavar="SPEC", help="ccxt:EXCHANGE or yfinance")
    fetch.add_argument("--symbol", required=True, metavar="SYM", help="e.g. BTC/USDT, SPY")
    fetch.add_argument("--timeframe", required=True, metavar="TF", help="e.g. 1m, 1h, 1d")
    fetch.add_argument(
        "--since", metavar="T", help="first bar open, ISO 8601 or epoch ms (default: 1000 bars ago)"
    )
    fetch.add_argument("--until", metavar="T", help="end, excluded (default: now; closed bars only)")
    fetch.add_argument("--refill-gaps", action="store_true", help="ask again for gaps the exchange confirmed")
    fetch.set_defaults(handler=_cmd_data_fetch)
    info = data_sub.add_parser("info", help="list what is cached: range, bar count, gaps")
    info.add_argument("--source", metavar="SPEC")
    info.add_argument("--symbol", metavar="SYM")
    info.add_argument("--timeframe", metavar="TF")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(handler=_cmd_data_info)

    sch = sub.add_parser(
        "schedule",
        help="print service units or cron lines for sessions and reports",
        description="Print a systemd user unit and timers, or crontab lines, that keep a "
        "session running (restarted on failure, resumed where it stopped) and render its "
        "daily and weekly reports. docs/OPERATIONS.md explains how to install them.",
    )
    how = sch.add_mutually_exclusive_group(required=True)
    how.add_argument("--print-cron", action="store_true", help="print crontab lines")
    how.add_argument("--print-systemd", action="store_true", help="print systemd user units")
    _session_arg(sch)
    sch.set_defaults(handler=_cmd_schedule)
    return parser


def _session_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--session", default="default", metavar="NAME", help="session name (default: default)")


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
    from labkit.config_loader import load_config

    return load_config(_home(args), overrides)


def _session_overrides(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    dest = {
        "session": "session.name",
        "fast": "strategies.sma_cross.fast",
        "slow": "strategies.sma_cross.slow",
    }
    return {dest.get(n, f"session.{n}"): getattr(args, n, None) for n in names}


def _cmd_run(args: argparse.Namespace) -> int:
    from labkit.session.runner import run_session
    from labkit.session.state import resume_overrides

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
    home = _home(args)
    resume_overrides(home, overrides.get("session.name") or "default", overrides)
    config = _load(args, overrides)
    result = run_session(config, home)
    print(
        f"session {result.session}: decided {result.decided} bars ({result.total} in all), "
        f"equity {result.equity:,.2f}; files in {result.directory}"
    )
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    from labkit.backtest import run_backtest
    from labkit.data.registry import open_source
    from labkit.journal import JournalWriter
    from labkit.session.runner import replay_range
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
    source = open_source(s.source, home, s.seed, config=config)
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
    from labkit.session.paths import list_sessions
    from labkit.session.status import session_status

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
    from labkit.reports.render import render_report

    home = _home(args)
    config = _load(args, {})
    date, week = _relative_day(args.date), _relative_week(args.week)
    result = render_report(args.kind, args.session, home, config, date=date, week=week)
    print(f"{args.kind} report for {args.session}: {result.html}")
    return 0


def _relative_day(value: str | None) -> str | None:
    # Schedules ask for "yesterday" rather than a date they cannot know when written.
    import datetime as dt

    today = dt.datetime.now(dt.UTC).date()
    shifts = {"today": 0, "yesterday": 1}
    return (today - dt.timedelta(days=shifts[value])).isoformat() if value in shifts else value


def _relative_week(value: str | None) -> str | None:
    import datetime as dt

    shifts = {"this": 0, "last": 7}
    if value not in shifts:
        return value
    year, week, _ = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=shifts[value])).isocalendar()
    return f"{year}-W{week:02d}"


def _cmd_stop(args: argparse.Namespace) -> int:
    from labkit import ops

    print(f"session {args.session}: {ops.stop(args.session, _home(args))}")
    return 0


def _cmd_emergency_stop(args: argparse.Namespace) -> int:
    from labkit import ops

    how = ops.emergency_stop(args.session, _home(args))
    print(f"session {args.session}: emergency stop {how}; it stays halted until `labkit resume`")
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from labkit import ops

    print(f"session {args.session}: resume {ops.resume(args.session, _home(args))}")
    return 0


def _cmd_reduce_only(args: argparse.Namespace) -> int:
    from labkit import ops

    how = ops.reduce_only(args.session, _home(args), on=not args.off)
    print(f"session {args.session}: reduce-only {'off' if args.off else 'on'} {how}")
    return 0


def _cmd_transition(args: argparse.Namespace) -> int:
    from labkit import ops

    how = ops.transition(args.to, args.session, _home(args), force=args.force)
    print(
        f"session {args.session}: transition to {args.to} {how}"
        + (" (forced, recorded)" if args.force else "")
    )
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from labkit import ops

    checks = ops.verify(args.session, _home(args), max_age=args.max_age)
    failed = [c for c in checks if not c.ok]
    if args.json:
        print(
            json.dumps(
                {"session": args.session, "ok": not failed, "checks": [c.__dict__ for c in checks]}, indent=1
            )
        )
    else:
        for check in checks:
            print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
        print(f"{len(failed)} of {len(checks)} checks failed" if failed else f"all {len(checks)} checks pass")
    return 1 if failed else 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from labkit.session.replay import replay_session

    result = replay_session(_home(args), args.session)
    print(result.describe())
    return 0 if result.identical else 1


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from labkit.data.registry import check_source_spec, open_source
    from labkit.timeutil import iso_s, now_ms, parse_instant, timeframe_ms

    home = _home(args)
    config = _load(
        args,
        {
            "session.source": args.source,
            "session.symbol": args.symbol,
            "session.timeframe": args.timeframe,
            "session.since": args.since,
            "session.until": args.until,
        },
    )
    if check_source_spec(args.source) in ("synthetic",) or args.source.split(":")[0] in ("csv", "parquet"):
        raise ConfigError(
            "session.source: data fetch is for ccxt:EXCHANGE and yfinance; synthetic and "
            "file sources need no fetching"
        )
    tf = timeframe_ms(args.timeframe)
    until = parse_instant(args.until, "session.until") if args.until else now_ms()
    since = parse_instant(args.since, "session.since") if args.since else until - 1000 * tf
    source = open_source(args.source, home, config=config)
    stats = source.fetch(args.symbol, args.timeframe, since, until, refill_gaps=args.refill_gaps)  # type: ignore[attr-defined]
    print(
        f"{args.source} {args.symbol} {args.timeframe} {iso_s(since)} .. {iso_s(until)}: fetched "
        f"{stats['fetched']} bars in {stats['requested']} requests, {stats['gaps']} gap(s) confirmed"
    )
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    from labkit.data.cache import cache_info, safe_name

    entries = cache_info(_home(args))
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
    return 0


def _cmd_schedule(args: argparse.Namespace) -> int:
    from labkit.schedule import cron_lines, systemd_units

    config = _load(args, {})
    home = _home(args)
    print(
        cron_lines(home, args.session, config)
        if args.print_cron
        else systemd_units(home, args.session, config)
    )
    return 0


Handler = Callable[[argparse.Namespace], int]

if __name__ == "__main__":
    raise SystemExit(main())
