"""The live page of `labkit serve` in a real browser: headless Chromium over a running session.

A clock-paced paper session on 1-second bars and `labkit serve` run as processes over one home; the
page must show the session's equity and decision count moving, and its emergency-stop button (the
key typed into its dialog) must halt the session, as the page and the session's files then say.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from labkit._io import read_json
from labkit.engine.journal import iter_lines
from labkit.session.paths import session_paths
from tests import stubs

pytestmark = pytest.mark.slow
T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SKIP_NO_CHROMIUM = (
    "Chromium not installed: the browser test of the live page is skipped "
    "(apt-get install chromium chromium-driver)"
)
# fast 1 / slow 2 proposes on every turn of the close, so the session trades (and its equity moves) in seconds.
LIVE = ["--timeframe", "1s", "--interval", "1", "--fast", "1", "--slow", "2"]
HOME_CONFIG = (
    "gates:\n  turnover:\n    max_daily: 100000\n  guardrails:\n    max_loss_streak: 100000\n"
    'serve:\n  api_keys: ["${LIVE_PAGE_TEST_KEY}"]\n'
)


def _wait_for(predicate: Callable[[], T], timeout: float, what: str, every: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(every)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200 and bool(json.load(response))
    except (OSError, ValueError):
        return False


def _alive(procs: list[subprocess.Popen[str]]) -> bool:
    for proc in procs:
        if proc.poll() is not None:  # a port taken meanwhile, a refused config: say what it said
            raise AssertionError(f"{proc.args[3:]} exited {proc.returncode}: {proc.communicate()[1]}")
    return True


def _chrome() -> Any:
    """Return a headless Chromium driven by the system's chromedriver, never a downloaded one."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip(SKIP_NO_CHROMIUM)
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium not installed: the browser test of the live page is skipped"
    )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


@pytest.mark.heavy
def test_live_page_when_a_session_runs_shows_it_advance_and_halts_it_with_the_key(tmp_path, monkeypatch):
    # Arrange: a home whose control endpoints take one key, a running session, the server over it
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for a browser online
    key = secrets.token_urlsafe(24)
    # Not LABKIT_*: those names are settings (LABKIT_<SECTION>__<KEY>), and an unknown one is refused.
    env = {**os.environ, "LIVE_PAGE_TEST_KEY": key}
    (tmp_path / "labkit.yaml").write_text(HOME_CONFIG)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    driver = _chrome()  # skips here, before any process starts, when there is no Chromium
    started: list[subprocess.Popen[str]] = []
    try:
        started.append(stubs.start_labkit(tmp_path, "run", "--session", "s", *LIVE, env=env))
        started.append(stubs.start_labkit(tmp_path, "serve", "--port", str(port), env=env))
        _wait_for(
            lambda: _alive(started) and _answers(f"{base}/api/sessions"), 20, "the server lists the session"
        )
        driver.get(f"{base}/")

        def shown() -> tuple[int, float] | None:
            # The only session is opened by itself; its figures carry their raw values as data attributes.
            count = driver.find_element("id", "d-decisions").get_attribute("data-value")
            equity = driver.find_element("id", "d-equity").get_attribute("data-value")
            return (int(count), float(equity)) if count and equity else None

        # Act / Assert: the count and the equity move on the page while the session runs
        first_count, first_equity = _wait_for(shown, 10, "the page shows the session's figures")
        _wait_for(lambda: (shown() or (0, 0.0))[0] >= first_count + 2, 10, "the decision count advances")
        _wait_for(lambda: (shown() or (0, first_equity))[1] != first_equity, 20, "the equity advances")
        assert driver.find_element("id", "d-status").get_attribute("data-status") == "running"
        rows = driver.find_elements("css selector", "#decisions-body tr")
        assert rows and int(rows[0].get_attribute("data-seq")) >= first_count  # newest first

        # a wrong key is refused in words, and the session keeps running
        driver.find_element("id", "btn-estop").click()
        _wait_for(lambda: driver.find_element("id", "api-key").is_displayed(), 5, "the key dialog opens")
        driver.find_element("id", "api-key").send_keys("not-the-key-at-all")
        driver.find_element("id", "confirm-ok").click()
        refusal = _wait_for(
            lambda: "(401)" in (text := driver.find_element("id", "confirm-result").text) and text,
            5,
            "the page explains the 401",
        )
        assert refusal.startswith("The key was refused (401)"), refusal
        assert driver.find_element("id", "d-status").get_attribute("data-status") == "running"
        # the right key, then confirm: the session is halted
        driver.find_element("id", "api-key").clear()
        driver.find_element("id", "api-key").send_keys(key)
        driver.find_element("id", "confirm-ok").click()
        _wait_for(
            lambda: driver.find_element("id", "d-status").get_attribute("data-status") == "halted",
            20,
            "the page shows the session halted",
        )
        notice = driver.find_element("id", "d-notice").text
        control_note_shown = driver.find_element("id", "d-control").is_displayed()
        halt = driver.find_element("id", "d-halt").text
        errors = [
            e for e in driver.get_log("browser") if e["level"] == "SEVERE" and " 401 " not in e["message"]
        ]
        # the journal shows the halt: an entry held by the halt gate, or the position flattened by the stop
        paths = session_paths(tmp_path, "s")
        _wait_for(lambda: _halt_lines(paths.decisions), 20, "the journal shows the emergency stop")
        _wait_for(
            lambda: (read_json(paths.heartbeat) or {}).get("status") == "halted",
            5,
            "the heartbeat says halted",
        )
    finally:
        driver.quit()
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)

    # Assert: what the page said, and what the session's own files say
    assert "Emergency stop of s: applied by the running session" in notice, notice
    assert "emergency_stop" in halt, halt
    assert not control_note_shown  # a key is set: the page offers the buttons, not the shell commands
    assert errors == [], errors  # no script error, nothing refused by the page's CSP
    portfolio = read_json(paths.state)["portfolio"]
    assert portfolio["halted"] and portfolio["halt_reason"] == "emergency_stop", portfolio
    commands = [json.loads(line) for line in paths.control.read_text().splitlines()]
    sent = [c["command"] for c in commands if "command" in c]  # beside them, the session's acknowledgements
    assert sent == ["emergency_stop"]  # the wrong key sent nothing
    lines = list(iter_lines(paths.decisions))
    first_halt = _halt_lines(paths.decisions)[0]["seq"]
    assert not [line for line in lines[first_halt:] if line["action"] == "BUY"]  # no entry once halted


def _halt_lines(journal: Path) -> list[dict[str, Any]]:
    return [
        line
        for line in iter_lines(journal)
        if line["rejection_reason"] == "emergency_stop"
        or (line["fill"] or {}).get("reason") == "emergency_stop"
    ]


def _clock(ts: str) -> str:
    return ts[11:19]  # HH:MM:SS of an ISO instant, as the page writes a time of day


def _fills_with_rows(journal: Path) -> list[tuple[int, int, dict[str, Any]]]:
    # (the line holding the fill, the line that ordered it, the fill), as the journal writes them
    return [
        (line["seq"], fill["order_seq"], fill)
        for line in iter_lines(journal)
        for fill in (line["fill"], line.get("exit_fill"))
        if fill
    ]


@pytest.mark.heavy
def test_live_page_when_control_is_off_shows_trades_fills_pnl_and_log_and_fits_1280_px(tmp_path, monkeypatch):
    # Arrange: three hours of 1m bars replayed (the last fill opens a position), a server with no key
    monkeypatch.setenv("SE_OFFLINE", "true")
    home = stubs.replayed_session(tmp_path, "s1", "2026-01-05", "2026-01-05T03:00")
    paths = session_paths(home, "s1")
    lines = list(iter_lines(paths.decisions))
    last = lines[-1]
    assert last["position"] > 0  # the replay ends holding what its last BUY filled
    fills = _fills_with_rows(paths.decisions)
    entry = fills[-1][2]
    assert entry["side"] == "BUY"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    driver = _chrome()
    server = stubs.start_labkit(home, "serve", "--port", str(port))
    try:
        _wait_for(lambda: _alive([server]) and _answers(f"{base}/api/sessions"), 20, "the server answers")
        driver.get(f"{base}/")
        find = driver.find_element
        _wait_for(
            lambda: find("id", "d-decisions").get_attribute("data-value") == str(len(lines)),
            10,
            "the page shows s1",
        )
        _wait_for(
            lambda: driver.find_elements("css selector", "#log-tail") and find("id", "log-tail").text,
            10,
            "the log tail",
        )

        # Act: what a trader reads at 1280 px
        scroller = find("css selector", "#decisions").find_element("xpath", "..")
        fits = driver.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", scroller)
        page_fits = driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        enabled = [find("id", button).is_enabled() for button in ("btn-stop", "btn-estop")]
        control = find("id", "d-control").text
        rows = {
            int(tr.get_attribute("data-seq")): tr.find_element("css selector", ".c-fill").text
            for tr in driver.find_elements("css selector", "#decisions-body tr")
        }
        markers = driver.find_elements("css selector", "#chart-price polygon.mark")
        unrealised = float(find("id", "d-unrealised").get_attribute("data-value"))
        log_text = find("id", "log-tail").text
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1280, height + 150)
        driver.save_screenshot(str(tmp_path / "live-page-1280.png"))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
        if server.poll() is None:
            server.kill()
        server.communicate(timeout=10)

    # Assert: no column clipped; the table scrolls nowhere at 1280 px
    assert fits and page_fits
    # control is off: both buttons disabled, and the page names the commands that work
    assert enabled == [False, False]
    assert "labkit stop --session s1" in control and "labkit emergency-stop --session s1" in control, control
    # each fill on the row of the decision that ordered it, said to be filled at the next open
    shown_fills = [(held, order, fill) for held, order, fill in fills if order in rows]
    assert shown_fills
    for held, order, fill in shown_fills:
        assert rows[order].startswith(fill["side"]), (order, rows[order])
        assert f"filled at the next open, {_clock(lines[held]['ts'])} (#{held})" in rows[order], rows[order]
        assert held not in rows or not rows[held].startswith(fill["side"]), (held, rows[held])
    # one marker per fill on the price chart (the page holds every line of this short replay)
    assert len(markers) == len(fills)
    # the open position's unrealised P&L: its value at the last close less what the entry cost
    assert unrealised == pytest.approx(last["equity"] - last["cash"] + entry["cash_flow"], abs=1e-6)
    assert "session s1 stops after" in log_text
    assert errors == [], errors
