"""The trial ledger: one line per run of a variant, per user, shared by every home.

The ledger is ``$LABKIT_TRIALS`` when set, else ``$XDG_DATA_HOME/labkit/trials.jsonl``, else
``~/.local/share/labkit/trials.jsonl`` (`trials_path`). Backtests, training runs and sweep runs
(`labkit.research.trials`) and session runs (`record_session_trial`) each append a line; it lives
here, below both research and sessions, because each appends and neither may import the other.

A trial's identity (`trial_identity`) is what can change decisions: the market (source, symbol,
timeframe), the strategy and its parameters, the id of what decided (a model's resolved id, never
``latest``), the training plan of a ``train`` run, the enabled gates and their settings, the risk
settings and the costs. Capital, names, paths, pace, mode, the data's range and the synthetic
seed are not part of it: they change what a variant is measured on, not the variant. The family of
a trial is (source, symbol, timeframe); `trial_stats` counts a family's distinct identities, so a
variant rerun adds a run and no trial, and its latest run's Sharpe ratio stands for it.

Each line is appended whole and flushed to disk (``O_APPEND``, so processes running side by side
never interleave); a line torn by a crash is cut before the next one is written, and never
counted. The file is private (0600), and a folder labkit makes for it is too (0700).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from labkit._io import append_line, iter_lines, make_private_dir, repair_torn_tail
from labkit.analysis.formatting import finite
from labkit.errors import DataError
from labkit.timeutil import iso_ms, now_ms

if TYPE_CHECKING:
    from labkit.config.schema import LabkitConfig

SCHEMA = 2
# What decides a run's result besides the market; names, paces, reports and credentials do not.
# Kept for `config_hash` (a sweep run's id), which also tells ranges, seeds and capital apart.
_SESSION_KEYS = ("source", "symbol", "timeframe", "since", "until", "max_bars", "strategy", "seed", "capital")
# The strategy parameter that names a model to load: the identity holds the id it resolved to.
_MODEL_REFERENCE = "model"


def trials_path(environ: Mapping[str, str] | None = None) -> Path:
    """Return the user's trial ledger: ``$LABKIT_TRIALS``, else in ``$XDG_DATA_HOME`` or ``~/.local/share``.

    A relative ``XDG_DATA_HOME`` is ignored, as the XDG base directory specification says.

    Examples
    --------
    >>> trials_path({"LABKIT_TRIALS": "/srv/team/trials.jsonl"}).as_posix()
    '/srv/team/trials.jsonl'
    >>> trials_path({"XDG_DATA_HOME": "/data", "HOME": "/home/ada"}).as_posix()
    '/data/labkit/trials.jsonl'
    >>> trials_path({"HOME": "/home/ada"}).as_posix()
    '/home/ada/.local/share/labkit/trials.jsonl'
    """
    env = os.environ if environ is None else environ
    explicit = env.get("LABKIT_TRIALS", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    data = env.get("XDG_DATA_HOME", "").strip()
    if data and Path(data).is_absolute():
        return Path(data) / "labkit" / "trials.jsonl"
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "share" / "labkit" / "trials.jsonl"


@dataclass(frozen=True)
class TrialStats:
    """What the deflated Sharpe ratio needs from the trials of one family (source, symbol, timeframe).

    ``trials`` counts the distinct identities tried (`trial_identity`): a variant run again, on the
    same bars or others, tried nothing new and counts once. ``sharpe_variance`` is the variance
    (``ddof=1``) of their Sharpe ratios per observation (each annualised Sharpe divided by the
    root of its ``periods_per_year``), the latest run of each identity standing for it; NaN with
    fewer than two. ``runs`` counts every line.
    """

    trials: int
    sharpe_variance: float
    runs: int = 0


def identity_fields(
    config: LabkitConfig, model: str | None, plan: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return what can change the decisions of a run of `config`: the fields `trial_identity` hashes.

    `model` is the id of what decided (``strategy.model_id``: a model's resolved id, or e.g.
    ``sma_cross-10-30``); `plan` is a ``train`` run's training plan (None for other runs). Only
    the enabled gates' settings count: a gate that is off decides nothing.
    """
    from labkit.config.schema import strategy_config

    data = config.model_dump(mode="json")
    s = config.session
    params = strategy_config(config).model_dump(mode="json")
    params.pop(_MODEL_REFERENCE, None)  # "latest" or an id: `model` holds what it resolved to
    gates = data["gates"]
    # The portfolio gates judge books only: a single symbol's identity stays what it was without them.
    enabled = [name for name in gates["enabled"] if not _book_only(name, gates)]
    return {
        "source": s.source,
        "symbol": s.symbol,
        "timeframe": s.timeframe,
        "strategy": s.strategy,
        "params": params,
        "model": model,
        "plan": dict(plan) if plan is not None else None,
        "gates": {"enabled": enabled, **{name: gates[name] for name in enabled}},
        "risk": data["risk"],
        "costs": data["broker"],
    }


def trial_identity(config: LabkitConfig, model: str | None, plan: Mapping[str, Any] | None = None) -> str:
    """Return a short hash of `identity_fields`: runs with the same identity are one trial."""
    fields = identity_fields(config, model, plan)
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def config_hash(config: LabkitConfig) -> str:
    """Return a short hash of what in `config` decides a run's result, its range and capital included.

    The session's market, range, strategy, seed and capital, the gates, the strategy's parameters,
    risk and broker; not the session's name, pace or mode, and never the exchanges' credentials.
    A sweep names its runs by it; a trial is counted by `trial_identity`, which leaves out the
    range, seed and capital.
    """
    data = config.model_dump(mode="json")
    session = data["session"]
    book = len(session.get("symbols") or ()) > 1
    gates = data["gates"]
    # One symbol's runs are named as before the portfolio gates existed: they never run there. An
    # opt-in gate left off (`Gate.opt_in`) is left out of every run's name, a book's too.
    left_out = _book_only if not book else _opt_in_off
    enabled = [name for name in gates["enabled"] if not left_out(name, gates)]
    gates = {key: value for key, value in gates.items() if key == "enabled" or not left_out(key, gates)}
    gates["enabled"] = enabled
    decisive = {
        "session": {key: session[key] for key in _SESSION_KEYS},
        **({"symbols": session["symbols"], "portfolio": data["portfolio"]} if book else {}),
        "gates": gates,
        "strategy": data["strategies"][session["strategy"]],
        "risk": data["risk"],
        "broker": data["broker"],
    }
    return hashlib.sha256(orjson.dumps(decisive, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def book_trial_line(
    config: LabkitConfig,
    symbols: Sequence[str],
    kind: str,
    figures: Mapping[str, Any],
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """Return the ledger line of one run of a book over `symbols`, by `trial_line`'s rules.

    Its family names every symbol (the list joined by commas, in the book's order) and its identity
    adds the symbol list, every enabled gate (the portfolio ones included) and the ``portfolio``
    limits: the same book under other limits is another variant. A book backtested, swept or run as
    a session is one trial when those agree.
    """
    family = ",".join(symbols)
    as_book = config.model_copy(update={"session": config.session.model_copy(update={"symbol": family})})
    model = figures.get("strategy")
    line = trial_line(as_book, kind, figures, data)
    portfolio = config.portfolio.model_dump(mode="json")
    sections = _gates_data(config)
    gates = [name for name in config.gates.enabled if not _opt_in_off(name, sections)]
    fields = {
        **identity_fields(as_book, str(model) if model is not None else None),
        "symbols": list(symbols),
        "book_gates": gates,
        "portfolio": portfolio,
    }
    line["identity"] = hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    line.update(symbols=list(symbols), gates=gates, portfolio=portfolio)
    return line


def trial_line(
    config: LabkitConfig,
    kind: str,
    figures: Mapping[str, Any],
    data: Mapping[str, Any],
    plan: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the ledger line of one run: its identity, what it was measured on, and its figures.

    `figures` are a run's summary (`labkit.research.backtest.summarize` fields): ``strategy`` (the
    id of what decided), ``sharpe`` (annualised), ``periods_per_year``, ``bars`` (the returns it
    was measured on), ``return_pct``, ``max_drawdown_pct``, ``trades``. `data` says which bars:
    ``first_ts``, ``last_ts``, ``bars`` and ``hash`` (None when not hashed).
    """
    from labkit._version import __version__
    from labkit.config.schema import strategy_config

    s = config.session
    model = figures.get("strategy")
    model = str(model) if model is not None else None
    gates = _gates_data(config)
    return {
        "schema": SCHEMA,
        "time": iso_ms(now_ms()),
        "kind": kind,
        "identity": trial_identity(config, model, plan),
        "source": s.source,
        "symbol": s.symbol,
        "timeframe": s.timeframe,
        "strategy": s.strategy,
        "params": strategy_config(config).model_dump(mode="json"),
        "model": model,
        "plan": dict(plan) if plan is not None else None,
        "gates": [name for name in config.gates.enabled if not _book_only(name, gates)],
        "fee": config.broker.fee,
        "slippage": config.broker.slippage,
        "config_hash": config_hash(config),
        "data": dict(data),
        "sharpe": finite(figures.get("sharpe")),
        "periods_per_year": finite(figures.get("periods_per_year")),
        "returns": figures.get("bars"),
        "return_pct": finite(figures.get("return_pct")),
        "max_drawdown_pct": finite(figures.get("max_drawdown_pct")),
        "trades": figures.get("trades"),
        "labkit": __version__,
    }


def append_trial(record: Mapping[str, Any], path: Path | None = None) -> Path:
    """Append one line to the ledger (`trials_path`; 0600, fsynced) and return the ledger's path.

    A missing folder is made private (0700); an existing one named by ``LABKIT_TRIALS`` is left as
    it is (a team may share one), while labkit's own folder under the data home is kept private.
    """
    path = trials_path() if path is None else path
    own_folder = trials_path({**os.environ, "LABKIT_TRIALS": ""}).parent
    if path.parent == own_folder or not path.parent.exists():
        make_private_dir(path.parent)
    repair_torn_tail(path)  # a line torn by a crash would swallow the start of this one
    append_line(path, orjson.dumps(record) + b"\n")
    return path


def read_trials(
    source: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    *,
    path: Path | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the ledger's trials, oldest first, of the family (`source`, `symbol`, `timeframe`) when given.

    A last line torn by a crash is skipped. Raises DataError naming the file and line when a
    complete line is not a trial.
    """
    path = trials_path() if path is None else path
    if not path.exists():
        return
    wanted = {"source": source, "symbol": symbol, "timeframe": timeframe}
    lines = iter_lines(path)
    number = 0
    while True:
        number += 1
        try:
            trial = next(lines)
        except StopIteration:
            return
        except orjson.JSONDecodeError:
            raise DataError(f"{path}: line {number} is not a trial (not JSON); remove or repair it") from None
        if not isinstance(trial, dict):
            raise DataError(f"{path}: line {number} is not a trial (not a JSON object); remove or repair it")
        if all(value is None or trial.get(key) == value for key, value in wanted.items()):
            yield trial


def trial_stats(source: str, symbol: str, timeframe: str, *, path: Path | None = None) -> TrialStats:
    """Return how many variants the family (`source`, `symbol`, `timeframe`) has tried, and the
    variance of their Sharpe ratios per observation (see `TrialStats`).

    Trials without a finite Sharpe ratio count as trials but not in the variance.
    """
    runs = 0
    variants: dict[object, dict[str, Any]] = {}
    for trial in read_trials(source, symbol, timeframe, path=path):
        runs += 1
        identity = trial.get("identity")
        variants[identity if isinstance(identity, str) else runs] = trial  # the latest run stands
    per_observation: list[float] = []
    for trial in variants.values():
        sharpe, periods = finite(trial.get("sharpe")), finite(trial.get("periods_per_year"))
        if sharpe is not None and periods is not None and periods > 0:
            per_observation.append(sharpe / math.sqrt(periods))
    return TrialStats(len(variants), _variance(per_observation), runs)


def record_session_trial(config: LabkitConfig, journal: Path, model: str | None) -> Path | None:
    """Append a session run's trial: the session's equity so far, read from its journal.

    `model` is the id of what decided in this run. A session that has decided nothing yet measured
    nothing, and records nothing (None); otherwise returns the ledger's path.
    """
    from labkit._io import last_line
    from labkit.analysis.calendar import bar_times
    from labkit.engine.journal import read_journal
    from labkit.strategies.sides import BUY
    from labkit.timeutil import parse_instant

    # Two columns of a million-line journal read in a third of a second; the bar times only when a
    # bar file's calendar must be inferred from them (parsing them doubles the read).
    file_source = config.session.source.partition(":")[0] in ("csv", "parquet")
    columns = ["equity", "fill_side", *(["ts"] if file_source else [])]
    frame = read_journal(journal, columns=columns)
    last = last_line(journal)
    if frame.empty or last is None:
        return None
    with open(journal, "rb") as handle:
        first = orjson.loads(handle.readline())
    symbols = list(config.session.symbols)
    # A book has a line per time and symbol: its equity curve is each time's last line.
    every = len(symbols) if len(symbols) > 1 else 1
    equity = frame["equity"].to_numpy(dtype="float64")[every - 1 :: every]
    times = bar_times(frame) if file_source else None
    if times is not None and every > 1:
        times = times[every - 1 :: every]
    figures = session_figures(config, equity, parse_instant(first["ts"]), parse_instant(last["ts"]), times)
    figures["trades"] = int((frame["fill_side"] == BUY).sum())  # entries: an exit never fills a BUY
    span = {"first_ts": figures.pop("first_ts"), "last_ts": figures.pop("last_ts")}
    data = {**span, "bars": len(equity), "hash": None}  # bars a session read are not hashed
    figures = {**figures, "strategy": model}
    if every > 1:
        return append_trial(book_trial_line(config, symbols, "session", figures, data))
    return append_trial(trial_line(config, "session", figures, data))


def session_figures(
    config: LabkitConfig, equity: Any, first_ms: int, last_ms: int, times_ms: Any = None
) -> dict[str, Any]:
    """Return the trial figures of an equity curve at bar closes, annualised by the session's calendar.

    `times_ms` (the bars' open times) is needed only to infer a bar file's calendar.
    """
    from labkit.analysis import metrics
    from labkit.analysis.calendar import session_calendar
    from labkit.timeutil import iso_s, timeframe_ms

    s = config.session
    tf = timeframe_ms(s.timeframe)
    calendar = session_calendar(s.source, s.calendar, times_ms, tf, s.exchange)
    periods_per_year = calendar.periods_per_year(tf)
    returns = metrics.equity_returns(equity, s.capital)
    sharpe = metrics.sharpe_ratio(returns, periods_per_year)
    return {
        "sharpe": sharpe if math.isfinite(sharpe) else 0.0,  # as a backtest's: no dispersion, 0
        "periods_per_year": periods_per_year,
        "bars": len(equity),
        "return_pct": float((equity[-1] / s.capital - 1.0) * 100.0),
        "max_drawdown_pct": metrics.max_drawdown(equity, s.capital) * 100.0,
        "first_ts": iso_s(first_ms),
        "last_ts": iso_s(last_ms),
    }


def _variance(values: list[float]) -> float:
    n = len(values)
    if n < 2:
        return math.nan
    mean = sum(values) / n
    return sum((v - mean) ** 2 for v in values) / (n - 1)


def _gates_data(config: LabkitConfig) -> dict[str, Any]:
    return config.model_dump(mode="json")["gates"]


def _book_only(stage: str, gates: Mapping[str, Any] | None = None) -> bool:
    # A stage a single symbol's run leaves out: a portfolio gate, or an opt-in gate left off
    # (`Gate.opt_in` unset in `gates`, the config's gates section as data).
    from labkit.gates.registry import registered_gates

    gate = registered_gates().get(stage)
    return gate is not None and gate.book_only or _opt_in_off(stage, gates)


def _opt_in_off(stage: str, gates: Mapping[str, Any] | None) -> bool:
    # An opt-in gate whose key is unset in `gates` (the config's gates section as data) never runs.
    from labkit.gates.registry import registered_gates

    gate = registered_gates().get(stage)
    key = None if gate is None else gate.opt_in
    return key is not None and gates is not None and (gates.get(stage) or {}).get(key) is None
