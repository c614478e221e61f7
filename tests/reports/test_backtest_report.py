"""`labkit report backtest`: a tearsheet from the journal `labkit backtest --journal` wrote."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.reports.backtests import backtest_figures, load_backtest

OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def _labkit(home: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--home", str(home), *args])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def backtest(tmp_path_factory: pytest.TempPathFactory):
    # A real backtest (a week of synthetic 1-minute bars: the guardrails halt it on its last day),
    # its journal written outside the home, then its report.
    home, elsewhere = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("elsewhere")
    journal = elsewhere / "bt.jsonl"
    window = ["--since", "2026-01-01", "--until", "2026-01-08"]
    code, out = _labkit(home, "backtest", *window, "--journal", str(journal), "--json")
    assert code == 0
    summary = json.loads(out)
    code, out = _labkit(home, "report", "backtest", "--journal", str(journal))
    assert code == 0, out
    return home, journal, summary, out


@pytest.mark.slow
def test_report_backtest_when_journal_is_real_renders_the_tearsheet(backtest):
    # Arrange
    home, journal, summary, out = backtest
    # Act
    (page,) = (home / "reports" / "_backtests").glob("backtest-bt-*.html")
    text = page.read_text(encoding="utf-8")
    # Assert
    assert f"backtest report for bt.jsonl (2026-01-01 to 2026-01-07, ok): {page}" in out
    assert "Backtest: sma_cross-10-30 on BTC/USDT 1m" in text
    for section in (
        "Summary",
        "Equity, buy and hold, and underwater",
        "Rolling Sharpe ratio",
        "year (UTC)",  # monthly returns
        "Decisions by blocking stage and reason",
        "Gate ledger",
        "Every closed trade",
        "entry (UTC)",
    ):
        assert section in text, section
    assert text.count("data:image/png;base64") >= 4  # equity, rolling Sharpe, actions, blocks
    assert f"{summary['final_equity']:,.2f} USDT" in text
    assert f"{summary['sharpe']:,.2f}" in text and f"{summary['max_drawdown_pct']:.2f}%" in text
    assert "24/7" in text and "assumed: a backtest journal does not record" in text
    assert "The guardrails stopped all trading" in text
    assert hashlib.sha256(journal.read_bytes()).hexdigest()[:12] in text
    assert not OUTSIDE.search(text)


@pytest.mark.slow
def test_report_backtest_when_rendered_is_listed_in_the_index_as_backtest(backtest):
    # Arrange
    home, _, _, _ = backtest
    # Act
    index = (home / "reports" / "index.html").read_text(encoding="utf-8")
    (sidecar,) = (home / "reports" / "_backtests").glob("backtest-bt-*.json")
    data = json.loads(sidecar.read_text())
    # Assert
    assert f'href="_backtests/{data["html"]}"' in index
    assert "<td>backtest</td><td>bt.jsonl</td><td>2026-01-01 to 2026-01-07</td>" in index
    assert data["kind"] == "backtest" and data["outcome"] == "ok" and data["ok"] is True
    assert "1 reports" in index


@pytest.mark.slow
def test_report_backtest_when_rendered_names_no_local_path_and_links_to_the_index(backtest):
    # Arrange
    home, journal, _, _ = backtest
    # Act
    (page,) = (home / "reports" / "_backtests").glob("backtest-bt-*.html")
    text = page.read_text(encoding="utf-8")
    # Assert
    assert str(home) not in text and str(journal.parent) not in text
    assert 'href="../index.html"' in text
    assert text.index('href="../index.html"') < text.index("Backtest report")  # at the top


@pytest.mark.slow
def test_backtest_figures_when_read_from_the_journal_equal_the_backtest_json(backtest):
    # Arrange
    _, journal, summary, _ = backtest
    # Act
    figures = backtest_figures(load_backtest(journal))
    # Assert: every figure the backtest printed, recomputed from its journal
    shared = set(summary) & set(figures)
    assert {"sharpe", "sortino", "calmar", "max_drawdown_pct", "profit_factor", "exposure_pct"} <= shared
    assert {"blocks", "guardrail_halt", "buy_hold_return_pct", "hit_rate_pct"} <= shared
    for key in shared:
        if isinstance(summary[key], float):
            assert figures[key] == pytest.approx(summary[key], rel=1e-12, abs=1e-9), key
        else:
            assert figures[key] == summary[key], key
    assert summary["guardrail_halt"] is not None  # the case that must show


def test_load_backtest_when_runs_were_appended_reads_the_last(tmp_path):
    # Arrange: two runs in one file, as `labkit backtest --append` leaves them
    path = tmp_path / "bt.jsonl"
    first = ["--since", "2026-01-01", "--until", "2026-01-01T02:00"]
    second = ["--since", "2026-01-02", "--until", "2026-01-02T01:00", "--append"]
    assert _labkit(tmp_path, "backtest", *first, "--journal", str(path))[0] == 0
    assert _labkit(tmp_path, "backtest", *second, "--journal", str(path))[0] == 0
    # Act
    view = load_backtest(path, tmp_path)
    # Assert
    assert view.runs == 2 and view.first_line == 121 and len(view.journal) == 60
    assert view.period == "2026-01-02 to 2026-01-02" and view.capital == 10_000.0


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b'{"schema":1,"seq":0', "is empty"),  # a torn line only
        (b"hello, world\n", "line 1 is not JSON"),
        (b"\x00\x01\x02binary\n", "line 1 is not JSON"),
        (b'{"kind":"bar","ts":"2026-01-01T00:00:00Z"}\n', "line 1 is not a decision line"),
        (b"[1, 2, 3]\n", "line 1 is not a decision line"),
        ("directory", "is not a file"),
    ],
    ids=["missing", "empty", "torn", "text", "binary", "tape-line", "array", "directory"],
)
def test_report_backtest_when_journal_is_bad_exits_2_naming_journal(tmp_path, capsys, content, words):
    # Arrange
    path = tmp_path / "bt.jsonl"
    if content == "directory":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    # Act
    code = main(["--home", str(tmp_path), "report", "backtest", "--journal", str(path)])
    # Assert
    err = capsys.readouterr().err
    assert code == 2
    assert "labkit report: --journal: " in err and words in err
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["report", "backtest"], "--journal: `labkit report backtest` needs the journal"),
        (["report", "session", "--journal", "x.jsonl"], "--journal: only `labkit report backtest`"),
        (["report", "backtest", "--journal", "x.jsonl", "--week", "2026-W02"], "--week: a backtest report"),
        (["report", "backtest", "--journal", "x.jsonl", "--title", "t" * 201], "--title: at most 200"),
    ],
)
def test_report_when_journal_flags_are_misused_exits_2(tmp_path, capsys, args, words):
    # Arrange
    (tmp_path / "x.jsonl").write_text("")
    # Act
    code = main(["--home", str(tmp_path), *args])
    # Assert
    assert code == 2 and words in capsys.readouterr().err
