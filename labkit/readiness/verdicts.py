"""Saved weekly verdicts under ``data/sessions/<session>/readiness/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit._io import read_json, write_json_atomic
from labkit.readiness.weekly import WeeklyReadiness
from labkit.timeutil import iso_ms, now_ms


def save_verdict(home: Path, session: str, result: WeeklyReadiness) -> Path:
    """Write the verdict to ``data/sessions/<session>/readiness/weekly-<week>.json`` atomically."""
    from labkit.home import code_version

    path = _verdict_dir(home, session) / f"weekly-{result.week}.json"
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


def _verdict_dir(home: Path, session: str) -> Path:
    return home / "data" / "sessions" / session / "readiness"
