"""The index of reports: ``reports/index.html``, listing every report's page with its outcome.

Each report leaves a JSON sidecar beside its page (`labkit.reports.render` writes it); the index
is rebuilt from those sidecars, so it lists what is on disk: a session's reports while the session
exists (and was not started again since), a backtest's while its page exists, a model's while the
model does, a sweep's while its results do. `index_entries` is what `labkit serve` shows.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from labkit._io import read_json, write_atomic
from labkit.errors import ConfigError
from labkit.session.paths import session_paths
from labkit.timeutil import parse_instant

# Backtest reports live in reports/_backtests/: no session can be named so (a session's name starts
# with a letter or a digit), so they never mix with a session's reports.
BACKTESTS = "_backtests"
# Train reports live in reports/_models/, one page per model: train-<model id>.html.
MODELS = "_models"
# Sweep reports live in reports/_sweeps/, one page per sweep: sweep-<name>.html.
SWEEPS = "_sweeps"


@dataclass(frozen=True)
class IndexEntry:
    """One report the index lists: its sidecar, its page (relative to ``reports/``), its outcome."""

    sidecar: dict[str, Any]
    link: str

    @property
    def outcome(self) -> str:
        """READY, NOT READY, what-if, empty, failed, a run's loss or gain, ok, or an AUC or a PBO."""
        return _outcome(self.sidecar)


def write_index(home: Path) -> Path:
    """Rewrite ``reports/index.html`` from the sidecars of every report; return its path.

    It lists `index_entries`, newest first. Files are left alone.
    """
    entries = [(entry.sidecar, entry.link) for entry in index_entries(home)]
    rows = "\n".join(
        f"<tr><td>{_e(d['kind'])}</td><td>{_e(d['session'])}</td>"
        f"<td>{_e(d.get('period_shown') or d['period'])}</td>"
        f'<td class="{_outcome_class(d)}">{_e(_outcome(d))}</td>'
        f"<td>{_e(d.get('generated_at'))}</td><td>{_link(d, link)}</td></tr>"
        for d, link in entries
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>labkit reports'
        "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}.ok{color:#1a7f37}"
        ".failed{color:#cf222e;font-weight:bold}.notready{color:#cf222e}.empty{color:#6e7781}"
        ".loss{color:#cf222e}.gain{color:#1a7f37}.flat{color:#6e7781}"
        "</style></head><body><h1>labkit reports</h1>"
        f"<p>{len(entries)} reports, newest first.</p><table><thead><tr><th>kind</th>"
        "<th>session, journal, model or sweep</th><th>period (UTC, first bar to last)</th>"
        "<th>status</th><th>generated at (UTC)</th>"
        "<th>report</th>"
        f"</tr></thead><tbody>\n{rows}\n</tbody></table></body></html>\n"
    )
    path = Path(home) / "reports" / "index.html"
    write_page(path, page)
    return path


def index_entries(home: Path) -> list[IndexEntry]:
    """Return the reports the index lists, newest first, from their sidecars (what `labkit serve` shows).

    The reports of the sessions that exist under the home. A report is left out when its HTML is
    gone, when its session is gone, or when it was generated before its session's first decision:
    the session was deleted and started again under the same name, so the report describes a run
    that no longer exists. A backtest report is listed while its page exists, a train report while
    its page and its model's folder do, a sweep report while its page and its sweep's results do.
    """
    from labkit.home import is_name
    from labkit.models.artifacts import models_dir
    from labkit.research.sweep.paths import RESULTS, sweeps_dir

    home = Path(home)
    root = home / "reports"
    entries = []
    sessions: dict[str, tuple[bool, int | None, bool]] = {}  # exists, first decision, decided any
    for sidecar in root.glob("*/*.json"):
        data = read_json(sidecar)
        if data is None or not {"kind", "session", "period", "html"} <= data.keys():
            continue
        if not (sidecar.parent / str(data["html"])).is_file():
            continue
        if data["kind"] == "backtest" or sidecar.parent.name == BACKTESTS:
            # A backtest report stands on its own page: listed while that page exists.
            if data["kind"] == "backtest" and sidecar.parent.name == BACKTESTS:
                entries.append((data, f"{BACKTESTS}/{data['html']}"))
            continue
        if data["kind"] == "train" or sidecar.parent.name == MODELS:
            # A train report describes a saved model: listed while the model's folder exists.
            model = str(data["session"])
            if (
                data["kind"] == "train"
                and sidecar.parent.name == MODELS
                and "/" not in model
                and not model.startswith(".")
                and (models_dir(home) / model / "model.json").is_file()
            ):
                entries.append((data, f"{MODELS}/{data['html']}"))
            continue
        if data["kind"] == "sweep" or sidecar.parent.name == SWEEPS:
            # A sweep report describes a sweep's results: listed while they exist.
            sweep = data["session"]
            if (
                data["kind"] == "sweep"
                and sidecar.parent.name == SWEEPS
                and is_name(sweep)
                and (sweeps_dir(home) / str(sweep) / RESULTS).is_file()
            ):
                entries.append((data, f"{SWEEPS}/{data['html']}"))
            continue
        name = str(data["session"])
        if name not in sessions:
            try:
                paths = session_paths(home, name)
            except ConfigError:  # a sidecar edited to name no session a command could: not listed
                sessions[name] = (False, None, False)
                continue
            decisions = paths.decisions
            sessions[name] = (paths.exists(), _first_decision_ms(decisions), _decided_any(decisions))
        exists, first, decided = sessions[name]
        if not exists or (first is not None and _generated_ms(data) < first):
            continue
        if not decided:
            # A report over a session that decided nothing has nothing to be "ok" about; sidecars
            # written before session reports said so read "ok", so the journal decides here.
            data = {**data, "outcome": "empty"}
        entries.append((data, f"{sidecar.parent.name}/{data['html']}"))
    entries.sort(key=lambda item: (str(item[0].get("generated_at")), item[1]), reverse=True)
    return [IndexEntry(data, link) for data, link in entries]


def return_outcome(final_equity: float, capital: float) -> str:
    """Return a run's outcome in words: ``loss -13.6%``, ``gain +2.1%``, or ``flat 0.0%``.

    Examples
    --------
    >>> return_outcome(8640.0, 10_000.0), return_outcome(10_210.0, 10_000.0)
    ('loss -13.6%', 'gain +2.1%')
    """
    from labkit.analysis.formatting import share

    change = final_equity / capital - 1 if capital else 0.0
    if round(change * 100, 1) == 0:
        return f"flat {share(0.0, 1)}"
    return f"{'gain' if change > 0 else 'loss'} {share(change, 1, sign=True)}"


def _link(sidecar: dict[str, Any], link: str) -> str:
    # A report with a title (a backtest's --title) is linked by it; the file's name shows on hover.
    title = sidecar.get("title")
    shown = title if isinstance(title, str) and title else sidecar["html"]
    return f'<a href="{_e(link)}" title="{_e(sidecar["html"])}">{_e(shown)}</a>'


def _outcome(sidecar: dict[str, Any]) -> str:
    # Sidecars written before reports had outcomes say only whether the notebook ran.
    if not sidecar.get("ok"):
        return "failed"
    outcome = sidecar.get("outcome")
    if sidecar.get("kind") == "train" and isinstance(outcome, str) and _AUC.fullmatch(outcome):
        return outcome  # a train report's outcome is its model's out-of-sample AUC
    if sidecar.get("kind") == "sweep" and isinstance(outcome, str) and _PBO.fullmatch(outcome):
        return outcome  # a sweep report's outcome is its probability of backtest overfitting
    if isinstance(outcome, str) and _RETURN.fullmatch(outcome):
        return outcome  # a backtest's or a session's return in words: "loss -13.6%"
    return outcome if outcome in ("READY", "NOT READY", "what-if", "empty", "ok") else "ok"


_OUTCOME_CLASS = {"READY": "ok", "ok": "ok", "empty": "empty", "NOT READY": "notready", "what-if": "notready"}
_AUC = re.compile(r"AUC (?:n/a|[0-9.]+(?: ± [0-9.]+)?)")
_PBO = re.compile(r"PBO (?:n/a|[0-9.]+(?: to [0-9.]+)?)")
_RETURN = re.compile(r"(?:loss -|gain \+|flat )[0-9,.]+%")


def _outcome_class(sidecar: dict[str, Any]) -> str:
    outcome = _outcome(sidecar)
    # An AUC or a PBO is a figure to read, not a pass: no colour says it is good or bad.
    figure = _AUC.fullmatch(outcome) or _PBO.fullmatch(outcome)
    if figure:
        return "figure"
    return outcome.split()[0] if _RETURN.fullmatch(outcome) else _OUTCOME_CLASS.get(outcome, "failed")


def _first_decision_ms(journal: Path) -> int | None:
    """Return when a journal's first bar was decided (epoch ms), or None when it has none."""
    try:
        with open(journal, "rb") as handle:
            raw = handle.readline()
        return parse_instant(orjson.loads(raw)["decided_at"]) if raw.endswith(b"\n") else None
    except (OSError, ValueError, ConfigError, KeyError, TypeError):
        return None


def _decided_any(journal: Path) -> bool:
    """Return True when a journal holds one whole decision line (a torn first line is none)."""
    try:
        with open(journal, "rb") as handle:
            return handle.readline().endswith(b"\n")
    except OSError:
        return False


def _generated_ms(sidecar: dict[str, Any]) -> int:
    try:
        return parse_instant(sidecar["generated_at"])
    except (ConfigError, KeyError, TypeError):
        return 0  # a sidecar that does not say when it was made is as old as can be


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def write_page(path: Path, text: str) -> None:
    """Write a page atomically, readable by all: a page is to be read, unlike a session's files."""
    write_atomic(path, text.encode("utf-8"), mode=0o644)
