"""Reports: run a report notebook with papermill and render it to self-contained HTML.

`render_report` is the scheduled entry point behind ``labkit report``. For a session, a day or an ISO
week it executes ``notebooks/<notebook>.ipynb`` with its parameters injected, and writes under
``reports/<session>/``: the executed notebook, its HTML (code hidden, images embedded, no script or
stylesheet from another host) and a small JSON sidecar; ``reports/index.html`` lists every sidecar
(`labkit.reports.index`). A weekly report's verdict is judged and saved before its notebook runs
(`labkit.readiness.verdicts.judge_week`).
`render_backtest_report` does the same for a backtest journal, under ``reports/_backtests/``, and
`render_train_report` for a trained model (``notebooks/research/train_model.ipynb``), under
``reports/_models/``, and `render_sweep_report` for a sweep of backtests
(``notebooks/research/sweep.ipynb``), under ``reports/_sweeps/``.
Every page starts with a link back to the index, and names no local path: the labkit home is left
out of what a page shows. A notebook that fails still leaves its executed notebook and an HTML page
with the error at the top, then `NotebookRunError` names that page and the failing cell.

A report is replaced whole. The executed notebook, its page and its sidecar are written under hidden
names beside them (``.<stem>.<pid>-<hex>.*``) and renamed into place only once all three are
written, so a full disk or a kill mid-render leaves the report rendered before, its sidecar and its
index entry as they were. A re-render whose notebook fails keeps a good report rendered before too;
the failure gets a page of its own beside it (``<stem>.failed.html``), which the next good render
removes.
"""

from __future__ import annotations

import errno
import hashlib
import html
import importlib.resources
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from labkit._io import fsync_dir, last_line, read_json
from labkit.analysis.periods import day_bounds, iso_week, week_bounds
from labkit.config.schema import LabkitConfig
from labkit.errors import ConfigError, NotebookRunError
from labkit.reports.assets import link_assets
from labkit.reports.index import BACKTESTS, MODELS, SWEEPS, write_index
from labkit.session.paths import existing_session
from labkit.timeutil import iso_ms, now_ms

NOTEBOOKS = {"session": "paper_session", "daily": "daily_health", "weekly": "weekly_readiness"}
BACKTEST_NOTEBOOK = "backtest_report"
RESEARCH = "research"  # the research notebooks' directory (package labkit.notebooks.research)
TRAIN_NOTEBOOK = "train_model"
# Cells tagged so belong to the notebook only (how to run it live): a rendered page drops them.
NOTEBOOK_ONLY = "notebook-only"
SWEEP_NOTEBOOK = "sweep"

# Every page lies one directory under reports/, so the index is one level up.
INDEX_LINK = "../index.html"

# ipykernel 7 warns on every start that its loopback TCP is unencrypted; only errors matter here.
KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=ERROR",)

# Errors of the disk a report is written to: refused by name, never shown as a notebook's failure.
_DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
# The page of a failed re-render that kept a good report: <stem>.failed.html (and .ipynb).
FAILED = "failed"


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# Anything that would make a browser fetch from another host; the template already drops them.
_REMOTE_TAG = re.compile(
    r"<(script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//[^>]*>"
    r"(?:\s*</script>)?",
    re.I,
)


_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block extra_css -%}
<style>.labkit-nav{font-family:sans-serif;margin:0.6em 0 0 1em}.labkit-nav a{color:#0969da}</style>
{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
<nav class="labkit-nav"><a href="{INDEX_LINK}">&larr; all reports (index)</a></nav>
{%- endblock body_header -%}
{% block data_png scoped %}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}">
<img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}" \
alt="{{ output.metadata.get('alt', 'figure') | escape_html }}">
</div>
{% endblock data_png %}
"""


@dataclass(frozen=True)
class ReportResult:
    """Where a report landed, whether its notebook ran to the end, and what it found.

    `outcome` is ``READY`` or ``NOT READY`` for a weekly verdict, ``empty`` for a period in which
    the session decided nothing (no verdict), the run's return in words for a session or backtest
    report (``loss -13.6%``, ``gain +2.1%``, ``flat 0.0%``), ``ok`` otherwise.
    """

    kind: str
    session: str
    period: str
    html: Path
    notebook: Path
    ok: bool
    error: str | None
    outcome: str = "ok"
    why: str = ""  # a weekly verdict that is not READY: why, in words


@dataclass(frozen=True)
class _Failure:
    cell: str  # "cell 5 (In [3])"
    summary: str  # "ValueError: ..."
    traceback: str


def notebooks_dir(part: str = "") -> Path:
    """Return the directory of the report notebooks, or of their sub-directory `part` (``research``).

    They ship as the package ``labkit.notebooks`` (in a checkout, the top-level ``notebooks/``
    directory mapped into labkit), the research notebooks as ``labkit.notebooks.research``
    (``notebooks/research/``). When that package cannot be imported (labkit run from a checkout
    it was not installed from), the checkout's ``notebooks/`` next to the labkit package is used.
    """
    package = "labkit.notebooks" + (f".{part}" if part else "")
    try:
        found = importlib.resources.files(package)
    except ModuleNotFoundError:
        found = None
    if isinstance(found, Path) and found.is_dir():
        return found
    return Path(__file__).resolve().parents[2].joinpath("notebooks", *([part] if part else []))


def render_report(
    kind: str,
    session: str,
    home: Path,
    config: LabkitConfig,
    date: str | None = None,
    week: str | None = None,
    notebooks: Path | None = None,
    calendar: str | None = None,
) -> ReportResult:
    """Run the `kind` report ("session", "daily" or "weekly") of `session` and render its HTML.

    `date` (``YYYY-MM-DD``) and `week` (``YYYY-Www``) default to the session's last decided day
    and ISO week (not the calendar's). A weekly report judges the week with the thresholds of
    `config` and saves the verdict before its notebook runs; the notebook shows that saved verdict.
    A period in which the session decided nothing gets no verdict and its outcome is ``empty``.
    `calendar` (``24/7``, ``equities``, ``fx``) overrides the session's market calendar.
    `notebooks` replaces the notebook directory (tests). Raise `ConfigError` for an unknown kind
    or session, and `NotebookRunError` after writing the failed report's HTML.
    """
    if kind not in NOTEBOOKS:
        raise ConfigError(f"report: unknown kind {kind!r}; use one of {', '.join(NOTEBOOKS)}")
    home = Path(home)
    period, parameters = _period(kind, session, home, date, week)
    from labkit.reports.kernels import start_kernel, stop_kernel

    # The kernel starts in its own process while the verdict is judged here (issue 17).
    kernel = start_kernel(config.reports.kernel, home, KERNEL_ARGUMENTS)
    try:
        outcome, judged = _judge(kind, session, home, period, config, calendar)
    except BaseException:
        stop_kernel(kernel)
        raise
    parameters = {**parameters, **judged}
    source = (notebooks or notebooks_dir()) / f"{NOTEBOOKS[kind]}.ipynb"
    # A what-if (other thresholds than the session's) never takes the place of the week's own page.
    stem = f"{kind}-{period}" + ("-what-if" if outcome == "what-if" else "")
    result = _render(
        _Report(kind, session, period, home / "reports" / session, stem),
        source,
        parameters,
        config,
        home,
        outcome,
        what=f"The {kind} report of session <b>{html.escape(session)}</b> ({html.escape(period)})",
        title=f"{session} {kind} report {period}",
        kernel=kernel,
        heading=_heading(kind, _session_mode(home, session)),
    )
    if judged.get("verdict"):
        from dataclasses import replace

        from labkit.readiness.verdicts import load_verdict

        result = replace(result, why=load_verdict(home / judged["verdict"]).why())
    return result


def render_backtest_report(
    journal: str | Path,
    home: Path,
    config: LabkitConfig,
    title: str | None = None,
    calendar: str | None = None,
    notebooks: Path | None = None,
) -> ReportResult:
    """Run the backtest report of the journal `journal` (``labkit backtest --journal``) and render it.

    The report lands in ``reports/_backtests/backtest-<journal name>-<hash of its path>.html``, so
    one journal has one report, rendered again over it. `title` heads the page (default: the model
    on the market). `calendar` (``24/7``, ``equities``, ``fx``) annualises the figures; without
    it, the calendar the backtest recorded beside its journal does, else 24/7, which the page says
    is assumed. Raise `ConfigError` naming ``--journal`` when the file is missing, empty or not a
    journal, and `NotebookRunError` after writing the failed report's HTML.
    """
    from labkit.reports.backtests import load_backtest

    home = Path(home)
    if title is not None and len(title) > 200:
        raise ConfigError(f"--title: at most 200 characters (got {len(title)})")
    path = Path(journal).expanduser().resolve()
    view = load_backtest(path, home, calendar or "")  # refuses a bad --journal before any run
    title = title or f"Backtest: {view.title}"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)[:60] or "journal"
    where = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    try:  # the notebook runs in the home: paths relative to it keep the user's folders off the page
        shown = path.relative_to(home.resolve()).as_posix()
    except ValueError:
        shown = str(path)
    parameters = {"home": ".", "journal": shown, "title": title, "calendar": calendar or ""}
    stem = f"backtest-{name}-{where}"
    return _render(
        _Report("backtest", view.shown, view.period, home / "reports" / BACKTESTS, stem),
        (notebooks or notebooks_dir()) / f"{BACKTEST_NOTEBOOK}.ipynb",
        parameters,
        config,
        home,
        _backtest_outcome(view),
        what=f"The backtest report of <b>{html.escape(view.shown)}</b> ({html.escape(view.period)})",
        title=title,
        extra={"title": title},
    )


def render_train_report(
    model: str,
    home: Path,
    config: LabkitConfig,
    notebooks: Path | None = None,
) -> ReportResult:
    """Run the train report of the model `model` (an id, or ``latest``: the newest of any market).

    The report lands in ``reports/_models/train-<model id>.html``: the walk-forward folds, the
    calibration, the feature importance and the out-of-sample equity of the model against
    sma_cross and buy and hold. Its outcome in the index is the model's out-of-sample AUC
    (``AUC 0.53 ± 0.01``). `notebooks` replaces the notebook directory (tests; the notebook is
    ``research/train_model.ipynb`` under it). Raise `ConfigError` (from `load_model`) for a
    model that is missing or cannot be vouched for, and `NotebookRunError` after writing the failed
    report's HTML.
    """
    from labkit.models.artifacts import load_model
    from labkit.reports.research import auc_outcome, model_window

    home = Path(home)
    loaded = load_model(home, model or "latest")  # a missing or altered model is refused before any run
    meta = loaded.meta
    symbol, timeframe = str(meta.get("symbol")), str(meta.get("timeframe"))
    parameters = {"home": ".", "model": loaded.model_id, "symbol": symbol, "timeframe": timeframe}
    where = notebooks / RESEARCH if notebooks is not None else notebooks_dir(RESEARCH)
    return _render(
        _Report(
            "train",
            loaded.model_id,
            model_window(meta),
            home / "reports" / MODELS,
            f"train-{loaded.model_id}",
        ),
        where / f"{TRAIN_NOTEBOOK}.ipynb",
        parameters,
        config,
        home,
        auc_outcome(meta),
        what=f"The train report of model <b>{html.escape(loaded.model_id)}</b> ({html.escape(symbol)} "
        f"{html.escape(timeframe)})",
        title=f"Model {loaded.model_id}: {symbol} {timeframe}",
        extra={"model": loaded.model_id, "symbol": symbol, "timeframe": timeframe},
    )


def render_sweep_report(
    home: Path,
    name: str,
    config: LabkitConfig,
    notebooks: Path | None = None,
) -> ReportResult:
    """Run the sweep report of the sweep `name` (``data/sweeps/<name>/``; ``""``: the newest).

    The report lands in ``reports/_sweeps/sweep-<name>.html``: the runs and failures, heatmaps of
    the Sharpe ratio over the grid, the best run with its deflated Sharpe ratio, and the probability
    of backtest overfitting (PBO) of each group of runs on the same bars. Its outcome in the index
    is the PBO (``PBO 0.62``; a range over groups, ``PBO 0.31 to 0.62``; ``PBO n/a`` when no group
    has two runs to compare), computed here before the notebook runs. `notebooks` replaces the
    notebook directory (tests; the notebook is ``research/sweep.ipynb`` under it). Raise
    `ConfigError` for a name a sweep cannot have or a sweep without ``results.parquet`` (saying
    how to make one), `DataError` for results the report cannot read, and `NotebookRunError` after
    writing the failed report's HTML.
    """
    from labkit.reports.sweeps import group_overfitting, load_sweep, pbo_outcome, sweep_period

    home = Path(home)
    record = load_sweep(home, name)  # a hostile name or a missing sweep is refused before any run
    outcome = pbo_outcome(group_overfitting(record))
    parameters = {"home": ".", "sweep": record.name}
    where = notebooks / RESEARCH if notebooks is not None else notebooks_dir(RESEARCH)
    runs = len(record.results)
    return _render(
        _Report(
            "sweep", record.name, sweep_period(record), home / "reports" / SWEEPS, f"sweep-{record.name}"
        ),
        where / f"{SWEEP_NOTEBOOK}.ipynb",
        parameters,
        config,
        home,
        outcome,
        what=f"The sweep report of <b>{html.escape(record.name)}</b> ({runs:,} runs)",
        title=f"Sweep {record.name}",
        extra={"sweep": record.name, "runs": runs},
    )


@dataclass(frozen=True)
class _Report:
    kind: str
    session: str  # a session's name; for a backtest, its journal as the page shows it; a model's id
    period: str
    directory: Path
    stem: str


def _render(
    report: _Report,
    source: Path,
    parameters: dict[str, Any],
    config: LabkitConfig,
    home: Path,
    outcome: str,
    what: str,
    title: str,
    extra: dict[str, Any] | None = None,
    kernel: Any = None,
    heading: str | None = None,
) -> ReportResult:
    # Execute (in `kernel` when one was started for the report) and render (a failure on top) into
    # hidden files, rename them into place together with the sidecar, list the report in the index.
    from labkit.reports.kernels import stop_kernel

    out_dir, stem = report.directory, report.stem
    notebook, page = out_dir / f"{stem}.ipynb", out_dir / f"{stem}.html"
    try:
        # While the kernel runs the cells, this process has time to prepare the page's exporter.
        exporter = _beside(lambda: _exporter(warm=True)) if kernel is not None else None
        out_dir.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(out_dir, stem)
        staged = _Staged.beside(out_dir, stem)
        try:
            with _named_as(notebook, staged):
                failure = _execute(source, staged.notebook, parameters, config, home, kernel)
                nb = _shown_from_home(staged.notebook, notebook, home)
                if heading:
                    _retitle(nb, heading)
                _write_staged(staged.notebook, nbformat.writes(nb))  # shared like its page
            if failure is not None:
                nb.cells.insert(0, _failure_cell(what, failure))
            with _named_as(page, staged):
                text = _to_html(nb, title=title, home=home, exporter=exporter and exporter.result())
                # A chart's plotly.js is one file beside the pages, shared by all of them.
                text = link_assets(text, out_dir.parent)
                _write_staged(staged.page, text)
            # A good report rendered before is not replaced by a failure: that goes beside it.
            kept = failure is not None and _good_report(out_dir, stem)
            sidecar = None if kept else _sidecar(report, parameters, outcome, extra, failure)
            with _named_as(out_dir / f"{stem}.json", staged):
                _install(staged, out_dir, f"{stem}.{FAILED}" if kept else stem, sidecar)
        finally:
            staged.remove()
    finally:
        # The engine killed `kernel` after the last cell without waiting; by now it has exited. One
        # papermill never ran is ended here.
        stop_kernel(kernel)
    if not kept:
        write_index(home)
    if failure is not None:
        raise NotebookRunError(_failure_message(report, failure, page, kept))
    return ReportResult(report.kind, report.session, report.period, page, notebook, True, None, outcome)


def _backtest_outcome(view: Any) -> str:
    # The run's return in words, as the index shows it: "loss -13.6%", not "ok".
    from labkit.reports.index import return_outcome

    if not len(view.journal):
        return "empty"
    return return_outcome(float(view.journal["equity"].iloc[-1]), float(view.capital))


def _session_outcome(home: Path, session: str) -> str:
    # "empty" before the first decision; then the return so far in words ("loss -13.6%").
    from labkit.reports.index import return_outcome
    from labkit.session.state import read_saved_config

    paths = existing_session(home, session)
    last = last_line(paths.decisions)
    if last is None:
        return "empty"
    capital = (read_saved_config(paths) or {}).get("session", {}).get("capital")
    equity = last.get("equity")
    if not isinstance(capital, int | float) or not isinstance(equity, int | float) or not capital:
        return "ok"  # a journal or config that does not say: the run's return is unknown
    return return_outcome(float(equity), float(capital))


def _session_mode(home: Path, session: str) -> str | None:
    # The mode the session runs in ("paper", "shadow"), as its saved config records it.
    from labkit.session.state import read_saved_config

    saved = read_saved_config(existing_session(home, session)) or {}
    mode = saved.get("session", {}).get("mode")
    return str(mode) if mode else None


def _heading(kind: str, mode: str | None) -> str | None:
    """Return the page heading of a session's `kind` report in its `mode`; None keeps the notebook's.

    Examples
    --------
    >>> _heading("daily", "paper"), _heading("session", "shadow"), _heading("weekly", "paper")
    ('Daily paper health', 'Shadow session report', None)
    """
    if kind == "daily":
        return f"Daily {mode or 'session'} health"
    if kind == "session":
        return f"{(mode or 'paper').capitalize()} session report"
    return None


def _retitle(nb: Any, heading: str) -> None:
    # The notebook's first heading names no mode; the page names the session's.
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            rest = cell.source.split("\n", 1)[1:]
            cell.source = "\n".join([f"# {heading}", *rest])
            return


def _sidecar(
    report: _Report,
    parameters: dict[str, Any],
    outcome: str,
    extra: dict[str, Any] | None,
    failure: _Failure | None,
) -> dict[str, Any]:
    # What the index lists a report by: what it covers, whether it ran, what it found. `period` is
    # what the report calls it (a day, an ISO week, "session"), which programs key on; the index
    # shows `period_shown`, written the same way for every kind (first bar to last bar, UTC).
    from labkit.reports.period_labels import report_period

    home = report.directory.parent.parent  # reports/<session or _backtests ...>/ under the home
    return {
        "kind": report.kind,
        "session": report.session,
        "period": report.period,
        "period_shown": report_period(report.kind, home, report.session, report.period, parameters),
        **(extra or {}),
        "ok": failure is None,
        "outcome": outcome if failure is None else "failed",
        "error": None if failure is None else f"{failure.cell}: {failure.summary}",
        "generated_at": iso_ms(now_ms()),
        "html": f"{report.stem}.html",
        "notebook": f"{report.stem}.ipynb",
        "parameters": parameters,
    }


def _failure_message(report: _Report, failure: _Failure, page: Path, kept: bool) -> str:
    subjects = {
        "backtest": repr(report.session),
        "train": f"model {report.session}",
        "sweep": f"sweep {report.session}",
    }
    subject = subjects.get(report.kind, f"session {report.session!r}")
    where = f"{report.kind} report of {subject} ({report.period})"
    message = f"{where} failed at {failure.cell}: {failure.summary}"
    if kept:
        shown = page.with_name(f"{report.stem}.{FAILED}.html")
        return f"{message}; the error is shown in {shown}; the report rendered before is kept: {page}"
    return f"{message}; the error is shown in {page}"


@dataclass(frozen=True)
class _Staged:
    """The hidden files a render writes before renaming them into place: ``.<stem>.<pid>-<hex>.*``.

    The notebook keeps its ``.ipynb`` (papermill warns about any other name); the sidecar ends in
    ``.tmp`` so the index, which reads ``*.json``, never lists a staged one.
    """

    notebook: Path
    page: Path
    sidecar: Path

    @classmethod
    def beside(cls, folder: Path, stem: str) -> _Staged:
        base = f".{stem}.{os.getpid()}-{secrets.token_hex(4)}"
        return cls(folder / f"{base}.ipynb", folder / f"{base}.html", folder / f"{base}.json.tmp")

    def remove(self) -> None:
        for path in (self.notebook, self.page, self.sidecar):
            path.unlink(missing_ok=True)


def _remove_leftovers(folder: Path, stem: str) -> None:
    # Staged files of renders a kill interrupted: their process is gone. A live render's are kept.
    import psutil

    pattern = re.compile(re.escape(f".{stem}.") + r"([0-9]+)-[0-9a-f]{8}\.(?:ipynb|html|json\.tmp)")
    for path in folder.iterdir():
        found = pattern.fullmatch(path.name)
        if found and not psutil.pid_exists(int(found[1])):
            path.unlink(missing_ok=True)


def _write_staged(path: Path, text: str) -> None:
    # A staged file is already a temporary one: written in place, flushed to disk, readable by all
    # (a report is to be shared) before it is renamed over the report it replaces.
    with open(path, "wb") as handle:
        handle.write(text.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o644)


def _install(staged: _Staged, folder: Path, stem: str, sidecar: dict[str, Any] | None) -> None:
    # Every file is whole on disk before the first rename; the sidecar goes last, so the index never
    # lists a page that is not there. A report installed under its own name leaves no failed page.
    if sidecar is not None:
        _write_staged(staged.sidecar, json.dumps(sidecar, indent=1, allow_nan=False, default=str))
    os.replace(staged.notebook, folder / f"{stem}.ipynb")
    os.replace(staged.page, folder / f"{stem}.html")
    if sidecar is not None:
        os.replace(staged.sidecar, folder / f"{stem}.json")
        for suffix in (".html", ".ipynb"):
            (folder / f"{stem}.{FAILED}{suffix}").unlink(missing_ok=True)
    fsync_dir(folder)




def _good_report(folder: Path, stem: str) -> bool:
    # A report rendered before that ran to the end, whole: its sidecar says so, its files are there.
    sidecar = read_json(folder / f"{stem}.json")
    whole = all((folder / f"{stem}{suffix}").is_file() for suffix in (".html", ".ipynb"))
    return sidecar is not None and sidecar.get("ok") is True and whole


@contextmanager
def _named_as(shown: Path, staged: _Staged) -> Iterator[None]:
    # A full disk while writing a staged file names the report's own file, not the hidden one, and
    # says that nothing was replaced.
    try:
        yield
    except OSError as exc:
        where = str(exc.filename or "")
        if exc.filename is not None and Path(where).name not in _names(staged):
            raise
        reason = exc.strerror or str(exc)
        if exc.errno in _DISK_ERRORS:
            reason += (
                "; nothing was replaced (a report rendered before is kept): free space, then render again"
            )
        raise type(exc)(exc.errno, reason, str(shown)) from None


def _names(staged: _Staged) -> set[str]:
    return {staged.notebook.name, staged.page.name, staged.sidecar.name}


def _shown_from_home(staged: Path, notebook: Path, home: Path) -> Any:
    # The executed notebook as it is shared: paths under the home shown from it, and papermill's
    # record of where it wrote naming the report's notebook, not the hidden file it was staged in.
    nb = nbformat.read(staged, as_version=4)
    _without_home(nb, home)
    recorded = nb.metadata.get("papermill", {})
    if "output_path" in recorded:
        recorded["output_path"] = str(notebook)
    for key in ("input_path", "output_path"):  # papermill records where it ran; say it from the home
        if key in recorded:
            recorded[key] = _from_home(Path(recorded[key]), home)
    return nb


def _period(
    kind: str, session: str, home: Path, date: str | None, week: str | None
) -> tuple[str, dict[str, Any]]:
    paths = existing_session(home, session)
    # The kernel runs in the home, so "." finds it without writing the user's folders into the notebook.
    parameters: dict[str, Any] = {"home": ".", "session": session}
    if kind == "session":
        return "session", parameters
    given = date if kind == "daily" else week
    if given:
        (day_bounds if kind == "daily" else week_bounds)(given)  # refuse a malformed period early
        period = given
    else:
        line = last_line(paths.decisions)
        if line is None:
            raise ConfigError(
                f"session: {session!r} has no decisions yet, so there is no "
                f"{'day' if kind == 'daily' else 'week'} to report on"
            )
        import pandas as pd

        ts = pd.Timestamp(line["ts"])
        period = ts.date().isoformat() if kind == "daily" else iso_week(ts)
    parameters["date" if kind == "daily" else "week"] = period
    return period, parameters


def _judge(
    kind: str, session: str, home: Path, period: str, config: LabkitConfig, calendar: str | None
) -> tuple[str, dict[str, Any]]:
    # The verdict is computed and saved here, in Python, with the thresholds of the config the
    # report runs under; the notebook only shows the saved file, so no notebook parameter can
    # change what is saved. Only literals go to the notebook.
    if kind == "session":
        return _session_outcome(home, session), {}
    if kind == "weekly":
        from labkit.readiness.verdicts import judge_week, save_verdict

        result = judge_week(home, session, period, config.readiness, calendar)
        if result.empty:
            return "empty", {"verdict": ""}
        path = save_verdict(home, session, result)
        return result.outcome, {"verdict": path.relative_to(home).as_posix()}
    from labkit.analysis.calendar import calendar_of
    from labkit.engine.journal import read_journal
    from labkit.session.state import read_saved_config

    paths = existing_session(home, session)
    journal = read_journal(paths.decisions)
    calendar_of(read_saved_config(paths) or {}, journal, calendar)  # refuses an unknown --calendar
    start, end = day_bounds(period)
    decided = bool(len(journal)) and bool(((journal["ts"] >= start) & (journal["ts"] < end)).any())
    return ("ok" if decided else "empty"), {"calendar": calendar or ""}


def _execute(
    source: Path,
    notebook: Path,
    parameters: dict[str, Any],
    config: LabkitConfig,
    home: Path,
    kernel: Any = None,
) -> _Failure | None:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from labkit.reports.kernels import ENGINE

    # `notebook` is a staged file (`_Staged`): papermill writes it, never the report it replaces.
    try:
        papermill.execute_notebook(
            str(source),
            str(notebook),
            parameters=parameters,
            engine_name=ENGINE,
            km=kernel,  # None: papermill starts one
            kernel_name=config.reports.kernel,
            execution_timeout=config.reports.cell_timeout,
            cwd=str(home),
            progress_bar=False,
            log_output=False,
            extra_arguments=list(KERNEL_ARGUMENTS),
            # The cells have run and the notebook is in memory: the kernel has nothing left to
            # clean up, so it is stopped at once instead of waited for (~0.3 s).
            shutdown_kernel="immediate",
        )
    except PapermillExecutionError as exc:
        trace = _ANSI.sub("", "\n".join(exc.traceback or []))
        return _Failure(
            f"cell {exc.cell_index} (In [{exc.exec_count}])", f"{exc.ename}: {exc.evalue}".rstrip(": "), trace
        )
    except OSError as exc:
        if exc.errno in _DISK_ERRORS:
            raise  # the disk, not the notebook: refused by name, no page of a failure
        return _failed_to_run(exc, source, notebook)
    except Exception as exc:  # noqa: BLE001 - a timeout, a dead kernel or a missing notebook
        return _failed_to_run(exc, source, notebook)
    return None


def _failed_to_run(exc: Exception, source: Path, notebook: Path) -> _Failure:
    # papermill stopped outside a cell's code (a timeout, a dead kernel, a missing notebook).
    if not notebook.exists():
        _copy_input(source, notebook)
    name = type(exc).__name__
    text = _ANSI.sub("", str(exc)).strip()
    what = "timed out" if isinstance(exc, TimeoutError) or "Timeout" in name else "failed"
    first = text.splitlines()[0] if text else ""
    return _Failure(_running_cell(notebook), f"{name}: {what}: {first}"[:500], text)


def _copy_input(source: Path, notebook: Path) -> None:
    try:
        shutil.copyfile(source, notebook)
        nbformat.read(notebook, as_version=4)
    except (OSError, ValueError):
        nbformat.write(nbformat.v4.new_notebook(), notebook)


def _running_cell(notebook: Path) -> str:
    # papermill stamps each started cell; the failing one is the last that started.
    try:
        nb = nbformat.read(notebook, as_version=4)
    except (OSError, ValueError):
        return "start-up (no cell ran)"
    started = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.get("metadata", {}).get("papermill", {}).get("start_time")
    ]
    if not started:
        return "start-up (no cell ran)"
    index = started[-1]
    count = nb.cells[index].get("execution_count")
    return f"cell {index}" + (f" (In [{count}])" if count else "")


def _failure_cell(what: str, failure: _Failure) -> Any:
    # `what` is HTML ("The weekly report of session <b>demo</b> (2026-W02)"), escaped by the caller.
    trace = (
        f'<pre style="white-space:pre-wrap">{html.escape(failure.traceback)}</pre>'
        if failure.traceback
        else ""
    )
    cell = nbformat.v4.new_markdown_cell(
        '<div style="border:3px solid #cf222e;background:#ffebe9;padding:0.8em 1em">'
        '<div style="font-size:2em;font-weight:bold;color:#cf222e">REPORT FAILED</div>'
        f"<p>{what} stopped at <b>{html.escape(failure.cell)}</b>:</p>"
        f"<p><code>{html.escape(failure.summary)}</code></p>{trace}"
        "<p>Everything below is what ran before the failure.</p></div>"
    )
    cell.metadata["tags"] = ["labkit-error"]
    return cell


def _to_html(nb: Any, title: str, home: Path | None = None, exporter: Any = None) -> str:
    if home is not None:
        _without_home(nb, home)
    nb.metadata["title"] = title
    nb.metadata.pop("widgets", None)
    # How to run the notebook live is for its reader in Jupyter, not for the static page.
    nb.cells = [c for c in nb.cells if NOTEBOOK_ONLY not in c.get("metadata", {}).get("tags", [])]
    body, _ = (exporter or _exporter()).from_notebook_node(nb)
    return _REMOTE_TAG.sub("", body)


def _beside(work: Callable[[], Any]) -> Future[Any]:
    # Run `work` in a thread; its future holds the result or the error.
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="labkit-report")
    try:
        return pool.submit(work)
    finally:
        pool.shutdown(wait=False)


def _exporter(warm: bool = False) -> Any:
    # The HTML exporter of a report page. `warm` renders an empty notebook first, which compiles its
    # templates (~0.1 s), so a report can do that while its kernel runs the cells.
    import jinja2
    from nbconvert import HTMLExporter

    template = _TEMPLATE.replace("{INDEX_LINK}", INDEX_LINK)
    exporter = HTMLExporter(
        template_name="lab",
        template_file="labkit_report.html.j2",
        extra_loaders=[jinja2.DictLoader({"labkit_report.html.j2": template})],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
        mathjax_url="",
        require_js_url="",
        jquery_url="",
    )
    if warm:
        empty = nbformat.v4.new_notebook()
        empty.metadata["title"] = "warm-up"
        exporter.from_notebook_node(empty)
    return exporter


def _from_home(path: Path, home: Path) -> str:
    try:
        return path.resolve().relative_to(home.resolve()).as_posix()
    except ValueError:
        return path.name  # outside the home (the packaged notebooks): the name says enough


def _without_home(nb: Any, home: Path) -> None:
    """Show paths under `home` relative to it in every text a page shows (outputs, tracebacks).

    The notebooks print no local path; this keeps one out of an error's traceback too, so a page
    can be shared. Images are left alone.
    """
    roots = {r for r in (str(home), str(Path(home).resolve())) if len(Path(r).parts) > 1}
    if not roots:
        return  # a home at the file system's root: every path lies under it
    either = "|".join(re.escape(r) for r in sorted(roots, key=len, reverse=True))
    pattern = re.compile(f"(?:{either})" + r"(/|(?![\w-])(?!\.\w))")

    def strip(text: Any) -> Any:
        if isinstance(text, list):
            return [strip(t) for t in text]
        if not isinstance(text, str):
            return text
        return pattern.sub(lambda m: "" if m.group(1) == "/" else ".", text)

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = strip(cell.source)
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = strip(output["text"])
            if "traceback" in output:
                output["traceback"] = strip(output["traceback"])
            if "evalue" in output:
                output["evalue"] = strip(output["evalue"])
            for mime in ("text/plain", "text/html", "text/markdown"):
                if mime in output.get("data", {}):
                    output["data"][mime] = strip(output["data"][mime])
