from __future__ import annotations

import logging
import re

import pandas as pd
import pytest

from labkit.data.files import read_bar_file
from labkit.data.registry import open_source
from labkit.errors import DataError
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
