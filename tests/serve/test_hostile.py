"""Hostile requests get a 4xx whose JSON names the field: never a traceback, never a byte from outside
the home. A file with a secret marker lies beside the home (and a link to it inside), and an audit
hook records every file the server opens while the requests are answered."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import unquote

import anyio
import pytest

from tests.serve.conftest import KEY, hand_session, journal_line, make_client

MARKER = "MARKER-outside-the-home-7f3a"
AUTH = {"Authorization": f"Bearer {KEY}"}
_opened: list[str] = []
_watching = [False]


def _audit(event: str, args: tuple) -> None:
    if _watching[0] and event == "open" and isinstance(args[0], str | bytes | Path):
        _opened.append(str(args[0]))


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    # Arrange once: <root>/secret.txt and <root>/data/sessions/outside/ beside <root>/home, which holds
    # a session, a report, and a link in reports/ to the secret
    root = tmp_path_factory.mktemp("hostile")
    (root / "secret.txt").write_text(MARKER)
    hand_session(root, "outside", [journal_line(0)])
    (root / "data" / "sessions" / "outside" / "decisions.jsonl").write_text(MARKER + "\n")
    home = root / "home"
    hand_session(home, "s1", [journal_line(s) for s in range(20)])
    (home / "reports" / "s1").mkdir(parents=True)
    (home / "reports" / "s1" / "page.html").write_text("<html>report</html>")
    (home / "reports" / "s1" / "leak.html").symlink_to(root / "secret.txt")
    client = make_client(home, environ={"SERVE_KEY": KEY}, api_keys=["${SERVE_KEY}"], rate_limit_per_minute=100_000)
    yield root, home, client
    client.close()


LONG = "a" * (1 << 20)
CASES = [
    # (method, path, headers, body, expected status, field)
    ("GET", "/api/sessions/..%2f..%2fsecret.txt", {}, None, 400, "name"),
    ("GET", "/api/sessions/..%2foutside", {}, None, 400, "name"),
    ("GET", "/api/sessions/..%2F..%2Fdata%2Fsessions%2Foutside/decisions", {}, None, 400, "name"),
    ("GET", "/api/sessions/%2e%2e/decisions", {}, None, 400, "name"),
    ("GET", "/api/sessions/%2e%2e%2f%2e%2e/equity", {}, None, 400, "name"),
    ("GET", "/api/sessions/.hidden", {}, None, 400, "name"),
    ("GET", "/api/sessions/-flag", {}, None, 400, "name"),
    ("GET", "/api/sessions/s1%00", {}, None, 400, "path"),
    ("GET", "/api/sessions/%00/decisions", {}, None, 400, "path"),
    ("GET", "/api/sessions/s1%0aX-Injected:%201", {}, None, 400, "path"),
    ("GET", "/api/sessions/%C3%A9t%C3%A9", {}, None, 400, "name"),
    ("GET", "/api/sessions/%E2%80%AEs1", {}, None, 400, "name"),
    ("GET", "/api/sessions/%F0%9F%92%A5/equity", {}, None, 400, "name"),
    ("GET", "/api/sessions/%2Fetc%2Fpasswd", {}, None, 400, "name"),
    ("GET", "/api/sessions/" + "x" * 65, {}, None, 400, "name"),
    ("GET", "/api/sessions/" + LONG, {}, None, 414, "path"),
    ("GET", "/api/sessions/s1/decisions?after_seq=" + "9" * 3000, {}, None, 414, "query"),
    ("GET", "/api/sessions/s1/decisions?limit=1000000000", {}, None, 400, "limit"),
    ("GET", "/api/sessions/s1/decisions?limit=" + "9" * 400, {}, None, 400, "limit"),
    ("GET", "/api/sessions/s1/decisions?limit=0", {}, None, 400, "limit"),
    ("GET", "/api/sessions/s1/decisions?limit=-5", {}, None, 400, "limit"),
    ("GET", "/api/sessions/s1/decisions?after_seq=-2", {}, None, 400, "after_seq"),
    ("GET", "/api/sessions/s1/decisions?after_seq=1.5", {}, None, 400, "after_seq"),
    ("GET", "/api/sessions/s1/decisions?after_seq=abc", {}, None, 400, "after_seq"),
    ("GET", "/api/sessions/s1/decisions?after_seq=", {}, None, 400, "after_seq"),
    ("GET", "/api/sessions/s1/decisions?after_seq=%00", {}, None, 400, "after_seq"),
    ("GET", "/api/sessions/s1/decisions?after_seq=1e3", {}, None, 400, "after_seq"),
    ("GET", "/api/sessions/s1/decisions?after_seq=0x10", {}, None, 400, "after_seq"),
    ("GET", "/api/sessions/s1/decisions?after_seq=%EF%BC%91", {}, None, 400, "after_seq"),  # a full-width 1
    ("GET", "/api/sessions/s1/decisions?after_seq=1&after_seq=2", {}, None, 400, "after_seq"),
    ("GET", "/api/sessions/s1/decisions?limt=5", {}, None, 400, "'limt'"),
    ("GET", "/api/sessions/s1/equity?points=0", {}, None, 400, "points"),
    ("GET", "/api/sessions/s1/equity?points=100001", {}, None, 400, "points"),
    ("GET", "/api/sessions/s1/equity?points=NaN", {}, None, 400, "points"),
    ("GET", "/api/sessions?path=../../secret.txt", {}, None, 400, "'path'"),
    ("GET", "/health?verbose=1", {}, None, 400, "'verbose'"),
    ("GET", "/api/sessions/nobody/decisions", {}, None, 404, "name"),
    ("GET", "/api/sessions/s1/nothing", {}, None, 404, "path"),
    ("GET", "/api/sessions/s1/decisions/extra", {}, None, 404, "path"),
    ("GET", "/api/nothing", {}, None, 404, "path"),
    ("GET", "/static/..%2f..%2f..%2fsecret.txt", {}, None, 404, "path"),
    ("GET", "/static/../app.py", {}, None, 404, "path"),
    ("GET", "/reports/..%2f..%2fsecret.txt", {}, None, 404, "path"),
    ("GET", "/reports/s1/..%2f..%2f..%2fsecret.txt", {}, None, 404, "path"),
    ("GET", "/reports/s1/leak.html", {}, None, 404, "path"),
    ("GET", "/reports/%2Fetc%2Fpasswd", {}, None, 404, "path"),
    ("GET", "/reports/s1/" + "b" * 1500 + ".html", {}, None, 404, "path"),
    ("GET", "/api/sessions/s1/stop", {}, None, 405, "method"),
    ("DELETE", "/api/sessions/s1", {}, None, 405, "method"),
    ("PUT", "/api/sessions/s1/decisions", {}, None, 405, "method"),
    ("POST", "/api/sessions/s1/decisions", AUTH, None, 405, "method"),
    ("POST", "/health", {}, None, 405, "method"),
    ("PATCH", "/api/reports", {}, None, 405, "method"),
    ("POST", "/api/sessions/s1/self-destruct", AUTH, None, 404, "action"),
    ("POST", "/api/sessions/..%2foutside/stop", AUTH, None, 400, "name"),
    ("POST", "/api/sessions/%C3%A9/stop", AUTH, None, 400, "name"),
    ("POST", "/api/sessions/s1/stop", AUTH, b"{not json", 400, "body"),
    ("POST", "/api/sessions/s1/stop", AUTH, b"\xff\xfe\x00garbage", 400, "body"),
    ("POST", "/api/sessions/s1/stop", AUTH, b"[1, 2, 3]", 400, "body"),
    ("POST", "/api/sessions/s1/stop", AUTH, b'"stop"', 400, "body"),
    ("POST", "/api/sessions/s1/stop", AUTH, b"[" * 5000 + b"]" * 5000, 413, "body"),
    ("POST", "/api/sessions/s1/stop", AUTH, b"[" * 2000 + b"]" * 2000, 400, "body"),
    ("POST", "/api/sessions/s1/stop", AUTH, b'{"force": true}', 400, "body.'force'"),
    ("POST", "/api/sessions/s1/reduce-only", AUTH, b'{"on": "yes"}', 400, "body.on"),
    ("POST", "/api/sessions/s1/reduce-only", AUTH, b'{"on": true, "on2": 1}', 400, "body.'on2'"),
    ("POST", "/api/sessions/s1/stop", AUTH, b"x" * 1_000_000, 413, "body"),
    ("POST", "/api/sessions/s1/stop", {"Authorization": "Bearer " + "k" * 100_000}, None, 401, "Authorization"),
    ("POST", "/api/sessions/s1/stop", {"Authorization": "Bearer \u00e9t\u00e9".encode()}, None, 401, "Authorization"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "field"), CASES,
                         ids=[f"{c[0]} {c[1][:60]} {(c[3] or b'')[:12]!r}" for c in CASES])
def test_hostile_request_when_sent_gets_a_4xx_naming_the_field_and_reads_nothing_outside_the_home(
    world, method, path, headers, body, status, field
):
    # Arrange
    root, home, client = world
    _opened.clear()
    # Act
    _watching[0] = True
    try:
        if len(path) > 60_000:  # past what httpx sends: hand it to the application as a server would
            code, content_type, text = _asgi(client.app, method, path)
        else:
            response = client.request(method, path, headers=headers, content=body)
            code, content_type, text = response.status_code, response.headers["content-type"], response.text
    finally:
        _watching[0] = False
    # Assert
    assert code == status, text
    assert content_type == "application/json"
    assert json.loads(text)["field"] == field
    assert "Traceback" not in text and MARKER not in text
    assert "/" + str(root).strip("/") not in text  # no path of the machine either
    outside = [p for p in _opened if Path(p).is_relative_to(root) and not Path(p).is_relative_to(home)]
    assert outside == []


def _asgi(app, method: str, path: str) -> tuple[int, str, str]:
    # What uvicorn hands an application: the path percent-decoded, the raw path as sent.
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": unquote(path), "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000),
             "server": ("testserver", 80)}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    headers = dict(sent[0]["headers"])
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], headers[b"content-type"].decode(), body.decode()


def test_hostile_list_when_counted_has_at_least_thirty_cases():
    assert len(CASES) >= 30
