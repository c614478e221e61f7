"""ccxt's real binance class against a local stand-in of Binance's public API on 127.0.0.1."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from labkit.config.loading import load_config
from labkit.data.cache import cache_path, read_meta, read_parquet
from labkit.data.ccxt import CcxtSource
from labkit.data.synthetic import synthetic_bars
from labkit.errors import ConfigError, SourceUnavailableError
from labkit.timeutil import parse_instant
from tests import stubs
from tests.data.fake_binance import FakeBinance

T0 = parse_instant("2026-01-05")
MIN = 60_000


@pytest.fixture
def exchange():
    fake = FakeBinance(now_ms=T0 + 20_000 * MIN).start()
    yield fake
    fake.close()


def _source(home, fake, sleeps=None, **data):
    settings = {"backoff_base": 0.01, "backoff_cap": 0.05, **data}
    config = load_config(None, {f"data.{k}": v for k, v in settings.items()}, environ={})
    sleep = sleeps.append if sleeps is not None else (lambda s: None)
    return CcxtSource(
        "binance", home, fake.ccxt_config(timeout_ms=500), config.data, sleep=sleep, progress=False
    )


def _klines(fake):
    return [r for r in fake.requests if r["path"].endswith("/klines")]


def test_fetch_when_range_is_new_caches_validated_bars_page_by_page(tmp_path, exchange):
    # Arrange
    source = _source(tmp_path, exchange, page_limit=500)
    # Act
    stats = source.fetch("BTC/USDT", "1m", T0, T0 + 1_200 * MIN)
    # Assert
    path = cache_path(tmp_path, "ccxt:binance", "BTC/USDT", "1m")
    assert path == tmp_path / "data/ohlcv/ccxt-binance/BTC-USDT~4d7eaaf19e71/1m.parquet"  # BTC/USDT alone
    bars = read_parquet(path)
    expected = synthetic_bars("BTC/USDT", "1m", T0, T0 + 1_200 * MIN)
    assert (stats["fetched"], stats["requested"]) == (1_200, 3)
    np.testing.assert_allclose(bars["close"].to_numpy(), expected["close"].to_numpy(), rtol=1e-8)
    assert [int(r["limit"]) for r in _klines(exchange)] == [500, 500, 500]


def test_fetch_when_asked_again_requests_only_what_is_missing(tmp_path, exchange):
    source = _source(tmp_path, exchange)
    source.fetch("BTC/USDT", "1m", T0, T0 + 600 * MIN)
    before = len(_klines(exchange))
    source.fetch("BTC/USDT", "1m", T0, T0 + 600 * MIN)
    assert len(_klines(exchange)) == before
    source.fetch("BTC/USDT", "1m", T0 + 300 * MIN, T0 + 900 * MIN)
    new = _klines(exchange)[before:]
    assert [int(r["startTime"]) for r in new] == [T0 + 600 * MIN]
    assert len(read_parquet(cache_path(tmp_path, "ccxt:binance", "BTC/USDT", "1m"))) == 900


@pytest.mark.parametrize(
    "fault", [{"kind": "500"}, {"kind": "malformed"}, {"kind": "empty"}, {"kind": "slow", "seconds": 1.0}]
)
def test_fetch_when_five_transient_failures_in_a_row_still_succeeds(tmp_path, exchange, fault):
    # Arrange: five failures, then the exchange answers
    exchange.faults.extend([fault] * 5)
    # Act
    stats = _source(tmp_path, exchange).fetch("BTC/USDT", "1m", T0, T0 + 100 * MIN)
    # Assert
    assert stats["fetched"] == 100 and stats["gaps"] == 0


def test_fetch_when_rate_limited_waits_at_least_retry_after(tmp_path, exchange):
    exchange.faults.append({"kind": "429", "retry_after": 2})
    sleeps: list[float] = []
    _source(tmp_path, exchange, sleeps=sleeps, backoff_cap=5).fetch("BTC/USDT", "1m", T0, T0 + 10 * MIN)
    assert sleeps and sleeps[0] >= 2.0


def test_fetch_when_retries_run_out_keeps_what_was_fetched_and_exits_4(tmp_path, exchange):
    # Arrange: two pages answer, then the exchange fails for good
    (tmp_path / "labkit.yaml").write_text(
        yaml.safe_dump(
            {
                "exchanges": {"binance": exchange.ccxt_config(timeout_ms=500)},
                "data": {"backoff_base": 0.01, "backoff_cap": 0.02, "page_limit": 100},
            }
        )
    )
    original = exchange.klines
    calls = {"n": 0}

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] > 1:
            exchange.down = True
        return original(*args)

    exchange.klines = flaky  # type: ignore[method-assign]
    # Act
    proc = stubs.run_labkit(
        tmp_path,
        "data",
        "fetch",
        "--source",
        "ccxt:binance",
        "--symbol",
        "BTC/USDT",
        "--timeframe",
        "1m",
        "--since",
        "2026-01-05",
        "--until",
        "2026-01-05T05:00",
        timeout=60,
    )
    # Assert
    assert proc.returncode == 4, proc.stderr
    assert "still failing after 6 tries" in proc.stderr
    assert len(read_parquet(cache_path(tmp_path, "ccxt:binance", "BTC/USDT", "1m"))) == 200
    assert "bar/s" not in proc.stderr  # no progress bar when not on a terminal


def test_fetch_when_exchange_lacks_bars_remembers_the_gap_until_told_to_refill(tmp_path, exchange):
    # Arrange: bars 100..109 do not exist, and the page after 300 stays empty
    exchange.missing.append((T0 + 100 * MIN, T0 + 110 * MIN))
    exchange.missing.append((T0 + 300 * MIN, T0 + 400 * MIN))
    source = _source(tmp_path, exchange, page_limit=100)
    # Act
    stats = source.fetch("BTC/USDT", "1m", T0, T0 + 500 * MIN)
    before = len(_klines(exchange))
    source.fetch("BTC/USDT", "1m", T0, T0 + 500 * MIN)
    again = len(_klines(exchange))
    exchange.missing.clear()
    source.fetch("BTC/USDT", "1m", T0, T0 + 500 * MIN, refill_gaps=True)
    # Assert
    meta = read_meta(cache_path(tmp_path, "ccxt:binance", "BTC/USDT", "1m"))
    assert stats["gaps"] == 2 and again == before
    assert len(read_parquet(cache_path(tmp_path, "ccxt:binance", "BTC/USDT", "1m"))) == 500
    assert meta["covered"] == [[T0, T0 + 500 * MIN]]


@pytest.mark.parametrize(("symbol", "message"), [("NOPE/USDT", "BadSymbol")])
def test_fetch_when_request_is_refused_raises_config_error_without_retry(tmp_path, exchange, symbol, message):
    with pytest.raises(ConfigError, match=message):
        _source(tmp_path, exchange).fetch(symbol, "1m", T0, T0 + 10 * MIN)
    assert _klines(exchange) == []


def test_breaker_when_source_keeps_failing_opens_and_stops_asking(tmp_path, exchange):
    # Arrange
    exchange.down = True
    source = _source(tmp_path, exchange, retries=2, breaker_threshold=2, breaker_cooldown=60)
    # Act
    for _ in range(2):
        with pytest.raises(SourceUnavailableError):
            source.fetch("BTC/USDT", "1m", T0, T0 + 10 * MIN)
    asked = len(_klines(exchange))
    with pytest.raises(SourceUnavailableError, match="circuit open"):
        source.fetch("BTC/USDT", "1m", T0, T0 + 10 * MIN)
    # Assert
    assert len(_klines(exchange)) == asked
    source.breaker.opened_at = -1e9  # the cool-down has passed: one probe goes through and closes it
    exchange.down = False
    assert source.fetch("BTC/USDT", "1m", T0, T0 + 10 * MIN)["fetched"] == 10
    assert not source.breaker.is_open


def test_exchange_keys_when_configured_reach_no_private_endpoint_and_no_file(tmp_path, exchange):
    # Arrange
    options = {**exchange.ccxt_config(), "apiKey": "abcdefKEY1234", "secret": "s3cr3tXYZ9876"}
    (tmp_path / "labkit.yaml").write_text(yaml.safe_dump({"exchanges": {"binance": options}}))
    # Act
    code = stubs.run_labkit(
        tmp_path,
        "run",
        "--source",
        "ccxt:binance",
        "--pace",
        "fast",
        "--since",
        "2026-01-05",
        "--until",
        "2026-01-05T02:00",
        "--session",
        "keys",
        timeout=60,
    )
    # Assert
    assert code.returncode == 0, code.stderr
    assert {r["path"] for r in exchange.requests} == {"/api/v3/exchangeInfo", "/api/v3/klines"}
    written = "".join(
        p.read_text(errors="ignore")
        for p in (tmp_path / "data").rglob("*")
        if p.is_file() and p.suffix in (".json", ".jsonl")
    )
    assert "abcdefKEY1234" not in written and "s3cr3tXYZ9876" not in written and "****1234" in written
    assert json.loads((tmp_path / "data/sessions/keys/heartbeat.json").read_text())["status"] == "stopped"


@pytest.mark.slow
@pytest.mark.heavy
def test_live_session_when_exchange_goes_down_holds_each_bar_and_catches_up(tmp_path):
    # Arrange: a paper session on 1-second bars from the local exchange, which then fails for ~4 s
    import time

    fake = FakeBinance().start()
    try:
        (tmp_path / "labkit.yaml").write_text(
            yaml.safe_dump(
                {
                    "exchanges": {"binance": fake.ccxt_config(timeout_ms=300)},
                    "data": {
                        "live_retries": 1,
                        "breaker_threshold": 1,
                        "breaker_cooldown": 1.5,
                        "backoff_base": 0.01,
                    },
                }
            )
        )
        proc = stubs.start_labkit(
            tmp_path,
            "run",
            "--source",
            "ccxt:binance",
            "--timeframe",
            "1s",
            "--interval",
            "1",
            "--session",
            "live",
        )
        journal = tmp_path / "data/sessions/live/decisions.jsonl"

        def lines():
            return [json.loads(x) for x in journal.read_text().splitlines()] if journal.exists() else []

        def wait_for(predicate, timeout=30.0):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not predicate():
                time.sleep(0.1)
            assert predicate()

        wait_for(lambda: len(lines()) >= 3)
        # Act
        fake.down = True
        wait_for(lambda: sum(x["rejection_reason"] == "data_unavailable" for x in lines()) >= 3)
        fake.down = False
        outage_end = len(lines())
        wait_for(lambda: any(x["rejection_reason"] != "data_unavailable" for x in lines()[outage_end:]))
        proc.send_signal(2)
        _, err = proc.communicate(timeout=30)
        # Assert: still running through the outage, one line per bar, in order, no bar skipped
        assert proc.returncode == 0, err
        result = lines()
        stamps = [parse_instant(x["ts"]) for x in result]
        assert [x["seq"] for x in result] == list(range(len(result)))
        assert np.all(np.diff(stamps) == 1000)
        held = [x for x in result if x["rejection_reason"] == "data_unavailable"]
        assert len(held) >= 3 and all(x["gate_trace"]["stage"] == "data" for x in held)
        assert "data_unavailable" in err or "held as data_unavailable" in err
        replay = stubs.run_labkit(tmp_path, "replay", "--session", "live", timeout=60)
        assert replay.returncode == 0, replay.stdout + replay.stderr
    finally:
        fake.close()
