"""Commands on sessions: run, status, report, the control commands, verify, replay, schedule."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from labkit.config.schema import LabkitConfig

from labkit.cli.common import book_symbols_of, confirm_size, home_of, load, session_overrides
from labkit.errors import ConfigError


def cmd_run(args: argparse.Namespace) -> int:
    from labkit.config.ranges import bars_to_decide
    from labkit.data.files import is_file_spec
    from labkit.session.paths import session_paths
    from labkit.session.runner import run_session
    from labkit.session.state import last_decided, resume_overrides
    from labkit.timeutil import now_ms

    overrides = session_overrides(
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
            "model",
            "seed",
            "calendar",
        ),
    )
    _refuse_timeframe_as_pace(args.pace)
    home = home_of(args)
    resume_overrides(home, overrides.get("session.name") or "default", overrides)
    if getattr(args, "meta", None) is not None:
        from labkit.gates.meta import meta_reference

        # The meta gate's model; latest resolves when the session binds its strategy.
        overrides["gates.meta.model"] = meta_reference(args.meta)
    config = load(args, overrides)
    symbols = book_symbols_of(args, config)
    if symbols is not None:
        if len(symbols) > 1 and getattr(args, "meta", None) is not None:
            raise ConfigError(
                "--meta: a meta model judges one symbol's strategy; give --symbol, not a universe"
            )
        # One book over the universe (a universe of one is that symbol alone).
        book = tuple(symbols) if len(symbols) > 1 else ()
        session = config.session.model_copy(update={"symbols": book, "symbol": symbols[0]})
        config = config.model_copy(update={"session": session})
    s = config.session
    # A file's bars are bounded by the file, which the session reads once; counting would read it twice.
    if s.pace == "fast" and not is_file_spec(s.source):
        bars = bars_to_decide(config, now_ms(), last_decided(session_paths(home, s.name)))
        market = ",".join(s.symbols) or s.symbol
        confirm_size(bars * max(1, len(s.symbols)), f"{market} {s.timeframe} from {s.source}", args.yes)
    _say_latest_model(config, home)
    result = run_session(config, home)
    if len(s.symbols) > 1:
        # A book decides each symbol at each time: its decisions are bars times symbols.
        n = len(s.symbols)
        decided = f"{result.decided // n:,} bars of {n} symbols ({result.total:,} decisions in all)"
    else:
        decided = f"{result.decided} bars ({result.total} in all)"
    equity = f"equity {result.equity:,.2f}"
    print(f"session {result.session}: decided {decided}, {equity}; files in {result.directory}")
    return 0


def _refuse_timeframe_as_pace(pace: str | None) -> None:
    # "--pace 1s" reads as "one bar a second": say where a bar length goes instead of listing paces.
    from labkit.timeutil import timeframe_ms

    if pace is None or pace in ("clock", "fast"):
        return
    try:
        timeframe_ms(pace)
    except ConfigError:
        return  # not a bar length either: the config's own message lists the paces
    raise ConfigError(
        f"--pace: {pace!r} is a bar length, not a pace; for {pace} bars use --timeframe {pace}, "
        "with --pace clock (decide each bar as it closes) or --pace fast (replay a past range)"
    )


def _say_latest_model(config: LabkitConfig, home: Path) -> None:
    # `latest` is whatever was trained last: say which model that is now (the journal records it too).
    from labkit.config.schema import strategy_config
    from labkit.models.artifacts import latest_model, model_trained_at

    s = config.session
    if s.strategy != "model" or getattr(strategy_config(config), "model", None) != "latest":
        return
    try:
        model = latest_model(home, s.symbol, s.timeframe)
    except ConfigError:
        return  # the session says so itself: it holds with model_unavailable
    print(
        f"labkit run: --model latest: {model}, the most recently trained for {s.symbol} {s.timeframe} "
        f"(trained {model_trained_at(home, model)})",
        file=sys.stderr,
    )


def cmd_status(args: argparse.Namespace) -> int:
    from labkit.session.paths import list_sessions
    from labkit.session.status import session_status, status_line

    home = home_of(args)
    names = [args.session] if args.session else list_sessions(home)
    statuses = [session_status(home, name) for name in names]
    if args.json:
        print(json.dumps(statuses[0] if args.session else statuses, indent=1))
        return 0
    if not statuses:
        print(f"no sessions under {home / 'data' / 'sessions'}")
    for st in statuses:
        print(status_line(st))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from labkit.analysis.periods import relative_day, relative_week
    from labkit.reports.render import render_report
    from labkit.session.schedule import check_period_decided

    if args.kind == "backtest":
        return _report_backtest(args)
    if args.kind == "train":
        return _report_train(args)
    if args.kind == "sweep":
        return _report_sweep(args)
    if args.sweep is not None:
        raise ConfigError(f"--sweep: only `labkit report sweep` takes it (not {args.kind})")
    for flag, value in (("--journal", args.journal), ("--title", args.title)):
        if value is not None:
            raise ConfigError(f"{flag}: only `labkit report backtest` takes it (not {args.kind})")
    if args.model is not None:
        raise ConfigError(f"--model: only `labkit report train` takes it (not {args.kind})")
    home = home_of(args)
    config = load(args, {})
    date, week = relative_day(args.date), relative_week(args.week)
    daily = args.kind == "daily"
    given, period = (args.date, date) if daily else (args.week, week)
    if not check_period_decided(home, args.session, args.kind, given, period):
        return 0  # a scheduled report of a period with no decisions: no page, nothing in the index
    result = render_report(
        args.kind, args.session, home, config, date=date, week=week, calendar=args.calendar
    )
    what = result.outcome
    if what == "empty":
        what = "empty: the session decided nothing then" + (", no verdict" if args.kind == "weekly" else "")
    print(f"{args.kind} report for {args.session} ({result.period}, {what}): {result.html}")
    if result.why:
        print(f"  {result.outcome}: {result.why}")
    return 0


def _report_backtest(args: argparse.Namespace) -> int:
    from labkit.reports.render import render_backtest_report

    if args.model is not None:
        raise ConfigError("--model: only `labkit report train` takes it (not backtest)")
    if args.sweep is not None:
        raise ConfigError("--sweep: only `labkit report sweep` takes it (not backtest)")
    for flag, value in (("--date", args.date), ("--week", args.week)):
        if value is not None:
            raise ConfigError(f"{flag}: a backtest report covers its whole journal; leave {flag} out")
    if not args.journal:
        raise ConfigError(
            "--journal: `labkit report backtest` needs the journal a backtest wrote "
            "(labkit backtest ... --journal PATH, then labkit report backtest --journal PATH)"
        )
    home = home_of(args)
    config = load(args, {})
    result = render_backtest_report(args.journal, home, config, title=args.title, calendar=args.calendar)
    print(f"backtest report for {result.session} ({result.period}, {result.outcome}): {result.html}")
    return 0


def _refuse(args: argparse.Namespace, names: tuple[str, ...], why: str) -> None:
    # Flags of other report kinds: refused by name rather than silently ignored.
    for name in names:
        if getattr(args, name) is not None:
            flag = f"--{name}"
            raise ConfigError(f"{flag}: {why}; leave {flag} out")


def _report_train(args: argparse.Namespace) -> int:
    from labkit.reports.render import render_train_report

    _refuse(
        args,
        ("date", "week", "journal", "title", "calendar", "sweep"),
        "a train report covers one model (--model)",
    )
    home = home_of(args)
    config = load(args, {})
    result = render_train_report(args.model or "latest", home, config)
    print(f"train report for model {result.session} ({result.period}, {result.outcome}): {result.html}")
    return 0


def _report_sweep(args: argparse.Namespace) -> int:
    from labkit.reports.render import render_sweep_report

    _refuse(
        args,
        ("date", "week", "journal", "title", "calendar", "model"),
        "a sweep report covers one sweep (--sweep)",
    )
    home = home_of(args)
    result = render_sweep_report(home, args.sweep or "", load(args, {}))
    print(f"sweep report for {result.session} ({result.period}, {result.outcome}): {result.html}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from labkit import operations as ops

    print(f"session {args.session}: {ops.stop(args.session, home_of(args))}")
    return 0


def cmd_emergency_stop(args: argparse.Namespace) -> int:
    from labkit import operations as ops

    how = ops.emergency_stop(args.session, home_of(args))
    if how == "queued":
        # An emergency stop nobody confirmed is not one to walk away from: say so, and exit 1.
        print(
            f"session {args.session}: emergency stop queued but not confirmed within "
            f"{ops.CONFIRM_WAIT:g} s; the running session applies it between bars. Check `labkit status`.",
            file=sys.stderr,
        )
        return 1
    print(f"session {args.session}: emergency stop {how}; it stays halted until `labkit resume`")
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from labkit import operations as ops

    print(f"session {args.session}: resume {ops.resume(args.session, home_of(args))}")
    return 0


def cmd_reduce_only(args: argparse.Namespace) -> int:
    from labkit import operations as ops

    how = ops.reduce_only(args.session, home_of(args), on=not args.off)
    print(f"session {args.session}: reduce-only {'off' if args.off else 'on'} {how}")
    return 0


def cmd_transition(args: argparse.Namespace) -> int:
    from labkit import operations as ops

    how = ops.transition(args.to, args.session, home_of(args), force=args.force)
    print(
        f"session {args.session}: transition to {args.to} {how}"
        + (" (forced, recorded)" if args.force else "")
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from labkit import operations as ops
    from labkit.timeutil import ago

    home = home_of(args)
    checks = ops.verify(args.session, home, max_age=args.max_age)
    status = ops.status(args.session, home)
    word = status["status_word"]
    failed = [c for c in checks if not c.ok]
    if args.json:
        report = {
            "session": args.session,
            "status": word,
            "ok": not failed,
            "checks": [c.__dict__ for c in checks],
        }
        print(json.dumps(report, indent=1))
        return 1 if failed else 0
    if word == "broken":
        print(f"session {args.session} is broken: {status.get('problem')}")
        print(f"  to repair: {status.get('repair')}")
    elif word not in ("running", "halted"):
        # Most checks below fail for that one reason; say it first.
        when = f"last beat {ago(status['last_beat'])}" if status.get("last_beat") else "no heartbeat"
        print(f"session {args.session} is {word} ({when}); verify checks a running session")
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    print(f"{len(failed)} of {len(checks)} checks failed" if failed else f"all {len(checks)} checks pass")
    return 1 if failed else 0


def cmd_replay(args: argparse.Namespace) -> int:
    from labkit.session.replay import replay_session

    result = replay_session(home_of(args), args.session)
    print(result.describe())
    return 0 if result.identical else 1


def cmd_schedule(args: argparse.Namespace) -> int:
    from pathlib import Path

    from labkit.session.schedule import (
        cron_lines,
        scheduled_session,
        systemd_units,
        unit_files,
        write_schedule,
    )
    from labkit.timeutil import now_ms

    config = load(args, {})
    home = home_of(args)
    session = scheduled_session(home, args.session, now_ms())
    text = cron_lines(home, session, config) if args.print_cron else systemd_units(home, session, config)
    print(text)
    if args.write:
        files = (
            {f"labkit-{session.name}.cron": text} if args.print_cron else unit_files(home, session, config)
        )
        written = write_schedule(Path(args.write).expanduser(), files)
        print(
            f"wrote {len(written)} file(s) into {args.write}: {', '.join(p.name for p in written)}",
            file=sys.stderr,
        )
    return 0
