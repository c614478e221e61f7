"""A session over a universe: one book on disk, run in pieces, cut off mid-time, replayed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from labkit.config.loading import load_config
from labkit.session.paths import session_paths
from labkit.session.replay import replay_session
from labkit.session.runner import run_session
from labkit.session.status import session_status
from tests.stubs import SimulatedTime

THREE = "BTC/USDT,ETH/USDT,SOL/USDT"
RISKY = {"risk.sizing": "risk", "risk.stop_atr": 2.0, "risk.trailing_atr": 3.0, "portfolio.max_heat": 0.05}


def _run(home: Path, name: str, until: str, **overrides: Any) -> None:
    settings = {
        "session.name": name,
        "session.symbols": THREE,
        "session.timeframe": "5m",
        "session.pace": "fast",
        "session.since": "2026-01-05",
        "session.until": until,
        **overrides,
    }
    run_session(load_config(None, settings, environ={}), home, progress=False)


def _lines(home: Path, name: str) -> list[dict]:
    out = []
    for raw in session_paths(home, name).decisions.read_bytes().splitlines():
        line = orjson.loads(raw)
        line.pop("decided_at"), line.pop("correlation_id")
        out.append(line)
    return out


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("whole")
    _run(home, "book", "2026-01-07", **RISKY)
    return home


def test_a_book_session_journals_every_symbol_at_every_bar_with_one_gapless_seq(whole) -> None:
    lines = _lines(whole, "book")
    assert [line["seq"] for line in lines] == list(range(len(lines))) and len(lines) == 3 * 2 * 288
    assert [line["symbol"] for line in lines[:6]] == THREE.split(",") * 2
    state = json.loads(session_paths(whole, "book").state.read_text())
    assert set(state["legs"]) == set(THREE.split(",")) and state["symbols"] == THREE.split(",")
    assert state["portfolio"]["last_seq"] == len(lines) - 1
    status = session_status(whole, "book")
    assert status["symbols"] == THREE.split(",") and set(status["positions"]) == set(THREE.split(","))


def test_a_book_session_run_in_pieces_writes_the_journal_of_one_run_and_replays_identically(
    whole, tmp_path
) -> None:
    for until in ("2026-01-05T05:00", "2026-01-05T05:05", "2026-01-06T13:00", "2026-01-07"):
        _run(tmp_path, "book", until, **RISKY)
    assert _lines(tmp_path, "book") == _lines(whole, "book")
    result = replay_session(tmp_path, "book")
    assert result.identical, result.describe()


def test_a_book_session_cut_off_in_the_middle_of_a_bar_finishes_that_bar_first(whole, tmp_path) -> None:
    # A run killed while writing a bar's lines: the state is a checkpoint behind, the journal holds
    # the lines up to the middle of a bar (the first symbol's line of it).
    _run(tmp_path, "book", "2026-01-05T12:00", **RISKY)
    paths = session_paths(tmp_path, "book")
    saved = paths.state.read_bytes()
    _run(tmp_path, "book", "2026-01-06", **RISKY)
    kept = paths.decisions.read_bytes().splitlines(keepends=True)[
        : json.loads(saved)["portfolio"]["last_seq"] + 1 + 3 * 7 + 1
    ]
    paths.decisions.write_bytes(b"".join(kept))
    paths.state.write_bytes(saved)
    _run(tmp_path, "book", "2026-01-07", **RISKY)
    assert _lines(tmp_path, "book") == _lines(whole, "book")


def test_an_emergency_stop_flattens_every_symbol_of_the_book(tmp_path) -> None:
    from labkit.operations import emergency_stop

    _run(tmp_path, "book", "2026-01-05T18:00")
    held = [
        s
        for s, leg in json.loads(session_paths(tmp_path, "book").state.read_text())["legs"].items()
        if leg["position"] > 0
    ]
    emergency_stop("book", tmp_path)
    _run(tmp_path, "book", "2026-01-05T18:10")
    state = json.loads(session_paths(tmp_path, "book").state.read_text())
    assert state["portfolio"]["halted"] and all(leg["position"] == 0 for leg in state["legs"].values())
    exits = [
        line
        for line in _lines(tmp_path, "book")
        if line["fill"] and line["fill"]["reason"] == "emergency_stop"
    ]
    assert sorted(line["symbol"] for line in exits) == sorted(held) and held


def test_a_clock_paced_book_session_decides_each_bar_as_it_closes(tmp_path) -> None:
    settings = {
        "session.name": "live",
        "session.symbols": THREE,
        "session.timeframe": "5m",
        "session.pace": "clock",
        "session.since": "2026-01-05T00:00",
        "session.until": "2026-01-05T06:00",
    }
    config = load_config(None, settings, environ={})
    time = SimulatedTime(1_767_571_200_000, 300_000)
    run_session(config, tmp_path, stop=time, clock=time.now, progress=False)
    lines = _lines(tmp_path, "live")
    assert len(lines) == 3 * 72 and [line["seq"] for line in lines] == list(range(len(lines)))
    assert replay_session(tmp_path, "live").identical
    shutil.rmtree(tmp_path / "data")


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_serve_shows_a_books_symbols_and_each_ones_position(whole) -> None:
    from starlette.testclient import TestClient

    from labkit.serve.app import create_app

    client = TestClient(create_app(whole, load_config(None, {}, environ={})), base_url="http://127.0.0.1")
    session = client.get("/api/sessions/book").json()
    metrics = client.get("/metrics").text
    assert session["symbols"] == THREE.split(",") and set(session["positions"]) == set(THREE.split(","))
    assert session["position"] is None
    for symbol in THREE.split(","):
        assert f'labkit_book_position{{session="book",symbol="{symbol}"}}' in metrics
