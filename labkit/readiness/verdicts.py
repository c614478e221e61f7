"""Saved weekly verdicts under ``data/sessions/<session>/readiness/``, and what promotion asks of them.

`judge_week` computes a week's verdict from the session's files: the gates, and beside them the
evidence of luck and fills and the digests of what it was judged from. `labkit report weekly`
judges and saves it here (`save_verdict`), with the thresholds and the code version it was computed
with; an empty week gets none. `promotion_check`
says whether ``labkit transition --to paper`` may go ahead: the verdict of the session's latest
complete ISO week must pass, be at most `MAX_AGE_DAYS` days old and have been computed with
thresholds no looser than the session's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from labkit._io import file_hash, last_line, read_json, short_hash, write_json_atomic
from labkit.analysis.periods import _DAY, iso_week, week_bounds
from labkit.errors import ConfigError
from labkit.readiness.weekly import WeeklyReadiness
from labkit.timeutil import DAY_MS, human_duration, iso_ms, now_ms, parse_instant

if TYPE_CHECKING:  # a report reads verdicts without loading every config (issue 17)
    from labkit.config.schema import ReadinessConfig

MAX_AGE_DAYS = 8

# How each threshold gets stricter. A setting the table does not order must be equal: a different
# number of sub-periods is a different test, and another bootstrap seed is another draw.
STRICTER = {
    "min_coverage": "higher",
    "min_trades": "higher",
    "bootstrap_samples": "higher",
    "min_same_sign": "higher",
    "min_psr": "higher",
    "max_drawdown": "lower",
    "max_cost_share": "lower",
    "max_reason_share": "lower",
    "max_data_error_share": "lower",
}


def judge_week(
    home: Path, session: str, week: str, thresholds: ReadinessConfig, calendar: str | None = None
) -> WeeklyReadiness:
    """Return the verdict of `session` for `week` (``YYYY-Www``), judged with `thresholds`.

    The gates read the session's journal on its market's calendar (`calendar` overrides the
    session's: ``24/7``, ``equities``, ``fx``, an exchange). Beside them, and changing neither:
    the deflated Sharpe ratio across the trials recorded for the market, the same decisions under
    worse (and better) fills, and the digests (`file_hash`) of the files judged. An empty week's
    verdict is returned as it is (`WeeklyReadiness.empty`); `save_verdict` refuses it.
    """
    from labkit.analysis.calendar import calendar_of
    from labkit.engine.journal import read_journal
    from labkit.readiness.weekly import weekly_readiness
    from labkit.session.paths import existing_session
    from labkit.session.state import read_saved_config
    from labkit.timeutil import timeframe_ms

    paths = existing_session(home, session)
    saved = read_saved_config(paths) or {}
    journal = read_journal(paths.decisions)
    market = calendar_of(saved, journal, calendar)
    s = saved.get("session", {})
    tf, capital = timeframe_ms(s.get("timeframe", "1m")), s.get("capital")
    result = weekly_readiness(journal, week, thresholds, tf, capital, market)
    if result.empty:
        return result
    return _with_evidence(result, home, paths, saved, journal, market)


def _with_evidence(
    result: WeeklyReadiness, home: Path, paths: Any, saved: dict[str, Any], journal: Any, market: Any
) -> WeeklyReadiness:
    from dataclasses import replace

    from labkit.config.schema import ReadinessConfig
    from labkit.readiness.evidence import execution_check, sharpe_evidence
    from labkit.research.trials import trial_stats
    from labkit.session.tape import tape_bars
    from labkit.timeutil import timeframe_ms

    s, broker = saved.get("session", {}), saved.get("broker", {})
    tf, capital = timeframe_ms(s.get("timeframe", "1m")), float(s.get("capital", 10_000.0))
    stats = trial_stats(home, str(s.get("symbol")), str(s.get("timeframe")))
    evidence = sharpe_evidence(journal, result.week, tf, market, stats.trials, stats.sharpe_variance, capital)
    bars = tape_bars(paths.tape)
    execution = (
        execution_check(
            journal,
            bars,
            result.week,
            ReadinessConfig.model_validate(result.thresholds),
            tf,
            capital,
            market,
            float(broker.get("fee", 0.001)),
            float(broker.get("slippage", 0.0)),
        )
        if len(bars)
        else {}
    )
    provenance = {
        "config.json": file_hash(paths.config),
        "tape.jsonl": file_hash(paths.tape),
        "decisions.jsonl": file_hash(paths.decisions),
        "models": {str(m): short_hash(str(m).encode()) for m in result.models},
    }
    return replace(result, evidence=evidence, execution=execution, provenance=provenance)


def verdict_path(home: Path, session: str, week: str) -> Path:
    """Return where the verdict of `week` is saved."""
    return _verdict_dir(home, session) / f"weekly-{week}.json"


def save_verdict(home: Path, session: str, result: WeeklyReadiness) -> Path:
    """Write the verdict to ``data/sessions/<session>/readiness/weekly-<week>.json`` atomically.

    Raises
    ------
    ConfigError
        When the week is empty: a week in which the session decided nothing gets no verdict.
    """
    from labkit.home import code_version

    if result.empty:
        raise ConfigError(
            f"week: session {session!r} decided nothing in {result.week}; an empty week gets no verdict"
        )
    path = verdict_path(home, session, result.week)
    write_json_atomic(
        path,
        {
            "session": session,
            "saved_at": iso_ms(now_ms()),
            "code_version": code_version(),
            **result.to_dict(),
        },
    )
    return path


def load_verdict(path: Path | str) -> WeeklyReadiness:
    """Return the saved verdict at `path` (what the weekly report shows)."""
    data = read_json(Path(path))
    if data is None:
        raise ConfigError(f"verdict: {path} is missing or not a verdict; `labkit report weekly` saves one")
    return WeeklyReadiness.from_dict(data)


def latest_verdict(home: Path, session: str) -> dict[str, Any] | None:
    """Return the saved verdict of the latest ISO week, or None when there is none."""
    directory = _verdict_dir(home, session)
    if not directory.is_dir():
        return None
    for path in sorted(directory.glob("weekly-*.json"), reverse=True):
        verdict = read_json(path)
        if verdict is not None:
            return verdict
    return None


def looser_thresholds(recorded: Mapping[str, Any], required: Mapping[str, Any]) -> list[str]:
    """Return each threshold of `recorded` that is looser than `required`, as ``name value vs value``.

    Examples
    --------
    >>> looser_thresholds({"min_trades": 7, "max_drawdown": 0.05}, {"min_trades": 20, "max_drawdown": 0.1})
    ['min_trades 7 < 20']
    >>> looser_thresholds({}, {"min_psr": 0.95})
    ['min_psr not recorded']
    """
    found = []
    for name, need in required.items():
        if name not in recorded or recorded[name] is None:
            found.append(f"{name} not recorded")
            continue
        got, way = recorded[name], STRICTER.get(name, "equal")
        if way == "higher" and got < need:
            found.append(f"{name} {got:g} < {need:g}")
        elif way == "lower" and got > need:
            found.append(f"{name} {got:g} > {need:g}")
        elif way == "equal" and got != need:
            found.append(f"{name} {got} instead of {need}")
    return found


@dataclass(frozen=True)
class Promotion:
    """Whether a session may be promoted to paper, and why not."""

    week: str | None  # the session's latest complete ISO week
    verdict: Mapping[str, Any] | None  # its saved verdict
    refusals: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.refusals

    def summary(self) -> dict[str, Any]:
        """Return what a transition records about the verdict it relied on (or overrode)."""
        verdict = self.verdict or {}
        return {
            "week": self.week,
            "passed": verdict.get("passed"),
            "saved_at": verdict.get("saved_at"),
            "code_version": verdict.get("code_version"),
            "refused": "; ".join(self.refusals) or None,
        }


def promotion_check(
    home: Path, session: str, required: ReadinessConfig, now: int | None = None
) -> Promotion:
    """Judge whether `session` may move to paper on its saved verdicts.

    The verdict must be that of the session's latest complete ISO week (`latest_complete_week`),
    pass, have been saved at most `MAX_AGE_DAYS` days before `now` (epoch ms; default the clock),
    and record thresholds no looser than `required` (the session's ``readiness`` config).
    """
    from labkit.session.paths import session_paths

    now = now_ms() if now is None else now
    decisions = session_paths(home, session).decisions
    first, last = _first_ts(decisions), last_line(decisions)
    if first is None or last is None:
        return Promotion(None, None, ("the session has decided nothing yet, so it has no week to judge",))
    week = latest_complete_week(first, pd.Timestamp(last["ts"]), pd.Timestamp(now, unit="ms", tz="UTC"))
    if week is None:
        began = iso_week(first)
        ends = week_bounds(began)[1].strftime("%Y-%m-%dT%H:%MZ")
        why = f"the session has no complete ISO week yet: it began in {began}, which ends {ends}"
        return Promotion(None, None, (why,))
    verdict = read_json(verdict_path(home, session, week))
    if verdict is None:
        return Promotion(week, None, (_missing(home, session, week),))
    return Promotion(week, verdict, tuple(_refusals(week, verdict, required, now)))


def latest_complete_week(first: pd.Timestamp, last: pd.Timestamp, now: pd.Timestamp) -> str | None:
    """Return the session's latest complete ISO week, or None when it has none yet.

    That is the week of its last decision once that week has ended; while the session is still in
    that week, the week before (when the session had begun by then), decided in or not.

    Examples
    --------
    >>> monday = pd.Timestamp("2026-01-05", tz="UTC")
    >>> latest_complete_week(monday, monday + pd.Timedelta(days=2), monday + pd.Timedelta(days=30))
    '2026-W02'
    >>> latest_complete_week(monday, monday + pd.Timedelta(days=9), monday + pd.Timedelta(days=10))
    '2026-W02'
    >>> latest_complete_week(monday, monday + pd.Timedelta(days=2), monday + pd.Timedelta(days=3)) is None
    True
    """
    week = iso_week(last)
    start, end = week_bounds(week)
    if end <= now:
        return week
    return iso_week(start - _DAY) if first < start else None


def _refusals(week: str, verdict: Mapping[str, Any], required: ReadinessConfig, now: int) -> list[str]:
    found = []
    if verdict.get("empty") or not verdict.get("decisions"):
        found.append(
            f"the verdict for {week} is of an empty week: the session decided nothing in it, so it "
            "judges nothing"
        )
    elif not verdict.get("passed"):
        failing = [str(g.get("name")) for g in verdict.get("gates", []) if not g.get("passed")]
        found.append(f"the weekly readiness for {week} fails: {', '.join(failing)}")
    found += _age(week, verdict, now)
    recorded = verdict.get("thresholds")
    if not isinstance(recorded, Mapping):
        found.append(
            f"the verdict for {week} records no thresholds (an older labkit made it); "
            "`labkit report weekly` makes it again"
        )
    else:
        looser = looser_thresholds(recorded, required.model_dump(mode="json"))
        if looser:
            found.append(
                f"the verdict for {week} was computed with thresholds looser than the session's "
                f"readiness config: {', '.join(looser)}"
            )
    return found


def _age(week: str, verdict: Mapping[str, Any], now: int) -> list[str]:
    try:
        saved = parse_instant(str(verdict.get("saved_at")))
    except ConfigError:
        return [f"the verdict for {week} does not say when it was saved"]
    if now - saved > MAX_AGE_DAYS * DAY_MS:
        return [
            f"the verdict for {week} was saved {human_duration((now - saved) / 1000)} ago "
            f"({verdict.get('saved_at')}); it must be at most {MAX_AGE_DAYS} days old: "
            "`labkit report weekly` makes it again"
        ]
    return []


def _missing(home: Path, session: str, week: str) -> str:
    why = (
        f"no weekly readiness verdict for {week}, the session's latest complete ISO week "
        f"(`labkit report weekly --session {session} --week {week}` makes one)"
    )
    other = latest_verdict(home, session)
    if other is not None and other.get("week") != week:
        why += f"; the latest saved verdict is for {other.get('week')}, not that week"
    return why


def _first_ts(journal: Path) -> pd.Timestamp | None:
    import orjson

    try:
        with open(journal, "rb") as handle:
            raw = handle.readline()
        return pd.Timestamp(orjson.loads(raw)["ts"]) if raw.endswith(b"\n") else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _verdict_dir(home: Path, session: str) -> Path:
    return home / "data" / "sessions" / session / "readiness"
