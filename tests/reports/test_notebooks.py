from __future__ import annotations

import ast
import hashlib
import re

import nbformat
import pytest

from labkit.config.loading import load_config
from labkit.home import code_version
from labkit.readiness.verdicts import latest_verdict
from labkit.reports.render import notebooks_dir, render_report
from tests import stubs

NOTEBOOKS = sorted(notebooks_dir().glob("*.ipynb")) + sorted(notebooks_dir("research").glob("*.ipynb"))
# What each notebook is about besides the home: a session, unless it says otherwise.
SUBJECT = {"backtest_report": "journal", "explore": "symbol", "train_model": "model", "sweep": "sweep"}
OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def test_notebooks_dir_when_installed_holds_the_three_reports():
    # Arrange / Act
    names = {path.name for path in NOTEBOOKS}
    # Assert
    assert {"paper_session.ipynb", "daily_health.ipynb", "weekly_readiness.ipynb"} <= names


def test_notebooks_dir_when_installed_holds_the_backtest_report():
    assert "backtest_report.ipynb" in {path.name for path in NOTEBOOKS}


def test_notebooks_dir_when_asked_for_research_holds_explore_and_train_model():
    assert {"explore.ipynb", "train_model.ipynb"} <= {path.name for path in notebooks_dir("research").glob("*.ipynb")}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_when_committed_gives_every_cell_an_id(path):
    # Arrange
    nb = nbformat.read(path, as_version=4)
    # Act
    ids = [cell.get("id") for cell in nb.cells]
    # Assert
    assert all(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_when_committed_has_no_outputs_or_execution_counts(path):
    # Arrange
    nb = nbformat.read(path, as_version=4)
    # Act
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    # Assert
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert nb.metadata.kernelspec.name == "python3"
    assert nb.metadata.kernelspec.language == "python"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_when_committed_has_purpose_then_literal_parameters(path):
    # Arrange
    nb = nbformat.read(path, as_version=4)
    # Act
    first, second = nb.cells[0], nb.cells[1]
    statements = ast.parse(second.source).body
    # Assert
    assert first.cell_type == "markdown" and "Inputs" in first.source and "Outputs" in first.source
    assert "parameters" in second.metadata.get("tags", [])
    assert statements and all(isinstance(s, ast.Assign) for s in statements)
    for statement in statements:
        ast.literal_eval(statement.value)  # type: ignore[attr-defined]
    # A backtest report reads a journal file, the research notebooks a market or a model, not a session.
    subject = SUBJECT.get(path.stem, "session")
    assert {s.targets[0].id for s in statements} >= {"home", subject}  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory):
    home = stubs.replayed_session(tmp_path_factory.mktemp("home"), "e2e", "2026-01-05", "2026-01-08")
    before = code_version()
    own = load_config(None, {}, environ={})
    looser = load_config(None, {"readiness.min_trades": 7}, environ={})
    results = [render_report(kind, "e2e", home, own) for kind in ("session", "daily", "weekly")]
    results.append(render_report("weekly", "e2e", home, looser))  # a what-if, beside the verdict
    # A commit landing while the reports render changes the version; either is the truth.
    return home, results, {before, code_version()}


@pytest.mark.slow
def test_render_report_when_all_kinds_writes_self_contained_html(rendered):
    # Arrange
    home, results, versions = rendered
    # Act
    pages = {r.kind: r.html.read_text(encoding="utf-8") for r in results}
    # Assert
    assert [(r.kind, r.period, r.ok) for r in results] == [
        ("session", "session", True),
        ("daily", "2026-01-07", True),
        ("weekly", "2026-W02", True),
        ("weekly", "2026-W02", True),
    ]
    for kind, page in pages.items():
        assert "sma_cross-10-30" in page, kind
        assert any(version in page for version in versions), kind
        assert "data:image/png;base64" in page, kind
        assert "view = plots.load_session" not in page, kind  # code is hidden
        assert "hl-ipython3" not in page, kind  # no highlighted code block
        assert not OUTSIDE.search(page), kind
    weekly, what_if = (r.html.read_text(encoding="utf-8") for r in results[2:])
    assert "NOT READY: replay_only" in weekly and "the week was a replay" in weekly
    assert "WHAT-IF: would not pass" in what_if and "min_trades 7 (the session's own: 20)" in what_if
    assert "No model to drift" in pages["daily"]  # an sma_cross session has no training window


@pytest.mark.slow
def test_render_report_when_all_kinds_lists_them_in_index_and_saves_verdict(rendered):
    # Arrange
    home, results, _ = rendered
    # Act
    index = (home / "reports" / "index.html").read_text(encoding="utf-8")
    verdict = latest_verdict(home, "e2e")
    # Assert
    for result in results:
        assert f'href="e2e/{result.html.name}"' in index
        assert result.notebook.exists()
    assert index.count(">ok<") == 1 and ">NOT READY<" in index  # the weekly row shows its outcome
    assert re.search(r'class="(?:loss|gain|flat)">(?:loss -|gain \+|flat )', index)  # the session's return
    assert ">what-if<" in index and ">READY<" not in index
    assert [r.html.name for r in results[2:]] == ["weekly-2026-W02.html", "weekly-2026-W02-what-if.html"]
    assert verdict is not None and verdict["week"] == "2026-W02"
    assert verdict["gates"][1]["thresholds"] == {"min_trades": 20}  # the session's own, never the what-if's


@pytest.mark.heavy
@pytest.mark.slow
def test_paper_session_notebook_when_live_bars_set_runs_watches_and_stops_a_session(tmp_path):
    # Arrange
    import papermill

    out = tmp_path / "live.ipynb"
    # Act: the notebook starts a bounded session in its own process, watches it, stops it, reports it
    papermill.execute_notebook(
        str(notebooks_dir() / "paper_session.ipynb"), str(out), kernel_name="python3", progress_bar=False,
        parameters={"home": str(tmp_path), "session": "nb-live", "live_bars": 3, "live_timeframe": "1s"},
        extra_arguments=["--IPKernelApp.log_level=ERROR"], cwd=str(tmp_path),
    )
    # Assert
    executed = nbformat.read(out, as_version=4)
    text = "\n".join(str(o.get("text", "")) for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert re.search(r"running: \d+ decisions", text) or "stopped: 3 decisions" in text
    lines = (tmp_path / "data/sessions/nb-live/decisions.jsonl").read_text().splitlines()
    assert len(lines) == 3


@pytest.mark.slow
def test_render_report_when_all_kinds_links_each_page_back_to_the_index_and_names_no_local_path(rendered):
    # Arrange
    home, results, _ = rendered
    # Act
    pages = {r.kind: r.html.read_text(encoding="utf-8") for r in results}
    # Assert
    for kind, page in pages.items():
        assert 'href="../index.html"' in page, kind
        assert page.index('href="../index.html"') < page.index("<h1"), kind  # at the top
        assert str(home) not in page, kind
        assert "home=" not in page, kind
        assert "UTC" in page, kind
    for path in (home / "reports").rglob("*"):  # the executed notebooks and sidecars too
        if path.is_file():
            assert str(home) not in path.read_text(encoding="utf-8", errors="replace"), path


@pytest.mark.slow
def test_render_weekly_when_rendered_shows_provenance_hashes_of_the_session_files(rendered):
    # Arrange
    home, results, versions = rendered
    weekly = next(r for r in results if r.kind == "weekly").html.read_text(encoding="utf-8")
    session = home / "data" / "sessions" / "e2e"
    # Act
    hashes = {
        name: hashlib.sha256((session / name).read_bytes()).hexdigest()[:12]
        for name in ("config.json", "tape.jsonl", "decisions.jsonl")
    }
    model = hashlib.sha256(b"sma_cross-10-30").hexdigest()[:12]
    # Assert
    for name, digest in hashes.items():
        assert f"sha256 {digest} (data/sessions/e2e/{name})" in weekly, name
    assert f"sha256 {model} (of the model id)" in weekly
    commits = {v.split("+g")[1].split(".")[0] for v in versions if "+g" in v}
    assert not commits or any(f"git commit {c}, " in weekly for c in commits)
    assert "clean tree" in weekly or "dirty tree (uncommitted changes)" in weekly


@pytest.mark.slow
def test_render_weekly_when_rendered_shows_the_assumptions_card_and_money_in_the_gates(rendered):
    # Arrange
    home, results, _ = rendered
    # Act
    weekly = next(r for r in results if r.kind == "weekly").html.read_text(encoding="utf-8")
    # Assert
    assert "fills at the next bar&#x27;s open" in weekly or "fills at the next bar's open" in weekly
    assert "0.100% of each fill&#x27;s notional (broker.fee in config.json)" in weekly or (
        "0.100% of each fill's notional (broker.fee in config.json)" in weekly
    )
    assert "broker.slippage in config.json" in weekly
    assert "annualised over 525,600 bars a year (24/7: 365 days)" in weekly
    assert "without the exit fee" in weekly
    assert re.search(r"peak_equity=[\d,]+\.\d\d USDT", weekly)
    assert re.search(r"costs=[\d,]+\.\d\d USDT", weekly)
