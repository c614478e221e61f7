"""The backtest summary says when its annual figures are extrapolated from under a month (issue 20)."""

from __future__ import annotations

from labkit.cli import main


def _summary_lines(tmp_path, capsys, until: str) -> list[str]:
    args = ["--home", str(tmp_path), "backtest", "--since", "2026-01-05", "--until", until]
    assert main(args) == 0
    return capsys.readouterr().out.splitlines()


def test_backtest_when_under_30_days_marks_annual_figures_extrapolated(tmp_path, capsys):
    lines = _summary_lines(tmp_path, capsys, "2026-01-06")
    annual = next(line for line in lines if "CAGR" in line)
    assert "extrapolated from 1.0 days" in annual


def test_backtest_when_35_days_shows_annual_figures_unmarked(tmp_path, capsys):
    lines = _summary_lines(tmp_path, capsys, "2026-02-09")
    annual = next(line for line in lines if "CAGR" in line)
    assert "extrapolated" not in annual
