"""The write side of `labkit serve`: commands behind bearer keys, the rate per client, where it may
listen, and keys that never show."""

from __future__ import annotations

import hmac
import logging

import pytest

from labkit import operations as ops
from labkit.cli import main
from labkit.config.loading import load_config
from labkit.errors import ConfigError
from labkit.serve.guard import KeyRing, RateLimiter, api_keys, check_bind, is_loopback
from labkit.session.paths import session_paths
from labkit.session.runner import run_session
from labkit.session.state import load_state
from tests import stubs
from tests.serve.conftest import KEY

OTHER_KEY = "another-KEY-for-the-other-operator-42"
ENV = {"SERVE_KEY": KEY, "OTHER_KEY": OTHER_KEY}
KEYS = ["${SERVE_KEY}", "${OTHER_KEY}"]


@pytest.fixture
def home(tmp_path):
    return stubs.replayed_session(tmp_path, "s1", "2026-01-05", "2026-01-05T01:00")


def _halted(home) -> bool:
    return bool((load_state(session_paths(home, "s1")) or {})["portfolio"]["halted"])


def test_control_when_no_key_is_configured_is_off_with_403(home, client_for):
    response = client_for(home).post("/api/sessions/s1/emergency-stop", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 403 and response.json()["field"] == "serve.api_keys"
    assert not _halted(home)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", f"Basic {KEY}", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}", f"bearer{KEY}", "Bearer wrong"],
)
def test_control_when_the_key_is_missing_or_wrong_is_401_and_changes_nothing(home, client_for, authorization):
    # Arrange
    client = client_for(home, environ=ENV, api_keys=KEYS)
    headers = {} if authorization is None else {"Authorization": authorization}
    # Act
    response = client.post("/api/sessions/s1/emergency-stop", headers=headers)
    # Assert
    assert response.status_code == 401 and response.json()["field"] == "Authorization"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert not _halted(home)
    control = session_paths(home, "s1").control
    assert not control.exists() or '"command"' not in control.read_text()


@pytest.mark.parametrize("key", [KEY, OTHER_KEY])
def test_control_when_the_key_is_right_applies_the_command_to_a_stopped_session(home, client_for, key):
    # Arrange
    client = client_for(home, environ=ENV, api_keys=KEYS)
    auth = {"Authorization": f"Bearer {key}"}
    # Act
    halted = client.post("/api/sessions/s1/emergency-stop", headers=auth)
    status = client.get("/api/sessions/s1").json()
    resumed = client.post("/api/sessions/s1/resume", headers=auth)
    # Assert
    assert halted.status_code == 200
    assert halted.json() == {
        "session": "s1",
        "command": "emergency-stop",
        "outcome": "applied",
        "result": "applied: the session is not running, so its saved state took it at once",
    }
    assert status["halted"] is True and status["halt_reason"] == "emergency_stop"
    assert resumed.status_code == 200 and not _halted(home)


def test_control_when_stop_is_sent_to_a_stopped_session_says_nothing_was_running(home, client_for):
    client = client_for(home, environ=ENV, api_keys=KEYS)
    response = client.post("/api/sessions/s1/stop", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200 and response.json()["result"] == "not running: nothing to stop"


def test_control_when_reduce_only_is_lifted_with_a_body_records_it(home, client_for):
    # Arrange
    client = client_for(home, environ=ENV, api_keys=KEYS)
    auth = {"Authorization": f"Bearer {KEY}"}
    # Act
    on = client.post("/api/sessions/s1/reduce-only", headers=auth)
    was = load_state(session_paths(home, "s1"))["portfolio"]["reduce_only"]
    off = client.post("/api/sessions/s1/reduce-only", headers=auth, content=b'{"on": false}')
    # Assert
    assert on.status_code == 200 and off.status_code == 200 and off.json()["on"] is False
    assert was is True and load_state(session_paths(home, "s1"))["portfolio"]["reduce_only"] is False


def test_control_when_the_session_does_not_exist_is_404_after_the_key(home, client_for):
    client = client_for(home, environ=ENV, api_keys=KEYS)
    assert client.post("/api/sessions/ghost/stop").status_code == 401
    response = client.post("/api/sessions/ghost/stop", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 404 and response.json()["field"] == "name"


def test_rate_limit_when_a_client_exceeds_it_is_429_with_retry_after_wrong_keys_included(home, client_for):
    # Arrange: three requests a minute
    client = client_for(home, environ=ENV, api_keys=KEYS, rate_limit_per_minute=3)
    wrong = {"Authorization": "Bearer not-the-key-at-all-000"}
    # Act
    answers = [client.post("/api/sessions/s1/stop", headers=wrong) for _ in range(3)]
    limited = client.post("/api/sessions/s1/stop", headers={"Authorization": f"Bearer {KEY}"})
    read = client.get("/api/sessions")
    page = client.get("/")
    # Assert
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert limited.status_code == 429 and read.status_code == 429
    assert int(limited.headers["retry-after"]) == 20  # a token every 20 s
    assert limited.json()["field"] == "rate"
    assert page.status_code == 200  # the page itself is not counted


def test_rate_limiter_when_time_passes_refills_one_token_per_interval():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(60)] == [0] * 60
    assert limiter.take("a") == 1 and limiter.take("b") == 0  # another client has its own bucket
    now[0] += 1.0
    assert limiter.take("a") == 0 and limiter.take("a") == 1


def test_rate_limiter_when_many_clients_come_forgets_the_oldest():
    limiter = RateLimiter(1, max_clients=100)
    for n in range(1000):
        limiter.take(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter._buckets) == 100


def test_key_ring_when_checking_compares_every_key_without_stopping_early(monkeypatch):
    # Arrange: count the comparisons
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    ring = KeyRing([KEY, OTHER_KEY, "a-third-key-000000000"])
    # Act / Assert: the first key, the last, none: three comparisons each time
    for header, expected in ((f"Bearer {KEY}", True), ("Bearer a-third-key-000000000", True), ("Bearer x", False)):
        calls.clear()
        assert ring.matches(header) is expected
        assert len(calls) == 3


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (["short-key"], r"serve.api_keys\[0\]: a key is 16 to 1024 characters \(this one has 9\)"),
        ([KEY, "has a blank in it 0000"], r"serve.api_keys\[1\]: a key is printable ASCII without blanks"),
        (["clé-non-ascii-0000000000"], r"serve.api_keys\[0\]: a key is printable ASCII"),
    ],
)
def test_api_keys_when_unfit_are_refused_by_position_never_by_value(keys, message):
    config = load_config(None, {"serve.api_keys": keys}, environ={})
    with pytest.raises(ConfigError, match=message) as caught:
        api_keys(config.serve)
    assert all(key not in str(caught.value) for key in keys)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("example.org", False)],
)
def test_is_loopback_when_given_a_host_says_whether_only_this_machine_reaches_it(host, loopback):
    assert is_loopback(host) is loopback


def test_check_bind_when_listening_beyond_loopback_without_keys_refuses_naming_host_and_keys():
    config = load_config(None, {"serve.host": "0.0.0.0"}, environ={})
    with pytest.raises(ConfigError, match=r"--host: .*'0\.0\.0\.0'.*serve\.api_keys"):
        check_bind(config.serve)
    check_bind(load_config(None, {"serve.host": "0.0.0.0", "serve.api_keys": [KEY]}, environ={}).serve)


def test_labkit_serve_when_host_is_public_without_keys_exits_2_naming_host_and_keys(tmp_path, capsys):
    code = main(["--home", str(tmp_path), "serve", "--host", "0.0.0.0", "--port", "8765"])
    err = capsys.readouterr().err
    assert code == 2 and "--host" in err and "serve.api_keys" in err


def test_keys_when_used_right_and_wrong_never_appear_in_responses_or_logs(home, client_for, caplog):
    # Arrange: two keys from the environment; requests with each, with a wrong one, one past the rate
    caplog.set_level(logging.DEBUG)
    client = client_for(home, environ=ENV, api_keys=KEYS, rate_limit_per_minute=12)
    requests = [
        ("POST", "/api/sessions/s1/reduce-only", {"Authorization": f"Bearer {KEY}"}),
        ("POST", "/api/sessions/s1/resume", {"Authorization": f"Bearer {OTHER_KEY}"}),
        ("POST", "/api/sessions/s1/stop", {"Authorization": f"Bearer {KEY[:-8]}"}),
        ("POST", "/api/sessions/s1/stop", {"Authorization": f"Bearer {KEY}{KEY}"}),
        ("POST", "/api/sessions/ghost/stop", {"Authorization": f"Bearer {KEY}"}),
        ("POST", "/api/sessions/s1/stop", {"Authorization": f"Bearer {KEY}"}),
        ("GET", "/api/sessions/s1", {"Authorization": f"Bearer {KEY}"}),
        ("GET", "/api/sessions", {}),
        ("GET", "/metrics", {}),
        ("GET", "/health", {}),
        ("POST", "/api/sessions/s1/emergency-stop", {"Authorization": f"Bearer {KEY}"}),
        ("POST", "/api/sessions/s1/resume", {"Authorization": f"Bearer {KEY}", "Content-Length": "5"}),
    ] + [("POST", "/api/sessions/s1/stop", {"Authorization": f"Bearer {KEY}"})] * 3
    # Act
    responses = [client.request(method, path, headers=headers) for method, path, headers in requests]
    # Assert
    assert 429 in [r.status_code for r in responses] and 200 in [r.status_code for r in responses]
    seen = "\n".join(
        [r.text + repr(dict(r.headers)) for r in responses]
        + [record.getMessage() + repr(record.__dict__) for record in caplog.records]
        + [session_paths(home, "s1").control.read_text(), session_paths(home, "s1").config.read_text()]
    )
    for secret in (KEY, OTHER_KEY):
        assert secret not in seen and secret[-8:] not in seen


def test_keys_when_written_in_labkit_yaml_never_reach_a_session_config_json(tmp_path):
    # Arrange: a key written out in the file, not through ${VAR}
    (tmp_path / "labkit.yaml").write_text(f"serve:\n  api_keys:\n    - {KEY}\n")
    settings = {"session.name": "s1", "session.pace": "fast", "session.since": "2026-01-05",
                "session.until": "2026-01-05T00:40"}
    config = load_config(tmp_path, settings, environ={})
    # Act
    run_session(config, tmp_path, progress=False)
    # Assert
    assert config.serve.api_keys[0].get_secret_value() == KEY
    assert KEY not in session_paths(tmp_path, "s1").config.read_text()
    assert ops.status("s1", tmp_path)["decisions"] == 40


@pytest.mark.parametrize("value", ["12345678901234567890", "[abcdefghijklmnopq, 0123]", "true"])
def test_api_keys_when_yaml_reads_one_as_a_number_or_boolean_are_refused_without_echo(value):
    with pytest.raises(ConfigError, match=r"serve.api_keys: a key is text; .* put it in quotes") as caught:
        load_config(None, {}, environ={"LABKIT_SERVE__API_KEYS": value})
    assert "1234" not in str(caught.value) and "0123" not in str(caught.value)


def test_api_keys_when_given_as_one_string_or_a_list_in_the_environment_are_read_whole():
    one = load_config(None, {}, environ={"LABKIT_SERVE__API_KEYS": KEY})
    two = load_config(None, {}, environ={"LABKIT_SERVE__API_KEYS": f"[{KEY},{OTHER_KEY}]"})
    assert api_keys(one.serve) == [KEY] and api_keys(two.serve) == [KEY, OTHER_KEY]


def test_labkit_serve_when_the_port_is_taken_exits_2_naming_port(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["--home", str(tmp_path), "serve", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2 and f"--port: cannot listen on 127.0.0.1 port {port}" in err
