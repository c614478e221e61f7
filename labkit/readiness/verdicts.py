"""Weekly verdicts: judged from a session's journal, saved under ``data/sessions/<session>/readiness/``.

`judge_week` computes a week's verdict from the session's files, with what the session recorded at
creation (its thresholds, its market's calendar, its models' training spans): the gates, and beside
them the evidence of luck and fills and the digests of what it was judged from. `labkit report
weekly` saves it here (`save_verdict`) for its page, with the code version it was computed with;
an empty week gets none, and a verdict judged with other thresholds is a what-if, saved under its
own name. A saved verdict is a cache: `promotion_check`, which says whether ``labkit transition
--to paper`` may go ahead, recomputes the verdict of the session's latest complete ISO week and
never reads a file a hand could have edited.
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
from labkit.home import as_path
from labkit.readiness.weekly import WeeklyReadiness
from labkit.timeutil import DAY_MS, human_duration, iso_ms, now_ms

if TYPE_CHECKING:  # a report reads verdicts without loading every config (issue 17)
    from labkit.config.schema import ReadinessConfig

MAX_AGE_DAYS = 8


def judge_week(
    home: Path,
    session: str,
    week: str,
    thresholds: ReadinessConfig | None = None,
    calendar: str | None = None,
) -> WeeklyReadiness:
    """Return the verdict of `session` for `week` (``YYYY-Www``), recomputed from its journal.

    The gates read the session's journal on the market calendar it recorded at creation, with the
    thresholds it recorded then (its ``config.json``'s ``readiness``), the trials of its market's
    family for the deflated Sharpe ratio, and the in-sample spans of the models it traded.
    `thresholds` or `calendar` (``24/7``, ``equities``, ``fx``) that differ from the recorded ones
    make the verdict a what-if naming each difference: it never reads READY and never promotes.
    Beside the gates, changing none: the same decisions under worse (and better) fills, and the
    digests (`file_hash`) of the files judged. An empty week's verdict is returned as it is
    (`WeeklyReadiness.empty`); `save_verdict` refuses it.
    """
    from labkit.analysis.trial_ledger import trial_stats
    from labkit.engine.journal import read_journal
    from labkit.readiness.weekly import weekly_readiness
    from labkit.session.paths import existing_session
    from labkit.session.recorded import config_changed, session_market, session_spans
    from labkit.session.state import read_saved_config
    from labkit.timeutil import timeframe_ms

    paths = existing_session(home, session)
    saved = read_saved_config(paths) or {}
    journal = read_journal(paths.decisions)
    own = session_thresholds(saved)
    market = session_market(paths, saved, journal)
    differences = threshold_changes(thresholds, own)
    if calendar is not None:
        from labkit.analysis.calendar import session_calendar

        asked = session_calendar(str(saved.get("session", {}).get("source", "synthetic")), calendar)
        if calendar != "auto" and asked.kind != market.kind:
            differences.append(f"calendar {asked.kind} instead of {market.kind}")
            market = session_calendar(
                "journal", calendar, None, timeframe_ms(saved.get("session", {}).get("timeframe", "1m"))
            )
    s = saved.get("session", {})
    tf, capital = timeframe_ms(s.get("timeframe", "1m")), s.get("capital")
    # A book's trial family names its symbols joined by commas (`book_trial_line`).
    family = ",".join(s["symbols"]) if s.get("symbols") else str(s.get("symbol"))
    stats = trial_stats(str(s.get("source")), family, str(s.get("timeframe")))
    models = tuple(str(m) for m in journal["model"].dropna().unique()) if "model" in journal else ()
    result = weekly_readiness(
        journal,
        week,
        thresholds or own,
        tf,
        capital,
        market,
        trials=stats.trials,
        sharpe_variance=stats.sharpe_variance,
        in_sample=session_spans(home, paths, list(models)),
        what_if=differences,
        doubts=[{"code": "config_changed", "explanation": why} for why in [config_changed(paths)] if why],
    )
    if result.empty:
        return result
    return _with_evidence(result, paths, saved, journal, market, stats)


def session_thresholds(saved: Mapping[str, Any]) -> ReadinessConfig:
    """Return the readiness thresholds a session recorded at creation (its ``config.json``)."""
    from labkit.config.schema import ReadinessConfig

    recorded = saved.get("readiness")
    if not isinstance(recorded, Mapping):
        return ReadinessConfig()
    return ReadinessConfig.model_validate(
        {k: v for k, v in recorded.items() if k in ReadinessConfig.model_fields}
    )


def threshold_changes(asked: ReadinessConfig | None, own: ReadinessConfig) -> list[str]:
    """Return each threshold of `asked` that differs from the session's `own`, in words."""
    if asked is None:
        return []
    mine = own.model_dump(mode="json")
    return [
        f"{name} {value} (the session's own: {mine.get(name)})"
        for name, value in asked.model_dump(mode="json").items()
        if mine.get(name) != value
    ]


def _with_evidence(
    result: WeeklyReadiness, paths: Any, saved: dict[str, Any], journal: Any, market: Any, stats: Any
) -> WeeklyReadiness:
    from dataclasses import replace

    from labkit.analysis.execution import session_sizing
    from labkit.config.schema import ReadinessConfig
    from labkit.readiness.evidence import execution_check, sharpe_evidence
    from labkit.session.tape import tape_bars
    from labkit.timeutil import timeframe_ms

    s, broker = saved.get("session", {}), saved.get("broker", {})
    tf, capital = timeframe_ms(s.get("timeframe", "1m")), float(s.get("capital", 10_000.0))
    evidence = sharpe_evidence(journal, result.week, tf, market, stats.trials, stats.sharpe_variance, capital)
    # Refilling replays one market's orders against its bars: a book's shared cash is not refilled
    # (`labkit.analysis.execution.refill`), so a book's verdict stands without that check.
    bars = tape_bars(paths.tape) if len(s.get("symbols") or ()) < 2 else pd.DataFrame()
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
            **session_sizing(saved),
        )
        if len(bars)
        else {}
    )
    provenance = {
        "config.json": file_hash(paths.config),
        "recorded.json": file_hash(paths.root / "recorded.json"),
        "tape.jsonl": file_hash(paths.tape),
        "decisions.jsonl": file_hash(paths.decisions),
        "models": {str(m): short_hash(str(m).encode()) for m in result.models},
    }
    return replace(result, evidence=evidence, execution=execution, provenance=provenance)


def verdict_path(home: Path, session: str, week: str, what_if: bool = False) -> Path:
    """Return where the verdict of `week` is saved (a what-if's beside it, under its own name)."""
    return _verdict_dir(home, session) / f"weekly-{week}{'.what-if' if what_if else ''}.json"


def save_verdict(home: str | Path, session: str, result: WeeklyReadiness) -> Path:
    """Write the verdict to ``data/sessions/<session>/readiness/weekly-<week>.json`` atomically.

    Raises
    ------
    ConfigError
        When the week is empty: a week in which the session decided nothing gets no verdict.
    """
    home = as_path(home, "home")
    from labkit.home import code_version

    if result.empty:
        raise ConfigError(
            f"week: session {session!r} decided nothing in {result.week}; an empty week gets no verdict"
        )
    path = verdict_path(home, session, result.week, what_if=bool(result.what_if))
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


def latest_verdict(home: str | Path, session: str) -> dict[str, Any] | None:
    """Return the saved verdict of the latest ISO week, or None when there is none."""
    home = as_path(home, "home")
    directory = _verdict_dir(home, session)
    if not directory.is_dir():
        return None
    for path in sorted(directory.glob("weekly-*.json"), reverse=True):
        if path.name.endswith(".what-if.json"):
            continue
        verdict = read_json(path)
        if verdict is not None:
            return verdict
    return None


@dataclass(frozen=True)
class Promotion:
    """Whether a session may be promoted to paper, and why not."""

    week: str | None  # the session's latest complete ISO week
    verdict: Mapping[str, Any] | None  # its verdict, recomputed from the journal
    refusals: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.refusals

    def summary(self) -> dict[str, Any]:
        """Return what a transition records about the verdict it relied on (or overrode)."""
        from labkit.home import code_version

        verdict = self.verdict or {}
        return {
            "week": self.week,
            "passed": verdict.get("passed"),
            "outcome": verdict.get("outcome"),
            "recomputed_at": iso_ms(now_ms()),
            "code_version": code_version(),
            "thresholds": verdict.get("thresholds"),
            "refused": "; ".join(self.refusals) or None,
        }


def promotion_check(home: Path, session: str, now: int | None = None) -> Promotion:
    """Judge whether `session` may move to paper, recomputing the verdict from its journal.

    The week judged is the session's latest complete ISO week (`latest_complete_week`); it must have
    ended at most `MAX_AGE_DAYS` days before `now` (epoch ms; default the clock), and its verdict,
    recomputed by `judge_week` with the thresholds and calendar the session recorded at creation,
    must pass. A saved verdict file is a cache for the reports: it is never read here, so editing one
    changes nothing.
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
    result = judge_week(home, session, week)
    found = _age(week, now)
    if result.empty:
        found.insert(
            0, f"the session decided nothing in {week}, its latest complete ISO week, so it has no verdict"
        )
    elif not result.passed:
        reasons = [f"{r['code']} ({r['explanation']})" for r in result.refusals]
        reasons += [g.name for g in result.gates if not g.passed]
        found.insert(
            0,
            f"the weekly readiness for {week}, recomputed from the journal with the session's own "
            f"thresholds, is NOT READY: {', '.join(reasons)}",
        )
    return Promotion(week, result.to_dict(), tuple(found))


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


def _age(week: str, now: int) -> list[str]:
    ended = week_bounds(week)[1]
    age = now - int(ended.value // 1_000_000)
    if age > MAX_AGE_DAYS * DAY_MS:
        return [
            f"{week} ended {human_duration(age / 1000)} ago ({ended.strftime('%Y-%m-%d')}); the week "
            f"judged must have ended at most {MAX_AGE_DAYS} days ago: evidence that old says little "
            "about the market now"
        ]
    return []


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
