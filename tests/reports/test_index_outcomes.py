"""The index says what each report found in words, and shows a backtest's --title (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.reports.index import return_outcome, write_index


@pytest.mark.parametrize(
    ("final", "capital", "expected"),
    [(8640.0, 10_000.0, "loss -13.6%"), (10_210.0, 10_000.0, "gain +2.1%"), (10_000.2, 10_000.0, "flat 0.0%")],
)
def test_return_outcome_when_given_equity_says_loss_gain_or_flat(final, capital, expected):
    assert return_outcome(final, capital) == expected


def _backtest_sidecar(home: Path, **fields) -> None:
    folder = home / "reports" / "_backtests"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "backtest-bt-1234abcd.html").write_text("<html></html>")
    sidecar = {
        "kind": "backtest",
        "session": "bt.jsonl",
        "period": "2026-01-01 to 2026-01-07",
        "ok": True,
        "generated_at": "2026-03-01T10:00:00.000Z",
        "html": "backtest-bt-1234abcd.html",
        **fields,
    }
    (folder / "backtest-bt-1234abcd.json").write_text(json.dumps(sidecar))


def test_write_index_when_a_backtest_lost_money_says_loss_not_ok(tmp_path):
    _backtest_sidecar(tmp_path, outcome="loss -13.6%")
    page = write_index(tmp_path).read_text(encoding="utf-8")
    assert '<td class="loss">loss -13.6%</td>' in page
    assert ">ok<" not in page


def test_write_index_when_a_backtest_has_a_title_shows_it(tmp_path):
    _backtest_sidecar(tmp_path, outcome="gain +2.1%", title="My momentum test")
    page = write_index(tmp_path).read_text(encoding="utf-8")
    assert ">My momentum test</a>" in page and "<td>bt.jsonl</td>" in page
    assert '<td class="gain">gain +2.1%</td>' in page


def test_write_index_when_outcome_is_unknown_words_falls_back_to_ok(tmp_path):
    _backtest_sidecar(tmp_path, outcome="<script>")
    assert ">ok<" in write_index(tmp_path).read_text(encoding="utf-8")


def test_render_session_report_when_the_session_decided_gives_its_return_as_outcome(tmp_path, monkeypatch):
    from labkit.config.loading import load_config
    from labkit.reports.render import render_report
    from tests import stubs
    from tests.reports.test_render import _without_kernel, write_notebook

    home = stubs.replayed_session(tmp_path / "home", "p1", "2026-01-05", "2026-01-05T02:00")
    _without_kernel(monkeypatch, tmp_path / "nb")
    write_notebook(tmp_path / "nb", "paper_session", 'print("session")')
    result = render_report("session", "p1", home, load_config(None, {}, environ={}), notebooks=tmp_path / "nb")
    assert result.outcome.split()[0] in ("loss", "gain", "flat")
    assert result.outcome in (home / "reports" / "index.html").read_text(encoding="utf-8")
