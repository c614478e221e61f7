"""`labkit sweep`: a grid of backtests into one table, durable, resumable, the same on a process pool or Dask.

One reference sweep (48 runs of a day of synthetic minute bars, some refused by their strategy,
some without bars) is run once for the module; the killed-and-resumed sweep and the Dask sweep are
compared with it row by row, every column but the run's time and the trial's time stamp.
"""

from __future__ import annotations

import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest
import yaml

from labkit.analysis.metrics import equity_returns
from labkit.cli import main
from labkit.config.loading import load_config
from labkit.data.synthetic import synthetic_bars
from labkit.errors import ConfigError
from labkit.research.backtest import run_backtest
from labkit.research.sweep.grid import load_grid
from labkit.research.sweep.plan import SweepPlan
from labkit.research.sweep.runner import open_executor, run_sweep
from labkit.research.sweep.store import BLOCKS, return_blocks
from labkit.research.trials import config_hash, read_trials
from labkit.timeutil import parse_instant
from tests import stubs

GRID = {
    "name": "ref",
    "source": "synthetic",
    "strategy": "sma_cross",
    "params": {"fast": [3, 5, 8, 13], "slow": [4, 30, 60]},
    "symbols": ["BTC/USDT", "ETH/USDT"],
    "timeframes": ["1m"],
    # The second window lies before the synthetic market's first bar: its runs fail in the worker.
    "windows": [["2026-01-05", "2026-01-06"], ["1999-01-01", "1999-01-02"]],
    "costs": [{"fee": 0.001, "slippage": 0.0}, {"fee": 0.002, "slippage": 0.0005}],
}
RUNS = 4 * 3 * 2 * 2 * 2
REFUSED = 3 * 2 * 2 * 2  # slow 4 after fast 5, 8 and 13, for each symbol, window and costs
NO_BARS = (RUNS - REFUSED) // 2  # the runs of the 1999 window the strategy accepts


def write_grid(folder: Path, **changes: object) -> Path:
    path = folder / "grid.yaml"
    path.write_text(yaml.safe_dump({**GRID, **changes}, sort_keys=False), encoding="utf-8")
    return path


def comparable(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return a sweep's two tables without what differs between two runs of it: times."""
    results = pd.read_parquet(folder / "results.parquet").drop(columns=["seconds"])
    results["trial"] = [
        json.dumps({k: v for k, v in json.loads(text).items() if k != "time"}) if isinstance(text, str) else None
        for text in results["trial"]
    ]
    return results, pd.read_parquet(folder / "blocks.parquet")


# What the reference sweep reported as it ran: (runs, finished, failed, rows in results.parquet then).
PROGRESS: list[tuple[int, int, int, int]] = []


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grid swept once on a local process pool of one worker, tables rebuilt every 0.2 s."""
    home = tmp_path_factory.mktemp("reference")
    plan = SweepPlan(load_grid(write_grid(home)), home, environ={})
    table = plan.folder / "results.parquet"

    def progress(runs: int, done: int, failed: int) -> None:
        PROGRESS.append((runs, done, failed, pq.read_metadata(table).num_rows if table.exists() else 0))

    with pytest.MonkeyPatch.context() as patch:  # the sweep's trials, read by the tests below
        patch.setenv("LABKIT_TRIALS", str(home / "trials.jsonl"))
        run_sweep(plan, workers=1, progress=progress, flush_seconds=0.2)
    return home


# --- The grid file -----------------------------------------------------------------------------


BASE = 'name: g\nsymbols: [BTC/USDT]\nwindows: [["2026-01-05", "2026-01-06"]]\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('symbols: [BTC/USDT]\nwindows: [["2026-01-05", "2026-01-06"]]\n', "name: missing; it is required"),
        (BASE + "colour: red\n", "colour: unknown key; allowed: name, source, strategy, params"),
        # A misspelt key is named before the key it was meant to be is called missing.
        ('name: g\nsymbol: [BTC/USDT]\nwindows: [["2026-01-05", "2026-01-06"]]\n', "symbol: unknown key (did you mean symbols?); allowed: name"),
        ('name: g\nsymbols: [BTC/USDT]\nwindow: [["2026-01-05", "2026-01-06"]]\n', "window: unknown key (did you mean windows?)"),
        ('name: g\nsymbols: [BTC/USDT, SPY]\nwindows: [["2026-01-05", "2026-01-06"]]\n', "symbols[1]: 'SPY' is not a pair"),
        ('name: g\nsymbols: []\nwindows: [["2026-01-05", "2026-01-06"]]\n', "symbols: must not be empty"),
        (BASE + "params: {fast: []}\n", "params.fast: must not be empty"),
        ('name: g\nsymbols: [A/B]\nwindows: [["2026-01-06", "2026-01-05"]]\n', "windows[0]: until (2026-01-05) must be after since (2026-01-06)"),
        ('name: g\nsymbols: [A/B]\nwindows: [["2026-01-05", "2026-01-05"]]\n', "windows[0]: until (2026-01-05) must be after"),
        ('name: g\nsymbols: [A/B]\nwindows: [["2026-01-06"]]\n', "windows[0]: must be a pair [since, until]"),
        ('name: g\nsymbols: [A/B]\nwindows: [["soon", "2026-01-05"]]\n', "windows[0][0]: 'soon' is not a time"),
        (BASE + "costs: [{fee: abc}]\n", "costs[0].fee: must be a number >= 0 and < 0.5 (a fraction of each fill's notional) (got 'abc')"),
        (BASE + "costs: [{fee: true}]\n", "costs[0].fee: must be a number >= 0"),
        (BASE + "costs: [{fee: 0.001}, {fee: 0.001, slippage: -0.1}]\n", "costs[1].slippage: must be a number >= 0 and < 0.5"),
        (BASE + "costs: [{fees: 0.001}]\n", "costs[0].fees: unknown key (did you mean fee?); allowed: fee, slippage"),
        (BASE + "costs: [0.001]\n", "costs[0]: must be a mapping"),
        (BASE + "strategy: momentum\n", "strategy: unknown strategy 'momentum'; allowed: model, sma_cross"),
        (BASE + "params: {fats: [5]}\n", "params.fats: unknown parameter of sma_cross; allowed: fast, slow"),
        (BASE + "params: {fast: [5, 10, 0]}\n", "params.fast[2]: must be an integer >= 1 and <= 100000 (got 0)"),
        (BASE + "params: {fast: [5, ten]}\n", "params.fast[1]: must be an integer >= 1"),
        (BASE + "params: {fast: [5.5]}\n", "params.fast[0]: must be an integer"),
        (BASE + "params: {fast: 5}\n", "params.fast: must be a list (got 5)"),
        (BASE + "params: {fast: [5, 5]}\n", "params.fast[1]: repeats params.fast[0]"),
        (BASE + "strategy: model\nparams: {entry: [0.7, 0.4]}\n", "params.entry[1]: must be a number > 0.5 and <= 1.0 (got 0.4)"),
        (BASE + "strategy: model\nparams: {model: [latest, nope]}\n", "params.model[1]: String should match pattern"),
        ('name: ../x\nsymbols: [A/B]\nwindows: [["2026-01-05", "2026-01-06"]]\n', "name: use letters, digits"),
        ('name: .hidden\nsymbols: [A/B]\nwindows: [["2026-01-05", "2026-01-06"]]\n', "name: use letters, digits"),
        # A name the report could never list (sessions and sweeps share one naming rule).
        ('name: a..b\nsymbols: [A/B]\nwindows: [["2026-01-05", "2026-01-06"]]\n', "name: use letters, digits"),
        ("- name: g\n- symbols: [A/B]\n", "a grid is a mapping of keys (name, source"),
        ("", "not empty"),
        (BASE + "name: h\n", "duplicate key 'name'"),
        (BASE + "source: nowhere\n", "source: 'nowhere' is not a source"),
        (BASE + "timeframes: [1m, 7q]\n", "timeframes[1]: '7q' is not a timeframe"),
        ('name: g\nsymbols: [A/B, A/B]\nwindows: [["2026-01-05", "2026-01-06"]]\n', "symbols[1]: repeats symbols[0]"),
        ('name: g\nsymbols: [" A/B"]\nwindows: [["2026-01-05", "2026-01-06"]]\n', "symbols[0]: a symbol has blanks"),
        ('name: g\nsymbols: [A/B]\nwindows: [[2026-01-05, 2026-01-06], ["2026-01-05T00:00:00Z", "2026-01-06"]]\n', "windows[1]: the same range as windows[0]"),
        (BASE + "gates: maybe\n", "gates: must be on or off (got 'maybe')"),
        (BASE + "capital: -5\n", "capital: must be a number > 0"),
        (BASE + "params: {fast: [" + ", ".join(map(str, range(1, 400))) + "], slow: [" + ", ".join(map(str, range(400, 800))) + "]}\n", "grid: 159,600 runs; a sweep holds at most 100,000"),
    ],
)
def test_load_grid_when_a_key_or_value_is_wrong_names_the_key_and_what_is_allowed(tmp_path, text, expected):
    # Arrange
    path = tmp_path / "g.yaml"
    path.write_text(text, encoding="utf-8")
    # Act
    with pytest.raises(ConfigError) as exc:
        load_grid(path)
    # Assert
    assert expected in str(exc.value)


def test_load_grid_when_the_file_is_10_mb_refuses_it_unread(tmp_path):
    # Arrange
    path = tmp_path / "g.yaml"
    path.write_bytes(b"# " * (5 << 20))
    # Act / Assert
    with pytest.raises(ConfigError, match="larger than 1,048,576 bytes"):
        load_grid(path)


def test_load_grid_when_yaml_reads_dates_and_on_keeps_them_as_text_and_on(tmp_path):
    # Arrange: bare dates are YAML dates, a bare `on` is YAML's true
    path = tmp_path / "g.yaml"
    path.write_text("name: g\nsymbols: [A/B]\nwindows: [[2026-01-05, 2026-01-06T12:00:00Z]]\ngates: on\n")
    # Act
    grid = load_grid(path)
    # Assert
    assert grid.windows == [["2026-01-05", "2026-01-06T12:00:00Z"]] and grid.gates == "on"
    assert grid.runs == 1 and grid.timeframes == ["1m"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--workers", "0"], "argument --workers: '0' must be a number of processes from 1 to 4096"),
        (["--workers", "2", "--dask", "tcp://127.0.0.1:8786"], "not allowed with argument"),
    ],
)
def test_sweep_cli_when_the_flags_are_wrong_exits_2(tmp_path, capsys, args, expected):
    # Act
    with pytest.raises(SystemExit) as exc:
        main(["--home", str(tmp_path), "sweep", "--grid", "g.yaml", *args])
    # Assert
    assert exc.value.code == 2 and expected in capsys.readouterr().err


def test_sweep_cli_when_the_grid_is_bad_exits_2_naming_the_key_and_runs_nothing(tmp_path, capsys):
    # Arrange
    grid = write_grid(tmp_path, params={"fast": [5, 10, 0]})
    # Act
    code = main(["--home", str(tmp_path), "sweep", "--grid", str(grid)])
    # Assert
    assert code == 2
    assert "params.fast[2]: must be an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "data" / "sweeps").exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_sweep_cli_when_the_grid_has_over_10000_runs_asks_and_a_no_runs_nothing(tmp_path, capsys, monkeypatch):
    # Arrange: 101 x 100 runs, on a terminal that answers no
    grid = write_grid(tmp_path, params={"fast": list(range(1, 102)), "slow": list(range(200, 300))}, windows=[GRID["windows"][0]], costs=[GRID["costs"][0]], symbols=["BTC/USDT"])
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    # Act
    code = main(["--home", str(tmp_path), "sweep", "--grid", str(grid)])
    # Assert
    err = capsys.readouterr().err
    assert code == 2
    assert "about to run 10,100 backtests of sma_cross on synthetic" in err and "--yes: not confirmed" in err
    assert not (tmp_path / "data" / "sweeps").exists()


# --- What a sweep writes -------------------------------------------------------------------------


def test_sweep_when_run_writes_one_row_per_run_sorted_with_the_grid_summary_and_run_columns(reference):
    # Arrange
    folder = reference / "data" / "sweeps" / "ref"
    # Act
    results = pd.read_parquet(folder / "results.parquet")
    # Assert
    head = ["run_id", "symbol", "symbols", "timeframe", "since", "until", "fee", "slippage", "fast", "slow"]
    assert list(results.columns[:10]) == head and set(results["symbols"]) == {1}
    assert list(results.columns[-4:]) == ["config_hash", "trial", "error", "seconds"]
    summary = {"bars", "trades", "final_equity", "return_pct", "sharpe", "max_drawdown_pct", "sortino", "calmar", "psr", "slippage_paid", "blocked"}
    assert summary <= set(results.columns)
    assert not {"gates", "blocks", "guardrail_halt", "slippage_rate"} & set(results.columns)
    assert len(results) == RUNS and results["run_id"].is_unique
    assert list(results["run_id"]) == sorted(results["run_id"])
    assert sorted(os.listdir(folder / "runs")) == sorted(f"{r}.json" for r in results["run_id"])


def test_sweep_when_running_reports_progress_and_rebuilds_the_table_as_runs_finish(reference):
    # Arrange / Act: the reference sweep rebuilt its tables every 0.2 s
    runs, done, failed, rows = zip(*PROGRESS, strict=True)
    # Assert
    assert set(runs) == {RUNS} and done[0] == 0 and done[-1] == RUNS
    assert list(done) == sorted(done) and failed[-1] == REFUSED + NO_BARS
    assert 0 < max(rows[:-1]) < RUNS  # rows appeared in the table while the sweep ran


def test_sweep_when_run_each_row_equals_a_plain_backtest_of_its_config(reference):
    # Arrange: one successful row, and the same backtest run directly
    results = pd.read_parquet(reference / "data" / "sweeps" / "ref" / "results.parquet")
    row = results[(results["error"].isna()) & (results["fast"] == 5) & (results["slow"] == 30) & (results["fee"] == 0.002)].iloc[0]
    overrides = {
        "session.symbol": row["symbol"],
        "session.since": row["since"],
        "session.until": row["until"],
        "session.pace": "fast",
        "session.mode": "paper",
        "strategies.sma_cross.fast": 5,
        "strategies.sma_cross.slow": 30,
        "broker.fee": 0.002,
        "broker.slippage": 0.0005,
    }
    config = load_config(None, overrides, environ={})
    bars = synthetic_bars(row["symbol"], "1m", parse_instant(row["since"]), parse_instant(row["until"]))
    # Act
    expected = run_backtest(config, bars).summary
    # Assert
    assert row["run_id"] == row["config_hash"] == config_hash(config)
    for name in ("bars", "trades", "final_equity", "return_pct", "sharpe", "max_drawdown_pct", "psr", "fees"):
        assert row[name] == expected[name], name
    assert row["slippage_paid"] == expected["slippage"]
    trial = json.loads(row["trial"])
    assert trial["kind"] == "sweep" and trial["config_hash"] == row["run_id"] and trial["sharpe"] == row["sharpe"]


def test_sweep_when_run_records_failures_with_their_error_and_no_figures(reference):
    # Arrange
    results = pd.read_parquet(reference / "data" / "sweeps" / "ref" / "results.parquet")
    # Act
    failed = results[results["error"].notna()]
    refused = failed[failed["config_hash"].isna()]
    no_bars = failed[failed["config_hash"].notna()]
    # Assert
    assert len(refused) == REFUSED and len(no_bars) == NO_BARS
    assert set(refused["error"]) == {f"strategies.sma_cross: slow (4) must be greater than fast ({f})" for f in (5, 8, 13)}
    assert no_bars["error"].str.startswith("session.since: no bars of").all()
    assert failed["sharpe"].isna().all() and failed["trial"].isna().all()


def test_sweep_when_run_appends_one_trial_per_successful_run(reference):
    # Act
    trials = list(read_trials(path=reference / "trials.jsonl"))
    # Assert
    results = pd.read_parquet(reference / "data" / "sweeps" / "ref" / "results.parquet")
    ok = results[results["error"].isna()]
    assert len(trials) == len(ok) and {t["kind"] for t in trials} == {"sweep"}
    assert sorted(t["config_hash"] for t in trials) == sorted(ok["run_id"])


def test_sweep_blocks_when_summed_give_each_runs_returns_and_sharpe_exactly(reference):
    # Arrange
    folder = reference / "data" / "sweeps" / "ref"
    results = pd.read_parquet(folder / "results.parquet").set_index("run_id")
    blocks = pd.read_parquet(folder / "blocks.parquet")
    # Act
    per_run = blocks.groupby("run_id")[["n", "sum", "sumsq"]].sum()
    # Assert: 64 blocks for each successful run and none for a failed one
    assert list(blocks.columns) == ["run_id", "block", "n", "sum", "sumsq"]
    assert set(blocks["run_id"]) == set(results.index[results["error"].isna()])
    assert (blocks.groupby("run_id")["block"].apply(list) == [list(range(BLOCKS))] * len(per_run)).all()
    for run_id, agg in per_run.iterrows():
        row = results.loc[run_id]
        n, mean = agg["n"], agg["sum"] / agg["n"]
        sd = math.sqrt((agg["sumsq"] - n * mean * mean) / (n - 1))
        expected = mean / sd * math.sqrt(row["periods_per_year"]) if sd > 0 else 0.0
        assert n == row["bars"]
        assert expected == pytest.approx(row["sharpe"], rel=1e-6, abs=1e-9)


def test_return_blocks_when_the_returns_do_not_divide_by_64_cuts_blocks_differing_by_one():
    # Arrange
    returns = np.random.default_rng(1).normal(0.0, 0.01, 1000)
    # Act
    blocks = return_blocks(returns)
    # Assert
    assert sorted(set(blocks["n"])) == [15.0, 16.0] and sum(blocks["n"]) == 1000
    assert sum(blocks["sum"]) == pytest.approx(returns.sum())
    assert sum(blocks["sumsq"]) == pytest.approx((returns**2).sum())
    assert return_blocks(equity_returns([10.0, 11.0], 10.0))["n"][:3] == [1.0, 1.0, 0.0]


# --- Resume, refusal, the lock --------------------------------------------------------------------


def test_sweep_when_the_folder_has_runs_and_no_resume_exits_2_saying_how_many(tmp_path, reference, capsys):
    # Arrange: the reference sweep's files under this home
    import shutil

    shutil.copytree(reference / "data", tmp_path / "data")
    # Act
    code = main(["--home", str(tmp_path), "sweep", "--grid", str(write_grid(tmp_path)), "--workers", "1"])
    # Assert
    assert code == 2
    assert f"data/sweeps/ref has {RUNS} finished runs; pass --resume to continue it, or choose another name" in capsys.readouterr().err


def test_sweep_when_resumed_after_it_finished_retries_only_the_failed_runs(tmp_path, reference, capsys):
    # Arrange
    import shutil

    shutil.copytree(reference / "data", tmp_path / "data")
    before = len(list(read_trials()))
    # Act
    code = main(["--home", str(tmp_path), "sweep", "--grid", str(write_grid(tmp_path)), "--workers", "1", "--resume", "--json"])
    # Assert
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["ran"] == REFUSED + NO_BARS and out["skipped"] == RUNS - out["ran"] and out["failed"] == out["ran"]
    assert len(out["failures"]) == min(5, out["failed"]) and all(f["run_id"] and f["error"] for f in out["failures"])
    assert len(list(read_trials())) == before  # every retried run failed again: no new trial
    pd.testing.assert_frame_equal(comparable(tmp_path / "data" / "sweeps" / "ref")[1], comparable(reference / "data" / "sweeps" / "ref")[1])


def test_sweep_when_another_process_holds_the_lock_exits_3_naming_its_pid(tmp_path, capsys):
    # Arrange: the lock held as a running sweep holds it (its pid as the system tells it, not owner.json)
    from filelock import FileLock

    folder = tmp_path / "data" / "sweeps" / "ref"
    folder.mkdir(parents=True)
    (folder / "owner.json").write_text(json.dumps({"pid": 4242}))
    lock = FileLock(folder / "sweep.lock", timeout=0)
    lock.acquire()
    try:
        # Act
        code = main(["--home", str(tmp_path), "sweep", "--grid", str(write_grid(tmp_path)), "--workers", "1"])
    finally:
        lock.release()
    # Assert
    assert code == 3
    assert f"data/sweeps/ref is being swept by another process (pid {os.getpid()})" in capsys.readouterr().err


def test_sweep_cli_when_it_finishes_prints_one_line_with_runs_failures_table_and_top_three(tmp_path, capsys):
    # Arrange: 4 runs, one refused
    grid = write_grid(tmp_path, name="small", params={"fast": [5, 40], "slow": [30, 60]}, symbols=["BTC/USDT"], windows=[GRID["windows"][0]], costs=[GRID["costs"][0]])
    # Act
    code = main(["--home", str(tmp_path), "sweep", "--grid", str(grid), "--workers", "1"])
    # Assert
    captured = capsys.readouterr()
    table = tmp_path / "data" / "sweeps" / "small" / "results.parquet"
    assert code == 0 and captured.err == ""  # no progress bar off a terminal
    line, failure = captured.out.splitlines()
    assert line.startswith("sweep small: 4 runs, 1 failed (below; the table's error column says why; the sweep finished, exit 0)")
    assert str(table) in line and line.count("fast=") == 3 and "top sharpe: " in line
    # The failure itself, not only its count: which run, and why
    run_id = pd.read_parquet(table).set_index("run_id").query("fast == 40 and slow == 30").index[0]
    assert failure.startswith(f"  failed {run_id} (fast=40 slow=30)")
    assert failure.endswith(": strategies.sma_cross: slow (30) must be greater than fast (40)")


def test_sweep_when_the_source_is_cached_fetches_each_market_once_over_its_windows_before_any_run(tmp_path, monkeypatch):
    # Arrange: Yahoo answered from the synthetic market; two touching windows, two runs each
    from labkit.data.cache import cache_path, write_parquet
    from labkit.data.yfinance import YahooSource

    calls = []

    def fetch(self, symbol, timeframe, since_ms, until_ms, refill_gaps=False):
        calls.append((symbol, timeframe, since_ms, until_ms))
        write_parquet(synthetic_bars(symbol, timeframe, since_ms, until_ms), cache_path(self.home, self.spec, symbol, timeframe))
        return {"fetched": 0, "requested": 0, "gaps": 0}

    monkeypatch.setattr(YahooSource, "fetch", fetch)
    windows = [["2026-01-05", "2026-01-06"], ["2026-01-06", "2026-01-07"]]
    grid = write_grid(tmp_path, name="yahoo", source="yfinance", symbols=["SPY"], timeframes=["1h"], windows=windows, params={"fast": [2, 3], "slow": [6]}, costs=[GRID["costs"][0]])
    plan = SweepPlan(load_grid(grid), tmp_path, environ={})
    # Act
    result = run_sweep(plan, workers=1)
    # Assert
    assert calls == [("SPY", "1h", parse_instant("2026-01-05"), parse_instant("2026-01-07"))]
    results = pd.read_parquet(result.table)
    assert len(results) == 4 and results["error"].isna().all() and set(results["bars"]) == {24}
    assert not (plan.folder / "bars").exists()  # the workers read the cache itself


def test_process_pool_when_the_parent_sets_many_threads_gives_each_worker_one(tmp_path, monkeypatch):
    # Arrange
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    # Act
    with open_executor(1, None, tmp_path) as (executor, slots):
        result = executor.submit(os.getenv, "OMP_NUM_THREADS").result()
    # Assert
    assert (result, slots) == ("1", 1)


def test_sweep_worker_when_imported_loads_no_pandas():
    # The pool's initializer sets the thread limits before any heavy library is loaded.
    code = "import sys, labkit.research.sweep.worker; print('pandas' in sys.modules or 'numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.heavy
@pytest.mark.slow
def test_sweep_when_killed_midway_and_resumed_ends_with_the_table_of_an_uninterrupted_sweep(tmp_path, reference):
    # Arrange: a sweep in a child process, killed outright once a few runs are finished
    grid = write_grid(tmp_path)
    runs = tmp_path / "data" / "sweeps" / "ref" / "runs"
    proc = stubs.start_labkit(tmp_path, "sweep", "--grid", str(grid), "--workers", "1")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if runs.is_dir() and len(list(runs.glob("*.json"))) >= 3:
            break
        time.sleep(0.005)
    children = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    finished = len(list(runs.glob("*.json")))
    _, alive = psutil.wait_procs(children, timeout=15)  # the pool's workers notice and exit
    for orphan in alive:
        orphan.kill()
    # Act
    done = stubs.run_labkit(tmp_path, "sweep", "--grid", str(grid), "--workers", "1", "--resume")
    # Assert
    assert 3 <= finished < RUNS, "the sweep was not interrupted midway"
    assert alive == [], "a worker outlived its killed parent"
    assert done.returncode == 0, done.stderr
    assert f"{RUNS} runs (" in done.stdout
    expected = comparable(reference / "data" / "sweeps" / "ref")
    result = comparable(tmp_path / "data" / "sweeps" / "ref")
    pd.testing.assert_frame_equal(result[0], expected[0])
    pd.testing.assert_frame_equal(result[1], expected[1])


@pytest.mark.heavy
@pytest.mark.slow
def test_sweep_when_run_on_a_dask_cluster_gives_the_rows_of_the_process_pool(tmp_path, reference):
    # Arrange: a two-process Dask cluster on this machine
    from distributed import LocalCluster

    plan = SweepPlan(load_grid(write_grid(tmp_path)), tmp_path, environ={})
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        # Act
        result = run_sweep(plan, dask=cluster.scheduler_address)
    # Assert
    assert (result.runs, result.workers) == (RUNS, 2)
    expected = comparable(reference / "data" / "sweeps" / "ref")
    found = comparable(tmp_path / "data" / "sweeps" / "ref")
    pd.testing.assert_frame_equal(found[0], expected[0])
    pd.testing.assert_frame_equal(found[1], expected[1])


def test_sweep_when_the_dask_scheduler_does_not_answer_exits_2(tmp_path, capsys, monkeypatch):
    # Arrange: no scheduler listens on this port; a short connect timeout
    import labkit.research.sweep.runner as runner

    monkeypatch.setattr(runner, "DASK_TIMEOUT", "1s")
    grid = write_grid(tmp_path, name="small", params={"fast": [5], "slow": [30]}, symbols=["BTC/USDT"], windows=[GRID["windows"][0]], costs=[GRID["costs"][0]])
    # Act
    code = main(["--home", str(tmp_path), "sweep", "--grid", str(grid), "--dask", "tcp://127.0.0.1:9"])
    # Assert
    assert code == 2 and "--dask: no Dask scheduler answered at tcp://127.0.0.1:9" in capsys.readouterr().err
