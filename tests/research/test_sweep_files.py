"""A sweep's files: one bar file per exact symbol, and run files damaged on disk met on --resume."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import orjson
import pandas as pd
import pytest
import yaml

from labkit.cli import main
from labkit.config.loading import load_config
from labkit.data.synthetic import synthetic_bars
from labkit.research.backtest import run_backtest
from labkit.research.sweep.grid import load_grid
from labkit.research.sweep.plan import SweepPlan
from labkit.research.sweep.runner import run_sweep
from labkit.research.sweep.store import BLOCKS, SweepStore
from labkit.timeutil import parse_instant

WINDOW = ["2026-01-05", "2026-01-06"]
GRID = {
    "name": "pairs",
    "source": "synthetic",
    "strategy": "sma_cross",
    "params": {"fast": [5], "slow": [30]},
    "symbols": ["BTC/USDT", "BTC-USDT"],
    "timeframes": ["1m"],
    "windows": [WINDOW],
    "costs": [{"fee": 0.001, "slippage": 0.0}],
}


def write_grid(folder: Path, **changes: object) -> Path:
    path = folder / "grid.yaml"
    path.write_text(yaml.safe_dump({**GRID, **changes}, sort_keys=False), encoding="utf-8")
    return path


def sweep(home: Path, *flags: str) -> int:
    return main(["--home", str(home), "sweep", "--grid", str(write_grid(home)), "--workers", "1", *flags])


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-symbol grid swept once; its home."""
    home = tmp_path_factory.mktemp("pairs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABKIT_TRIALS", str(home / "trials.jsonl"))
        run_sweep(SweepPlan(load_grid(write_grid(home)), home, environ={}), workers=1)
    return home


def _expected_sharpe(symbol: str) -> float:
    overrides = {
        "session.symbol": symbol,
        "session.since": WINDOW[0],
        "session.until": WINDOW[1],
        "session.pace": "fast",
        "session.mode": "paper",
        "strategies.sma_cross.fast": 5,
        "strategies.sma_cross.slow": 30,
        "broker.fee": 0.001,
        "broker.slippage": 0.0,
    }
    bars = synthetic_bars(symbol, "1m", parse_instant(WINDOW[0]), parse_instant(WINDOW[1]))
    return float(run_backtest(load_config(None, overrides, environ={}), bars).summary["sharpe"])


# --- One bar file per symbol ----------------------------------------------------------------------


def test_sweep_when_two_symbols_share_a_spelling_gives_each_its_own_bars_and_sharpe(swept):
    # Act
    results = pd.read_parquet(swept / "data" / "sweeps" / "pairs" / "results.parquet").set_index("symbol")
    # Assert
    assert results["error"].isna().all()
    assert results.loc["BTC/USDT", "sharpe"] == _expected_sharpe("BTC/USDT")
    assert results.loc["BTC-USDT", "sharpe"] == _expected_sharpe("BTC-USDT")
    assert results.loc["BTC/USDT", "sharpe"] != results.loc["BTC-USDT", "sharpe"]
    assert len(list((swept / "data" / "sweeps" / "pairs" / "bars").glob("*/1m.parquet"))) == 2


@pytest.mark.parametrize("symbol", ["..", ".", "/"])
def test_sweep_when_a_symbol_is_only_dots_or_separators_exits_2_naming_it_and_writes_nothing(tmp_path, capsys, symbol):
    # Arrange
    grid = write_grid(tmp_path, symbols=["BTC/USDT", symbol])
    # Act
    code = main(["--home", str(tmp_path), "sweep", "--grid", str(grid), "--workers", "1"])
    # Assert
    assert code == 2
    err = capsys.readouterr().err
    assert "symbols[1]:" in err and "a letter or a digit" in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()


def test_sweep_plan_when_asked_for_the_bars_of_dots_refuses_them(tmp_path):
    # Arrange: a plan of a valid grid, asked directly for a path no grid may hold
    from labkit.errors import ConfigError

    plan = SweepPlan(load_grid(write_grid(tmp_path)), tmp_path, environ={})
    # Act / Assert
    with pytest.raises(ConfigError, match="a letter or a digit"):
        plan.bars_path("..", "1m")


# --- Damaged run files on --resume -----------------------------------------------------------------


def _good_blocks() -> dict[str, list[float]]:
    return {"n": [1.0] * BLOCKS, "sum": [0.0] * BLOCKS, "sumsq": [0.0] * BLOCKS}


DAMAGE = {
    "blocks_missing_a_column": lambda d: {**d, "blocks": {"n": d["blocks"]["n"], "sum": d["blocks"]["sum"]}},
    "blocks_too_short": lambda d: {**d, "blocks": {k: v[:10] for k, v in d["blocks"].items()}},
    "blocks_a_list": lambda d: {**d, "blocks": [1, 2, 3]},
    "blocks_of_text": lambda d: {**d, "blocks": {k: ["x"] * BLOCKS for k in ("n", "sum", "sumsq")}},
    "blocks_ragged": lambda d: {**d, "blocks": {**d["blocks"], "sum": d["blocks"]["sum"][:-1]}},
    "blocks_missing_on_success": lambda d: {**d, "blocks": None},
    "row_a_list": lambda d: {**d, "row": [d["row"]]},
    "row_sharpe_text": lambda d: {**d, "row": {**d["row"], "sharpe": "high"}},
    "row_nested_value": lambda d: {**d, "row": {**d["row"], "bars": {"n": 1}}},
    "row_bars_a_flag": lambda d: {**d, "row": {**d["row"], "bars": True}},
    "row_error_a_number": lambda d: {**d, "row": {**d["row"], "error": 5}},
    "no_row": lambda d: {"blocks": d["blocks"]},
    "not_a_mapping": lambda d: [d],
}
DAMAGE_AND_NONE = {**DAMAGE, "no_damage": lambda d: d}


def _damaged_copy(swept: Path, home: Path, damage: str) -> tuple[Path, Path]:
    """Copy the finished sweep under `home` and damage its first run file; return it and the other."""
    import shutil

    shutil.copytree(swept / "data", home / "data")
    damaged, good = sorted((home / "data" / "sweeps" / "pairs" / "runs").glob("*.json"))
    damaged.write_text(json.dumps(DAMAGE_AND_NONE[damage](orjson.loads(damaged.read_bytes()))))
    return damaged, good


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_sweep_store_when_a_run_file_is_malformed_skips_it_with_a_warning_naming_it(tmp_path, swept, caplog, damage):
    # Arrange
    from labkit.research.sweep.paths import sweep_paths

    damaged, good = _damaged_copy(swept, tmp_path, damage)
    store = SweepStore(sweep_paths(tmp_path, "pairs"))
    # Act
    with caplog.at_level(logging.WARNING, logger="labkit"):
        count = store.load()
        store.write_tables()
    # Assert: the good run kept, the damaged one to run again, the tables whole
    assert count == 1 and set(store.rows) == {good.stem}
    assert f"{damaged}: not a finished run (" in caplog.text and "it runs again" in caplog.text
    assert len(pd.read_parquet(store.results_path)) == 1 and len(pd.read_parquet(store.blocks_path)) == BLOCKS


@pytest.mark.slow
def test_sweep_resume_when_a_run_file_has_malformed_blocks_runs_it_again_and_ends_with_the_sweeps_table(tmp_path, swept, capsys, caplog):
    # Arrange: one run's blocks of unequal lengths (np.stack raised a traceback here)
    damaged, _ = _damaged_copy(swept, tmp_path, "blocks_ragged")
    expected = pd.read_parquet(swept / "data" / "sweeps" / "pairs" / "results.parquet").drop(columns=["seconds", "trial"])
    # Act
    with caplog.at_level(logging.WARNING, logger="labkit"):
        code = sweep(tmp_path, "--resume", "--json")
    # Assert
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["ran"] == 1 and str(damaged) in caplog.text
    results = pd.read_parquet(tmp_path / "data" / "sweeps" / "pairs" / "results.parquet").drop(columns=["seconds", "trial"])
    pd.testing.assert_frame_equal(results, expected)
    assert orjson.loads(damaged.read_bytes())["blocks"]["sum"] == orjson.loads((swept / "data" / "sweeps" / "pairs" / "runs" / damaged.name).read_bytes())["blocks"]["sum"]


def test_sweep_resume_when_a_run_file_holds_another_runs_grid_values_runs_it_again(tmp_path, swept, caplog):
    # Arrange: a whole, well-formed file whose fee is not its run's
    from labkit.research.sweep.paths import sweep_paths

    damaged, _ = _damaged_copy(swept, tmp_path, "no_damage")
    data = orjson.loads(damaged.read_bytes())
    damaged.write_bytes(orjson.dumps({**data, "row": {**data["row"], "fee": 0.5}}))
    plan = SweepPlan(load_grid(write_grid(tmp_path)), tmp_path, environ={})
    store = SweepStore(sweep_paths(tmp_path, "pairs"))
    store.load()
    # Act
    with caplog.at_level(logging.WARNING, logger="labkit"):
        done = {run.run_id: store.ok(run.run_id, run.key) for run in plan.runs()}
    # Assert
    assert done[damaged.stem] is False and sum(done.values()) == 1
    assert f"{damaged}: not a finished run (fee is 0.5, where the grid's run has 0.001)" in caplog.text
    assert damaged.stem not in store.rows


def test_sweep_store_when_a_run_file_is_not_utf8_or_a_folder_skips_it(tmp_path, caplog):
    # Arrange
    from labkit.research.sweep.paths import sweep_paths

    store = SweepStore(sweep_paths(tmp_path, "s"))
    store.runs_dir.mkdir(parents=True)
    (store.runs_dir / "a.json").write_bytes(b"\xff\xfe{")
    (store.runs_dir / "b.json").mkdir()
    # Act
    with caplog.at_level(logging.WARNING, logger="labkit"):
        count = store.load()
    # Assert
    assert count == 0 and caplog.text.count("runs again") == 2


def test_sweep_store_when_blocks_are_well_formed_keeps_them(tmp_path):
    # Arrange
    from labkit.research.sweep.paths import sweep_paths

    store = SweepStore(sweep_paths(tmp_path, "s"))
    store.save({"run_id": "r1", "symbol": "A/B", "sharpe": 1.5, "error": None}, _good_blocks())
    # Act
    count = SweepStore(store.paths).load()
    # Assert
    assert count == 1
