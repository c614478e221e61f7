"""`/health` and `/metrics` over session files: stale and dead sessions named, figures that match the
journal and the status, read with Prometheus's own parser."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from prometheus_client.parser import text_string_to_metric_families

from labkit.engine.journal import read_journal
from labkit.session.paths import session_paths
from labkit.timeutil import iso_ms, now_ms
from tests import stubs
from tests.serve.conftest import hand_session, journal_line

DEAD_PID = 2**22 + 12345  # above any pid_max: no such process


def _beat(home, name: str, **fields) -> None:
    path = session_paths(home, name).heartbeat
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


@pytest.fixture
def home(tmp_path):
    for name in ("a", "b"):
        stubs.replayed_session(tmp_path, name, "2026-01-05", "2026-01-05T01:00")
    return tmp_path


def _metrics(client) -> dict[str, dict[tuple, float]]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_health_when_no_session_runs_is_200(home, client_for):
    response = client_for(home).get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["stale"] == []


def test_health_when_a_live_session_beats_is_200_listing_it_as_running(home, client_for):
    _beat(home, "a", status="running", pid=os.getpid(), last_beat=iso_ms(now_ms()))
    body = client_for(home).get("/health").json()
    assert body["running"] == ["a"] and body["stale"] == []


@pytest.mark.parametrize(
    ("beat", "word", "why"),
    [
        ({"status": "running", "pid": os.getpid(), "last_beat": iso_ms(now_ms() - 600_000)}, "stale", "last beat"),
        ({"status": "halted", "pid": os.getpid(), "last_beat": iso_ms(now_ms() - 600_000)}, "stale", "last beat"),
        ({"status": "running", "pid": DEAD_PID, "last_beat": iso_ms(now_ms())}, "dead", f"pid {DEAD_PID} is gone"),
    ],
)
def test_health_when_a_running_session_is_stale_or_dead_is_503_naming_it(home, client_for, beat, word, why):
    # Arrange: b runs fine, a is stuck or crashed
    _beat(home, "a", **beat)
    _beat(home, "b", status="running", pid=os.getpid(), last_beat=iso_ms(now_ms()))
    # Act
    response = client_for(home).get("/health")
    # Assert
    body = response.json()
    assert response.status_code == 503 and body["status"] == "stale"
    assert [(s["session"], s["status_word"]) for s in body["stale"]] == [("a", word)]
    assert why in body["stale"][0]["why"] and body["running"] == ["b"]
    metrics = _metrics(client_for(home))
    assert metrics["labkit_session_stale"] == {(("session", "a"),): 1, (("session", "b"),): 0}


def test_health_when_stale_after_seconds_is_set_uses_it_instead_of_the_status_rule(home, client_for):
    # Arrange: a beat 30 s ago, which `labkit status` calls stale (limit 2 * 10 s)
    _beat(home, "a", status="running", pid=os.getpid(), last_beat=iso_ms(now_ms() - 30_000))
    # Act
    lenient = client_for(home, stale_after_seconds=60).get("/health")
    strict = client_for(home, stale_after_seconds=10).get("/health")
    # Assert
    assert lenient.status_code == 200 and lenient.json()["running"] == ["a"]
    assert strict.status_code == 503 and strict.json()["stale"][0]["heartbeat_age_seconds"] >= 30


def test_health_when_a_session_is_stopped_or_halted_and_stopped_is_not_running(home, client_for):
    _beat(home, "a", status="stopped", pid=DEAD_PID, last_beat=iso_ms(now_ms() - 86_400_000))
    body = client_for(home).get("/health").json()
    assert body["status"] == "ok" and body["running"] == []


def test_metrics_when_scraped_match_the_journals_and_the_statuses(home, client_for):
    # Arrange
    client = client_for(home)
    statuses = {s["session"]: s for s in client.get("/api/sessions").json()}
    # Act
    metrics = _metrics(client)
    # Assert
    for name in ("a", "b"):
        frame = read_journal(session_paths(home, name).decisions, ["stage", "reason"])
        blocked = frame[frame["stage"] != "passed"]
        expected_blocks = {
            (("reason", reason.split(":")[0]), ("session", name), ("stage", stage)): float(n)
            for (stage, reason), n in blocked.groupby(["stage", blocked["reason"].str.split(":").str[0]]).size().items()
        }
        assert metrics["labkit_decisions_total"][(("session", name),)] == len(frame) == 60
        assert {k: v for k, v in metrics["labkit_blocks_total"].items() if ("session", name) in k} == expected_blocks
        assert metrics["labkit_equity"][(("session", name),)] == statuses[name]["equity"]
        assert metrics["labkit_data_errors_total"][(("session", name),)] == 0
        assert metrics["labkit_session_up"][(("session", name),)] == 0  # replayed: stopped
        assert 0 <= metrics["labkit_heartbeat_age_seconds"][(("session", name),)] < 60


def test_metrics_when_sessions_come_and_go_follow_them(home, client_for):
    # Arrange
    client = client_for(home)
    assert set(_metrics(client)["labkit_decisions_total"]) == {(("session", "a"),), (("session", "b"),)}
    # Act: b is removed, c appears with data errors, a runs
    shutil.rmtree(session_paths(home, "b").root)
    hand_session(home, "c", [journal_line(0, stage="data", reason="data_unavailable"), journal_line(1)])
    _beat(home, "a", status="running", pid=os.getpid(), last_beat=iso_ms(now_ms()))
    metrics = _metrics(client)
    # Assert
    assert set(metrics["labkit_decisions_total"]) == {(("session", "a"),), (("session", "c"),)}
    assert metrics["labkit_session_stale"] == {(("session", "a"),): 0, (("session", "c"),): 0}
    assert metrics["labkit_data_errors_total"][(("session", "c"),)] == 1
    assert metrics["labkit_blocks_total"][(("reason", "data_unavailable"), ("session", "c"), ("stage", "data"))] == 1
    assert metrics["labkit_session_up"][(("session", "a"),)] == 1
