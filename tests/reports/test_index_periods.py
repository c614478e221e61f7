"""The index writes every report's period one way: its first bar to its last bar, UTC.

A backtest run with ``--until 2026-01-07`` ends at its last bar (2026-01-06), as a model trained up
to ``--until 2026-01-04T23:45`` does (23:44): no kind shows an excluded end beside another's last bar.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.config.loading import load_config
from labkit.models.artifacts import models_dir
from labkit.reports.period_labels import days_label, period_label, report_period
from labkit.reports.render import BACKTEST_NOTEBOOK, render_backtest_report, render_report
from tests import stubs
from tests.reports.test_render import _without_kernel, write_notebook
from tests.reports.test_sweep_report import write_sweep


@pytest.mark.parametrize(
    ("first", "last", "timeframe", "shown"),
    [
        ("2026-01-05", "2026-01-06T23:59", "1m", "2026-01-05 to 2026-01-06"),  # whole days: days
        ("2026-01-05", "2026-01-05T23:00", "1h", "2026-01-05"),  # one whole day: written once
        ("2026-01-01", "2026-01-04T23:44", "1m", "2026-01-01 00:00 to 2026-01-04 23:44"),  # part of a day
        ("2026-01-05T09:30", "2026-01-05T09:30:05", "5s", "2026-01-05 09:30 to 2026-01-05 09:30:05"),
    ],
)
def test_period_label_names_first_and_last_bar(first, last, timeframe, shown):
    assert period_label(first, last, timeframe) == shown


def test_days_label_when_range_is_half_open_ends_on_its_last_day():
    assert days_label("2026-01-05", "2026-01-12") == "2026-01-05 to 2026-01-11"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Two hours of one-minute bars: 00:00 to 01:59 decided
    return stubs.replayed_session(tmp_path_factory.mktemp("home"), "p1", "2026-01-05", "2026-01-05T02:00")


def _sidecar_period(page: Path) -> str:
    return json.loads(page.with_suffix(".json").read_text())["period_shown"]


@pytest.mark.parametrize(
    ("kind", "period", "shown"),
    [
        ("session", {}, "2026-01-05 00:00 to 2026-01-05 01:59"),
        ("daily", {"date": "2026-01-05"}, "2026-01-05"),
        ("weekly", {"week": "2026-W02"}, "2026-W02: 2026-01-05 to 2026-01-11"),
    ],
)
def test_session_reports_in_the_index_show_their_bars(home, tmp_path, monkeypatch, kind, period, shown):
    # Arrange
    _without_kernel(monkeypatch, tmp_path)
    for name in ("paper_session", "weekly_readiness"):
        write_notebook(tmp_path, name, 'print("ok")')
    # Act
    result = render_report(kind, "p1", home, load_config(None, {}, environ={}), notebooks=tmp_path, **period)
    # Assert
    assert _sidecar_period(result.html) == shown


def test_backtest_report_in_the_index_ends_at_its_last_bar_not_its_until(tmp_path, monkeypatch, capsys):
    # Arrange: --until 2026-01-06T12:00 excludes that minute
    journal = tmp_path / "bt.jsonl"
    flags = ["--since", "2026-01-05", "--until", "2026-01-06T12:00", "--journal", str(journal)]
    assert main(["--home", str(tmp_path), "backtest", *flags]) == 0
    capsys.readouterr()
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    _without_kernel(monkeypatch, notebooks)
    write_notebook(notebooks, BACKTEST_NOTEBOOK, 'print("ok")')
    # Act
    result = render_backtest_report(journal, tmp_path, load_config(None, {}, environ={}), notebooks=notebooks)
    # Assert
    assert _sidecar_period(result.html) == "2026-01-05 00:00 to 2026-01-06 11:59"


def test_train_report_period_ends_at_the_last_bar_it_was_trained_on(tmp_path):
    # A model trained with --until 2026-01-04T23:45 on 1m bars saw its last bar open at 23:44.
    folder = models_dir(tmp_path) / "ens-0123456789ab"
    folder.mkdir(parents=True)
    window = {"since": "2026-01-01T00:00:00+00:00", "until": "2026-01-04T23:44:00+00:00"}
    (folder / "model.json").write_text(json.dumps({"timeframe": "1m", "window": window}))
    shown = report_period("train", tmp_path, "ens-0123456789ab", "2026-01-01 to 2026-01-04", {})
    assert shown == "2026-01-01 00:00 to 2026-01-04 23:44"


def test_report_period_when_bars_cannot_be_read_keeps_the_report_own_period(tmp_path):
    assert report_period(
        "backtest", tmp_path, "gone.jsonl", "2026-01-05 to 2026-01-06", {"journal": "gone.jsonl"}
    ) == ("2026-01-05 to 2026-01-06")


def test_sweep_report_period_ends_at_the_last_bar_of_its_latest_window(tmp_path):
    # Its windows are 2026-01-05..07 and 2026-01-07..09, each --until excluded
    write_sweep(tmp_path)
    assert report_period("sweep", tmp_path, "sma-grid", "2026-01-05 to 2026-01-09", {}) == (
        "2026-01-05 to 2026-01-08"
    )
