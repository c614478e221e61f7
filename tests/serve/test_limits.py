"""What a hostile client cannot do to `labkit serve`: starve it with slow connections, dodge the rate
from another loopback address, or get a key echoed back or written to the log, even in part."""

from __future__ import annotations

import logging
import os
import resource
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from labkit.config.loading import load_config
from labkit.serve import create_app
from tests import stubs
from tests.serve.conftest import KEY, make_client

ENV = {"SERVE_KEY": KEY}
KEYS = "${SERVE_KEY}"
PARTIAL_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def _app(home: Path, **serve):
    config = load_config(None, {f"serve.{k}": v for k, v in serve.items()}, environ=ENV)
    return create_app(home, config)


@contextmanager
def live_server(home: Path, request_timeout: float = 10.0, **serve) -> Iterator[str]:
    """Run the app on uvicorn, as `labkit serve` does, in a thread on a free port; yield its URL."""
    from labkit.serve.server import bind, uvicorn_server

    server = uvicorn_server(_app(home, **serve), request_timeout=request_timeout)
    sock = bind("127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _pieces(secret: str, size: int = 4) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


# --- the rate: one bucket per client, loopback being one client ------------------------------------


def test_rate_limit_when_requests_come_from_other_loopback_addresses_shares_one_bucket(tmp_path):
    # Regression: 127.0.0.2, 127.0.0.3, ... each got a fresh bucket.
    app = _app(tmp_path, rate_limit_per_minute=3)
    statuses = []
    for host in ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.9.9.9", "::1", "::ffff:127.0.0.5"):
        with stubs_client(app, host) as client:
            statuses.append(client.get("/health").status_code)
    assert statuses == [200, 200, 200, 429, 429, 429]


def test_rate_limit_when_a_forwarded_header_is_configured_keys_on_its_last_address(tmp_path):
    app = _app(tmp_path, rate_limit_per_minute=2, forwarded_header="X-Forwarded-For")
    with stubs_client(app, "127.0.0.1") as proxy:
        ann = [proxy.get("/health", headers={"X-Forwarded-For": "203.0.113.5"}).status_code for _ in range(3)]
        # What the proxy appends is the client it saw: an address the client wrote before it is not.
        spoofed = proxy.get("/health", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.5"}).status_code
        bob = [proxy.get("/health", headers={"X-Forwarded-For": "203.0.113.6"}).status_code for _ in range(2)]
        no_header = [proxy.get("/health").status_code for _ in range(3)]
    assert ann == [200, 200, 429] and spoofed == 429
    assert bob == [200, 200]
    assert no_header == [200, 200, 429]  # the connection's address: the proxy's own bucket


def test_rate_limit_when_no_forwarded_header_is_configured_ignores_x_forwarded_for(tmp_path):
    app = _app(tmp_path, rate_limit_per_minute=2)
    with stubs_client(app, "127.0.0.1") as client:
        statuses = [
            client.get("/health", headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(3)
        ]
    assert statuses == [200, 200, 429]


def test_forwarded_header_when_misconfigured_is_refused_naming_the_setting(tmp_path):
    from labkit.errors import ConfigError

    with pytest.raises(ConfigError, match="serve.forwarded_header"):
        load_config(None, {"serve.forwarded_header": "X Forwarded: For"}, environ={})


@contextmanager
def stubs_client(app, host: str):
    from starlette.testclient import TestClient

    with TestClient(app, client=(host, 40_000)) as client:
        yield client


# --- keys in query strings: never echoed, never logged ---------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        f"/api/sessions?{KEY}=1",
        f"/api/sessions?key={KEY}",
        f"/api/sessions/s1/decisions?limit={KEY}",
        f"/api/sessions/s1/equity?points={KEY[:20]}",
        f"/health?{KEY[:16]}",
    ],
)
def test_refusal_when_query_holds_a_key_never_echoes_it_even_in_part(tmp_path, target):
    stubs.replayed_session(tmp_path, "s1", "2026-01-05", "2026-01-05T00:10")
    client = make_client(tmp_path, environ=ENV, api_keys=KEYS)
    response = client.get(target)
    assert response.status_code == 400
    assert not any(piece in response.text for piece in _pieces(KEY)), response.text


def test_access_log_when_query_holds_a_key_shows_no_part_of_it(tmp_path, caplog):
    # Regression: `GET /api/sessions?key=KEY` was logged as `?key=****C1dE`.
    from labkit.serve.server import redacted_logs

    caplog.set_level(logging.WARNING, logger="httpx")  # the test's own client: not the server's log
    caplog.set_level(logging.INFO)
    with redacted_logs([], keys=[KEY]), live_server(tmp_path, api_keys=KEYS) as base:
        httpx.get(f"{base}/api/sessions?key={KEY}")
        httpx.get(f"{base}/api/sessions?{KEY}")
        httpx.get(f"{base}/api/sessions?token={KEY[:18]}&limit=5")
        httpx.get(f"{base}/api/sessions/{KEY}")
        httpx.post(f"{base}/api/sessions/s1/stop?key={KEY}")
    text = caplog.text
    assert text.count("uvicorn.access") >= 5 or text.count('HTTP/1.1"') >= 5, text
    assert not any(piece in text for piece in _pieces(KEY)), text


def test_access_log_when_query_has_route_parameters_keeps_them(tmp_path, caplog):
    from labkit.serve.server import redacted_logs

    caplog.set_level(logging.INFO)
    with redacted_logs([], keys=[KEY]), live_server(tmp_path, api_keys=KEYS) as base:
        httpx.get(f"{base}/api/sessions/s1/decisions?after_seq=40&limit=5")
    assert "/api/sessions/s1/decisions?after_seq=40&limit=5" in caplog.text


# --- slow clients ------------------------------------------------------------------------------------


def _recv_or_none(sock: socket.socket, timeout: float) -> bytes | None:
    sock.settimeout(timeout)
    try:
        return sock.recv(1024)
    except TimeoutError:
        return None
    except ConnectionResetError:
        return b""


def test_connection_when_headers_never_complete_is_closed_after_the_request_timeout(tmp_path):
    with live_server(tmp_path, request_timeout=0.3) as base:
        port = int(base.rsplit(":", 1)[1])
        with (
            socket.create_connection(("127.0.0.1", port)) as partial,
            socket.create_connection(("127.0.0.1", port)) as silent,
        ):
            partial.sendall(PARTIAL_REQUEST)
            answered = [_recv_or_none(partial, 5.0), _recv_or_none(silent, 5.0)]
        assert answered == [b"", b""]  # closed by the server, with nothing said


def test_connection_when_a_request_is_answered_then_partial_again_is_closed_after_the_timeout(tmp_path):
    with live_server(tmp_path, request_timeout=0.3) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            first = _recv_or_none(sock, 5.0)
            sock.sendall(PARTIAL_REQUEST)
            assert first is not None and first.startswith(b"HTTP/1.1 200")
            rest = b""
            while (chunk := _recv_or_none(sock, 5.0)) not in (b"", None):
                rest += chunk
            assert chunk == b""


def _limited_fds(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


def _open_slow_connections(port: int, count: int, within: float) -> list[socket.socket]:
    """Open `count` connections that each send a partial request line, then stall; return them."""
    opened, selector = [], selectors.DefaultSelector()
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        opened.append(sock)
        selector.register(sock, selectors.EVENT_WRITE)
    deadline = time.monotonic() + within
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.1):
            selector.unregister(key.fileobj)
            with suppress(OSError):  # closed already by the server: it made room
                key.fileobj.send(PARTIAL_REQUEST)
    selector.close()
    return opened


@pytest.mark.slow
def test_health_when_thousands_of_slow_connections_are_open_still_answers(tmp_path):
    # Regression: ~20,000 slow connections used up the server's file descriptors and /health failed
    # 63 of 71 probes. Here the server may open 1,024 files, and 3,000 connections stall.
    port = _free_port()
    env = {**os.environ, "LABKIT_SERVE__RATE_LIMIT_PER_MINUTE": "100000"}
    log = (tmp_path / "serve.log").open("w")  # a file, not a pipe: the log never blocks the server
    proc = stubs.start_labkit(
        tmp_path, "serve", "--port", str(port), env=env, stderr=log, preexec_fn=_limited_fds(1024)
    )
    slow: list[socket.socket] = []
    try:
        _wait_until_listening(port, proc)
        slow = _open_slow_connections(port, 3000, within=1.5)
        probes = []
        for _ in range(10):
            try:
                probes.append(httpx.get(f"http://127.0.0.1:{port}/health", timeout=3).status_code)
            except httpx.TransportError as exc:
                probes.append(type(exc).__name__)
        assert probes == [200] * 10
        assert proc.poll() is None
    finally:
        for sock in slow:
            sock.close()
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_listening(port: int, proc, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "labkit serve exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"labkit serve did not listen on port {port} within {timeout} s")
