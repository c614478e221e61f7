"""Statuses are read from a session's files once per change, not once per request: many clients asking
`/health` and `/api/sessions` at once cost one read, and a change shows at the next request."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from labkit.config.loading import load_config
from labkit.serve import create_app
from labkit.session import status as status_module
from labkit.session.paths import session_paths
from labkit.timeutil import iso_ms, now_ms
from tests import stubs


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("home")
    for name in ("a", "b"):
        stubs.replayed_session(home, name, "2026-01-05", "2026-01-05T00:20")
    return home


def _client(home, clock):
    from starlette.testclient import TestClient

    config = load_config(None, {"serve.rate_limit_per_minute": 100_000}, environ={})
    return TestClient(create_app(home, config, clock=clock))


def _counting(monkeypatch) -> list[str]:
    read: list[str] = []
    real = status_module.session_status

    def counted(home, name):
        read.append(name)
        return real(home, name)

    monkeypatch.setattr(status_module, "session_status", counted)
    return read


def _beat(home, name: str, pid: int, **fields) -> None:
    heartbeat = session_paths(home, name).heartbeat
    data = orjson.loads(heartbeat.read_bytes()) if heartbeat.exists() else {}
    data.update(pid=pid, status="running", last_beat=iso_ms(now_ms()), **fields)
    heartbeat.write_bytes(orjson.dumps(data))


def test_statuses_when_files_are_unchanged_are_read_once_for_many_requests(two_sessions, monkeypatch):
    read = _counting(monkeypatch)
    with _client(two_sessions, Clock()) as client:
        answers = [
            client.get(path) for _ in range(10) for path in ("/health", "/api/sessions", "/api/sessions/a")
        ]
    assert all(answer.status_code == 200 for answer in answers)
    assert sorted(read) == ["a", "b"]
    assert {answer.content for answer in answers[1::3]} == {answers[1].content}


def test_status_when_a_session_file_changes_shows_the_change_at_the_next_request(tmp_path, monkeypatch):
    stubs.replayed_session(tmp_path, "a", "2026-01-05", "2026-01-05T00:20")
    read = _counting(monkeypatch)
    with _client(tmp_path, Clock()) as client:
        before = client.get("/api/sessions/a").json()
        _beat(tmp_path, "a", os.getpid(), note="a longer heartbeat than the one before it")
        after = client.get("/api/sessions/a").json()
        again = client.get("/api/sessions").json()
    assert before["status_word"] == "stopped" and after["status_word"] == "running"
    assert again == [after] and read == ["a", "a"]


def test_status_when_its_process_dies_without_a_file_changing_says_dead_within_a_second(tmp_path):
    stubs.replayed_session(tmp_path, "a", "2026-01-05", "2026-01-05T00:20")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    clock = Clock()
    try:
        _beat(tmp_path, "a", child.pid)
        with _client(tmp_path, clock) as client:
            alive = client.get("/health").json()
            child.kill()
            child.wait()
            clock.now += 1.0
            gone = client.get("/health")
    finally:
        child.kill()
        child.wait()
    assert alive["running"] == ["a"]
    assert gone.status_code == 503 and gone.json()["stale"][0]["status_word"] == "dead"


def test_status_when_a_session_is_removed_is_404_and_gone_from_the_list(tmp_path):
    import shutil

    stubs.replayed_session(tmp_path, "a", "2026-01-05", "2026-01-05T00:20")
    with _client(tmp_path, Clock()) as client:
        assert client.get("/api/sessions/a").status_code == 200
        shutil.rmtree(session_paths(tmp_path, "a").root)
        assert client.get("/api/sessions/a").status_code == 404
        assert client.get("/api/sessions").json() == []
