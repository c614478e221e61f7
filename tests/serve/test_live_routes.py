"""The routes the live page needs beside the status: the server's control switch and a session's log tail."""

from __future__ import annotations

import orjson

from tests.serve.conftest import KEY, hand_session


def _log(home, name: str, entries: list[dict]) -> None:
    logs = home / "data" / "sessions" / name / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "session.jsonl").write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in entries))


def test_server_when_no_key_is_set_says_control_is_off_and_names_the_commands(tmp_path, client_for):
    body = client_for(tmp_path).get("/api/server").json()
    assert body["control"] is False
    assert body["commands"]["stop"] == "labkit stop --session NAME"
    assert body["commands"]["emergency-stop"] == "labkit emergency-stop --session NAME"


def test_server_when_a_key_is_set_says_control_is_on(tmp_path, client_for):
    body = client_for(tmp_path, {"K": KEY}, api_keys=["${K}"]).get("/api/server").json()
    assert body["control"] is True


def test_log_when_asked_for_n_lines_returns_the_last_n_in_order(tmp_path, client_for):
    hand_session(tmp_path, "s", [])
    _log(tmp_path, "s", [{"ts": f"t{i}", "level": "info", "message": f"line {i}"} for i in range(300)])
    body = client_for(tmp_path).get("/api/sessions/s/log?lines=3").json()
    assert [line["message"] for line in body["lines"]] == ["line 297", "line 298", "line 299"]
    assert body["session"] == "s"


def test_log_when_a_line_holds_a_server_key_shows_it_masked(tmp_path, client_for):
    hand_session(tmp_path, "s", [])
    _log(tmp_path, "s", [{"message": f"sent {KEY} to the exchange", "detail": {"auth": f"Bearer {KEY}"}}])
    text = client_for(tmp_path, {"K": KEY}, api_keys=["${K}"]).get("/api/sessions/s/log").text
    assert KEY not in text and "****" in text


def test_log_when_the_session_has_no_log_yet_is_empty(tmp_path, client_for):
    hand_session(tmp_path, "s", [])
    body = client_for(tmp_path).get("/api/sessions/s/log").json()
    assert body["lines"] == []


def test_log_when_a_line_is_not_json_returns_its_text_as_the_message(tmp_path, client_for):
    hand_session(tmp_path, "s", [])
    logs = tmp_path / "data" / "sessions" / "s" / "logs"
    logs.mkdir(parents=True)
    (logs / "session.jsonl").write_bytes(b'{"message": "ok"}\nnot json\n{"message": "torn')
    lines = client_for(tmp_path).get("/api/sessions/s/log").json()["lines"]
    assert [line["message"] for line in lines] == ["ok", "not json"]  # the torn tail waits


def test_log_when_lines_is_out_of_range_is_refused_naming_lines(tmp_path, client_for):
    hand_session(tmp_path, "s", [])
    response = client_for(tmp_path).get("/api/sessions/s/log?lines=0")
    assert response.status_code == 400 and response.json()["field"] == "lines"


def test_log_when_posted_to_says_use_get(tmp_path, client_for):
    hand_session(tmp_path, "s", [])
    response = client_for(tmp_path).post("/api/sessions/s/log")
    assert response.status_code == 405
