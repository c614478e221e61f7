"""The real yfinance client with an injected session that answers Yahoo's chart API locally."""

from __future__ import annotations

import pytest

from labkit.config.loading import load_config
from labkit.data.cache import cache_path, read_parquet
from labkit.data.yfinance import YahooSource
from labkit.errors import ConfigError
from labkit.timeutil import parse_instant
from tests.data.fake_yahoo import fake_session

NOW = parse_instant("2026-03-01")


@pytest.fixture(autouse=True)
def _tz_cache(tmp_path, monkeypatch):
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path / "yf-cache"))


def _source(home, **data):
    session, adapter = fake_session()
    config = load_config(
        None,
        {"data.backoff_base": 0.01, "data.backoff_cap": 0.02, **{f"data.{k}": v for k, v in data.items()}},
        environ={},
    )
    return YahooSource(home, config.data, session=session, clock=lambda: NOW, sleep=lambda s: None), adapter


def _charts(adapter):
    return [path for path in adapter.requests if "/chart/" in path]


def test_yahoo_when_daily_bars_asked_caches_them_and_reuses_the_cache(tmp_path):
    # Arrange
    source, adapter = _source(tmp_path)
    # Act
    bars = source.bars("SPY", "1d", parse_instant("2026-01-05"), parse_instant("2026-02-05"))
    asked = len(_charts(adapter))
    again = source.bars("SPY", "1d", parse_instant("2026-01-05"), parse_instant("2026-02-05"))
    # Assert
    assert len(bars) == 31 and str(bars.index[0]) == "2026-01-05 00:00:00+00:00"
    assert cache_path(tmp_path, "yfinance", "SPY", "1d") == tmp_path / "data/ohlcv/yfinance/SPY~6493341e6b56/1d.parquet"
    assert len(read_parquet(cache_path(tmp_path, "yfinance", "SPY", "1d"))) == 31
    assert len(_charts(adapter)) == asked and len(again) == 31


def test_yahoo_when_chart_api_fails_twice_retries_and_succeeds(tmp_path):
    source, adapter = _source(tmp_path)
    adapter.fail_next = 2
    assert len(source.bars("SPY", "1d", parse_instant("2026-01-05"), parse_instant("2026-01-15"))) == 10


@pytest.mark.parametrize(
    ("timeframe", "since", "message"),
    [
        ("1m", "2026-01-05", "Yahoo serves 1m bars only for the last 30 days"),
        ("5m", "2025-11-01", "Yahoo serves 5m bars only for the last 60 days"),
        ("3m", "2026-02-20", "yfinance serves 1m, 2m, 5m"),
    ],
)
def test_yahoo_when_range_beyond_its_limits_explains_them(tmp_path, timeframe, since, message):
    source, adapter = _source(tmp_path)
    with pytest.raises(ConfigError, match=message):
        source.fetch("SPY", timeframe, parse_instant(since), NOW)
    assert _charts(adapter) == []
