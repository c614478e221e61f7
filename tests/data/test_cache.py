"""The bar cache under ``data/ohlcv/``: one file per exact symbol, old names migrated only when provable."""

from __future__ import annotations

import json

import pytest

from labkit.cli import main
from labkit.config.loading import load_config
from labkit.data.cache import cache_info, cache_path, read_parquet, symbol_folder, write_meta, write_parquet
from labkit.data.synthetic import synthetic_bars
from labkit.data.yfinance import YahooSource
from labkit.errors import ConfigError
from labkit.timeutil import parse_instant
from tests.data.fake_yahoo import fake_session

NOW = parse_instant("2026-03-01")
SINCE, UNTIL = parse_instant("2026-01-05"), parse_instant("2026-02-05")


@pytest.fixture(autouse=True)
def _tz_cache(tmp_path):
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path / "yf-cache"))


def _yahoo(home):
    session, adapter = fake_session()
    config = load_config(None, {"data.backoff_base": 0.01, "data.backoff_cap": 0.02}, environ={})
    return YahooSource(home, config.data, session=session, clock=lambda: NOW, sleep=lambda s: None), adapter


def _charts(adapter):
    return [path for path in adapter.requests if "/chart/" in path]


def _old_file(home, source, folder, timeframe, bars, **meta):
    """Write a cache file where labkit before one-file-per-symbol put it, with its sidecar."""
    path = home / "data" / "ohlcv" / source / folder / f"{timeframe}.parquet"
    path.parent.mkdir(parents=True)
    bars.to_parquet(path)
    covered = [[int(bars.index[0].value // 10**6), int(bars.index[-1].value // 10**6) + 86_400_000]]
    path.with_name(f"{timeframe}.meta.json").write_text(json.dumps({"covered": covered, "gaps": [], **meta}))
    return path


# --- One file per symbol ------------------------------------------------------------------------


def test_cache_path_when_symbols_differ_only_in_separators_gives_each_its_own_readable_file(tmp_path):
    # Act
    paths = {s: cache_path(tmp_path, "ccxt:binance", s, "1m") for s in ("BTC/USDT", "BTC-USDT", "BTC_USDT", "^GSPC", "GSPC")}
    # Assert
    assert len(set(paths.values())) == 5
    for path in paths.values():
        assert path.parent.parent == tmp_path / "data" / "ohlcv" / "ccxt-binance"
        assert path.name == "1m.parquet"
    assert paths["BTC/USDT"].parent.name.startswith("BTC-USDT~")
    assert paths["^GSPC"].parent.name.startswith("GSPC~")
    assert cache_path(tmp_path, "ccxt:binance", "BTC/USDT", "1m") == paths["BTC/USDT"]  # stable


def test_yahoo_when_caret_gspc_and_gspc_are_fetched_caches_them_apart_with_their_own_bars(tmp_path):
    # Arrange
    source, adapter = _yahoo(tmp_path)
    # Act
    index = source.bars("^GSPC", "1d", SINCE, UNTIL)
    plain = source.bars("GSPC", "1d", SINCE, UNTIL)
    asked = _charts(adapter)
    again = source.bars("^GSPC", "1d", SINCE, UNTIL)
    # Assert
    assert len(index) == len(plain) == 31
    assert not index["close"].equals(plain["close"])
    assert again["close"].equals(index["close"])
    assert cache_path(tmp_path, "yfinance", "^GSPC", "1d") != cache_path(tmp_path, "yfinance", "GSPC", "1d")
    assert {path.rsplit("/", 1)[-1] for path in asked} == {"%5EGSPC", "GSPC"}
    assert _charts(adapter) == asked  # the second read of ^GSPC came from its own file


@pytest.mark.parametrize("symbol", ["..", ".", "/", "-", "_", "./..", "~"])
def test_cache_path_when_the_symbol_is_only_dots_or_separators_refuses_it_by_name(tmp_path, symbol):
    # Act
    with pytest.raises(ConfigError) as caught:
        cache_path(tmp_path, "yfinance", symbol, "1d")
    # Assert
    message = str(caught.value)
    assert repr(symbol) in message and "a letter or a digit" in message
    assert not (tmp_path / "data").exists()  # nothing written, least of all outside the cache


def test_data_fetch_when_the_symbol_is_dots_exits_2_naming_it(tmp_path, capsys):
    # Act
    code = main(["--home", str(tmp_path), "data", "fetch", "--source", "yfinance", "--symbol", "..", "--timeframe", "1d", "--since", "2026-01-05", "--until", "2026-01-06"])
    # Assert
    assert code == 2
    err = capsys.readouterr().err
    assert "'..'" in err and "a letter or a digit" in err and "Traceback" not in err
    assert not (tmp_path / "data" / "ohlcv").exists()


def test_cache_path_when_the_folder_records_another_symbol_refuses_to_serve_its_bars(tmp_path):
    # Arrange: the folder of BTC/USDT, labelled as another symbol's (a forged label or a hash collision)
    path = cache_path(tmp_path, "ccxt:binance", "BTC/USDT", "1m")
    (path.parent / "symbol.json").write_text(json.dumps({"symbol": "BTC-USDT"}))
    # Act
    with pytest.raises(ConfigError) as caught:
        cache_path(tmp_path, "ccxt:binance", "BTC/USDT", "1m")
    # Assert
    assert str(path.parent) in str(caught.value) and "'BTC-USDT'" in str(caught.value)


def test_data_info_when_symbols_share_a_spelling_shows_each_exact_symbol_and_filters_by_it(tmp_path, capsys):
    # Arrange
    for symbol in ("BTC/USDT", "BTC-USDT"):
        write_parquet(synthetic_bars(symbol, "1m", SINCE, SINCE + 600_000), cache_path(tmp_path, "ccxt:binance", symbol, "1m"))
    # Act
    entries = cache_info(tmp_path)
    code = main(["--home", str(tmp_path), "data", "info", "--symbol", "BTC/USDT"])
    # Assert
    assert sorted(e["symbol"] for e in entries) == ["BTC-USDT", "BTC/USDT"]
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("ccxt-binance BTC/USDT 1m: 10 bars") and "BTC-USDT" not in out


# --- Old names ----------------------------------------------------------------------------------


def test_cache_when_an_old_file_records_its_symbol_moves_it_to_the_new_name_without_refetching(tmp_path):
    # Arrange: ^GSPC's bars under the old name GSPC, the sidecar saying whose they are
    bars = synthetic_bars("^GSPC", "1d", SINCE, UNTIL)
    old = _old_file(tmp_path, "yfinance", "GSPC", "1d", bars, symbol="^GSPC")
    source, adapter = _yahoo(tmp_path)
    # Act
    got = source.bars("^GSPC", "1d", SINCE, UNTIL)
    # Assert
    new = cache_path(tmp_path, "yfinance", "^GSPC", "1d")
    assert new != old and new.exists() and not old.exists()
    assert got["close"].equals(bars["close"]) and _charts(adapter) == []
    assert json.loads(new.with_name("1d.meta.json").read_text())["covered"]


def test_cache_when_an_old_file_cannot_be_told_whose_it_is_leaves_it_and_refetches(tmp_path, caplog):
    # Arrange: bars of ^GSPC under the old shared name GSPC, with nothing saying whose they are
    wrong = synthetic_bars("^GSPC", "1d", SINCE, UNTIL)
    old = _old_file(tmp_path, "yfinance", "GSPC", "1d", wrong)
    source, adapter = _yahoo(tmp_path)
    # Act
    got = source.bars("GSPC", "1d", SINCE, UNTIL)
    # Assert: GSPC's own bars, fetched; the old file kept as it was
    assert len(got) == 31 and not got["close"].equals(wrong["close"])
    assert old.exists() and read_parquet(old)["close"].equals(wrong["close"])
    assert "left in place" in caplog.text and str(old) in caplog.text


def test_cache_when_an_old_file_records_another_symbol_leaves_it_and_refetches(tmp_path):
    # Arrange
    wrong = synthetic_bars("BTC/USDT", "1d", SINCE, UNTIL)
    old = _old_file(tmp_path, "yfinance", "BTC-USDT", "1d", wrong, symbol="BTC/USDT")
    source, adapter = _yahoo(tmp_path)
    # Act
    got = source.bars("BTC-USDT", "1d", SINCE, UNTIL)
    # Assert
    assert len(got) == 31 and not got["close"].equals(wrong["close"]) and old.exists()


def test_cache_when_both_names_hold_files_keeps_the_new_one_and_leaves_the_old(tmp_path):
    # Arrange
    bars = synthetic_bars("SPY", "1d", SINCE, UNTIL)
    old = _old_file(tmp_path, "yfinance", "SPY", "1d", bars.iloc[:5], symbol="SPY")
    new = tmp_path / "data" / "ohlcv" / "yfinance" / symbol_folder("SPY") / "1d.parquet"
    write_parquet(bars, new)
    write_meta(new, [[SINCE, UNTIL]], [])
    # Act
    again = cache_path(tmp_path, "yfinance", "SPY", "1d")
    # Assert
    assert again == new and len(read_parquet(new)) == 31 and old.exists()


def test_data_info_when_an_old_file_records_no_symbol_says_so_instead_of_guessing(tmp_path, capsys):
    # Arrange
    _old_file(tmp_path, "ccxt-binance", "BTC-USDT", "1m", synthetic_bars("BTC/USDT", "1m", SINCE, SINCE + 600_000))
    # Act
    code = main(["--home", str(tmp_path), "data", "info"])
    # Assert
    assert code == 0
    assert capsys.readouterr().out.startswith("ccxt-binance BTC-USDT (old name, symbol not recorded) 1m: 10 bars")
    assert cache_info(tmp_path)[0]["old_name"] is True
