"""Data sources by kind: a spec names a registered kind, with its argument when the kind takes one."""

from __future__ import annotations

import pytest

from labkit.data.registry import check_source_spec, open_source, registered_sources, source_kinds
from labkit.errors import ConfigError


def test_registry_when_listing_gives_builtins_in_order_with_their_argument():
    assert source_kinds()[:5] == ["synthetic", "csv:PATH", "parquet:PATH", "ccxt:EXCHANGE", "yfinance"]
    assert all(cls.describe() for cls in registered_sources().values())


@pytest.mark.parametrize(
    "spec", ["synthetic", "csv:x.csv", "parquet:/a/b.parquet", "ccxt:binance", "yfinance"]
)
def test_check_source_spec_when_known_accepts(spec):
    assert check_source_spec(spec) == spec


@pytest.mark.parametrize("spec", ["synth", "csv:", "binance", "ccxt:", "synthetic:x", "yfinance:SPY", "csv"])
def test_check_source_spec_when_unknown_lists_allowed(spec):
    with pytest.raises(ConfigError, match="allowed: synthetic, csv:PATH, parquet:PATH"):
        check_source_spec(spec)


def test_open_source_when_file_path_is_relative_reads_it_under_the_home(tmp_path):
    (tmp_path / "bars.csv").write_text("ts,open,high,low,close,volume\n1767571200000,1,2,0.5,1.5,3\n")
    source = open_source("csv:bars.csv", tmp_path)
    assert source.spec == "csv:bars.csv" and len(source.bars("X", "1m", 0, 2**62)) == 1
