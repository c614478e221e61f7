from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from labkit.cli import main

FIVE = "BTC/USDT,ETH/USDT,SOL/USDT,ADA/USDT,XRP/USDT"
RANGE = ["--timeframe", "1m", "--since", "2026-01-05", "--until", "2026-01-06"]


def _backtest(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code = main(["--home", str(home), "backtest", *RANGE, *args, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def _lines(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_book_backtest_when_five_symbols_summarises_each_and_journals_one_seq(tmp_path, capsys):
    # Arrange
    journal = tmp_path / "book.jsonl"
    # Act
    summary = _backtest(tmp_path, capsys, "--symbols", FIVE, "--journal", str(journal))
    # Assert
    symbols = FIVE.split(",")
    assert list(summary["symbols"]) == symbols and summary["universe"] == symbols
    assert all(row["bars"] == 1440 for row in summary["symbols"].values())
    lines = _lines(journal)
    assert [line["seq"] for line in lines] == list(range(len(lines))) == list(range(5 * 1440))
    assert {line["symbol"] for line in lines} == set(symbols)
    saved = json.loads((tmp_path / "book.jsonl.summary.json").read_text())
    assert saved["symbols"] == symbols and saved["source"] == "synthetic" and saved["seed"] == 7


def test_book_backtest_when_max_open_positions_is_2_never_holds_more(tmp_path, capsys, monkeypatch):
    # Arrange
    monkeypatch.setenv("LABKIT_PORTFOLIO__MAX_OPEN_POSITIONS", "2")
    journal = tmp_path / "book.jsonl"
    # Act
    summary = _backtest(tmp_path, capsys, "--symbols", FIVE, "--journal", str(journal))
    # Assert
    held: dict[str, int] = {}
    for line in _lines(journal):
        held[line["ts"]] = held.get(line["ts"], 0) + (line["position"] > 0)
    assert max(held.values()) == 2  # the limit is reached, and never passed
    assert summary["portfolio"]["max_open_positions"] == 2


def test_book_backtest_when_summed_symbols_net_pnl_is_the_books(tmp_path, capsys):
    # Act
    summary = _backtest(tmp_path, capsys, "--symbols", FIVE, "--max-bars", "720")
    # Assert
    net = sum(row["net_pnl"] for row in summary["symbols"].values())
    assert summary["trades"] > 0
    assert net == pytest.approx(summary["final_equity"] - 10_000.0, abs=1e-6)
    contribution = sum(row["contribution_pct"] for row in summary["symbols"].values())
    assert contribution == pytest.approx(summary["return_pct"], abs=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbols", "BTC/USDT,ETH/USDT,BTC/USDT"], "--symbols: BTC/USDT is listed twice"),
        (["--symbols", "BTC/USDT,,ETH/USDT"], "--symbols: give symbols separated by commas"),
        (["--symbols", "BTC/USDT,SPY"], "--symbols: 'SPY' is not a pair"),
        (["--symbols", "BTC/USDT,ETH/USDT", "--symbol", "BTC/USDT"], "--symbols: give it or --symbol"),
        (["--universe", "majors"], "--universe: 'majors' is not a universe of labkit.yaml; known: none"),
    ],
)
def test_book_backtest_when_symbols_are_bad_exits_2_naming_the_flag(tmp_path, capsys, args, message):
    # Act
    code = main(["--home", str(tmp_path), "backtest", *RANGE, *args])
    # Assert
    assert code == 2
    assert message in capsys.readouterr().err


def test_book_backtest_when_universe_is_in_labkit_yaml_runs_it(tmp_path, capsys):
    # Arrange
    (tmp_path / "labkit.yaml").write_text("universes:\n  majors: [ETH/USDT, BTC/USDT]\n  one: [ETH/USDT]\n")
    # Act
    book = _backtest(tmp_path, capsys, "--universe", "majors", "--max-bars", "600")
    alone = _backtest(tmp_path, capsys, "--universe", "one", "--max-bars", "600")
    single = _backtest(tmp_path, capsys, "--symbol", "ETH/USDT", "--max-bars", "600")
    code = main(["--home", str(tmp_path), "backtest", *RANGE, "--universe", "minors"])
    # Assert
    assert list(book["symbols"]) == ["ETH/USDT", "BTC/USDT"]
    assert "symbols" not in alone and alone["final_equity"] == single["final_equity"]
    assert code == 2 and "known: majors, one" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("universes:\n  majors: []\n", "list at least one symbol"),
        ("universes:\n  majors: [BTC/USDT, BTC/USDT]\n", "BTC/USDT listed twice"),
        ("universes:\n  ../up: [BTC/USDT]\n", "use letters, digits"),
    ],
)
def test_universes_when_invalid_in_labkit_yaml_exits_2(tmp_path, capsys, text, message):
    # Arrange
    (tmp_path / "labkit.yaml").write_text(text)
    # Act
    code = main(["--home", str(tmp_path), "backtest", *RANGE, "--symbols", "BTC/USDT,ETH/USDT"])
    # Assert
    assert code == 2
    err = capsys.readouterr().err
    assert "universes" in err and message in err


def test_book_backtest_when_portfolio_limits_differ_counts_another_trial(tmp_path, capsys, monkeypatch):
    # Act
    first = _backtest(tmp_path, capsys, "--symbols", "BTC/USDT,ETH/USDT", "--max-bars", "300")
    again = _backtest(tmp_path, capsys, "--symbols", "BTC/USDT,ETH/USDT", "--max-bars", "300")
    monkeypatch.setenv("LABKIT_PORTFOLIO__MAX_OPEN_POSITIONS", "1")
    limited = _backtest(tmp_path, capsys, "--symbols", "BTC/USDT,ETH/USDT", "--max-bars", "300")
    # Assert: a rerun tries nothing new; other limits are another variant of the book
    assert (first["trials"], again["trials"], limited["trials"]) == (1, 1, 2)


def test_book_backtest_when_text_prints_a_row_per_symbol(tmp_path, capsys):
    # Act
    code = main(["--home", str(tmp_path), "backtest", *RANGE, "--symbols", "BTC/USDT,ETH/USDT"])
    # Assert
    out = capsys.readouterr().out
    assert code == 0
    assert "on a book of 2 symbols 1m (synthetic)" in out
    rows = out.split("top block\n", 1)[1].splitlines()
    assert [row.split()[0] for row in rows] == ["BTC/USDT", "ETH/USDT"]
