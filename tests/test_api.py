"""The notebook API at the package root: docs/api.md runs as a notebook, and each name takes plain input."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import labkit
from labkit.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"
README = ROOT / "README.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


@pytest.fixture
def two_days() -> pd.DataFrame:
    return labkit.load_bars("synthetic", "BTC/USDT", "1m", "2026-01-05", "2026-01-07")


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    # Every backtest here reads the config of, and writes only under, a home of its own.
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)


@pytest.mark.slow
def test_api_doc_when_run_as_a_notebook_runs_every_example_top_to_bottom(tmp_path):
    # Arrange: a notebook written only from docs/api.md, a cell per example, run in this venv
    import nbclient
    import nbformat

    blocks = PYTHON_BLOCK.findall(API_DOC.read_text(encoding="utf-8"))
    checks = (
        "assert len(bars) == 2 * 1440 and str(bars.index[0]) == '2026-01-05 00:00:00+00:00'\n"
        "assert breakout.summary['strategy'] == 'breakout-60' and trend.summary['strategy'].startswith('function:momentum')\n"
        "assert result.summary['trades'] == len(result.journal[result.journal['fill_side'] == 'BUY'])\n"
        "assert len(result.equity) == len(result.journal) == len(bars) and len(result.trades) > 0\n"
        "assert type(figure).__name__ == 'Figure' and len(figure.axes) == 3 and 'Return' in html\n"
        "assert len(labkit.read_journal('runs/sma_cross.jsonl')) == len(bars)"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(b) for b in [*blocks, checks]])
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    # Act
    client.execute()
    # Assert: no cell failed (execute raises), each showed what it should, the files were written
    outputs = [o for cell in notebook.cells for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("<table>" in o.get("data", {}).get("text/html", "") for o in outputs)  # the result's own view
    assert (tmp_path / "runs" / "sma_cross.jsonl").stat().st_size > 0
    assert (tmp_path / "sma_cross.png").read_bytes().startswith(b"\x89PNG")


def test_readme_notebook_example_when_run_backtests_a_name_and_a_function_and_plots():
    # Arrange: the README's "In a notebook" block, as a user pastes it into one cell
    import matplotlib

    matplotlib.use("Agg")
    section = README.read_text(encoding="utf-8").split("## In a notebook\n", 1)[1].split("\n## ", 1)[0]
    (block,) = PYTHON_BLOCK.findall(section)
    namespace: dict[str, object] = {}
    # Act
    exec(compile(block, "README.md", "exec"), namespace)
    # Assert: the names it shows are the API's, and each did what its comment says
    result, trend = namespace["result"], namespace["trend"]
    assert isinstance(result, labkit.Result) and isinstance(trend, labkit.Result)
    assert result.summary["strategy"].startswith("sma_cross") and result.summary["trades"] > 0
    assert trend.summary["strategy"].startswith("function:momentum")
    assert str(namespace["bars"].index[0]) == "2026-01-05 00:00:00+00:00"
    assert type(trend.plot()).__name__ == "Figure"
    assert "parse_instant" not in block and "run_backtest" not in block  # internals a user needs not


@pytest.mark.parametrize(
    "since",
    [
        "2026-01-05",
        date(2026, 1, 5),
        datetime(2026, 1, 5),
        pd.Timestamp("2026-01-05", tz="UTC"),
        1767571200000,
    ],
)
def test_load_bars_when_since_is_any_plain_date_starts_at_that_utc_day(since):
    # Act
    bars = labkit.load_bars("synthetic", "BTC/USDT", "1h", since, "2026-01-06")
    # Assert
    assert len(bars) == 24 and str(bars.index[0]) == "2026-01-05 00:00:00+00:00"


def test_synthetic_bars_when_given_date_strings_returns_the_range():
    # Act
    bars = labkit.synthetic_bars("BTC/USDT", "1h", "2026-01-05", "2026-01-06")
    # Assert
    assert len(bars) == 24


def test_load_bars_when_since_is_not_a_date_names_the_argument_and_the_forms():
    with pytest.raises(ConfigError, match=r"since: .* is not a time"):
        labkit.load_bars("synthetic", "BTC/USDT", "1h", 3.5, "2026-01-06")


def test_backtest_when_given_a_function_runs_its_sides_with_its_keywords(two_days):
    # Arrange
    def every_hour(bars, offset=0):
        hour = np.arange(len(bars)) + offset
        return np.where(hour % 60 == 0, 1, np.where(hour % 60 == 30, -1, 0))

    # Act
    result = labkit.backtest(two_days, every_hour, offset=1, gates="off", fee=0.0)
    # Assert: an entry each hour, filled at the next open (the last bar's proposal has none), no fee
    assert result.summary["strategy"] == "function:every_hour(offset=1)"
    assert result.summary["trades"] == 47 and result.summary["fees"] == 0.0


def test_backtest_when_a_function_returns_another_value_says_what_a_side_is(two_days):
    with pytest.raises(ConfigError, match=r"returned side 2; a side is 1 \(buy\), 0 \(hold\) or -1 \(sell\)"):
        labkit.backtest(two_days, lambda bars: np.full(len(bars), 2))


def test_backtest_when_a_name_and_params_runs_that_strategy_and_counts_a_trial(two_days):
    # Act
    first = labkit.backtest(two_days, "sma_cross", fast=5, slow=20)
    second = labkit.backtest(two_days, "sma_cross", fast=6, slow=20)
    # Assert
    assert first.summary["strategy"] == "sma_cross-5-20"
    assert (first.summary["trials"], second.summary["trials"]) == (1, 2)


def test_backtest_when_the_journal_exists_refuses_to_mix_two_runs(two_days, tmp_path):
    # Arrange
    labkit.backtest(two_days, "sma_cross", journal=str(tmp_path / "j.jsonl"))
    # Act / Assert
    with pytest.raises(ConfigError, match="journal: .*j.jsonl exists; choose another path"):
        labkit.backtest(two_days, "sma_cross", journal=tmp_path / "j.jsonl")


def test_backtest_when_config_overrides_a_key_uses_it(two_days):
    # Act
    result = labkit.backtest(two_days, "sma_cross", capital=1_000, config={"broker.fee": 0.002})
    # Assert
    assert result.summary["fee"] == 0.002 and result.equity.iloc[0] <= 1_000


def test_backtest_when_bars_carry_no_market_takes_the_timeframe_from_their_spacing(two_days):
    # Arrange: a frame built by hand has no attrs
    bars = two_days.iloc[::5].copy()
    bars.attrs = {}
    # Act
    result = labkit.backtest(bars, "sma_cross")
    # Assert: five-minute bars over two days annualise as such
    assert result.summary["periods_per_year"] == 365 * 24 * 12


def test_import_labkit_when_api_names_are_listed_loads_none_of_them():
    # `dir(labkit)` lists the notebook API; nothing is imported until a name is used
    assert {"load_bars", "backtest", "Result", "Strategy", "Signals", "read_journal"} <= set(dir(labkit))
