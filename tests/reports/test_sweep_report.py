"""The sweep report: a fixture sweep folder as `labkit sweep` writes it, its view helpers, and the
page `render_sweep_report` renders from it (the notebook runs for real: the slow tests)."""

from __future__ import annotations

import doctest
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labkit.analysis import metrics
from labkit.analysis.overfitting import blocks_from_returns
from labkit.config.loading import load_config
from labkit.errors import ConfigError, DataError
from labkit.reports import sweeps
from labkit.reports.index import write_index
from labkit.reports.render import render_sweep_report

OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)
PPY = 525_600.0  # one-minute bars of a 24/7 year
WINDOWS = (("2026-01-05", "2026-01-07"), ("2026-01-07", "2026-01-09"))
BEST = (10, 50)  # the cell an edge is planted in


def write_sweep(
    home: Path, name: str = "sma-grid", bars: int = 1_280, edge: float = 0.0, failed: int = 1
) -> dict[str, np.ndarray]:
    """Write data/sweeps/<name>/ as `labkit sweep` does: a 3 x 3 fast/slow grid over 2 windows.

    The first `failed` runs fail (no figures, no blocks); `edge` is added to every bar's return of
    the (10, 50) cell. Return each completed run's per-bar returns by run id.
    """
    rng = np.random.default_rng(7)
    rows, blocks, returns = [], [], {}
    for since, until in WINDOWS:
        for fast in (5, 10, 20):
            for slow in (30, 50, 100):
                run_id = f"r{len(rows):03d}"
                trial = {"kind": "backtest", "symbol": "BTC/USDT", "timeframe": "1m", "strategy": "sma_cross",
                         "params": {"fast": fast, "slow": slow}, "fee": 0.001, "slippage": 0.0}
                row = {"run_id": run_id, "symbol": "BTC/USDT", "timeframe": "1m", "since": since, "until": until,
                       "fee": 0.001, "slippage": 0.0, "fast": fast, "slow": slow, "config_hash": f"hash-{run_id}",
                       "trial": json.dumps(trial), "seconds": 0.5}
                if len(rows) < failed:
                    rows.append({**row, "error": "ValueError: the window holds too few bars\n  (traceback)"})
                    continue
                r = rng.standard_t(5, bars) * 0.001 + (edge if (fast, slow) == BEST else 0.0)
                equity = 10_000.0 * np.cumprod(1.0 + r)
                m = metrics.sharpe_moments(r)
                assert m is not None
                rows.append({**row, "trades": int(rng.integers(5, 40)), "final_equity": float(equity[-1]),
                             "return_pct": float(equity[-1] / 10_000.0 - 1.0) * 100.0,
                             "sharpe": metrics.sharpe_ratio(r, PPY),
                             "max_drawdown_pct": metrics.max_drawdown(equity, 10_000.0) * 100.0,
                             "sortino": metrics.sortino_ratio(r, PPY), "calmar": metrics.calmar_ratio(r, PPY),
                             "psr": metrics.psr_from_moments(m.sharpe, m.n, m.skew, m.kurtosis),
                             "periods_per_year": PPY, "bars": bars, "error": None})
                n, s, ss = blocks_from_returns(r, 64)
                blocks += [{"run_id": run_id, "block": b, "n": int(n[b]), "sum": s[b], "sumsq": ss[b]} for b in range(64)]
                returns[run_id] = r
    folder = home / "data" / "sweeps" / name
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(folder / "results.parquet")
    pd.DataFrame(blocks).to_parquet(folder / "blocks.parquet")
    (folder / "grid.yaml").write_text("strategy: sma_cross\nparams:\n  fast: [5, 10, 20]\n  slow: [30, 50, 100]\n")
    return returns


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("home")
    write_sweep(home)
    result = render_sweep_report(home, "sma-grid", load_config(None, {}, environ={}))
    return home, result


# -- the page --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_render_sweep_report_when_sweep_exists_shows_heatmaps_dsr_and_pbo_and_links_to_the_index(rendered):
    # Arrange
    home, result = rendered
    # Act
    page = result.html.read_text(encoding="utf-8")
    # Assert
    assert result.ok and result.kind == "sweep" and result.html.name == "sweep-sma-grid.html"
    assert result.html.parent == home / "reports" / "_sweeps" and result.notebook.is_file()
    assert 'href="../index.html"' in page and page.index('href="../index.html"') < page.index("<h1")
    assert 'alt="mean sharpe by fast and slow' in page  # the heatmap of the two parameters
    assert 'alt="mean sharpe by fast and window' in page and 'alt="mean sharpe by slow and window' in page
    assert re.search(r"Deflated Sharpe ratio 0\.\d{3}: the probability that the best run", page)
    assert "17 runs without skill" in page  # the trials are the completed runs
    assert page.count('alt="PBO 0.') == 2  # one logit histogram per window
    assert "the chance that the configuration that looks best in-sample is below the median out of sample" in page
    assert "the grid&#x27;s best cell is likely luck" in page or "the grid's best cell is likely luck" in page
    assert "ValueError: the window holds too few bars" in page and "(traceback)" not in page
    assert "USDT" in page and "(UTC)" in page
    assert "REPORT FAILED" not in page and str(home) not in page and not OUTSIDE.search(page)


@pytest.mark.slow
def test_render_sweep_report_when_rendered_is_listed_in_the_index_with_its_pbo(rendered):
    # Arrange
    home, result = rendered
    groups = sweeps.group_overfitting(sweeps.load_sweep(home, "sma-grid"))
    # Act
    index = (home / "reports" / "index.html").read_text(encoding="utf-8")
    sidecar = json.loads(result.html.with_suffix(".json").read_text())
    # Assert
    assert result.outcome == sweeps.pbo_outcome(groups) and result.outcome.startswith("PBO 0.")
    assert sidecar["kind"] == "sweep" and sidecar["outcome"] == result.outcome and sidecar["runs"] == 18
    assert sidecar["parameters"] == {"home": ".", "sweep": "sma-grid"}
    assert 'href="_sweeps/sweep-sma-grid.html"' in index
    assert (
        f'<td>sweep</td><td>sma-grid</td><td>2026-01-05 to 2026-01-08</td><td class="figure">{result.outcome}</td>'
        in index
    )


def test_write_index_when_the_sweeps_results_are_gone_leaves_its_report_out(tmp_path):
    # Arrange: two sweep reports, one of a sweep still there, one whose results were deleted
    write_sweep(tmp_path, "kept")
    folder = tmp_path / "reports" / "_sweeps"
    folder.mkdir(parents=True)
    for name in ("kept", "gone"):
        (folder / f"sweep-{name}.html").write_text("<html></html>")
        sidecar = {"kind": "sweep", "session": name, "period": "2026-01-05 to 2026-01-09", "ok": True,
                   "outcome": "PBO 0.62", "generated_at": "2026-01-10T00:00:00.000Z", "html": f"sweep-{name}.html"}
        (folder / f"sweep-{name}.json").write_text(json.dumps(sidecar))
    # Act
    index = write_index(tmp_path).read_text(encoding="utf-8")
    # Assert
    assert 'href="_sweeps/sweep-kept.html"' in index and "sweep-gone" not in index
    assert '<td class="figure">PBO 0.62</td>' in index


# -- refusals --------------------------------------------------------------------------------------


def test_render_sweep_report_when_sweep_is_missing_raises_config_error_naming_how_to_make_one(tmp_path):
    # Arrange
    write_sweep(tmp_path, "other")
    # Act / Assert
    with pytest.raises(ConfigError) as raised:
        render_sweep_report(tmp_path, "nope", load_config(None, {}, environ={}))
    message = str(raised.value)
    assert "sweep nope: no data/sweeps/nope/results.parquet" in message
    assert "labkit sweep --grid GRID.yaml" in message and "other" in message  # the sweeps there are
    assert raised.value.exit_code == 2
    assert not (tmp_path / "reports").exists()  # refused before anything ran


def test_render_sweep_report_when_no_sweep_and_name_empty_raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"no sweep with results.*labkit sweep --grid GRID\.yaml"):
        render_sweep_report(tmp_path, "", load_config(None, {}, environ={}))


@pytest.mark.parametrize(
    "name", ["../x", "a/b", "/etc", ".hidden", "-flag", "a..b", "..", "a b", "é", "x" * 65, "a\nb", "a\x00b"]
)
def test_render_sweep_report_when_name_is_hostile_raises_config_error(tmp_path, name):
    # Arrange: a sweep folder the hostile name might reach
    write_sweep(tmp_path / "data", "x")
    # Act / Assert
    with pytest.raises(ConfigError, match=r"sweep: use letters, digits"):
        render_sweep_report(tmp_path, name, load_config(None, {}, environ={}))


def test_load_sweep_when_blocks_repeat_a_block_raises_data_error(tmp_path):
    # Arrange
    write_sweep(tmp_path)
    path = tmp_path / "data" / "sweeps" / "sma-grid" / "blocks.parquet"
    blocks = pd.read_parquet(path)
    pd.concat([blocks, blocks.iloc[:1]]).to_parquet(path)
    # Act / Assert
    with pytest.raises(DataError, match="the same block twice"):
        sweeps.load_sweep(tmp_path, "sma-grid")


# -- the view helpers ------------------------------------------------------------------------------


def test_sweeps_module_when_doctested_passes():
    # Arrange / Act
    result = doctest.testmod(sweeps)
    # Assert
    assert result.failed == 0 and result.attempted > 0


def test_load_sweep_when_read_finds_the_parameters_in_the_trial_lines_and_the_windows(tmp_path):
    # Arrange
    write_sweep(tmp_path)
    # Act
    record = sweeps.load_sweep(tmp_path, "")  # the newest
    # Assert
    assert record.name == "sma-grid" and record.strategy == "sma_cross"
    assert record.parameters == ("fast", "slow")
    assert sweeps.varying_keys(record) == ["fast", "slow", "window"]
    assert sweeps.heatmap_pairs(record) == [("slow", "fast"), ("window", "fast"), ("window", "slow")]
    assert sorted(set(record.results["window"])) == ["2026-01-05 to 2026-01-07", "2026-01-07 to 2026-01-09"]


def test_load_sweep_when_no_trial_line_says_takes_the_columns_that_are_no_grid_key_or_figure(tmp_path):
    # Arrange: results without trial lines (every run's trial None)
    write_sweep(tmp_path)
    path = tmp_path / "data" / "sweeps" / "sma-grid" / "results.parquet"
    pd.read_parquet(path).assign(trial=None).to_parquet(path)
    # Act
    record = sweeps.load_sweep(tmp_path, "sma-grid")
    # Assert
    assert record.parameters == ("fast", "slow") and record.strategy is None


def test_failures_table_when_runs_failed_groups_them_by_their_errors_first_line(tmp_path):
    # Arrange
    write_sweep(tmp_path, failed=3)
    record = sweeps.load_sweep(tmp_path, "sma-grid")
    # Act
    table = sweeps.failures_table(record)
    # Assert
    assert table.index.tolist() == ["ValueError: the window holds too few bars"]
    assert table["runs"].tolist() == [3] and table["run ids"].tolist() == ["r000, r001, r002"]


def test_heatmap_when_averaged_over_windows_gives_the_mean_and_count_of_each_cell(tmp_path):
    # Arrange: run r000 (fast 5, slow 30, first window) failed
    write_sweep(tmp_path)
    record = sweeps.load_sweep(tmp_path, "sma-grid")
    runs = record.completed
    # Act
    heat = sweeps.heatmap(record, "slow", "fast")
    # Assert
    cell = runs[(runs["fast"] == 10) & (runs["slow"] == 50)]["sharpe"].mean()
    assert heat.mean.loc[10, 50] == pytest.approx(cell)
    assert heat.count.loc[5, 30] == 1 and heat.count.loc[10, 50] == 2
    assert heat.mean.index.tolist() == [5, 10, 20] and heat.mean.columns.tolist() == [30, 50, 100]


def test_group_overfitting_when_runs_span_two_windows_computes_pbo_within_each(tmp_path):
    # Arrange
    write_sweep(tmp_path)
    record = sweeps.load_sweep(tmp_path, "sma-grid")
    # Act
    groups = sweeps.group_overfitting(record)
    # Assert
    assert [g.label for g in groups] == [
        "BTC/USDT 1m, 2026-01-05 to 2026-01-07",
        "BTC/USDT 1m, 2026-01-07 to 2026-01-09",
    ]
    assert [len(g.runs) for g in groups] == [8, 9]  # the failed run has no blocks
    assert all(g.overfitting is not None and g.overfitting.combinations == 12_870 for g in groups)


def test_group_overfitting_when_one_cell_has_a_real_edge_gives_a_low_pbo_choosing_it(tmp_path):
    # Arrange: the (10, 50) cell earns 0.5 standard deviations more every bar
    write_sweep(tmp_path, edge=0.0005)
    record = sweeps.load_sweep(tmp_path, "sma-grid")
    # Act
    groups = sweeps.group_overfitting(record)
    # Assert
    for group in groups:
        assert group.overfitting is not None and group.overfitting.pbo < 0.2
        chosen = group.runs.iloc[np.bincount(group.overfitting.chosen).argmax()]
        assert (chosen["fast"], chosen["slow"]) == BEST
    assert sweeps.pbo_outcome(groups) == "PBO 0.00"


def test_group_overfitting_when_a_group_has_one_run_says_pbo_needs_two(tmp_path):
    # Arrange: blocks of every run but one in the second window removed
    write_sweep(tmp_path)
    path = tmp_path / "data" / "sweeps" / "sma-grid" / "blocks.parquet"
    blocks = pd.read_parquet(path)
    blocks[~blocks["run_id"].isin([f"r{i:03d}" for i in range(10, 18)])].to_parquet(path)
    # Act
    groups = sweeps.group_overfitting(sweeps.load_sweep(tmp_path, "sma-grid"))
    # Assert
    assert groups[1].overfitting is None
    assert "PBO needs at least 2 configurations with blocks (got 1)" in groups[1].note
    assert "8 run(s) without all blocks left out" in groups[1].note
    assert sweeps.pbo_outcome(groups).startswith("PBO 0.")  # the first window still has one


def test_best_run_when_psr_is_known_equals_the_deflated_sharpe_ratio_of_its_returns(tmp_path):
    # Arrange
    returns = write_sweep(tmp_path)
    record = sweeps.load_sweep(tmp_path, "sma-grid")
    runs = record.completed
    variance = float((runs["sharpe"] / math.sqrt(PPY)).var(ddof=1))
    # Act
    best = sweeps.best_run(record)
    # Assert: the same number metrics gives from the best run's returns, skewness and kurtosis included
    assert best is not None and best.moments_from_psr and best.trials == 17
    assert best.row["run_id"] == runs.loc[runs["sharpe"].idxmax(), "run_id"]
    expected = metrics.deflated_sharpe_ratio(returns[best.row["run_id"]], 17, variance)
    assert best.deflated_sharpe == pytest.approx(expected, abs=1e-9)
    assert sweeps.dsr_line(best).startswith(f"Deflated Sharpe ratio {expected:.3f}: ")


def test_deflated_sharpe_when_psr_is_missing_assumes_normal_returns_and_says_so():
    # Arrange: an annualised Sharpe of 2 over 1,250 daily bars, the best of 100 runs
    sharpe, ppy, bars = 2.0, 252.0, 1_250
    # Act
    dsr, from_psr = sweeps.deflated_sharpe(sharpe, ppy, bars, None, 100, 0.5 / 250)
    # Assert
    benchmark = metrics.expected_max_sharpe(100, 0.5 / 250)
    assert not from_psr
    assert dsr == pytest.approx(metrics.psr_from_moments(sharpe / ppy**0.5, bars, 0.0, 3.0, benchmark))


def test_pbo_outcome_when_groups_differ_gives_the_range_and_words_say_what_it_means():
    # Arrange / Act / Assert
    assert sweeps.pbo_outcome([]) == "PBO n/a"
    assert "the grid's best cell is likely luck" in sweeps.pbo_words(0.62)
    assert "Low:" in sweeps.pbo_words(0.05)


def test_cli_report_sweep_when_the_sweep_is_missing_exits_2_and_says_how_to_make_one(tmp_path, capsys):
    # Arrange
    from labkit.cli import main

    # Act
    code = main(["--home", str(tmp_path), "report", "sweep", "--sweep", "nope"])
    # Assert
    assert code == 2 and "labkit sweep --grid" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--model", "latest"], ["--date", "2026-01-05"], ["--journal", "x.jsonl"]])
def test_cli_report_sweep_when_given_another_kind_s_flag_exits_2_naming_it(tmp_path, capsys, flag):
    # Arrange
    from labkit.cli import main

    # Act
    code = main(["--home", str(tmp_path), "report", "sweep", "--sweep", "s", *flag])
    # Assert
    assert code == 2 and flag[0] in capsys.readouterr().err


# -- the conclusion ------------------------------------------------------------------------------


def _runs(returns, holds):
    return pd.DataFrame({"return_pct": returns, "buy_hold_return_pct": holds})


def test_sweep_conclusion_when_every_run_loses_says_all_lose_none_beats_holding_and_the_pbo():
    # Act
    text = sweeps.sweep_conclusion(_runs([-1.0] * 18, [5.0] * 18), pbos=[0.62])
    # Assert
    assert text.startswith("All 18 runs lose money after costs; none beats buy and hold")
    assert "PBO 0.62: the best run's lead is likely luck" in text


def test_sweep_conclusion_when_some_runs_win_counts_them_and_those_beating_buy_and_hold():
    # Act
    text = sweeps.sweep_conclusion(_runs([-2.0, -1.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0]), failed=2, pbos=[0.05, 0.3])
    # Assert
    assert text.startswith("2 of 4 runs lose money after costs, 1 gains and 1 ends flat; 1 of 4 beats buy and hold")
    assert "PBO up to 0.30 across 2 groups" in text and "often fails on bars it was not chosen on" in text
    assert "2 runs failed and are left out" in text


def test_sweep_conclusion_when_every_run_beats_holding_says_so_and_what_a_low_pbo_does_not_say():
    # Act
    text = sweeps.sweep_conclusion(_runs([4.0, 6.0], [1.0, 1.0]), pbos=[0.1], deflated_sharpe=0.4, trials=2)
    # Assert
    assert text.startswith("Both runs make money after costs; both runs beat buy and hold")
    assert "PBO 0.10: the runs that lead in sample keep leading out of sample" in text
    assert "deflated Sharpe ratio is 0.40" in text and "not shown to beat what luck gives the best of 2 runs" in text


def test_sweep_conclusion_when_no_run_completed_says_there_is_nothing_to_conclude():
    # Act
    text = sweeps.sweep_conclusion(_runs([], []), failed=3)
    # Assert
    assert text.startswith("No run completed") and "3 runs failed" in text


@pytest.mark.slow
def test_render_sweep_report_when_rendered_ends_with_its_conclusion(rendered):
    # Arrange
    _, result = rendered
    # Act
    page = result.html.read_text(encoding="utf-8")
    # Assert
    assert page.rindex("Conclusion") > page.rindex("The probability of backtest overfitting")
    assert re.search(r"\d+ of \d+ runs|All \d+ runs|Both runs", page[page.rindex("Conclusion") :])
