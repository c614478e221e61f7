"""The read side of `labkit serve`: status as `labkit status --json`, pages of decisions, the equity
curve, the reports, the page and its headers."""

from __future__ import annotations

import json
import os

import pytest

from labkit.cli import main
from labkit.engine.journal import iter_lines
from labkit.serve import app as app_module
from labkit.serve.journals import INDEX_EVERY, JournalView
from tests.serve.conftest import hand_session, journal_line


def test_sessions_when_listed_are_what_labkit_status_json_prints(replayed_home, client_for, capsys):
    # Arrange
    client = client_for(replayed_home)
    assert main(["--home", str(replayed_home), "status", "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    # Act
    listed = client.get("/api/sessions")
    one = client.get("/api/sessions/s1")
    # Assert
    assert listed.status_code == 200 and one.status_code == 200
    assert listed.json() == expected
    assert one.json() == expected[0]


def test_session_when_unknown_is_404_naming_the_name(replayed_home, client_for):
    response = client_for(replayed_home).get("/api/sessions/nobody")
    assert response.status_code == 404
    assert response.json()["field"] == "name" and "nobody" in response.json()["error"]


@pytest.mark.parametrize(
    ("after_seq", "limit"),
    [(-1, 5), (0, 3), (998, 4), (999, 2), (1998, 10), (2499, 10), (2500, 10), (1234, 1000), (-1, 1000)],
)
def test_decisions_when_paged_return_the_lines_after_seq_across_index_blocks(tmp_path, client_for, after_seq, limit):
    # Arrange: 2,500 lines, so pages start in each of three indexed blocks and past the end
    journal = hand_session(tmp_path, "big", [journal_line(seq, 10_000.0 + seq) for seq in range(2500)])
    client = client_for(tmp_path)
    expected = [line for line in iter_lines(journal) if line["seq"] > after_seq][:limit]
    # Act
    response = client.get(f"/api/sessions/big/decisions?after_seq={after_seq}&limit={limit}")
    # Assert
    body = response.json()
    assert response.status_code == 200
    assert body["decisions"] == expected
    assert body["total"] == 2500
    assert body["next_after_seq"] == (expected[-1]["seq"] if expected else after_seq)


def test_decisions_when_no_parameters_start_at_seq_zero_with_the_default_limit(tmp_path, client_for):
    hand_session(tmp_path, "big", [journal_line(seq) for seq in range(150)])
    body = client_for(tmp_path).get("/api/sessions/big/decisions").json()
    assert [line["seq"] for line in body["decisions"]] == list(range(100))
    assert (body["after_seq"], body["limit"]) == (-1, 100)


def test_decisions_when_limit_is_above_decisions_limit_max_are_refused_naming_limit(tmp_path, client_for):
    hand_session(tmp_path, "big", [journal_line(seq) for seq in range(10)])
    client = client_for(tmp_path, decisions_limit_max=5)
    assert client.get("/api/sessions/big/decisions?limit=5").status_code == 200
    refused = client.get("/api/sessions/big/decisions?limit=6")
    assert refused.status_code == 400 and refused.json()["field"] == "limit"


def test_decisions_when_seqs_do_not_follow_positions_still_return_the_seqs_asked_for(tmp_path, client_for):
    # Arrange: a damaged journal, seq 3 missing (verify calls it a hole)
    hand_session(tmp_path, "holey", [journal_line(seq) for seq in (0, 1, 2, 4, 5, 6)])
    # Act
    body = client_for(tmp_path).get("/api/sessions/holey/decisions?after_seq=2&limit=2").json()
    # Assert
    assert [line["seq"] for line in body["decisions"]] == [4, 5]


def test_decisions_when_the_last_line_is_torn_leave_it_out(tmp_path, client_for):
    journal = hand_session(tmp_path, "torn", [journal_line(seq) for seq in range(3)])
    with open(journal, "ab") as handle:
        handle.write(journal_line(3)[:-20])
    body = client_for(tmp_path).get("/api/sessions/torn/decisions?after_seq=0").json()
    assert [line["seq"] for line in body["decisions"]] == [1, 2] and body["total"] == 3


def test_journal_view_when_lines_are_appended_reads_only_the_new_ones(tmp_path):
    # Arrange: a view that has read three blocked lines
    journal = hand_session(tmp_path, "inc", [journal_line(s, stage="data", reason="stale_data") for s in range(3)])
    view = JournalView(journal)
    assert view.counts().blocks == {("data", "stale_data"): 3}
    # Act: blank the last two of them in place (a journal is never rewritten, so a view that read
    # them again would count what it should not), then append two new blocks
    first = len(journal_line(0, stage="data", reason="stale_data"))
    with open(journal, "r+b") as handle:
        size = len(journal.read_bytes())
        handle.seek(first)
        handle.write(b" " * (size - first - 1) + b"\n")
    with open(journal, "ab") as handle:
        handle.write(journal_line(3, stage="turnover", reason="max_daily_trades"))
        handle.write(journal_line(4, stage="data", reason="data_unavailable"))
    counts = view.counts()
    # Assert: the old counts stand, the new lines are added
    assert counts.decisions == 5
    assert counts.blocks == {("data", "stale_data"): 3, ("turnover", "max_daily_trades"): 1, ("data", "data_unavailable"): 1}
    assert counts.data_errors == 4


def test_journal_view_when_the_journal_is_replaced_reads_the_new_one_from_its_start(tmp_path):
    journal = hand_session(tmp_path, "again", [journal_line(s, stage="data", reason="stale_data") for s in range(4)])
    view = JournalView(journal)
    assert view.counts().decisions == 4
    replacement = journal.with_name("new.jsonl")
    replacement.write_bytes(b"".join(journal_line(s) for s in range(7)))
    os.replace(replacement, journal)
    counts = view.counts()
    assert (counts.decisions, counts.blocks) == (7, {})
    assert [line["seq"] for line in view.decisions_after(5, 10)[0]] == [6]


def test_journal_view_when_read_indexes_the_offset_of_every_thousandth_line(tmp_path):
    lines = [journal_line(s) for s in range(2 * INDEX_EVERY + 1)]
    view = JournalView(hand_session(tmp_path, "idx", lines))
    view.counts()
    expected = [sum(len(line) for line in lines[:n]) for n in range(0, len(lines), INDEX_EVERY)]
    assert list(view._starts) == expected and len(expected) == 3


def test_equity_when_longer_than_points_is_downsampled_keeping_the_deepest_drawdown(tmp_path, client_for):
    # Arrange: equity rises to 12,000, falls 25 % for one line only, then recovers
    equities = [10_000.0 + 2 * s for s in range(1000)] + [9_000.0] + [12_000.0 + s for s in range(999)]
    hand_session(tmp_path, "curve", [journal_line(s, e) for s, e in enumerate(equities)])
    # Act
    body = client_for(tmp_path).get("/api/sessions/curve/equity?points=50").json()
    # Assert
    points = body["points"]
    assert len(points) == 50 and body["total"] == 2000
    assert points[-1]["equity"] == equities[-1] and points[-1]["ts"] == "2026-01-06T09:19:00Z"
    deepest = 1 - 9_000.0 / 11_998.0
    assert max(p["drawdown"] for p in points) == pytest.approx(deepest)
    assert body["max_drawdown"] == pytest.approx(deepest) and body["peak_equity"] == equities[-1]


def test_equity_when_shorter_than_points_returns_every_line(replayed_home, client_for):
    body = client_for(replayed_home).get("/api/sessions/s1/equity").json()
    equities = [line["equity"] for line in iter_lines(replayed_home / "data/sessions/s1/decisions.jsonl")]
    assert [p["equity"] for p in body["points"]] == equities
    assert all(0 <= p["drawdown"] < 1 for p in body["points"])


def test_equity_when_the_session_decided_nothing_is_empty(tmp_path, client_for):
    hand_session(tmp_path, "new", [])
    body = client_for(tmp_path).get("/api/sessions/new/equity").json()
    assert body == {"session": "new", "total": 0, "points": [], "peak_equity": None, "max_drawdown": None}


def _report(home, folder: str, stem: str, **sidecar) -> None:
    where = home / "reports" / folder
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{stem}.html").write_text(f"<html><body>{stem}</body></html>")
    data = {"kind": "backtest", "session": "bt.jsonl", "period": "all", "ok": True, "outcome": "ok",
            "generated_at": "2026-03-01T10:00:00.000Z", "html": f"{stem}.html", **sidecar}
    (where / f"{stem}.json").write_text(json.dumps(data))


def test_reports_when_listed_carry_outcomes_and_links_served_from_the_reports_folder(tmp_path, client_for):
    # Arrange
    _report(tmp_path, "_backtests", "backtest-a", generated_at="2026-03-01T10:00:00.000Z")
    _report(tmp_path, "_backtests", "backtest-b", ok=False, outcome="failed", error="cell 3: ValueError",
            generated_at="2026-03-02T10:00:00.000Z")
    from labkit.reports.render import write_index

    write_index(tmp_path)
    client = client_for(tmp_path)
    # Act
    body = client.get("/api/reports").json()
    page = client.get(body["reports"][1]["url"])
    index = client.get(body["index"])
    # Assert
    assert [(r["url"], r["outcome"], r["ok"]) for r in body["reports"]] == [
        ("/reports/_backtests/backtest-b.html", "failed", False),
        ("/reports/_backtests/backtest-a.html", "ok", True),
    ]
    assert body["reports"][0]["error"] == "cell 3: ValueError"
    assert page.status_code == 200 and "backtest-a" in page.text
    assert page.headers["content-security-policy"] == app_module.REPORT_CSP
    assert index.status_code == 200 and "2 reports" in index.text


def test_reports_when_none_were_rendered_is_an_empty_list(tmp_path, client_for):
    client = client_for(tmp_path)
    assert client.get("/api/reports").json() == {"index": None, "reports": []}
    assert client.get("/reports/index.html").status_code == 404


@pytest.mark.parametrize("path", ["/health", "/metrics", "/api/sessions", "/api/sessions/s1", "/api/reports",
                                  "/api/sessions/s1/decisions", "/api/sessions/s1/equity", "/nothing"])
def test_responses_when_from_the_api_are_not_cached_sniffed_or_framed(replayed_home, client_for, path):
    headers = client_for(replayed_home).get(path).headers
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_page_when_its_assets_are_installed_is_served_with_them(tmp_path, client_for, monkeypatch):
    # Arrange: assets of our own, whatever the page's are
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text('<!DOCTYPE html><script src="/static/app.js"></script>')
    (static / "app.js").write_text("console.log('hi')")
    monkeypatch.setattr(app_module, "STATIC", static)
    client = client_for(tmp_path)
    # Act
    page, script, missing = client.get("/"), client.get("/static/app.js"), client.get("/static/nope.js")
    # Assert
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/static/app.js" in page.text and page.headers["content-security-policy"] == app_module.PAGE_CSP
    assert script.status_code == 200 and "console.log" in script.text
    assert script.headers["x-content-type-options"] == "nosniff"
    assert missing.status_code == 404 and missing.json()["field"] == "path"


def test_page_when_its_assets_are_missing_says_so(tmp_path, client_for, monkeypatch):
    monkeypatch.setattr(app_module, "STATIC", tmp_path / "nowhere")
    page = client_for(tmp_path).get("/")
    assert page.status_code == 200 and "assets are missing" in page.text


def test_unknown_route_when_asked_is_a_json_404(tmp_path, client_for):
    response = client_for(tmp_path).get("/api/nothing")
    assert response.status_code == 404 and response.json()["field"] == "path"


@pytest.mark.parametrize(
    ("host", "status"),
    [("127.0.0.1:8765", 200), ("localhost:8765", 200), ("[::1]:8765", 200), ("127.0.0.1", 200),
     ("evil.example:8765", 400), ("rebind.attacker.test", 400), ("[2001:db8::1]:8765", 400)],
)
def test_host_when_the_server_listens_on_loopback_must_name_loopback(tmp_path, host, status):
    # Arrange: DNS rebinding: a page elsewhere whose name now resolves to 127.0.0.1
    from starlette.testclient import TestClient

    from labkit.config.loading import load_config
    from labkit.serve import create_app

    client = TestClient(create_app(tmp_path, load_config(None, {}, environ={}), loopback_only=True))
    # Act
    response = client.get("/api/sessions", headers={"Host": host})
    # Assert
    assert response.status_code == status
    if status == 400:
        assert response.json()["field"] == "Host"


def test_journal_view_when_a_journal_is_begun_again_in_place_reads_it_from_its_start(tmp_path):
    # Arrange: the same file (same inode) truncated and written again, longer than before
    journal = hand_session(tmp_path, "inplace", [journal_line(s, stage="data", reason="stale_data") for s in range(3)])
    view = JournalView(journal)
    assert view.counts().blocks == {("data", "stale_data"): 3}
    # Act
    with open(journal, "r+b") as handle:
        handle.truncate(0)
        handle.write(b"".join(journal_line(s, equity=20_000.0 + s) for s in range(5)))
    counts = view.counts()
    # Assert
    assert (counts.decisions, counts.blocks, counts.unreadable) == (5, {}, 0)
    assert [p["equity"] for p in view.equity_curve(10)["points"]] == [20_000.0 + s for s in range(5)]
