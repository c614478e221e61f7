"""What a session records when it is created, so that its evidence is judged on facts fixed in advance.

``data/sessions/<session>/recorded.json`` holds:

- ``calendar``: the market's calendar (`labkit.analysis.calendar.MarketCalendar`), from the source
  (``synthetic`` and ``ccxt`` are 24/7, ``yfinance`` an exchange), from ``--calendar``, or for a
  bar file inferred from the whole file. Never from the session's own journal: a session run eight
  hours a day on a 24/7 market would otherwise be judged on those eight hours.
- ``models``: each model the session trades, with the span it was trained on plus its embargo
  (`labkit.models.artifacts.in_sample_span`), so a week inside it is never graded as evidence.
- ``created_at``.

The readiness thresholds a session is judged with are its ``config.json``'s ``readiness`` section,
recorded at the same moment. A session made before this file existed is read with the calendar its
source implies (a bar file's from the file when it is still there) and the models' spans looked up
by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit._io import read_json, write_json_atomic
from labkit.timeutil import iso_ms, now_ms

if TYPE_CHECKING:
    import pandas as pd

    from labkit.analysis.calendar import MarketCalendar
    from labkit.config.schema import LabkitConfig
    from labkit.data.registry import Source
    from labkit.session.paths import SessionPaths

FILE = "recorded.json"
_ALL_TIME = (0, 2**62)


def recorded_path(paths: SessionPaths) -> Path:
    """Return where session `paths` keeps what it recorded at its creation."""
    return paths.root / FILE


def record_session(
    folder: Path, config: LabkitConfig, source: Source, home: Path, model_id: str | None
) -> dict[str, Any]:
    """Write ``recorded.json`` into the session folder `folder` being created, and return it."""
    calendar = market_calendar(config, source)
    record = {
        "created_at": iso_ms(now_ms()),
        "config_sha256": _sha256(folder / "config.json"),
        "calendar": calendar.to_dict(),
        "models": model_spans(home, [model_id] if model_id else []),
    }
    write_json_atomic(folder / FILE, record)
    return record


def market_calendar(config: LabkitConfig, source: Source | None = None) -> MarketCalendar:
    """Return the calendar of the market `config` trades: its source, ``--calendar`` or its bar file."""
    from labkit.analysis.calendar import session_calendar
    from labkit.data.bars import ts_ms
    from labkit.data.files import is_file_spec
    from labkit.timeutil import timeframe_ms

    s = config.session
    times = None
    if source is not None and is_file_spec(s.source) and s.calendar in ("auto", "equities"):
        times = ts_ms(source.bars(s.symbol, s.timeframe, *_ALL_TIME))
    return session_calendar(s.source, s.calendar, times, timeframe_ms(s.timeframe), s.exchange)


def model_spans(home: Path, model_ids: list[str]) -> dict[str, list[int]]:
    """Return each known model's in-sample span (training window plus embargo) as ``[since, until)`` ms."""
    from labkit.models.artifacts import in_sample_span

    spans = {}
    for model in model_ids:
        span = in_sample_span(home, model)
        if span is not None:
            spans[model] = list(span)
    return spans


def read_recorded(paths: SessionPaths) -> dict[str, Any]:
    """Return what the session recorded at creation ({} for a session made before it did)."""
    found = read_json(recorded_path(paths))
    return found if isinstance(found, dict) else {}


def session_market(
    paths: SessionPaths, saved: Mapping[str, Any], journal: pd.DataFrame | None = None
) -> MarketCalendar:
    """Return the market calendar session `paths` is judged on.

    A bar file's is the one recorded at creation (the file may have changed or gone since). Any
    other source's follows from ``config.json`` alone (source, ``calendar``, ``exchange``), so an
    edited ``recorded.json`` cannot change it. A bar-file session made before labkit recorded
    calendars reads its file again, or when the file is gone falls back on the bars it decided,
    and the calendar's basis says so.
    """
    from dataclasses import replace

    from labkit.analysis.calendar import MarketCalendar, bar_times, session_calendar
    from labkit.config.schema import LabkitConfig
    from labkit.data.files import is_file_spec
    from labkit.timeutil import timeframe_ms

    s = saved.get("session", {})
    if not is_file_spec(str(s.get("source", "synthetic"))):
        exchange = s.get("exchange")  # a config recorded before exchanges were named trades XNYS
        return session_calendar(
            str(s.get("source", "synthetic")),
            str(s.get("calendar") or "auto"),
            timeframe_ms=timeframe_ms(str(s.get("timeframe", "1m"))),
            exchange=exchange,
        )
    recorded = read_recorded(paths).get("calendar")
    if isinstance(recorded, Mapping):
        return MarketCalendar.from_dict(recorded)
    try:
        from labkit.data.registry import open_source

        config = LabkitConfig.model_validate(dict(saved))
        found = market_calendar(config, open_source(config.session.source, paths.home, config.session.seed))
        return replace(found, basis=f"{found.basis}; the session recorded none, so its file was read again")
    except Exception:  # noqa: BLE001 - an old session's file may be gone: fall back on its bars
        found = session_calendar(
            "journal",
            str(s.get("calendar") or "auto"),
            bar_times(journal) if journal is not None else None,
            timeframe_ms(str(s.get("timeframe", "1m"))),
            s.get("exchange"),
        )
        return replace(found, basis=f"{found.basis} (from the decisions: the session recorded no calendar)")


def config_changed(paths: SessionPaths) -> str | None:
    """Return why the session's ``config.json`` is not the one it was created with, or None.

    The thresholds a session is judged with are those it recorded at creation: a ``config.json``
    edited since (its SHA-256 no longer the one ``recorded.json`` holds) could loosen them. A
    session made before labkit recorded the digest cannot tell, and None is returned.
    """
    expected = read_recorded(paths).get("config_sha256")
    if not isinstance(expected, str):
        return None
    found = _sha256(paths.config)
    if found == expected:
        return None
    return (
        f"{paths.config.name} was changed after the session was created (SHA-256 {found[:12] or 'missing'}, "
        f"recorded {expected[:12]}): its thresholds are not the ones the session started with"
    )


def _sha256(path: Path) -> str:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def session_spans(
    home: Path, paths: SessionPaths, models: list[str] | tuple[str, ...] = ()
) -> list[tuple[str, int, int]]:
    """Return the in-sample spans of the models the session recorded and of `models` (those that decided)."""
    recorded = read_recorded(paths).get("models")
    spans: dict[str, list[int]] = dict(recorded) if isinstance(recorded, Mapping) else {}
    spans.update(model_spans(home, [m for m in models if m not in spans]))
    return [(model, int(span[0]), int(span[1])) for model, span in spans.items()]
