"""`labkit train --cross-sectional`: a pooled model that also ranks each symbol across its universe,
and the book that trades it supplying the same ranks at decision time."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from pathlib import Path

import numpy as np
import orjson
import pytest

from labkit.cli import main
from labkit.config.assembly import build_book_engine
from labkit.config.loading import load_config
from labkit.data.synthetic import universe_bars
from labkit.data.universe import align
from labkit.engine.journal import JournalWriter
from labkit.features.cross_section import NAMES, with_ranks

UNIVERSE = "BTC/USDT,ETH/USDT,SOL/USDT"
MARKET = ["--source", "synthetic", "--timeframe", "1m"]
T0 = 1_767_571_200_000  # 2026-01-05
DAY = 86_400_000


def _cli(home: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--home", str(home), *args])
    return code, out.getvalue(), err.getvalue()


def _train(home: Path, *extra: str) -> dict:
    code, out, err = _cli(
        home, "train", *MARKET, "--symbols", UNIVERSE, "--since", "2026-01-05", "--until", "2026-01-06",
        "--horizon", "5", "--folds", "2", "--seeds", "3", "--model", "logistic", "--json", *extra,
    )  # fmt: skip
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    home = tmp_path_factory.mktemp("xs-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABKIT_TRIALS", str(home / "trials.jsonl"))
        return home, _train(home, "--cross-sectional")


def _model_json(home: Path, model_id: str) -> dict:
    return json.loads((home / "data" / "models" / model_id / "model.json").read_text())


def test_train_cross_sectional_records_the_ranks_in_the_schema_and_flags_it(trained) -> None:
    home, result = trained
    schema = _model_json(home, result["model_id"])["features"]
    assert schema["cross_sectional"] is True
    assert list(schema["names"][-2:]) == list(NAMES) and result["features"][-2:] == list(NAMES)


def test_train_without_the_flag_keeps_the_schema_it_always_had(trained, tmp_path) -> None:
    home, result = trained
    plain = _train(tmp_path)
    schema = _model_json(tmp_path, plain["model_id"])["features"]
    ranked = _model_json(home, result["model_id"])["features"]
    assert "cross_sectional" not in schema and not set(NAMES) & set(schema["names"])
    from labkit.features.featureset import FeatureSet

    assert schema["version"] == FeatureSet().schema.version != ranked["version"]


def test_train_cross_sectional_on_one_symbol_exits_2_saying_it_needs_a_universe(tmp_path) -> None:
    code, _, err = _cli(tmp_path, "train", *MARKET, "--symbol", "BTC/USDT", "--cross-sectional")
    assert code == 2 and "--cross-sectional" in err and "universe" in err


def test_a_single_symbol_backtest_of_a_cross_sectional_model_exits_2(trained) -> None:
    home, result = trained
    code, _, err = _cli(
        home, "backtest", *MARKET, "--symbol", "ETH/USDT", "--since", "2026-01-07",
        "--until", "2026-01-07T03:00", "--strategy", "model", "--model", result["model_id"],
    )  # fmt: skip
    assert code == 2, err
    assert "cross-sectional features need a universe" in err


def test_a_book_backtest_of_a_cross_sectional_model_runs_and_names_it(trained, tmp_path) -> None:
    home, result = trained
    journal = tmp_path / "book.jsonl"
    code, out, err = _cli(
        home, "backtest", *MARKET, "--symbols", UNIVERSE, "--since", "2026-01-07",
        "--until", "2026-01-07T06:00", "--strategy", "model", "--model", result["model_id"],
        "--journal", str(journal), "--json",
    )  # fmt: skip
    assert code == 0, err
    lines = [orjson.loads(line) for line in journal.read_bytes().splitlines()]
    assert {line["model"] for line in lines} == {result["model_id"]}
    # Past the warm-up the model gives a probability: the ranks reached it.
    assert any(line["confidence"] is not None for line in lines)


def test_a_cross_sectional_model_on_another_universe_is_refused_by_a_backtest_and_a_session(trained) -> None:
    home, result = trained
    other = "BTC/USDT,ETH/USDT"  # every symbol is one the model knows, but not the same universe
    code, _, err = _cli(
        home, "backtest", *MARKET, "--symbols", other, "--since", "2026-01-07",
        "--until", "2026-01-07T03:00", "--strategy", "model", "--model", result["model_id"],
    )  # fmt: skip
    assert code == 2 and "rank each symbol among BTC/USDT, ETH/USDT, SOL/USDT" in err
    code, _, err = _cli(
        home, "run", "--session", "xs", *MARKET, "--symbols", other, "--pace", "fast", "--since",
        "2026-01-07", "--until", "2026-01-07T03:00", "--strategy", "model", "--model", result["model_id"],
    )  # fmt: skip
    assert code == 2 and "ranks mean something else" in err
    assert not (home / "data" / "sessions" / "xs").exists()  # refused before anything is written
    reordered = "SOL/USDT,BTC/USDT,ETH/USDT"  # the same universe in another order is the same ranks
    code, _, err = _cli(
        home, "backtest", *MARKET, "--symbols", reordered, "--since", "2026-01-07",
        "--until", "2026-01-07T01:00", "--strategy", "model", "--model", result["model_id"],
    )  # fmt: skip
    assert code == 0, err


def _comparable(raw: bytes) -> list[dict]:
    out = []
    for line in raw.splitlines():
        one = orjson.loads(line)
        one.pop("decided_at"), one.pop("correlation_id")
        out.append(one)
    return out


def test_a_book_of_a_cross_sectional_model_decides_the_same_in_pieces_as_in_one_go(trained, tmp_path) -> None:
    home, result = trained
    config = load_config(
        None,
        {
            "session.source": "synthetic",
            "session.timeframe": "1m",
            "session.strategy": "model",
            "strategies.model.model": result["model_id"],
            "strategies.model.entry": 0.51,
            "strategies.model.exit": 0.49,
            "strategies.model.drift_window": 120,
        },
        environ={},
    )
    bars = universe_bars(UNIVERSE.split(","), "1m", T0 + 2 * DAY, T0 + 2 * DAY + DAY // 4)
    eth = bars["ETH/USDT"]
    bars["ETH/USDT"] = eth[(eth.index.minute % 35) != 10]  # missing bars too
    universe = align(bars)
    whole, pieces = tmp_path / "whole.jsonl", tmp_path / "pieces.jsonl"
    writer = JournalWriter(whole)
    one = build_book_engine(config, list(universe.symbols), "backtest", journal=writer, home=home)
    one.process(universe)
    writer.close()
    writer = JournalWriter(pieces)
    many = build_book_engine(config, list(universe.symbols), "backtest", journal=writer, home=home)
    cuts = [0, 1, 2, 61, 62, 100, 173, 174, 300, len(universe)]
    for lo, hi in itertools.pairwise(cuts):
        many.process(universe.rows(lo, hi))
    writer.close()
    lines = _comparable(whole.read_bytes())
    assert _comparable(pieces.read_bytes()) == lines
    assert many.book.legs == one.book.legs
    assert sum(1 for line in lines if line["fill"]) > 0  # it traded: the comparison says something
    # The book handed the model the ranks training computes over the same bars.
    ranked = with_ranks(universe.bars_by_symbol())
    strategy = one.strategies["SOL/USDT"]
    t = len(ranked["SOL/USDT"]) - 1
    expected = strategy.features.compute_last(ranked["SOL/USDT"])
    np.testing.assert_allclose(strategy._matrix[-1], expected, rtol=0, atol=1e-9)
    assert ranked["SOL/USDT"][NAMES[0]].iloc[t] == expected[-2]
