"""The `labkit` command line. Each subcommand turns flags into config overrides and calls labkit.

Exit codes: 0 ok, 1 a check failed, 2 bad input, 3 another instance holds the session, 4 a data
source stayed unavailable. Building the parser imports nothing heavy, so `labkit --help` stays
quick; what needs pandas (source kinds, strategy names) is looked up when a command's own help is
shown or the command runs.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.errors import ConfigError, LabkitError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from labkit.config import LabkitConfig

log = logging.getLogger("labkit")

# A range longer than this is announced, and confirmed first on a terminal.
CONFIRM_BARS = 5_000_000

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

_INSTANT = "an ISO 8601 date or datetime (UTC if no zone) or epoch milliseconds"
_REFERENCE = (
    "Reference: docs/journal.md, docs/gates.md, docs/config.md and docs/OPERATIONS.md in the labkit "
    "repository."
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code.

    Parameters
    ----------
    argv
        The arguments after ``labkit``; None reads ``sys.argv``.
    """
    args = _parser().parse_args(argv)
    with _stderr_logging(_log_level(args)):
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


def _log_level(args: argparse.Namespace) -> int:
    # A session logs its gates and progress; other commands print results and only warn.
    chosen = {"debug": logging.DEBUG, "quiet": logging.WARNING}
    return chosen.get(args.verbosity, logging.INFO if args.command == "run" else logging.WARNING)


@contextmanager
def _stderr_logging(level: int) -> Iterator[None]:
    # The level sits on the terminal's handler, not only on loggers: a session lifts the labkit
    # logger to INFO for its own log file, and -q must still keep those records off the terminal.
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root, ours = logging.getLogger(), logging.getLogger("labkit")
    saved = root.level, ours.level
    root.addHandler(handler)
    # Only ever lower the root level: the handler does the filtering, and a host that already
    # listens at a finer level (a notebook, a test) keeps hearing it.
    root.setLevel(min(level, saved[0]) if saved[0] else level)
    if level <= logging.DEBUG:
        ours.setLevel(level)  # else a session would lift it to INFO and hide -v's details
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        ours.setLevel(saved[1])


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors come from the command they concern, with a suggestion."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # Every flag a command accepts is its own (common ones included), so anything left over is
        # a typo in this command: say so with this command's usage, not the top-level one.
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._suggest_flag(extras)}")
        return parsed, extras

    def _suggest_flag(self, extras: list[str]) -> str:
        for extra in extras:
            if extra.startswith("-"):
                close = difflib.get_close_matches(
                    extra.split("=")[0], list(self._option_string_actions), 1, 0.75
                )
                if close:
                    return f" (did you mean {close[0]}?)"
        return ""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is None or value in action.choices:
            return
        choices = [str(choice) for choice in action.choices]
        close = difflib.get_close_matches(str(value), choices, 1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise argparse.ArgumentError(
            action, f"invalid choice: {value!r}{hint} (choose from {', '.join(choices)})"
        )


class _Formatter(argparse.HelpFormatter):
    """Help text whose lists of plug-in kinds are filled in only when that help is shown."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if text is None:
            return None
        for token, fill in _LAZY_HELP.items():
            if token in text:
                text = text.replace(token, ", ".join(fill()).replace("%", "%%"))
        return text


def _source_kinds() -> list[str]:
    from labkit.data.registry import source_kinds

    return source_kinds()


def _fetch_kinds() -> list[str]:
    from labkit.data.cache import CachedSource
    from labkit.data.registry import registered_sources

    return [
        f"{kind}:{cls.argument}" if cls.argument else kind
        for kind, cls in registered_sources().items()
        if issubclass(cls, CachedSource)
    ]


def _strategy_names() -> list[str]:
    from labkit.strategies.registry import registered_strategies

    return list(registered_strategies())


# Listing these imports every source and strategy (pandas with them), so it waits for the help.
_LAZY_HELP: dict[str, Callable[[], list[str]]] = {
    "{source_kinds}": _source_kinds,
    "{fetch_kinds}": _fetch_kinds,
    "{strategies}": _strategy_names,
}


def _common_flags(p: argparse.ArgumentParser, top: bool = False) -> None:
    # The same flags before or after the command; after it they are defaults=SUPPRESS, so a
    # command that omits one keeps the value given before the command, and one it gives wins.
    default = None if top else argparse.SUPPRESS
    group = p if top else p.add_argument_group("common options (also accepted before the command)")
    group.add_argument(
        "--home", metavar="DIR", default=default, help="directory holding labkit.yaml, data/ and reports/"
    )
    group.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const="debug",
        default=default,
        help="log debug details",
    )
    group.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const="quiet",
        default=default,
        help="log warnings and errors only",
    )


def _command(
    sub: Any, name: str, help: str, description: str | None = None, epilog: str | None = None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=description or help[0].upper() + help[1:] + ".",
        epilog=epilog,
        formatter_class=_Formatter,
    )
    _common_flags(parser)
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="labkit",
        description="Research and paper trading, every decision explained. labkit never places a real order.",
        epilog="Files live under the home: --home, else $LABKIT_HOME, else the labkit checkout, else the "
        "current directory. --home, -q and -v go before or after the command. Exit codes: 0 ok, "
        "1 check failed, 2 bad input, 3 session busy, 4 data source unavailable. " + _REFERENCE,
        formatter_class=_Formatter,
    )
    _common_flags(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _run_parser(sub)
    _backtest_parser(sub)
    _status_parser(sub)
    _report_parser(sub)
    _control_parsers(sub)
    _verify_parser(sub)
    _replay_parser(sub)
    _data_parser(sub)
    _schedule_parser(sub)
    _registry_parsers(sub)
    return parser


def _run_parser(sub: Any) -> None:
    run = _command(
        sub,
        "run",
        "run (or resume) a shadow or paper session",
        "Run a shadow or paper session bar by bar, or resume it where it stopped. --pace fast replays a "
        "historical range as fast as the engine goes; --pace clock decides each bar as it closes.",
        "example: labkit run --mode paper --pace fast --since 2026-01-05 --until 2026-01-08 --session mine",
    )
    _market_flags(run)
    run.add_argument(
        "--mode", metavar="{shadow,paper}", help="shadow (record what would be done) or paper (fill on paper)"
    )
    _session_arg(run)
    run.add_argument(
        "--interval",
        type=float,
        metavar="SECONDS",
        help="seconds between heartbeats while waiting (default 60)",
    )
    _capital_arg(run)
    run.add_argument("--pace", metavar="{clock,fast}", help="clock (default) or fast")
    _strategy_flags(run, default=None)
    _yes_arg(run)
    run.set_defaults(handler=_cmd_run)


def _backtest_parser(sub: Any) -> None:
    bt = _command(
        sub,
        "backtest",
        "replay a range through the engine and print the result",
        "Backtest a strategy on a range of bars through the same engine and gates as paper sessions. "
        "sma_cross fills at the next open, all-in with fractional units, fee on each fill's notional.",
    )
    _market_flags(bt)
    _strategy_flags(bt, default=None)
    bt.add_argument(
        "--fee",
        type=float,
        metavar="FRACTION",
        help="fee, a fraction of each fill's notional (default 0.001)",
    )
    bt.add_argument(
        "--slippage",
        type=float,
        metavar="FRACTION",
        help="adverse slippage, a fraction of price (default 0.0)",
    )
    _capital_arg(bt)
    bt.add_argument(
        "--gates",
        choices=("on", "off"),
        default="on",
        help="off keeps only the data stage, for comparisons with tools without gates",
    )
    bt.add_argument("--journal", metavar="PATH", help="also write every decision to this JSONL file")
    bt.add_argument("--append", action="store_true", help="with --journal: add to a file that exists")
    _yes_arg(bt)
    _json_arg(bt, "print one JSON object")
    bt.set_defaults(handler=_cmd_backtest)


def _status_parser(sub: Any) -> None:
    status = _command(
        sub,
        "status",
        "show a session's state (works while it runs)",
        "Show sessions from state.json, falling back to heartbeat.json. Without --session, every "
        "session under the home. Ages are rounded for reading; --json keeps the recorded times.",
    )
    _session_arg(status, default=None, help="session name (default: all sessions)")
    _json_arg(status)
    status.set_defaults(handler=_cmd_status)


def _report_parser(sub: Any) -> None:
    report = _command(
        sub,
        "report",
        "render a session, daily or weekly report to HTML",
        "Execute the matching notebook with papermill and render it to HTML under reports/, updating "
        "reports/index.html. Exits 1 when the notebook fails; its HTML still shows the failure.",
    )
    report.add_argument("kind", choices=("session", "daily", "weekly"))
    _session_arg(report)
    report.add_argument(
        "--date",
        metavar="DAY",
        help="daily: the UTC day, YYYY-MM-DD, today or yesterday (default: the last one decided)",
    )
    report.add_argument(
        "--week",
        metavar="WEEK",
        help="weekly: the ISO week, YYYY-Www, this or last (default: the last one decided)",
    )
    report.set_defaults(handler=_cmd_report)


def _control_parsers(sub: Any) -> None:
    for name, text, handler in (
        ("stop", "stop a running session gracefully (after its current bar)", _cmd_stop),
        (
            "emergency-stop",
            "halt: flatten at the next open, refuse entries, stay halted until resume",
            _cmd_emergency_stop,
        ),
        ("resume", "lift an emergency stop, a halt or reduce-only", _cmd_resume),
    ):
        cmd = _command(
            sub,
            name,
            text,
            text[0].upper() + text[1:] + ". Works on a running session (applied between bars) and on "
            "a stopped one (applied at once).",
        )
        _session_arg(cmd)
        cmd.set_defaults(handler=handler)

    ro = _command(
        sub,
        "reduce-only",
        "allow exits, refuse entries (until resume or --off)",
        "Put a session in reduce-only: exits are allowed, entries refused.",
    )
    _session_arg(ro)
    ro.add_argument("--off", action="store_true", help="lift reduce-only")
    ro.set_defaults(handler=_cmd_reduce_only)

    tr = _command(
        sub,
        "transition",
        "move a session to shadow or paper",
        "Move a session between shadow and paper. Promotion to paper is refused (exit 1) unless the "
        "latest weekly readiness verdict passes; --force overrides it and the override is recorded in "
        "the session's state and control log.",
    )
    tr.add_argument("--to", required=True, metavar="{shadow,paper}", help="the mode to move to")
    _session_arg(tr)
    tr.add_argument("--force", action="store_true", help="promote without a passing readiness verdict")
    tr.set_defaults(handler=_cmd_transition)


def _verify_parser(sub: Any) -> None:
    ver = _command(
        sub,
        "verify",
        "check a running session's health; exit 1 listing failures",
        "Check that the session's heartbeat is fresh, its pid alive and holding the run lock, exactly "
        "one engine process runs it, decisions advance and it is not halted. Exit 1 lists every failed "
        "check.",
        "docs/OPERATIONS.md explains each check.",
    )
    _session_arg(ver)
    ver.add_argument("--max-age", type=float, metavar="SECONDS", help="oldest acceptable heartbeat")
    _json_arg(ver)
    ver.set_defaults(handler=_cmd_verify)


def _replay_parser(sub: Any) -> None:
    rep = _command(
        sub,
        "replay",
        "re-run a session's recorded tape and compare its decisions",
        "Feed the bars a session recorded (its tape) through the engine again and compare every "
        "decision field by field, wall-clock fields aside. Exit 0 when identical, 1 naming the first "
        "differing seq and field.",
    )
    _session_arg(rep)
    rep.set_defaults(handler=_cmd_replay)


def _data_parser(sub: Any) -> None:
    data = _command(
        sub,
        "data",
        "fetch market data into the cache, or show what is cached",
        "Exchange and yfinance bars are cached under data/ohlcv/ as Parquet; backtests and sessions "
        "read the cache and fetch only what it lacks.",
    )
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = _command(
        data_sub,
        "fetch",
        "fetch bars into the cache (only what is missing)",
        "Fetch closed bars of [--since, --until) into the cache, asking only for ranges not fetched "
        "before. Exit 4 when the source stays unavailable (what was fetched is kept), 2 when it refuses "
        "the request.",
    )
    fetch.add_argument("--source", required=True, metavar="SPEC", help="where to fetch from: {fetch_kinds}")
    fetch.add_argument("--symbol", required=True, metavar="SYMBOL", help="e.g. BTC/USDT, SPY")
    fetch.add_argument("--timeframe", required=True, metavar="TF", help="bar length, e.g. 1m, 1h, 1d")
    fetch.add_argument("--since", metavar="T", help=f"first bar open, {_INSTANT} (default: 1000 bars ago)")
    fetch.add_argument("--until", metavar="T", help=f"end, excluded, {_INSTANT} (default: now; closed bars)")
    fetch.add_argument("--refill-gaps", action="store_true", help="ask again for gaps the exchange confirmed")
    fetch.set_defaults(handler=_cmd_data_fetch)
    info = _command(data_sub, "info", "list what is cached: range, bar count, where the gaps are")
    info.add_argument("--source", metavar="SPEC", help="only this source, as fetched: {fetch_kinds}")
    info.add_argument("--symbol", metavar="SYMBOL", help="only this symbol")
    info.add_argument("--timeframe", metavar="TF", help="only this bar length")
    _json_arg(info, "print JSON, every gap included")
    info.set_defaults(handler=_cmd_data_info)


def _schedule_parser(sub: Any) -> None:
    sch = _command(
        sub,
        "schedule",
        "print service units or cron lines for sessions and reports",
        "Print a systemd user unit and timers, or crontab lines, that keep a session running "
        "(restarted on failure, resumed where it stopped) and render its daily and weekly reports. "
        "docs/OPERATIONS.md explains how to install them.",
    )
    how = sch.add_mutually_exclusive_group(required=True)
    how.add_argument("--print-cron", action="store_true", help="print crontab lines")
    how.add_argument("--print-systemd", action="store_true", help="print systemd user units")
    _session_arg(sch)
    sch.set_defaults(handler=_cmd_schedule)


def _registry_parsers(sub: Any) -> None:
    for name, text, epilog, handler in (
        (
            "gates",
            "list the gates: chain order, what they judge, reason codes, config keys",
            "Stages and reason codes: docs/gates.md. Config keys: docs/config.md.",
            _cmd_gates,
        ),
        (
            "strategies",
            "list the strategies and their parameters",
            "Parameters go under strategies.<name> in labkit.yaml: docs/config.md.",
            _cmd_strategies,
        ),
        ("sources", "list the data sources and how to name them in --source", None, _cmd_sources),
    ):
        cmd = _command(
            sub,
            name,
            text,
            text[0].upper() + text[1:] + ", labkit's own and those of installed plug-ins.",
            epilog,
        )
        _json_arg(cmd)
        cmd.set_defaults(handler=handler)


def _session_arg(
    p: argparse.ArgumentParser, default: str | None = "default", help: str = "session name (default: default)"
) -> None:
    p.add_argument("--session", default=default, metavar="NAME", help=help)


def _json_arg(p: argparse.ArgumentParser, help: str = "print JSON") -> None:
    p.add_argument("--json", action="store_true", help=help)


def _capital_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--capital", type=float, metavar="CASH", help="starting cash in quote currency (default 10000)"
    )


def _yes_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help=f"run a range of more than {CONFIRM_BARS:,} bars without asking on a terminal",
    )


def _market_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source", metavar="SPEC", help="where bars come from: {source_kinds} (default synthetic)"
    )
    p.add_argument("--symbol", metavar="SYMBOL", help="e.g. BTC/USDT (default), SPY")
    p.add_argument("--timeframe", metavar="TF", help="bar length: 1s, 5s, 1m (default), 15m, 1h, 1d ...")
    p.add_argument("--since", metavar="T", help=f"first bar open, included: {_INSTANT}")
    p.add_argument("--until", metavar="T", help=f"end of the range, excluded: {_INSTANT}")
    p.add_argument("--max-bars", type=int, metavar="N", help="only the last N bars of the range")
    p.add_argument("--seed", type=int, metavar="N", help="seed of the synthetic market (default 7)")


def _strategy_flags(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument(
        "--strategy",
        default=default,
        metavar="NAME",
        help="what proposes trades: {strategies} (default sma_cross)",
    )
    p.add_argument("--fast", type=int, metavar="N", help="sma_cross fast window, in bars (default 10)")
    p.add_argument("--slow", type=int, metavar="N", help="sma_cross slow window, in bars (default 30)")


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
    s = config.session
    # A file's bars are bounded by the file, which the session reads once; counting would read it twice.
    if s.pace == "fast" and not _reads_a_file(s.source):
        bars = _range_bars(config, _last_decided(home, s.name))
        _confirm_size(bars, f"{s.symbol} {s.timeframe} from {s.source}", args.yes)
    result = run_session(config, home)
    print(
        f"session {result.session}: decided {result.decided} bars ({result.total} in all), "
        f"equity {result.equity:,.2f}; files in {result.directory}"
    )
    return 0


def _range_bars(config: LabkitConfig, last_decided: int | None = None) -> int:
    # Counted from the range, not loaded: 5 million bars are what the question is meant to spare.
    from labkit.session.runner import replay_range
    from labkit.timeutil import now_ms, timeframe_ms

    s = config.session
    tf = timeframe_ms(s.timeframe)
    since, until = replay_range(config, now_ms())
    if s.max_bars:
        since = max(since, until - s.max_bars * tf)
    if last_decided is not None:
        since = max(since, last_decided + tf)  # a resume decides only the bars after its last one
    return _bars_between(since, until, tf)


def _last_decided(home: Path, session: str) -> int | None:
    from labkit.session.paths import session_paths
    from labkit.session.state import load_state

    saved = load_state(session_paths(home, session)) or {}
    last = (saved.get("portfolio") or {}).get("last_ts")
    return None if last is None else int(last)


def _reads_a_file(spec: str) -> bool:
    from labkit.data.files import FileSource
    from labkit.data.registry import registered_sources

    return issubclass(registered_sources()[spec.partition(":")[0]], FileSource)


def _bars_between(since: int, until: int, tf: int) -> int:
    first = -(-since // tf) * tf  # the first bar open at or after `since`
    return max(0, -(-(until - first) // tf))


def _confirm_size(bars: int, what: str, yes: bool) -> None:
    """Announce a run of more than `CONFIRM_BARS` bars; on a terminal, ask first unless `yes`.

    Parameters
    ----------
    bars
        How many bars the run is about to decide.
    what
        What they are, for the announcement (symbol, timeframe, source).
    yes
        True when ``--yes`` was given: announce, but do not ask.

    Raises
    ------
    ConfigError
        When the question is answered with anything but yes.
    """
    if bars <= CONFIRM_BARS:
        return
    print(f"about to run {bars:,} bars of {what}", file=sys.stderr, flush=True)
    if yes or not _interactive():
        return  # a script or a pipe cannot answer; the count above stays in its log
    print("continue? [y/N] ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise ConfigError(
            f"--yes: not confirmed, nothing was run; pass --yes to run {bars:,} bars without being "
            "asked, or narrow --since/--until/--max-bars"
        )


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


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


@contextmanager
def _bar_progress(total: int, desc: str) -> Iterator[Callable[[int], object] | None]:
    """Yield a progress bar's ``update`` on a terminal (None elsewhere) for `total` bars."""
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit="bar", desc=desc, file=sys.stderr) as bar:
        yield bar.update


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
    journal_path = _check_journal(args)
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
    if s.source == "synthetic" and not (s.since or s.max_bars):
        config = _load(args, {**overrides, "session.max_bars": 10_000})
        s = config.session
    what = f"{s.symbol} {s.timeframe} from {s.source}"
    ranged = bool(s.since or s.max_bars)
    since, until = replay_range(config, now_ms()) if ranged else (0, 2**62)
    # Generated or fetched bars are counted before any exists; a file is read anyway, and its
    # length, not the range asked of it, is what runs.
    counted_first = ranged and not _reads_a_file(s.source)
    if counted_first:
        _confirm_size(_range_bars(config), what, args.yes)
    source = open_source(s.source, home, s.seed, config=config)
    bars = source.bars(s.symbol, s.timeframe, since, until)
    if s.max_bars:
        bars = bars.iloc[-s.max_bars :]
    if not len(bars):
        raise ConfigError(f"session.since: no bars of {s.symbol} {s.timeframe} in the requested range")
    if not counted_first:
        _confirm_size(len(bars), what, args.yes)
    journal = JournalWriter(journal_path) if journal_path is not None else None
    try:
        with _bar_progress(len(bars), f"backtest {s.symbol} {s.timeframe}") as progress:
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


def _cmd_status(args: argparse.Namespace) -> int:
    from labkit.session.paths import list_sessions
    from labkit.session.status import session_status, status_line

    home = _home(args)
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
    from labkit.timeutil import ago

    home = _home(args)
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
    if word not in ("running", "halted"):
        # Most checks below fail for that one reason; say it first.
        when = f"last beat {ago(status['last_beat'])}" if status.get("last_beat") else "no heartbeat"
        print(f"session {args.session} is {word} ({when}); verify checks a running session")
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
    from labkit.data.cache import CachedSource
    from labkit.data.registry import open_source
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
    tf = timeframe_ms(args.timeframe)
    until = parse_instant(args.until, "session.until") if args.until else now_ms()
    since = parse_instant(args.since, "session.since") if args.since else until - 1000 * tf
    source = open_source(args.source, home, config=config)
    if not isinstance(source, CachedSource):
        raise ConfigError(
            f"session.source: data fetch is for sources with a cache ({', '.join(_fetch_kinds())}); "
            f"{args.source} needs no fetching"
        )
    stats = source.fetch(args.symbol, args.timeframe, since, until, refill_gaps=args.refill_gaps)
    print(
        f"{args.source} {args.symbol} {args.timeframe} {iso_s(since)} .. {iso_s(until)}: fetched "
        f"{stats['fetched']} bars in {stats['requested']} requests, {stats['gaps']} gap(s) confirmed"
    )
    return 0


def _cmd_data_info(args: argparse.Namespace) -> int:
    from labkit.data.cache import cache_info, describe_gaps, safe_name

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
        if e["gaps"]:
            print(f"  gaps: {describe_gaps(e['gaps'], e['timeframe'])}")
        if e["confirmed_gaps"]:
            print(f"  confirmed by the source: {describe_gaps(e['confirmed_gaps'], e['timeframe'])}")
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


def _cmd_gates(args: argparse.Namespace) -> int:
    from labkit._plugins import origin
    from labkit.gates.registry import registered_gates

    gates: list[dict[str, Any]] = [
        {
            "name": name,
            "order": cls.order,
            "origin": origin(cls),
            "summary": cls.summary(),
            "applies_to": _sides(cls.applies_to),
            "reasons": list(cls.reasons),
            "config": _config_fields(cls.Config, f"gates.{name}"),
        }
        for name, cls in registered_gates().items()
    ]
    if args.json:
        print(json.dumps(gates, indent=1))
        return 0
    for gate in gates:
        print(f"{gate['name']}  (order {gate['order']}, from {gate['origin']})")
        print(f"    {gate['summary']}")
        print(f"    applies to: {', '.join(gate['applies_to'])}")
        print(f"    reasons: {', '.join(gate['reasons']) or '-'}")
        _print_fields(gate["config"], "config")
    return 0


def _cmd_strategies(args: argparse.Namespace) -> int:
    from labkit._plugins import origin
    from labkit.strategies.registry import registered_strategies

    strategies: list[dict[str, Any]] = [
        {
            "name": name,
            "origin": origin(cls),
            "description": cls.describe(),
            "parameters": _config_fields(cls.Config, f"strategies.{name}"),
        }
        for name, cls in registered_strategies().items()
    ]
    if args.json:
        print(json.dumps(strategies, indent=1))
        return 0
    for strategy in strategies:
        print(f"{strategy['name']}  (from {strategy['origin']})")
        print(f"    {strategy['description']}")
        _print_fields(strategy["parameters"], "parameters")
    return 0


def _cmd_sources(args: argparse.Namespace) -> int:
    from labkit._plugins import origin
    from labkit.data.registry import registered_sources

    sources: list[dict[str, Any]] = [
        {
            "kind": kind,
            "spec": f"{kind}:{cls.argument}" if cls.argument else kind,
            "argument": cls.argument,
            "origin": origin(cls),
            "description": cls.describe(),
        }
        for kind, cls in registered_sources().items()
    ]
    if args.json:
        print(json.dumps(sources, indent=1))
        return 0
    width = max((len(source["spec"]) for source in sources), default=0)
    for source in sources:
        print(f"{source['spec']:<{width}}  (from {source['origin']})  {source['description']}")
    return 0


def _sides(sides: frozenset[str]) -> list[str]:
    known = ("BUY", "SELL", "HOLD")
    return [side for side in known if side in sides] + sorted(set(sides) - set(known))


def _config_fields(model: type[BaseModel], prefix: str) -> list[dict[str, Any]]:
    from pydantic_core import to_jsonable_python

    fields = []
    for name, info in model.model_fields.items():
        required = info.is_required()
        default = None if required else info.get_default(call_default_factory=True)
        fields.append(
            {
                "key": f"{prefix}.{name}",
                "default": to_jsonable_python(default),
                "required": required,
                "description": info.description or "",
            }
        )
    return fields


def _print_fields(fields: list[dict[str, Any]], title: str) -> None:
    if not fields:
        print(f"    {title}: none")
        return
    print(f"    {title}:")
    for field in fields:
        value = "(required)" if field["required"] else json.dumps(field["default"])
        print(
            f"      {field['key']} = {value}" + (f"  {field['description']}" if field["description"] else "")
        )


Handler = Callable[[argparse.Namespace], int]

if __name__ == "__main__":
    raise SystemExit(main())
