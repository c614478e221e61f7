"""The interactive price chart of the backtest and session pages, and the one plotly.js they share."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labkit.cli import main
from labkit.reports.assets import link_assets, plotly_asset_name
from labkit.reports.backtests import load_backtest
from labkit.reports.price_chart import ASSET, candles, journal_chart, price_chart

OUTSIDE = re.compile(r"""<(?:script|link)\b[^>]*(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def _bars(n: int, start: str = "2026-01-05", seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    open_ = close + rng.normal(0, 0.5, n)
    high = np.maximum(open_, close) + rng.uniform(0, 2, n)
    low = np.minimum(open_, close) - rng.uniform(0, 2, n)
    index = pd.date_range(start, periods=n, freq="1min", tz="UTC")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close}, index=index)


def _journal(bars: pd.DataFrame, model: str = "sma_cross-3-5") -> pd.DataFrame:
    # Decision lines at every bar's close; a BUY entry on bar 10, a stop-loss SELL exit on bar 20.
    fills: list[object] = [None] * len(bars)
    fills[10] = {"side": "BUY", "units": 2.0, "price": 101.25, "pnl": None, "reason": "signal"}
    fills[20] = {"side": "SELL", "units": 2.0, "price": 99.5, "pnl": -3.5, "reason": "stop_loss"}
    return pd.DataFrame(
        {
            "ts": bars.index,
            "price": bars["close"].to_numpy(),
            "fill": fills,
            "model": model,
            "confidence": np.linspace(0.4, 0.9, len(bars)),
        }
    )


def _trace(fig, prefix: str):
    (trace,) = [t for t in fig.data if (t.name or "").startswith(prefix)]
    return trace


def _ms(times) -> list[float]:
    return [float(t.value // 1_000_000) for t in times]


def test_candles_when_bars_exceed_the_limit_keep_extremes_and_first_open_last_close():
    # Arrange
    bars = _bars(12_001)
    # Act
    drawn = candles(bars, "1m")
    # Assert
    assert drawn.factor == 3 and len(drawn.bars) == 4_001 and len(drawn.bars) <= 5_000
    assert drawn.words == "3-minute candles from 1-minute bars"
    groups = [bars.iloc[i : i + 3] for i in range(0, len(bars), 3)]
    assert list(drawn.bars.index) == [g.index[0] for g in groups]
    assert np.array_equal(drawn.bars["open"], [g["open"].iloc[0] for g in groups])
    assert np.array_equal(drawn.bars["close"], [g["close"].iloc[-1] for g in groups])
    assert np.array_equal(drawn.bars["high"], [g["high"].max() for g in groups])
    assert np.array_equal(drawn.bars["low"], [g["low"].min() for g in groups])
    assert drawn.bars["high"].max() == bars["high"].max() and drawn.bars["low"].min() == bars["low"].min()


def test_candles_when_bars_are_few_draws_each_bar():
    bars = _bars(300)
    drawn = candles(bars, "1m")
    assert drawn.factor == 1 and drawn.words == "1-minute candles"
    assert drawn.bars.equals(bars[["open", "high", "low", "close"]])


def test_price_chart_when_fills_were_made_marks_each_at_its_time_and_fill_price():
    # Arrange
    bars = _bars(60)
    journal = _journal(bars)
    # Act
    fig = price_chart(bars, journal, timeframe="1m")
    # Assert
    entry, exit_ = _trace(fig, "BUY entry"), _trace(fig, "SELL exit")
    assert list(entry.x) == _ms([bars.index[10]]) and list(entry.y) == [101.25]
    assert list(exit_.x) == _ms([bars.index[20]]) and list(exit_.y) == [99.5]
    assert entry.marker.symbol == "triangle-up" and exit_.marker.symbol == "triangle-down"
    assert (
        "stop_loss" in exit_.text[0] and "units 2" in exit_.text[0] and "2026-01-05 00:20:00" in exit_.text[0]
    )
    assert fig.layout.dragmode == "pan" and "1-minute candles" in fig.layout.title.text


def test_price_chart_when_the_strategy_is_an_sma_cross_draws_its_rolling_means_of_every_bar():
    # Arrange: 12,000 bars are drawn as 3-minute candles; the means are of the 1-minute closes.
    bars = _bars(12_000)
    journal = _journal(bars, model="sma_cross-10-30")
    # Act
    fig = price_chart(bars, journal, timeframe="1m")
    # Assert
    fast, slow = _trace(fig, "SMA 10"), _trace(fig, "SMA 30")
    shown = bars.index[::3]
    for trace, window in ((fast, 10), (slow, 30)):
        expected = bars["close"].rolling(window).mean().loc[shown].to_numpy()
        assert list(trace.x) == _ms(shown)
        np.testing.assert_allclose(np.asarray(trace.y, dtype=float), expected, equal_nan=True)
    assert len(fig.data[0].x) == 4_000  # the candles
    assert not [t for t in fig.data if t.name == "confidence"]


def test_price_chart_when_a_model_decided_adds_its_confidence_in_a_second_row():
    bars = _bars(60)
    fig = price_chart(bars, _journal(bars, model="model:xgb-1"), timeframe="1m")
    trace = _trace(fig, "confidence")
    assert trace.yaxis == "y2" and list(trace.y) == pytest.approx(np.linspace(0.4, 0.9, 60))
    assert not [t for t in fig.data if (t.name or "").startswith("SMA")]


def test_journal_chart_when_the_bars_are_missing_draws_the_closes_and_says_why():
    # Arrange
    bars = _bars(60)
    journal = _journal(bars)
    # Act
    chart = journal_chart(None, "the bar file is gone", journal, "1m")
    bundle = chart._repr_mimebundle_()
    # Assert
    assert chart.caption.startswith("No candles: the bar file is gone.")
    assert "the journal's closes: the bar file is gone" in chart.figure.layout.title.text
    (line,) = [t for t in chart.figure.data if t.name == "close"]
    assert list(line.y) == pytest.approx(bars["close"].to_list())
    assert "No candles: the bar file is gone." in bundle["text/html"]
    assert f'<script src="{ASSET}"></script>' in bundle["text/html"]
    assert bundle["application/vnd.plotly.v1+json"]["data"]


def test_link_assets_when_a_page_has_a_chart_points_it_at_one_shared_copy(tmp_path):
    # Arrange
    reports = tmp_path / "reports"
    page = f'<script src="{ASSET}"></script><div>chart</div>'
    # Act
    first = link_assets(page, reports)
    copy = reports / "_assets" / plotly_asset_name()
    written = copy.stat().st_mtime_ns
    second = link_assets(page, reports)
    # Assert
    assert first == second == f'<script src="../_assets/{plotly_asset_name()}"></script><div>chart</div>'
    assert copy.read_bytes().startswith(b"/**") and copy.stat().st_size > 1_000_000
    assert copy.stat().st_mtime_ns == written  # present: not copied again
    assert [p.name for p in copy.parent.iterdir()] == [copy.name]  # no temporary file left
    assert link_assets("<p>no chart</p>", tmp_path / "other") == "<p>no chart</p>"
    assert not (tmp_path / "other").exists()


def _labkit(home: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--home", str(home), *args])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory):
    # A day of synthetic 1-minute bars backtested, and its report rendered.
    home = tmp_path_factory.mktemp("home")
    journal = home / "bt.jsonl"
    code, out = _labkit(
        home, "backtest", "--since", "2026-01-05", "--until", "2026-01-06", "--journal", str(journal)
    )
    assert code == 0, out
    code, out = _labkit(home, "report", "backtest", "--journal", str(journal))
    assert code == 0, out
    (page,) = (home / "reports" / "_backtests").glob("*.html")
    return home, journal, page.read_text(encoding="utf-8")


@pytest.mark.slow
def test_report_backtest_when_rendered_draws_the_chart_with_the_shared_local_plotly(rendered):
    # Arrange
    home, _, text = rendered
    # Act
    linked = re.findall(r'<script src="\.\./_assets/(plotly-[^"]+\.min\.js)"', text)
    # Assert
    assert linked == [plotly_asset_name()]
    assert (home / "reports" / "_assets" / linked[0]).is_file()
    assert "Price and trades (interactive)" in text and "1-minute candles" in text
    assert "Candles of BTC/USDT 1m bars read again from synthetic" in text
    assert ASSET not in text and not OUTSIDE.search(text)
    assert len(text) < 2_000_000  # the script is beside the page, not in it
    assert "_assets" not in (home / "reports" / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_backtest_summary_when_saved_records_where_its_bars_came_from(rendered):
    # Arrange
    _, journal, _ = rendered
    # Act
    summary = json.loads(journal.with_name("bt.jsonl.summary.json").read_text())
    bars, where = load_backtest(journal, journal.parent).price_bars()
    # Assert
    assert (summary["source"], summary["symbol"], summary["timeframe"]) == ("synthetic", "BTC/USDT", "1m")
    assert bars is not None and len(bars) == 1_440 and where == "BTC/USDT 1m bars read again from synthetic"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"source": None}, "no source was recorded beside this journal"),
        ({"seed": 8}, "the bars synthetic gives now differ from the closes this journal recorded"),
        ({"source": "csv:gone.csv"}, "the bars of csv:gone.csv could not be read again"),
    ],
)
def test_backtest_price_bars_when_the_bars_cannot_be_had_again_says_why(rendered, tmp_path, change, words):
    # Arrange: a copy of the journal whose summary no longer leads to its bars.
    _, journal, _ = rendered
    copy = tmp_path / "bt.jsonl"
    shutil.copyfile(journal, copy)
    summary = json.loads(journal.with_name("bt.jsonl.summary.json").read_text())
    summary.update(change)
    copy.with_name("bt.jsonl.summary.json").write_text(json.dumps(summary))
    # Act
    view = load_backtest(copy, tmp_path)
    bars, where = view.price_bars()
    chart = journal_chart(bars, where, view.journal, view.timeframe)
    # Assert
    assert bars is None and words in where
    assert chart.caption.startswith(f"No candles: {where}")
