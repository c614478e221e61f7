from __future__ import annotations

import io
import logging
import re

import pandas as pd
import pytest

from labkit.data.files import read_bar_file
from labkit.data.registry import open_source
from labkit.errors import ConfigError, DataError
from tests import stubs

HEADER = "timestamp,open,high,low,close,volume\n"
GOOD = ["2026-01-05T00:00:00Z,10,11,9,10.5,100", "2026-01-05T00:01:00Z,10.5,11,10,10.8,50"]


def _csv(tmp_path, rows, header=HEADER):
    path = tmp_path / "bars.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([GOOD[1], GOOD[0]], "row 3 (2026-01-05T00:00:00+00:00): time goes backwards"),
        ([GOOD[0], GOOD[0]], "row 3 (2026-01-05T00:00:00+00:00): duplicate time"),
        ([GOOD[0], "2026-01-05T00:01:00Z,10.5,11,10,,50"], "row 3 (2026-01-05T00:01:00+00:00): close is NaN"),
        (
            [GOOD[0], "2026-01-05T00:01:00Z,10.5,10.6,10,10.8,50"],
            "row 3 (2026-01-05T00:01:00+00:00): high is below",
        ),
        (
            [GOOD[0], "2026-01-05T00:01:00Z,10.5,11,10.6,10.8,50"],
            "row 3 (2026-01-05T00:01:00+00:00): low is above",
        ),
        (
            [GOOD[0], "2026-01-05T00:01:00Z,10.5,11,10,10.8,-1"],
            "row 3 (2026-01-05T00:01:00+00:00): volume is negative",
        ),
        ([GOOD[0], "yesterday,10.5,11,10,10.8,50"], "row 3: time 'yesterday' cannot be parsed"),
        ([GOOD[0], "2026-01-05T00:01:00Z,10.5,eleven,10,10.8,50"], "row 3: high 'eleven' is not a number"),
    ],
)
def test_read_bar_file_when_a_rule_is_broken_names_row_and_rule(tmp_path, rows, message):
    # Arrange
    path = _csv(tmp_path, rows)
    # Act / Assert
    with pytest.raises(DataError, match=re.escape(message)):
        read_bar_file(path)


def test_read_bar_file_when_columns_missing_names_them(tmp_path):
    path = _csv(tmp_path, ["2026-01-05T00:00:00Z,10,11,9"], header="ts,open,high,low\n")
    with pytest.raises(DataError, match="missing column.*close, volume"):
        read_bar_file(path)


def test_read_bar_file_when_epoch_ms_and_any_case_reads_utc(tmp_path):
    path = _csv(tmp_path, ["1767571200000,10,11,9,10.5,100"], header="Date,OPEN,High,low,Close,Volume\n")
    bars = read_bar_file(path)
    assert str(bars.index[0]) == "2026-01-05 00:00:00+00:00"
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]


def test_read_bar_file_when_times_have_no_zone_reads_utc_and_says_so(tmp_path, caplog):
    path = _csv(tmp_path, ["2026-01-05 00:00:00,10,11,9,10.5,100"])
    with caplog.at_level(logging.WARNING):
        bars = read_bar_file(path)
    assert str(bars.index[0]) == "2026-01-05 00:00:00+00:00"
    assert "no zone" in caplog.text


def test_read_bar_file_when_zone_given_converts_to_utc(tmp_path):
    path = _csv(tmp_path, ["2026-01-05T01:00:00+01:00,10,11,9,10.5,100"])
    assert str(read_bar_file(path).index[0]) == "2026-01-05 00:00:00+00:00"


def test_parquet_source_when_written_by_pandas_reads_the_same_bars(tmp_path):
    bars = read_bar_file(stubs.FIXTURE_CSV)
    bars.to_parquet(tmp_path / "bars.parquet")
    source = open_source(f"parquet:{tmp_path / 'bars.parquet'}", tmp_path)
    result = source.bars("BTC/USDT", "1m", stubs.T0 + 60_000, stubs.T0 + 4 * 60_000)
    pd.testing.assert_frame_equal(result, bars.iloc[1:4])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (HEADER, "no bars; the file has a header and no rows"),
        ("", "the file is empty"),
        (b"\x00\x01\x02binary" * 50, "is binary, not CSV text"),
        (b"PAR1\x00\x00", "is a Parquet file, not CSV"),
        ("open,high,low,close,volume\n10,11,9,10,1\n", "missing column(s) time"),
        (HEADER + "2026-01-05T00:00:00Z,1e400,1e400,9,10,1\n", "row 2: open inf is not a finite number"),
        (HEADER + "2026-01-05T00:00:00Z,10,11,9,10,inf\n", "row 2: volume inf is not a finite number"),
        (HEADER + "12345678901234567890,10,11,9,10,1\n", "row 2: time 12345678901234567890 is outside"),
        (HEADER + "-1767571200000,10,11,9,10,1\n", "row 2: time -1767571200000 is outside"),
        (HEADER + "0001-01-01T00:00:00Z,10,11,9,10,1\n", "row 2: time '0001-01-01T00:00:00Z' is outside"),
        (
            HEADER + "9999-01-01,10,11,9,10,1\n",
            "row 2: time '9999-01-01' is outside 1970-01-01 .. 2200-01-01",
        ),
        (HEADER + "2026-02-30,10,11,9,10,1\n", "row 2: time '2026-02-30' cannot be parsed"),
    ],
)
def test_read_bar_file_when_hostile_names_the_file_and_the_row(tmp_path, content, message):
    path = tmp_path / "bars.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=re.escape(message)) as exc:
        read_bar_file(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [GOOD[0], "2026-01-05 00:01:00,10.5,11,10,10.8,50"],
            "row 3: time '2026-01-05 00:01:00' has no zone but row 2 has one",
        ),
        (
            ["2026-01-05 00:00:00,10,11,9,10.5,100", "2026-01-05T00:01:00+01:00,10.5,11,10,10.8,50"],
            "row 3: time '2026-01-05T00:01:00+01:00' has a zone but row 2 has none",
        ),
    ],
)
def test_read_bar_file_when_zoned_and_naive_times_mix_names_the_row(tmp_path, rows, message):
    with pytest.raises(DataError, match=re.escape(message)):
        read_bar_file(_csv(tmp_path, rows))


def test_read_bar_file_when_offsets_differ_converts_each_to_utc(tmp_path):
    rows = ["2026-01-05T01:00:00+01:00,10,11,9,10.5,100", "2026-01-04T19:01:00-05:00,10.5,11,10,10.8,50"]
    bars = read_bar_file(_csv(tmp_path, rows))
    assert [str(t) for t in bars.index] == ["2026-01-05 00:00:00+00:00", "2026-01-05 00:01:00+00:00"]


def test_read_bar_file_when_parquet_times_are_zoned_keeps_them_in_utc(tmp_path):
    frame = read_bar_file(stubs.FIXTURE_CSV).iloc[:2].reset_index()
    frame["ts"] = frame["ts"].dt.tz_convert("Europe/Paris")
    frame.to_parquet(tmp_path / "bars.parquet")
    assert str(read_bar_file(tmp_path / "bars.parquet").index[0]) == "2026-01-05 00:00:00+00:00"


def test_read_bar_file_when_a_parquet_file_is_text_says_so(tmp_path):
    path = tmp_path / "bars.parquet"
    path.write_text(HEADER + GOOD[0])
    with pytest.raises(DataError, match=re.escape(f"{path}: cannot be read as Parquet")):
        read_bar_file(path)


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_file_source_when_given_a_folder_reads_each_symbols_own_file_and_names_a_missing_one(tmp_path, kind):
    # A folder holds a file per symbol, named with - for /: the universe's bars, one file each.
    (tmp_path / "bars").mkdir()
    good = pd.read_csv(io.StringIO(HEADER + "\n".join(GOOD) + "\n"))
    write = {"csv": lambda f, p: f.to_csv(p, index=False), "parquet": lambda f, p: f.to_parquet(p)}[kind]
    write(good, tmp_path / "bars" / f"BTC-USDT.{kind}")
    source = open_source(f"{kind}:{tmp_path / 'bars'}", tmp_path)
    assert len(source.bars("BTC/USDT", "1m", stubs.T0, stubs.T0 + 120_000)) == 2
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'bars' / f'ETH-USDT.{kind}'}: no such file")):
        source.universe_bars(["BTC/USDT", "ETH/USDT"], "1m", stubs.T0, stubs.T0 + 120_000)


def test_file_source_when_a_pattern_names_the_symbol_reads_each_symbols_file(tmp_path):
    for name in ("BTC-USDT", "ETH-USDT"):
        (tmp_path / f"{name}.csv").write_text(HEADER + "\n".join(GOOD) + "\n")
    source = open_source("csv:{symbol}.csv", tmp_path)
    bars = source.universe_bars(["BTC/USDT", "ETH/USDT"], "1m", stubs.T0, stubs.T0 + 120_000)
    assert [len(b) for b in bars.values()] == [2, 2]


def test_one_bar_file_for_a_universe_is_refused_saying_how_to_give_one_per_symbol(tmp_path):
    (tmp_path / "b.csv").write_text(HEADER + "\n".join(GOOD) + "\n")
    source = open_source("csv:b.csv", tmp_path)
    with pytest.raises(ConfigError, match=r"one market's bars; for a universe give a folder"):
        source.universe_bars(["BTC/USDT", "ETH/USDT"], "1m", stubs.T0, stubs.T0 + 120_000)


def test_file_source_when_missing_is_refused_on_open_before_any_read(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        open_source("csv:nowhere.csv", tmp_path)


def test_file_source_when_the_path_has_dots_reads_it(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b.csv").write_text(HEADER + "\n".join(GOOD) + "\n")
    source = open_source(f"csv:{tmp_path}/a/../b.csv", tmp_path / "a")
    assert len(source.bars("BTC/USDT", "1m", stubs.T0, stubs.T0 + 120_000)) == 2


def _minute_file(tmp_path, n=600, start="2026-01-05", freq="1min", gap_after=None):
    # Minute bars (a sine wave), optionally with a weekend-long gap after `gap_after` bars.
    times = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    if gap_after is not None:
        times = times[:gap_after].append(times[gap_after:] + pd.Timedelta(days=2))
    close = 100.0 + pd.Series(range(n), dtype=float).map(lambda i: (i % 17) / 10).to_numpy()
    frame = pd.DataFrame(
        {"open": close, "high": close + 0.5, "low": close - 0.5, "close": close, "volume": 1.0},
        index=pd.DatetimeIndex(times, name="timestamp"),
    )
    path = tmp_path / "minutes.csv"
    frame.to_csv(path)
    return path


@pytest.mark.parametrize("timeframe", ["5m", "1h", "30s"])
def test_file_source_when_bars_are_spaced_other_than_the_timeframe_refuses_naming_both(tmp_path, timeframe):
    # Arrange: a file of 1m bars read as another timeframe (a 1m file run as 5m read coverage 142.9%)
    from labkit.errors import ConfigError

    source = open_source(f"csv:{_minute_file(tmp_path)}", tmp_path)
    # Act / Assert
    message = f"the file's bars are 1m apart (most of them); --timeframe is {timeframe}"
    with pytest.raises(ConfigError, match=re.escape(message)):
        source.bars("BTC/USDT", timeframe, stubs.T0, stubs.T0 + 3_600_000)


def test_file_source_when_the_file_has_gaps_judges_its_spacing_by_the_most_common(tmp_path):
    # Arrange: 1m bars with a two-day gap in the middle (a weekend): still 1m bars
    source = open_source(f"csv:{_minute_file(tmp_path, gap_after=300)}", tmp_path)
    # Act
    bars = source.bars("BTC/USDT", "1m", 0, 2**62)
    # Assert
    assert len(bars) == 600


def test_file_source_when_a_thin_market_skips_minutes_reads_its_1m_bars(tmp_path):
    # Arrange: a minute with no trade has no bar; gaps of 1, 1, 2, 3, 4 minutes: the median is 2m,
    # yet these are 1m bars
    minutes = [m for m in range(3300) if m % 11 in (0, 1, 2, 4, 7)]
    times = pd.Timestamp("2026-01-05", tz="UTC") + pd.to_timedelta(minutes, unit="min")
    frame = pd.DataFrame(
        {"open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0},
        index=pd.DatetimeIndex(times, name="timestamp"),
    )
    frame.to_csv(tmp_path / "thin.csv")
    source = open_source(f"csv:{tmp_path / 'thin.csv'}", tmp_path)
    # Act
    bars = source.bars("X", "1m", 0, 2**62)
    # Assert
    assert len(bars) == len(minutes)


def test_file_source_when_spacing_differs_only_outside_the_range_asked_still_refuses(tmp_path):
    # Arrange: the whole file decides, not the slice a run reads (one bar of it has no spacing)
    from labkit.errors import ConfigError

    source = open_source(f"csv:{_minute_file(tmp_path)}", tmp_path)
    # Act / Assert
    with pytest.raises(ConfigError, match=re.escape("--timeframe is 5m")):
        source.bars("BTC/USDT", "5m", stubs.T0, stubs.T0 + 60_000)


@pytest.mark.parametrize("command", ["backtest", "train", "run"])
def test_cli_when_a_1m_file_is_run_as_5m_exits_2_naming_both(tmp_path, capsys, command):
    # Arrange
    from labkit.cli import main

    path = _minute_file(tmp_path)
    extra = ["--session", "s", "--pace", "fast", "--since", "2026-01-05"] if command == "run" else []
    # Act
    code = main(["--home", str(tmp_path), command, "--source", f"csv:{path}", "--timeframe", "5m", *extra])
    # Assert
    err = capsys.readouterr().err
    assert code == 2 and "bars are 1m apart (most of them); --timeframe is 5m" in err
    assert not (tmp_path / "data" / "sessions" / "s").exists()


def test_cli_sweep_when_a_1m_file_is_swept_as_5m_exits_2_naming_both(tmp_path, capsys):
    # Arrange: a grid over a 1m bar file whose timeframe says 5m
    import yaml

    from labkit.cli import main

    grid = {"name": "g", "source": f"csv:{_minute_file(tmp_path)}", "strategy": "sma_cross",
            "params": {"fast": [3], "slow": [5]}, "symbols": ["BTC/USDT"], "timeframes": ["5m"],
            "windows": [["2026-01-05", "2026-01-06"]]}  # fmt: skip
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid), encoding="utf-8")
    # Act
    code = main(["--home", str(tmp_path), "sweep", "--grid", str(path), "--yes"])
    # Assert
    assert code == 2 and "bars are 1m apart (most of them); --timeframe is 5m" in capsys.readouterr().err
