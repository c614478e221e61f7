"""The grammar of the `labkit` command line: every command, its flags and its help.

Building the parser imports nothing heavy, so `labkit --help` stays quick; what needs pandas
(source kinds, strategy names) is looked up only when a command's own help is shown.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable, Sequence
from typing import Any

import labkit.cli.registry as registry
import labkit.cli.research as research
import labkit.cli.serve as serve
import labkit.cli.sessions as sessions
from labkit.cli.common import CONFIRM_BARS, fetch_kinds


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 10**7:  # NaN and inf fail this too
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds above 0 (e.g. 30)")
    return value


# The flags of a book over a universe, which only some commands take so far.
_BOOK_FLAGS = ("--symbols", "--universe")


def _universe_flags(parser: argparse.ArgumentParser, what: str, how: str) -> None:
    # --symbols A,B,C or --universe NAME (labkit.yaml's universes), one or the other.
    universe = parser.add_mutually_exclusive_group()
    universe.add_argument(
        "--symbols", metavar="A,B,C", help=f"{what} these symbols {how}, instead of --symbol"
    )
    universe.add_argument(
        "--universe", metavar="NAME", help=f"{what} the symbols labkit.yaml's universes.NAME lists"
    )


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
            flag = extra.split("=")[0]
            if flag in _BOOK_FLAGS and flag not in self._option_string_actions:
                # A universe on a command that takes one symbol: say where books run today.
                return (
                    f" ({flag} runs one book over a universe with `labkit backtest {flag} ...`; "
                    f"{self.prog} takes one --symbol)"
                )
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


def _strategy_names() -> list[str]:
    from labkit.strategies.registry import registered_strategies

    return list(registered_strategies())


# Listing these imports every source and strategy (pandas with them), so it waits for the help.
_LAZY_HELP: dict[str, Callable[[], list[str]]] = {
    "{source_kinds}": _source_kinds,
    "{fetch_kinds}": fetch_kinds,
    "{strategies}": _strategy_names,
}


_INSTANT = "an ISO 8601 date or datetime (UTC if no zone) or epoch milliseconds"


_REFERENCE = (
    "Reference: docs/journal.md, docs/gates.md, docs/config.md and docs/OPERATIONS.md in the labkit "
    "repository."
)


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


def build_parser() -> argparse.ArgumentParser:
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
    _train_parsers(sub)
    _sweep_parser(sub)
    _status_parser(sub)
    _report_parser(sub)
    _control_parsers(sub)
    _verify_parser(sub)
    _replay_parser(sub)
    _data_parser(sub)
    _schedule_parser(sub)
    _serve_parser(sub)
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
    run.add_argument(
        "--pace",
        metavar="{clock,fast}",
        help="clock (default): decide each bar as it closes, the only pace whose decisions are paper "
        "evidence for readiness; fast: replay a past range as fast as the engine goes (a backtest "
        "through the session's files: its weeks are refused as replay_only)",
    )
    run.add_argument(
        "--calendar",
        choices=("auto", "24/7", "equities", "fx"),
        help="the market's calendar, for readiness and annualised figures, recorded when the session is "
        "created (default auto: synthetic and ccxt 24/7, yfinance equities, a bar file's inferred from "
        "the whole file)",
    )
    _universe_flags(run, "run one book over", "(shared cash, portfolio limits)")
    _strategy_flags(run, default=None)
    _yes_arg(run)
    run.set_defaults(handler=sessions.cmd_run)


def _backtest_parser(sub: Any) -> None:
    bt = _command(
        sub,
        "backtest",
        "replay a range through the engine and print the result",
        "Backtest a strategy on a range of bars through the same engine and gates as paper sessions. "
        "sma_cross fills at the next open, all-in with fractional units, fee on each fill's notional.",
    )
    _market_flags(bt, relative=True)
    _universe_flags(bt, "backtest one book over", "(shared cash, portfolio limits)")
    bt.add_argument(
        "--calendar",
        choices=("auto", "24/7", "equities", "fx"),
        help="the market's calendar, for annualised figures (default auto: synthetic and ccxt 24/7, "
        "yfinance equities, bar files inferred from their bars)",
    )
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
    bt.set_defaults(handler=research.cmd_backtest)


def _train_parsers(sub: Any) -> None:
    tr = _command(
        sub,
        "train",
        "train a signal model with purged walk-forward folds and save it",
        "Train the ensemble (XGBoost, logistic regression, a gradient-boosted forest) to say whether "
        "the return over the next --horizon bars beats the round-trip cost (--labels sign), or whether "
        "the price reaches close + --profit-take ATRs before close - --stop-loss ATRs within --horizon "
        "bars (--labels triple-barrier; the ATR of risk.atr_window, as risk sizing uses). Each row is "
        "weighted by its label's average uniqueness (how little its span overlaps other labels'). Each "
        "fold is tested on bars after its training data, less the rows whose labels reach into it "
        "(purged by each label's own end); every fold is scored over --seeds seeds and traded through "
        "the engine with costs. The final model is fit on the whole window and saved under "
        "data/models/<model_id>/.",
        "example: labkit train --source synthetic --symbol BTC/USDT --timeframe 1m "
        "--since 2026-01-01 --until 2026-01-15 --horizon 15 --folds 5 --seeds 3",
    )
    _market_flags(tr, relative=True)
    _universe_flags(
        tr, "train one model pooled over", "(features and labels per symbol, folds cut on time for all)"
    )
    tr.add_argument(
        "--cross-sectional",
        action="store_true",
        help="with --symbols/--universe: also rank each symbol's momentum and volatility across the "
        "universe at each bar (the model then trades only a book over its universe)",
    )
    tr.add_argument(
        "--horizon",
        type=int,
        metavar="BARS",
        help="bars the label looks ahead; the vertical barrier of triple-barrier labels (default 15)",
    )
    tr.add_argument(
        "--labels",
        choices=("sign", "triple-barrier"),
        default="sign",
        help="sign: 1 when the return over --horizon bars beats the round-trip cost (default); "
        "triple-barrier: 1 when the profit barrier is reached before the stop (a bar reaching both "
        "counts as the stop; neither within --horizon: 1 if the return beats the round-trip cost)",
    )
    tr.add_argument(
        "--profit-take",
        type=float,
        metavar="K",
        help="triple-barrier (and --meta): the profit barrier, K ATRs above the close (> 0, default 2.0)",
    )
    tr.add_argument(
        "--stop-loss",
        type=float,
        metavar="K",
        help="triple-barrier (and --meta): the stop barrier, K ATRs below the close (> 0, default 2.0)",
    )
    tr.add_argument("--folds", type=int, metavar="K", help="walk-forward test folds (default 5)")
    tr.add_argument(
        "--meta",
        help="train a meta-label model of a strategy's entries instead (a strategy name, e.g. sma_cross, "
        "its parameters from --fast/--slow or labkit.yaml): the chance each BUY reaches its profit "
        "barrier before its stop or --horizon bars",
    )
    tr.add_argument(
        "--fast", type=int, metavar="N", help="with --meta sma_cross: its fast window (default 10)"
    )
    tr.add_argument(
        "--slow", type=int, metavar="N", help="with --meta sma_cross: its slow window (default 30)"
    )
    tr.add_argument(
        "--seeds", type=int, metavar="N", help="seeds each fold is trained with, at least 3 (default 3)"
    )
    tr.add_argument(
        "--model",
        choices=("ensemble", "xgboost", "logistic", "forest", "bagged"),
        default="ensemble",
        help="the ensemble of the first three (default), one member alone, or bagged: a bag of "
        "shallow trees each fit on rows drawn by the sequential bootstrap (less overlapping labels)",
    )
    tr.add_argument(
        "--fee", type=float, metavar="FRACTION", help="fee of each fill, for labels and fold trading"
    )
    tr.add_argument(
        "--slippage", type=float, metavar="FRACTION", help="adverse slippage, for labels and fold trading"
    )
    _yes_arg(tr)
    _json_arg(
        tr,
        "print one JSON object: model_id, symbols (a pooled model), labels (and profit_take, stop_loss "
        "for triple-barrier), folds, auc_mean, auc_std (across folds), auc_seed_std (across seeds), "
        "seeds, horizon, features",
    )
    tr.set_defaults(handler=research.cmd_train)
    models = _command(
        sub,
        "models",
        "list trained models: id, market, features, window, fold scores",
        "List the models under data/models/, newest first; a folder that cannot be read is listed with why.",
    )
    _json_arg(models)
    models.set_defaults(handler=research.cmd_models)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of processes from 1 to 4096")
    return value


def _sweep_parser(sub: Any) -> None:
    sw = _command(
        sub,
        "sweep",
        "run many backtests of a grid into one results table",
        "Backtest every combination of a grid file (symbols, timeframes, windows, costs, the "
        "strategy's parameters) on local worker processes or a Dask cluster. Each finished run is kept "
        "under data/sweeps/<name>/runs/ as it finishes; data/sweeps/<name>/results.parquet (a row per "
        "run) and blocks.parquet (each run's returns in 64 blocks) are rebuilt from them. Every run "
        "is a trial. A run that fails is recorded with its error and the sweep goes on (exit 0). "
        "docs/sweeps.md describes the grid and the tables.",
        "example: labkit sweep --grid sma.yaml --workers 2; on a cluster: labkit sweep --grid sma.yaml "
        "--dask tcp://HOST:8786 --home /shared/home",
    )
    sw.add_argument("--grid", required=True, metavar="PATH", help="the grid file (YAML)")
    where = sw.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="local worker processes (default: the machine's cores)",
    )
    where.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on the Dask cluster of this scheduler (tcp://HOST:8786); its workers need labkit "
        "and the same home (--home) on shared storage",
    )
    sw.add_argument(
        "--resume",
        action="store_true",
        help="continue a sweep of the same name: skip its finished runs, run its failed ones again",
    )
    sw.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help=f"run a grid of more than {research.CONFIRM_RUNS:,} runs, or of runs over {CONFIRM_BARS:,} "
        "bars, without asking on a terminal",
    )
    _json_arg(sw, "print one JSON object: runs, failed, seconds, the tables, the top runs by Sharpe")
    sw.set_defaults(handler=research.cmd_sweep)


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
    status.set_defaults(handler=sessions.cmd_status)


def _report_parser(sub: Any) -> None:
    report = _command(
        sub,
        "report",
        "render a session, daily, weekly, backtest or train report to HTML",
        "Execute the matching notebook with papermill and render it to HTML under reports/, updating "
        "reports/index.html. Exits 1 when the notebook fails; its HTML still shows the failure. "
        "`labkit report backtest --journal PATH` reports the journal `labkit backtest --journal PATH` "
        "wrote, under reports/_backtests/; `labkit report train --model ID` reports a trained model "
        "(its walk-forward folds, calibration, feature importance and out-of-sample equity), under "
        "reports/_models/. `labkit report weekly` judges the week with the thresholds and calendar "
        "the session recorded when it was created; other thresholds (labkit.yaml, "
        "LABKIT_READINESS__*) or --calendar make a what-if page, never listed READY.",
        "example: labkit backtest --since 2026-01-01 --until 2026-01-08 --journal bt.jsonl && "
        "labkit report backtest --journal bt.jsonl",
    )
    report.add_argument("kind", choices=("session", "daily", "weekly", "backtest", "train", "sweep"))
    _session_arg(report, help="session, daily, weekly: the session's name (default: default)")
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
    report.add_argument(
        "--journal",
        metavar="PATH",
        help="backtest: the decision journal `labkit backtest --journal PATH` wrote (required)",
    )
    report.add_argument(
        "--title",
        metavar="TEXT",
        help="backtest: the page's title (default: the model "
        "on the market, e.g. 'Backtest: sma_cross-10-30 on BTC/USDT 1m')",
    )
    report.add_argument(
        "--calendar",
        choices=("24/7", "equities", "fx"),
        help="daily, weekly, backtest: the market's calendar, which says what bars a day or week has and "
        "how a year is counted (default: the one the session recorded when it was created, from its "
        "source: synthetic and ccxt 24/7, yfinance equities, a bar file's from the whole file; another "
        "makes a weekly report a what-if; a backtest report takes the calendar the backtest recorded "
        "beside its journal, else assumes 24/7)",
    )
    report.add_argument(
        "--model",
        metavar="ID",
        help="train: the model, an id (labkit models) or latest, the newest trained (default latest)",
    )
    report.add_argument(
        "--sweep",
        metavar="NAME",
        help="sweep: the sweep's name (its data/sweeps/<name>/ folder; default: the newest sweep)",
    )
    report.set_defaults(handler=sessions.cmd_report)


def _control_parsers(sub: Any) -> None:
    for name, text, handler in (
        ("stop", "stop a running session gracefully (after its current bar)", sessions.cmd_stop),
        (
            "emergency-stop",
            "halt: flatten at the next open, refuse entries, stay halted until resume",
            sessions.cmd_emergency_stop,
        ),
        ("resume", "lift an emergency stop, a halt or reduce-only", sessions.cmd_resume),
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
    ro.set_defaults(handler=sessions.cmd_reduce_only)

    tr = _command(
        sub,
        "transition",
        "move a session to shadow or paper",
        "Move a session between shadow and paper. Promotion to paper recomputes the weekly readiness "
        "verdict of the session's latest complete ISO week from its journal, with the thresholds and "
        "market calendar the session recorded when it was created (a saved verdict file is never "
        "read), and is refused (exit 1) unless that week is READY (forward decisions only, none "
        "inside a model's training window) and ended at most 8 days ago; --force overrides it and "
        "the override is recorded in the session's state and control log.",
    )
    tr.add_argument("--to", required=True, metavar="{shadow,paper}", help="the mode to move to")
    _session_arg(tr)
    tr.add_argument("--force", action="store_true", help="promote without a passing readiness verdict")
    tr.set_defaults(handler=sessions.cmd_transition)


def _verify_parser(sub: Any) -> None:
    ver = _command(
        sub,
        "verify",
        "check a running session's health; exit 1 listing failures",
        "Check that the session's heartbeat is fresh, its pid alive and holding the run lock, exactly "
        "one engine process runs it, decisions advance, its journal is whole and ends where state.json "
        "does, and it is not halted. Exit 1 lists every failed check.",
        "docs/OPERATIONS.md explains each check.",
    )
    _session_arg(ver)
    ver.add_argument(
        "--max-age", type=_positive_seconds, metavar="SECONDS", help="oldest acceptable heartbeat, in seconds"
    )
    _json_arg(ver)
    ver.set_defaults(handler=sessions.cmd_verify)


def _replay_parser(sub: Any) -> None:
    rep = _command(
        sub,
        "replay",
        "re-run a session's recorded tape and compare its decisions",
        "Check that the journal ends where state.json does and the tape covers it, then feed the bars "
        "the session recorded (its tape) through the engine again and compare every decision field by "
        "field, wall-clock fields aside. Exit 0 when identical, 1 naming the first differing seq and "
        "field, or both seqs when the journal is short, empty or ahead; 2 for a damaged file.",
    )
    _session_arg(rep)
    rep.set_defaults(handler=sessions.cmd_replay)


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
    fetch.set_defaults(handler=research.cmd_data_fetch)
    info = _command(data_sub, "info", "list what is cached: range, bar count, where the gaps are")
    info.add_argument("--source", metavar="SPEC", help="only this source, as fetched: {fetch_kinds}")
    info.add_argument("--symbol", metavar="SYMBOL", help="only this symbol")
    info.add_argument("--timeframe", metavar="TF", help="only this bar length")
    _json_arg(info, "print JSON, every gap included")
    info.set_defaults(handler=research.cmd_data_info)


def _schedule_parser(sub: Any) -> None:
    sch = _command(
        sub,
        "schedule",
        "print service units or cron lines for sessions and reports",
        "Print a systemd user unit and timers, or crontab lines, that keep a session running "
        "(restarted on failure, resumed where it stopped) and render its daily, weekly and session "
        "reports. The session must exist and follow the clock: a replay (--pace fast, or an --until "
        "already past) is finished and is refused (exit 2). Each job names the session's source, "
        "symbol, timeframe and mode. A scheduled report of a day or week the session decided nothing "
        "in exits 0 without a page. docs/OPERATIONS.md explains how to install them.",
        "example: labkit schedule --print-systemd --session live --write ~/.config/systemd/user",
    )
    how = sch.add_mutually_exclusive_group(required=True)
    how.add_argument("--print-cron", action="store_true", help="print crontab lines")
    how.add_argument("--print-systemd", action="store_true", help="print systemd user units")
    _session_arg(sch)
    sch.add_argument(
        "--write",
        metavar="DIR",
        help="also write what is printed into DIR: one file per systemd unit, or labkit-NAME.cron",
    )
    sch.set_defaults(handler=sessions.cmd_schedule)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"{text!r} must be a port from 1 to 65535")
    return value


def _serve_parser(sub: Any) -> None:
    srv = _command(
        sub,
        "serve",
        "serve an HTTP API, health check, Prometheus metrics and a live page over the home",
        "Serve the home over HTTP until SIGTERM or Ctrl-C: GET /health (503 naming stale sessions), "
        "GET /metrics (Prometheus), GET /api/sessions (as labkit status --json), each session's "
        "decisions and equity curve, the reports, and a live page at /. POST /api/sessions/NAME/"
        "{stop,emergency-stop,resume,reduce-only} needs `Authorization: Bearer KEY`, KEY one of "
        "serve.api_keys. It only reads session files and writes commands to their control logs, so "
        "sessions never depend on it. Listening beyond loopback needs serve.api_keys (exit 2).",
        "docs/serve.md describes the routes, the security model, a systemd unit and a Prometheus "
        "scrape config. example: labkit serve --port 8765",
    )
    srv.add_argument("--host", metavar="HOST", help="address to listen on (default serve.host, 127.0.0.1)")
    srv.add_argument("--port", type=_port, metavar="PORT", help="TCP port (default serve.port, 8765)")
    srv.set_defaults(handler=serve.cmd_serve)


def _registry_parsers(sub: Any) -> None:
    for name, text, epilog, handler in (
        (
            "gates",
            "list the gates: chain order, what they judge, reason codes, config keys",
            "Stages and reason codes: docs/gates.md. Config keys: docs/config.md.",
            registry.cmd_gates,
        ),
        (
            "strategies",
            "list the strategies and their parameters",
            "Parameters go under strategies.<name> in labkit.yaml: docs/config.md.",
            registry.cmd_strategies,
        ),
        ("sources", "list the data sources and how to name them in --source", None, registry.cmd_sources),
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


def _market_flags(p: argparse.ArgumentParser, relative: bool = False) -> None:
    # Research runs also take today/yesterday, so a scheduled backtest can name the previous day.
    instant = f"{_INSTANT}, or today or yesterday (that UTC day's midnight)" if relative else _INSTANT
    p.add_argument(
        "--source", metavar="SPEC", help="where bars come from: {source_kinds} (default synthetic)"
    )
    p.add_argument("--symbol", metavar="SYMBOL", help="e.g. BTC/USDT (default), SPY")
    p.add_argument("--timeframe", metavar="TF", help="bar length: 1s, 5s, 1m (default), 15m, 1h, 1d ...")
    p.add_argument("--since", metavar="T", help=f"first bar open, included: {instant}")
    p.add_argument("--until", metavar="T", help=f"end of the range, excluded: {instant}")
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
    p.add_argument(
        "--model",
        metavar="ID",
        help="with --strategy model: a model id (labkit models) or latest, the newest for the market",
    )
    p.add_argument(
        "--meta",
        metavar="ID",
        help="put the meta gate in front of the strategy's entries: a meta model (labkit train --meta) "
        "id or latest, the newest for this strategy, its parameters and the market",
    )
