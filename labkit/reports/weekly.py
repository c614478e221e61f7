"""The weekly report's tables: the verdict, its gates, its evidence, its coverage per day, and the
provenance of the dossier."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import pandas as pd

from labkit._io import file_hash, read_json, short_hash
from labkit.analysis.formatting import figure, is_number, money, share
from labkit.readiness.weekly import WeeklyReadiness
from labkit.reports.figures import GREEN, RED
from labkit.reports.sessions import SessionView
from labkit.reports.tables import describe_code_version, utc

# Gate figures that are amounts of money (in the quote currency); the others are ratios and counts.
MONEY_FIGURES = frozenset({"costs", "gross_pnl", "peak_equity"})


def gates_table(result: WeeklyReadiness, currency: str = "") -> pd.DataFrame:
    """Return the weekly gates as a pass/fail table with their figures and thresholds.

    Figures that are money (`MONEY_FIGURES`: costs, gross PnL, peak equity) carry `currency`.
    """

    def shown(key: str, value: Any, money_too: bool) -> str:
        if money_too and key in MONEY_FIGURES and is_number(value) and value == value:
            return money(value, currency)
        return figure(value)

    def fmt(values: Mapping[str, Any], money_too: bool = False) -> str:
        return ", ".join(f"{k}={shown(k, v, money_too)}" for k, v in values.items())

    return pd.DataFrame(
        {
            "gate": [g.name for g in result.gates],
            "status": ["PASS" if g.passed else "FAIL" for g in result.gates],
            "figures": [fmt(g.figures, money_too=True) for g in result.gates],
            "thresholds": [fmt(g.thresholds) for g in result.gates],
            "explanation": [g.explanation for g in result.gates],
        }
    )


def gates_styled(result: WeeklyReadiness, currency: str = "") -> Any:
    """Return `gates_table` styled: PASS in green, FAIL in red, no index; money in `currency`."""

    def colour(value: str) -> str:
        return f"color:{GREEN if value == 'PASS' else RED};font-weight:bold"

    return gates_table(result, currency).style.map(colour, subset=["status"]).hide(axis="index")


def per_day_table(result: WeeklyReadiness) -> pd.DataFrame:
    """Return the week's coverage per UTC day: decisions, bars the calendar expected, coverage in %."""
    days = list(result.per_day)
    return pd.DataFrame(
        {
            "decisions": [d.get("decisions") for d in days],
            "bars expected": [d.get("expected") for d in days],
            "coverage": [share(d.get("coverage")) for d in days],
        },
        index=pd.Index([str(d.get("day")) for d in days], name="day (UTC)"),
    )


def verdict_html(result: WeeklyReadiness) -> str:
    """Return the weekly verdict as a large coloured HTML heading, with why it is not READY in words.

    Refusals (a replayed week, a week the model was trained on) come first, then failing gates; a
    verdict judged with thresholds other than the session's own says it is a what-if and names them.
    """
    failed = [g.name for g in result.gates if not g.passed]
    colour = GREEN if result.passed and not result.what_if else RED
    if result.what_if:
        words = "WHAT-IF: " + ("would pass" if result.passed else "would not pass") + ", not a verdict"
    elif result.passed:
        words = "READY: all gates pass"
    elif result.refusals:
        words = "NOT READY: " + ", ".join(html.escape(str(r["code"])) for r in result.refusals)
    else:
        words = f"NOT READY: {len(failed)} of {len(result.gates)} gates fail"
    detail = "".join(
        f"<p><b>{html.escape(str(r['code']))}</b>: {html.escape(str(r['explanation']))}</p>"
        for r in result.refusals
    )
    if result.what_if:
        detail += (
            "<p>Judged with thresholds other than the ones the session recorded when it was created: "
            f"{html.escape('; '.join(result.what_if))}. A what-if never promotes and is never listed "
            "READY.</p>"
        )
    if failed and not result.passed:
        detail += f"<p>Failing gates: {html.escape(', '.join(failed))}</p>"
    replays = (
        f" {result.replays} of {result.decisions + result.replays} decisions were replays (decided long "
        "after their bar closed) and count as missing."
        if result.replays
        else ""
    )
    return (
        f'<div style="border:3px solid {colour};padding:0.6em 1em;margin:0.5em 0">'
        f'<div style="font-size:2.4em;font-weight:bold;color:{colour}">{words}</div>'
        f"<p>Week {html.escape(result.week)}: {result.trades} closed trades, "
        f"{result.decisions} forward decisions for {result.expected} bars expected.{replays}</p>"
        f"{detail}</div>"
    )


def evidence_table(result: WeeklyReadiness) -> pd.DataFrame:
    """Return the deflated Sharpe ratio, its trial count and the track record still needed."""
    e = result.evidence
    if not e:
        return pd.DataFrame({"value": []})
    items = {
        "Sharpe ratio (annualised)": f"{figure(e.get('sharpe'))} ({e.get('annualisation')})",
        "deflated Sharpe ratio": f"{figure(e.get('deflated_sharpe'))} "
        f"(against the best of {e.get('trials')} trial(s) of this market, by luck)",
        "track record": str(e.get("track_record")),
    }
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="evidence"))


def execution_table(result: WeeklyReadiness, currency: str) -> pd.DataFrame:
    """Return the week's verdict under each execution model, side by side (base is the verdict)."""
    rows = {
        name: {
            "verdict": data.get("outcome"),
            "failing gates": ", ".join(data.get("failing", [])) or "none",
            "closed trades": data.get("trades"),
            "net PnL": money(data.get("net_pnl", 0.0), currency),
            "mean net return per trade": share(data.get("mean_net_return"), 3, sign=True),
            "fills": data.get("model"),
        }
        for name, data in result.execution.items()
    }
    return pd.DataFrame(rows)


def provenance_table(view: SessionView, models: Any = (), verdict: str = "") -> pd.DataFrame:
    """Return what a weekly dossier was made from: code version, file hashes, models.

    Hashes are the first 12 hex digits of the SHA-256 of the session's ``config.json``,
    ``tape.jsonl`` and ``decisions.jsonl`` as they were when the page was made, and of each model
    id decided with (`models`; a model is named by its strategy and parameters). `verdict` is the
    saved verdict file (relative to the home): the code version it was computed with is shown too.
    Paths are relative to the home.
    """
    from labkit.home import code_version
    from labkit.session.paths import session_paths

    paths = session_paths(view.home, view.name)
    items: dict[str, str] = {"code (this page)": describe_code_version(code_version())}
    if verdict:
        saved = read_json(view.home / verdict)
        if saved is not None:
            when = saved.get("saved_at")
            items["code (the verdict)"] = describe_code_version(str(saved.get("code_version", "?"))) + (
                f"; saved {utc(when)}" if when else ""
            )
    for label, path in (
        ("config.json", paths.config),
        ("tape.jsonl", paths.tape),
        ("decisions.jsonl", paths.decisions),
    ):
        digest = file_hash(path)
        where = path.relative_to(view.home).as_posix()
        items[label] = f"sha256 {digest} ({where})" if digest else f"missing ({where})"
    for model in models:
        items[f"model {model}"] = f"sha256 {short_hash(str(model).encode())} (of the model id)"
    return pd.DataFrame({"value": list(items.values())}, index=pd.Index(list(items), name="provenance"))
