from __future__ import annotations

import errno
import json
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from labkit.config.loading import load_config
from labkit.errors import ConfigError, NotebookRunError
from labkit.reports.index import write_index
from labkit.reports.render import render_report
from tests import stubs

OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def write_notebook(directory: Path, name: str, *sources: str) -> None:
    parameters = new_code_cell('home = ""\nsession = "demo"\ndate = ""\nweek = ""')
    parameters.metadata["tags"] = ["parameters"]
    nb = new_notebook(
        cells=[new_markdown_cell("# test report"), parameters, *[new_code_cell(source) for source in sources]]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    directory.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, directory / f"{name}.ipynb")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stubs.replayed_session(tmp_path_factory.mktemp("home"), "s1", "2026-01-05", "2026-01-05T02:00")


@pytest.mark.slow
def test_render_report_when_cell_raises_writes_error_html_and_raises(home, tmp_path):
    # Arrange
    write_notebook(
        tmp_path,
        "paper_session",
        'print("before the failure")',
        'raise ValueError("boom in the report")',
        'print("never")',
    )
    config = load_config(None, {}, environ={})
    # Act
    with pytest.raises(NotebookRunError) as caught:
        render_report("session", "s1", home, config, notebooks=tmp_path)
    # Assert
    page = home / "reports" / "s1" / "session-session.html"
    text = page.read_text(encoding="utf-8")
    message = str(caught.value)
    assert str(page) in message and "In [4]" in message and "boom in the report" in message
    assert text.index("REPORT FAILED") < text.index("before the failure")
    assert "boom in the report" in text and "ValueError" in text
    assert not OUTSIDE.search(text)
    assert (home / "reports" / "s1" / "session-session.ipynb").exists()
    sidecar = json.loads((home / "reports" / "s1" / "session-session.json").read_text())
    assert sidecar["ok"] is False and "boom" in sidecar["error"]
    assert ">failed<" in (home / "reports" / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_render_report_when_kernel_dies_writes_error_html_and_raises(home, tmp_path):
    # Arrange: a cell that kills its own kernel
    write_notebook(tmp_path, "weekly_readiness", 'print("alive")', "import os\nos._exit(1)")
    config = load_config(None, {}, environ={})
    # Act
    with pytest.raises(NotebookRunError) as caught:
        render_report("weekly", "s1", home, config, week="2026-W02", notebooks=tmp_path)
    # Assert
    text = (home / "reports" / "s1" / "weekly-2026-W02.html").read_text(encoding="utf-8")
    assert "REPORT FAILED" in text and "alive" in text
    assert "weekly-2026-W02.html" in str(caught.value)


@pytest.mark.slow
def test_render_report_when_cell_times_out_writes_error_html_and_raises(home, tmp_path):
    # Arrange
    write_notebook(tmp_path, "daily_health", "import time\ntime.sleep(60)")
    config = load_config(None, {"reports.cell_timeout": 1}, environ={})
    started = time.monotonic()
    # Act
    with pytest.raises(NotebookRunError) as caught:
        render_report("daily", "s1", home, config, date="2026-01-05", notebooks=tmp_path)
    # Assert
    assert time.monotonic() - started < 30
    page = home / "reports" / "s1" / "daily-2026-01-05.html"
    text = page.read_text(encoding="utf-8")
    assert "timed out" in str(caught.value) and "cell 3" in str(caught.value)
    assert "REPORT FAILED" in text and "timed out" in text


def test_render_report_when_notebook_missing_still_writes_error_html(home, tmp_path):
    # Arrange: an empty notebook directory, so papermill cannot even start
    config = load_config(None, {}, environ={})
    # Act
    with pytest.raises(NotebookRunError) as caught:
        render_report("weekly", "s1", home, config, week="2026-W02", notebooks=tmp_path)
    # Assert
    page = home / "reports" / "s1" / "weekly-2026-W02.html"
    assert str(page) in str(caught.value)
    assert "REPORT FAILED" in page.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("kind", "session", "date", "week", "words"),
    [
        ("session", "nope", None, None, "no session 'nope'"),
        ("monthly", "s1", None, None, "unknown kind"),
        ("daily", "s1", "2026-13-01", None, "YYYY-MM-DD"),
        ("weekly", "s1", None, "2026-02", "YYYY-Www"),
    ],
)
def test_render_report_when_input_is_bad_raises_config_error(home, kind, session, date, week, words):
    # Arrange
    config = load_config(None, {}, environ={})
    # Act
    with pytest.raises(ConfigError) as caught:
        render_report(kind, session, home, config, date=date, week=week)
    # Assert
    assert words in str(caught.value)


def test_write_index_when_no_reports_writes_empty_listing(tmp_path):
    # Arrange / Act
    path = write_index(tmp_path)
    # Assert
    assert "0 reports" in path.read_text(encoding="utf-8")


@pytest.mark.slow
def test_render_report_when_output_and_error_name_the_home_shows_them_relative_to_it(home, tmp_path):
    # Arrange: a notebook that prints an absolute path under the home, then fails naming another
    write_notebook(
        tmp_path,
        "paper_session",
        'import os; home = os.path.abspath(home); print(f"reading {home}/data/sessions/s1/decisions.jsonl")',
        'raise FileNotFoundError(f"{home}/data/sessions/s1/missing.json")',
    )
    config = load_config(None, {}, environ={})
    # Act
    with pytest.raises(NotebookRunError):
        render_report("session", "s1", home, config, notebooks=tmp_path)
    # Assert
    text = (home / "reports" / "s1" / "session-session.html").read_text(encoding="utf-8")
    assert "REPORT FAILED" in text
    assert str(home) not in text
    assert "reading data/sessions/s1/decisions.jsonl" in text
    assert "data/sessions/s1/missing.json" in text
    assert text.index('href="../index.html"') < text.index("REPORT FAILED")


def test_write_index_when_a_backtest_report_exists_lists_it_without_a_session(tmp_path):
    # Arrange: a backtest report's page and sidecar; no session under the home
    folder = tmp_path / "reports" / "_backtests"
    folder.mkdir(parents=True)
    (folder / "backtest-bt-1234abcd.html").write_text("<html></html>")
    sidecar = {
        "kind": "backtest",
        "session": "bt.jsonl",
        "period": "2026-01-01 to 2026-01-07",
        "ok": True,
        "outcome": "ok",
        "generated_at": "2026-03-01T10:00:00.000Z",
        "html": "backtest-bt-1234abcd.html",
    }
    (folder / "backtest-bt-1234abcd.json").write_text(json.dumps(sidecar))
    (folder / "stray.json").write_text(json.dumps({**sidecar, "kind": "session"}))  # not a backtest: skipped
    # Act
    page = write_index(tmp_path).read_text(encoding="utf-8")
    # Assert
    assert re.findall(r'href="([^"]+)"', page) == ["_backtests/backtest-bt-1234abcd.html"]
    assert "<td>backtest</td><td>bt.jsonl</td>" in page and "1 reports" in page


@pytest.mark.slow
def test_render_report_when_weekly_cells_run_reads_the_verdict_already_saved(home, tmp_path):
    # Arrange: the kernel starts while the verdict is judged (issue 17); a cell reads the saved file
    write_notebook(
        tmp_path,
        "weekly_readiness",
        'import json, pathlib\nsaved = json.loads(pathlib.Path(verdict).read_text())\nprint("saved", saved["week"], len(saved["execution"]))',
    )
    home = _own_home(home, tmp_path)  # a good weekly report is kept over the failed ones of other tests
    config = load_config(None, {}, environ={})
    # Act
    result = render_report("weekly", "s1", home, config, week="2026-W02", notebooks=tmp_path)
    # Assert
    assert result.ok and result.outcome in ("READY", "NOT READY")
    assert "saved 2026-W02 3" in result.html.read_text(encoding="utf-8")


@pytest.mark.slow
def test_render_report_when_judging_fails_raises_it_ends_the_kernel_and_writes_no_report(
    tmp_path, monkeypatch
):
    # Arrange: the evidence fails while the kernel, started first (issue 17), boots
    import labkit.readiness.evidence
    import labkit.reports.kernels

    def broken(*args, **kwargs):
        raise OSError("tape unreadable")

    started = []

    def start(*args, **kwargs):
        started.append(start_kernel(*args, **kwargs))
        return started[-1]

    start_kernel = labkit.reports.kernels.start_kernel
    monkeypatch.setattr(labkit.readiness.evidence, "execution_check", broken)
    monkeypatch.setattr(labkit.reports.kernels, "start_kernel", start)
    home = stubs.replayed_session(tmp_path / "home", "s2", "2026-01-05", "2026-01-05T01:00")
    write_notebook(tmp_path / "notebooks", "weekly_readiness", 'print("never")')
    config = load_config(None, {}, environ={})
    # Act
    with pytest.raises(OSError, match="tape unreadable"):
        render_report("weekly", "s2", home, config, week="2026-W02", notebooks=tmp_path / "notebooks")
    # Assert: the kernel is gone, and, as when the verdict was judged before any kernel, no report
    assert len(started) == 1 and started[0] is not None and not started[0].has_kernel
    assert not (home / "reports").exists()
    assert not (home / "data" / "sessions" / "s2" / "readiness" / "weekly-2026-W02.json").exists()


def _empty_session(home: Path, name: str) -> None:
    # A session that was created and never decided a bar: its config, and an empty journal.
    folder = home / "data" / "sessions" / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "decisions.jsonl").write_text("")


def _report_sidecar(home: Path, session: str, kind: str, period: str, outcome: str) -> None:
    folder = home / "reports" / session
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{kind}-{period}.html").write_text("<html></html>")
    sidecar = {"kind": kind, "session": session, "period": period, "ok": True, "outcome": outcome,
               "generated_at": "2026-03-01T10:00:00.000Z", "html": f"{kind}-{period}.html"}  # fmt: skip
    (folder / f"{kind}-{period}.json").write_text(json.dumps(sidecar))


def test_write_index_when_a_session_decided_nothing_lists_its_reports_as_empty_not_ok(tmp_path):
    # Arrange: reports of a session with no decisions, written as "ok" (as a session report was)
    _empty_session(tmp_path, "idle")
    _report_sidecar(tmp_path, "idle", "session", "session", "ok")
    _report_sidecar(tmp_path, "idle", "daily", "2026-01-05", "ok")
    # Act
    page = write_index(tmp_path).read_text(encoding="utf-8")
    # Assert
    assert page.count('<td class="empty">empty</td>') == 2 and ">ok<" not in page


def test_write_index_when_a_session_decided_keeps_its_session_report_ok(tmp_path):
    # Arrange: the same sidecar beside a session that decided a bar before the report was made
    _empty_session(tmp_path, "busy")
    line = {"ts": "2026-01-05T00:00:00Z", "decided_at": "2026-01-05T00:01:00Z"}
    (tmp_path / "data" / "sessions" / "busy" / "decisions.jsonl").write_text(json.dumps(line) + "\n")
    _report_sidecar(tmp_path, "busy", "session", "session", "ok")
    # Act
    page = write_index(tmp_path).read_text(encoding="utf-8")
    # Assert
    assert '<td>session</td><td>busy</td><td>session</td><td class="ok">ok</td>' in page


@pytest.mark.slow
def test_render_report_when_the_session_decided_nothing_says_empty(tmp_path):
    # Arrange
    _empty_session(tmp_path, "idle")
    write_notebook(tmp_path / "notebooks", "paper_session", 'print("no decisions")')
    config = load_config(None, {}, environ={})
    # Act
    result = render_report("session", "idle", tmp_path, config, notebooks=tmp_path / "notebooks")
    # Assert
    assert result.ok and result.outcome == "empty"
    sidecar = json.loads((tmp_path / "reports" / "idle" / "session-session.json").read_text())
    assert sidecar["outcome"] == "empty"


# -- reports replaced whole (issue 19) ------------------------------------------------------------


def _without_kernel(monkeypatch: pytest.MonkeyPatch, notebooks: Path) -> None:
    """Stand papermill in for itself without a kernel: each code cell 'prints' its source, a cell
    holding ``raise`` fails, and the output goes through papermill's own writer (a full disk or a kill
    is simulated there)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError
    from papermill.iorw import write_ipynb

    import labkit.reports.kernels

    def execute(input_path, output_path, parameters=None, **kwargs):
        nb = nbformat.read(input_path, as_version=4)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if "raise" in cell.source:
                write_ipynb(nb, output_path)
                raise PapermillExecutionError(index, index, cell.source, "ValueError", "boom", [])
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"ran {cell.source}\n")]
        write_ipynb(nb, output_path)
        return nb

    monkeypatch.setattr(labkit.reports.kernels, "start_kernel", lambda *args, **kwargs: None)
    monkeypatch.setattr(papermill, "execute_notebook", execute)
    write_notebook(notebooks, "daily_health", 'print("good day")')


def _own_home(home: Path, tmp_path: Path) -> Path:
    # A test that replaces a report works on its own copy of the session, without the reports other
    # tests rendered into the shared home (their order is not fixed).
    return Path(shutil.copytree(home, tmp_path / "home", ignore=shutil.ignore_patterns("reports")))


def _report_files(home: Path) -> dict[str, bytes]:
    # Every file under reports/, hidden ones too: a render that failed leaves none behind.
    root = home / "reports"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _render_daily(home: Path, notebooks: Path):
    return render_report(
        "daily", "s1", home, load_config(None, {}, environ={}), date="2026-01-05", notebooks=notebooks
    )


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _killed(*args, **kwargs):
    raise KeyboardInterrupt


def _exited(*args, **kwargs):
    raise SystemExit(1)


@pytest.mark.parametrize(
    ("where", "stop", "raised"),
    [
        ("papermill.iorw.LocalHandler.write", _full_disk, OSError),
        ("papermill.iorw.LocalHandler.write", _killed, KeyboardInterrupt),
        ("labkit.reports.render._to_html", _exited, SystemExit),
        ("labkit.reports.render._to_html", _full_disk, OSError),
    ],
)
def test_render_report_when_a_re_render_fails_mid_write_keeps_the_good_report_whole(
    home, tmp_path, monkeypatch, where, stop, raised
):
    # Arrange: a good report, then a re-render that a full disk or a kill stops while writing
    home = _own_home(home, tmp_path)
    _without_kernel(monkeypatch, tmp_path / "notebooks")
    _render_daily(home, tmp_path / "notebooks")
    before = _report_files(home)
    write_notebook(tmp_path / "notebooks", "daily_health", 'print("another day")')
    monkeypatch.setattr(where, stop)
    # Act
    with pytest.raises(raised):
        _render_daily(home, tmp_path / "notebooks")
    # Assert: the notebook, its page, the sidecar and the index are the good report's, byte for byte,
    # and no temporary file is left
    assert _report_files(home) == before
    assert "good day" in (home / "reports" / "s1" / "daily-2026-01-05.html").read_text(encoding="utf-8")


def test_render_report_when_the_disk_fills_names_the_report_file_not_a_temporary_one(
    home, tmp_path, monkeypatch
):
    # Arrange
    home = _own_home(home, tmp_path)
    _without_kernel(monkeypatch, tmp_path / "notebooks")
    monkeypatch.setattr("papermill.iorw.LocalHandler.write", _full_disk)
    # Act
    with pytest.raises(OSError) as caught:
        _render_daily(home, tmp_path / "notebooks")
    # Assert
    assert caught.value.errno == errno.ENOSPC and "No space left on device" in str(caught.value)
    assert caught.value.filename == str(home / "reports" / "s1" / "daily-2026-01-05.ipynb")
    assert _report_files(home) == {}


def test_render_report_when_a_re_render_cell_raises_keeps_the_good_report_and_shows_the_error_beside(
    home, tmp_path, monkeypatch
):
    # Arrange
    home = _own_home(home, tmp_path)
    _without_kernel(monkeypatch, tmp_path / "notebooks")
    _render_daily(home, tmp_path / "notebooks")
    before = _report_files(home)
    write_notebook(tmp_path / "notebooks", "daily_health", 'raise ValueError("boom")')
    # Act
    with pytest.raises(NotebookRunError) as caught:
        _render_daily(home, tmp_path / "notebooks")
    # Assert: the good report, its sidecar and the index are untouched; the failure has a page of its own
    folder = home / "reports" / "s1"
    failed = folder / "daily-2026-01-05.failed.html"
    after = _report_files(home)
    assert {k: v for k, v in after.items() if ".failed." not in k} == before
    assert str(failed) in str(caught.value) and str(folder / "daily-2026-01-05.html") in str(caught.value)
    assert "REPORT FAILED" in failed.read_text(encoding="utf-8")
    assert ">failed<" not in (home / "reports" / "index.html").read_text(encoding="utf-8")


def test_render_report_when_a_re_render_succeeds_after_a_failed_one_removes_the_failed_page(
    home, tmp_path, monkeypatch
):
    # Arrange: a good report, a failed re-render beside it, then the notebook is fixed
    home = _own_home(home, tmp_path)
    _without_kernel(monkeypatch, tmp_path / "notebooks")
    _render_daily(home, tmp_path / "notebooks")
    write_notebook(tmp_path / "notebooks", "daily_health", 'raise ValueError("boom")')
    with pytest.raises(NotebookRunError):
        _render_daily(home, tmp_path / "notebooks")
    write_notebook(tmp_path / "notebooks", "daily_health", 'print("fixed day")')
    # Act
    result = _render_daily(home, tmp_path / "notebooks")
    # Assert
    assert result.ok and "fixed day" in result.html.read_text(encoding="utf-8")
    assert sorted(_report_files(home)) == [
        "index.html",
        "s1/daily-2026-01-05.html",
        "s1/daily-2026-01-05.ipynb",
        "s1/daily-2026-01-05.json",
    ]


def test_render_report_when_a_failed_report_is_rendered_again_and_fails_replaces_it(
    home, tmp_path, monkeypatch
):
    # Arrange: no good report to keep, only a failed one
    home = _own_home(home, tmp_path)
    _without_kernel(monkeypatch, tmp_path / "notebooks")
    write_notebook(tmp_path / "notebooks", "daily_health", 'raise ValueError("first")')
    with pytest.raises(NotebookRunError):
        _render_daily(home, tmp_path / "notebooks")
    write_notebook(
        tmp_path / "notebooks", "daily_health", 'print("second try")', 'raise ValueError("second")'
    )
    # Act
    with pytest.raises(NotebookRunError) as caught:
        _render_daily(home, tmp_path / "notebooks")
    # Assert: the page shows the latest failure, and the index lists it as failed
    page = home / "reports" / "s1" / "daily-2026-01-05.html"
    assert str(page) in str(caught.value)
    assert "second try" in page.read_text(encoding="utf-8")
    assert ">failed<" in (home / "reports" / "index.html").read_text(encoding="utf-8")
    assert not (home / "reports" / "s1" / "daily-2026-01-05.failed.html").exists()


def test_render_report_when_a_killed_render_left_temporary_files_removes_them(home, tmp_path, monkeypatch):
    # Arrange: what a SIGKILL mid-render leaves (its process is gone), and one of a live render
    home = _own_home(home, tmp_path)
    _without_kernel(monkeypatch, tmp_path / "notebooks")
    folder = home / "reports" / "s1"
    folder.mkdir(parents=True)
    dead = [
        folder / ".daily-2026-01-05.999999999-0badc0de.ipynb",
        folder / ".daily-2026-01-05.999999999-0badc0de.html",
    ]
    live = folder / f".daily-2026-01-05.{os.getpid()}-00c0ffee.html"
    for path in [*dead, live]:
        path.write_text("half")
    # Act
    _render_daily(home, tmp_path / "notebooks")
    # Assert
    assert not any(path.exists() for path in dead) and live.exists()


def test_cli_report_daily_when_the_disk_is_full_exits_2_naming_the_file_and_writes_nothing(
    home, tmp_path, monkeypatch, capsys
):
    # Arrange
    from labkit.cli import main

    home = _own_home(home, tmp_path)
    _without_kernel(monkeypatch, tmp_path / "notebooks")
    monkeypatch.setattr("papermill.iorw.LocalHandler.write", _full_disk)
    # Act
    code = main(["--home", str(home), "report", "daily", "--session", "s1", "--date", "2026-01-05"])
    # Assert
    err = capsys.readouterr().err
    assert code == 2, err
    assert "reports/s1/daily-2026-01-05.ipynb: No space left on device" in err
    assert "Traceback" not in err
    assert _report_files(home) == {}


@pytest.mark.slow
def test_render_report_when_a_kernel_re_render_fails_keeps_the_report_it_replaces(home, tmp_path):
    # Arrange: a good weekly report made by papermill and a kernel, then a notebook that fails
    home = _own_home(home, tmp_path)
    write_notebook(tmp_path / "good", "weekly_readiness", 'print("a good week")')
    write_notebook(tmp_path / "bad", "weekly_readiness", 'print("half")', 'raise ValueError("boom")')
    config = load_config(None, {}, environ={})
    render_report("weekly", "s1", home, config, week="2026-W02", notebooks=tmp_path / "good")
    before = _report_files(home)
    # Act
    with pytest.raises(NotebookRunError):
        render_report("weekly", "s1", home, config, week="2026-W02", notebooks=tmp_path / "bad")
    # Assert
    after = _report_files(home)
    assert {k: v for k, v in after.items() if ".failed." not in k} == before
    assert "boom" in (home / "reports" / "s1" / "weekly-2026-W02.failed.html").read_text(encoding="utf-8")
    kept = nbformat.read(home / "reports" / "s1" / "weekly-2026-W02.ipynb", as_version=4)
    assert kept.metadata.papermill.output_path == "reports/s1/weekly-2026-W02.ipynb"  # not the staged name
