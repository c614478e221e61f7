"""Report pages are titled by the session's mode and hold no notebook instructions (issue 20)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from labkit.config.loading import load_config
from labkit.reports.render import NOTEBOOK_ONLY, render_report
from tests import stubs
from tests.reports.test_render import _without_kernel


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stubs.replayed_session(tmp_path_factory.mktemp("home"), "p1", "2026-01-05", "2026-01-05T02:00")


def _notebook(directory: Path, name: str, heading: str, *cells) -> None:
    parameters = new_code_cell('home = ""\nsession = "demo"\ndate = ""\nweek = ""')
    parameters.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell(f"# {heading}\n\n**Purpose:** a test."), parameters, *cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, directory / f"{name}.ipynb")


def _page(home: Path, kind: str, notebooks: Path, **period: str) -> str:
    result = render_report(kind, "p1", home, load_config(None, {}, environ={}), notebooks=notebooks, **period)
    return result.html.read_text(encoding="utf-8")


def test_daily_report_when_session_is_paper_is_not_titled_shadow(home, tmp_path, monkeypatch):
    _without_kernel(monkeypatch, tmp_path)
    _notebook(tmp_path, "daily_health", "Daily shadow health", new_code_cell('print("day")'))
    text = _page(home, "daily", tmp_path, date="2026-01-05")
    assert "Daily paper health" in text
    assert "shadow health" not in text


def test_session_report_when_session_is_paper_is_titled_paper(home, tmp_path, monkeypatch):
    _without_kernel(monkeypatch, tmp_path)
    _notebook(tmp_path, "paper_session", "Session report", new_code_cell('print("session")'))
    assert "Paper session report" in _page(home, "session", tmp_path)


def test_session_report_drops_cells_tagged_notebook_only(home, tmp_path, monkeypatch):
    _without_kernel(monkeypatch, tmp_path)
    live = new_markdown_cell("## Run it live (optional)\n\nstart a session from here")
    live.metadata["tags"] = [NOTEBOOK_ONLY]
    _notebook(tmp_path, "paper_session", "Session report", live, new_code_cell('print("kept")'))
    text = _page(home, "session", tmp_path)
    assert "Run it live" not in text and "kept" in text


def test_shipped_notebooks_tag_their_live_section_notebook_only():
    from labkit.reports.render import notebooks_dir

    nb = nbformat.read(notebooks_dir() / "paper_session.ipynb", as_version=4)
    live = [c for c in nb.cells if "Run it live" in c.source or "operations.start" in c.source]
    assert live and all(NOTEBOOK_ONLY in c.metadata.get("tags", []) for c in live)


def test_session_summary_when_position_is_a_long_float_shows_six_digits(home):
    from labkit.engine.journal import read_journal
    from labkit.reports.sessions import session_summary

    journal = read_journal(home / "data" / "sessions" / "p1" / "decisions.jsonl")
    journal.loc[journal.index[-1], "position"] = 1.4146470451501785
    shown = session_summary(journal, 10_000.0).to_string()
    assert "1.41465" in shown and "1.4146470451501785" not in shown and "e-" not in shown
