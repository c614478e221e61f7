"""Sweeps over universes: a grid's ``symbols`` entry that is a list runs one book over it per run.

One mixed sweep (a symbol and a book of three, three `fast` values of which one is refused, a day of
synthetic minute bars) is run once for the module through the command line; the book's row is
compared with ``labkit backtest --symbols`` of the same configuration.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import orjson
import pandas as pd
import pytest
import yaml

from labkit.cli import main
from labkit.reports import sweeps
from labkit.research.sweep.grid import load_grid
from labkit.research.sweep.plan import SweepPlan
from labkit.research.sweep.runner import run_sweep
from labkit.research.trials import read_trials

BOOK = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
GRID = {
    "name": "mix",
    "source": "synthetic",
    "strategy": "sma_cross",
    "params": {"fast": [5, 10, 40], "slow": [30]},
    "symbols": ["BTC/USDT", BOOK],
    "timeframes": ["1m"],
    "windows": [["2026-01-05", "2026-01-06"]],
    "costs": [{"fee": 0.001, "slippage": 0.0005}],
}
RUNS, REFUSED = 6, 2  # fast 40 is refused for the symbol and for the book


def write_grid(folder: Path, **changes: object) -> Path:
    path = folder / "grid.yaml"
    path.write_text(yaml.safe_dump({**GRID, **changes}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mixed grid swept once on one worker process; its trials in the home's own ledger."""
    home = tmp_path_factory.mktemp("books")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABKIT_TRIALS", str(home / "trials.jsonl"))
        code = main(
            ["--home", str(home), "sweep", "--grid", str(write_grid(home)), "--workers", "1", "--json"]
        )
    assert code == 0
    return home


def results_of(home: Path) -> pd.DataFrame:
    return pd.read_parquet(home / "data" / "sweeps" / "mix" / "results.parquet")


def test_sweep_when_an_entry_is_a_list_runs_one_book_per_run_with_the_columns_of_any_run(swept):
    # Act
    results = results_of(swept)
    # Assert
    assert len(results) == RUNS and list(results.columns[:3]) == ["run_id", "symbol", "symbols"]
    books = results[results["symbols"] == 3]
    singles = results[results["symbols"] == 1]
    assert len(books) == len(singles) == 3
    assert set(books["symbol"]) == {",".join(BOOK)} and set(singles["symbol"]) == {"BTC/USDT"}
    ok = books[books["error"].isna()]
    assert len(ok) == 2 and ok["sharpe"].notna().all() and (ok["trades"] > 0).all()
    for name in ("trades", "final_equity", "return_pct", "sharpe", "max_drawdown_pct", "fees", "bars"):
        assert ok[name].notna().all(), name
    refused = books[books["error"].notna()]
    assert list(refused["fast"]) == [40] and refused["error"].iloc[0].startswith(
        "strategies.sma_cross: slow (30)"
    )
    # A book of three trades other bars than BTC/USDT alone: its figures are its own.
    five = results[results["fast"] == 5].set_index("symbols")
    assert five.loc[3, "final_equity"] != five.loc[1, "final_equity"]


def test_sweep_book_row_when_backtested_with_symbols_gives_the_same_figures_and_trial(swept, capsys):
    # Arrange: the book's fast 5 run, and the same book from the command line
    results = results_of(swept)
    row = results[(results["symbols"] == 3) & (results["fast"] == 5)].iloc[0]
    capsys.readouterr()
    # Act
    code = main(
        [
            "--home", str(swept), "backtest", "--symbols", ",".join(BOOK), "--source", "synthetic",
            "--since", "2026-01-05", "--until", "2026-01-06", "--fast", "5", "--slow", "30",
            "--fee", "0.001", "--slippage", "0.0005", "--json",
        ]
    )  # fmt: skip
    # Assert
    assert code == 0
    expected = json.loads(capsys.readouterr().out)
    for name in (
        "bars",
        "trades",
        "final_equity",
        "return_pct",
        "sharpe",
        "max_drawdown_pct",
        "psr",
        "fees",
        "blocked",
    ):
        assert row[name] == expected[name], name
    assert row["slippage_paid"] == expected["slippage"]
    # One trial: the sweep's line and the command's have the same identity and configuration hash.
    swept_trial = json.loads(row["trial"])
    backtested = list(read_trials())[-1]
    assert swept_trial["kind"] == "sweep" and backtested["kind"] == "backtest"
    assert swept_trial["identity"] == backtested["identity"]
    assert row["run_id"] == row["config_hash"] == swept_trial["config_hash"] == backtested["config_hash"]
    assert swept_trial["symbol"] == ",".join(BOOK) and swept_trial["symbols"] == BOOK


def test_sweep_book_runs_when_finished_each_has_its_trial_and_return_blocks_giving_its_sharpe(swept):
    # Arrange
    folder = swept / "data" / "sweeps" / "mix"
    results = results_of(swept).set_index("run_id")
    blocks = pd.read_parquet(folder / "blocks.parquet")
    books = results[(results["symbols"] == 3) & results["error"].isna()]
    # Act
    per_run = blocks[blocks["run_id"].isin(books.index)].groupby("run_id")[["n", "sum", "sumsq"]].sum()
    # Assert: the report's PBO reads a book's returns as it reads a single run's
    assert sorted(per_run.index) == sorted(books.index)
    for run_id, agg in per_run.iterrows():
        row = books.loc[run_id]
        n, mean = agg["n"], agg["sum"] / agg["n"]
        sd = math.sqrt((agg["sumsq"] - n * mean * mean) / (n - 1))
        assert n == row["bars"]
        assert mean / sd * math.sqrt(row["periods_per_year"]) == pytest.approx(row["sharpe"], rel=1e-6)
    trials = list(read_trials(path=swept / "trials.jsonl"))
    assert sorted(t["config_hash"] for t in trials if t.get("symbols")) == sorted(books.index)


def test_sweep_when_resumed_skips_finished_book_runs_and_adds_no_row(tmp_path, swept, capsys):
    # Arrange: the sweep's files under this home
    shutil.copytree(swept / "data", tmp_path / "data")
    before = results_of(tmp_path)
    capsys.readouterr()
    # Act
    code = main(
        [
            "--home",
            str(tmp_path),
            "sweep",
            "--grid",
            str(write_grid(tmp_path)),
            "--workers",
            "1",
            "--resume",
            "--json",
        ]
    )
    # Assert: only the refused runs are tried again, and no trial is added
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ran"] == REFUSED and out["skipped"] == RUNS - REFUSED
    after = results_of(tmp_path)
    assert len(after) == RUNS and list(after["run_id"]) == list(before["run_id"])
    assert list(read_trials()) == []


def test_sweep_when_resumed_over_runs_finished_before_books_keeps_them_as_single_runs(tmp_path, swept):
    # Arrange: the single runs' files as a sweep made before books wrote them, without `symbols`
    shutil.copytree(swept / "data", tmp_path / "data")
    runs = tmp_path / "data" / "sweeps" / "mix" / "runs"
    for path in runs.glob("*.json"):
        data = orjson.loads(path.read_bytes())
        if data["row"]["symbols"] == 1:
            del data["row"]["symbols"]
            path.write_bytes(orjson.dumps(data))
    plan = SweepPlan(load_grid(write_grid(tmp_path)), tmp_path, environ={})
    # Act
    result = run_sweep(plan, workers=1, resume=True)
    # Assert
    assert result.ran == REFUSED
    assert list(results_of(tmp_path)["symbols"]) == list(results_of(swept)["symbols"])


@pytest.mark.parametrize(
    ("symbols", "expected"),
    [
        (["BTC/USDT", ["SPY", "ETH/USDT"]], "symbols[1][0]: 'SPY' is not a pair"),
        (
            ["BTC/USDT", ["ETH/USDT", "ETH/USDT"]],
            "symbols[1][1]: ETH/USDT repeats symbols[1][0]; each symbol trades once in a book",
        ),
        ([["BTC/USDT", " "]], "symbols[0][1]: blank; give a symbol"),
        ([["BTC/USDT", 5]], "symbols[0][1]: must be a symbol (text), not a int (got 5)"),
        ([["BTC/USDT", ["ETH/USDT"]]], "symbols[0][1]: must be a symbol (text), not a list"),
        (["BTC/USDT", []], "symbols[1]: an empty list; give a symbol or a list of two or more symbols"),
        (["BTC/USDT", {"a": 1}], "symbols[1]: must be a symbol or a list of symbols"),
        ([["A/B", "C/D"], ["A/B", "C/D"]], "symbols[1]: repeats symbols[0]"),
        # A list of one symbol is that symbol's own run, as --symbols A is --symbol A.
        (["A/B", ["A/B"]], "symbols[1]: repeats symbols[0]"),
    ],
)
def test_sweep_cli_when_a_book_list_is_bad_exits_2_naming_its_entry_and_runs_nothing(
    tmp_path, capsys, symbols, expected
):
    # Arrange
    grid = write_grid(tmp_path, symbols=symbols)
    # Act
    code = main(["--home", str(tmp_path), "sweep", "--grid", str(grid), "--workers", "1"])
    # Assert
    assert code == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "data" / "sweeps").exists()


def test_load_grid_when_a_book_lists_one_symbol_makes_it_a_single_symbol_run(tmp_path):
    # Act
    grid = load_grid(write_grid(tmp_path, symbols=[["BTC/USDT"], BOOK]))
    # Assert
    assert grid.symbols == ["BTC/USDT", BOOK]


def test_sweep_when_the_source_is_cached_reads_a_books_members_from_the_cache(tmp_path, monkeypatch):
    # Arrange: Yahoo answered from the synthetic market, a book of two symbols
    from labkit.data.cache import cache_path, write_parquet
    from labkit.data.synthetic import synthetic_bars
    from labkit.data.yfinance import YahooSource

    calls = []

    def fetch(self, symbol, timeframe, since_ms, until_ms, refill_gaps=False):
        calls.append(symbol)
        write_parquet(
            synthetic_bars(symbol, timeframe, since_ms, until_ms),
            cache_path(self.home, self.spec, symbol, timeframe),
        )
        return {"fetched": 0, "requested": 0, "gaps": 0}

    monkeypatch.setattr(YahooSource, "fetch", fetch)
    grid = write_grid(
        tmp_path,
        name="yahoo",
        source="yfinance",
        symbols=["SPY", ["SPY", "QQQ"]],
        timeframes=["1h"],
        params={"fast": [2], "slow": [6]},
    )
    plan = SweepPlan(load_grid(grid), tmp_path, environ={})
    # Act
    result = run_sweep(plan, workers=1)
    # Assert: each member fetched once, and read by the book's run from the cache itself
    assert sorted(calls) == ["QQQ", "SPY"]
    results = pd.read_parquet(result.table).set_index("symbol")
    assert results["error"].isna().all() and results.loc["SPY,QQQ", "symbols"] == 2
    assert not (plan.folder / "bars").exists()


def test_sweep_report_when_runs_include_books_groups_them_apart_and_names_their_currency(swept):
    # Arrange
    record = sweeps.load_sweep(swept, "mix")
    # Act
    groups = sweeps.group_overfitting(record)
    best = sweeps.best_run(record)
    cells = sweeps.heatmap(record, "fast", "symbol")
    # Assert: the book is a group of its own (its runs share its bars), with PBO from its blocks
    assert sorted(g.label.split(" ")[0] for g in groups) == sorted(["BTC/USDT", ",".join(BOOK)])
    assert all(g.overfitting is not None for g in groups)
    assert "symbols" not in record.parameters and record.parameters == ("fast", "slow")
    assert best is not None and best.currency == "USDT"
    assert cells.mean.shape == (2, 2) and (cells.count.to_numpy() == 1).all()
