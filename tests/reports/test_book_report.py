"""The backtest report of a book over a universe: the book's figures, what each symbol did, and its page."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest

from labkit.cli import main
from labkit.config.assembly import build_book_engine
from labkit.config.loading import load_config
from labkit.data.synthetic import universe_bars
from labkit.data.universe import align
from labkit.engine.journal import JournalWriter
from labkit.reports import books
from labkit.reports.backtests import backtest_figures, load_backtest
from labkit.reports.render import render_backtest_report

START = 1767571200000  # 2026-01-05 00:00 UTC
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
BOOK_HEADINGS = ("What each symbol did for the book", "Exposure and heat", "Correlation of the symbols")


def _book_journal(path: Path) -> Path:
    # A day of 1-minute bars of three synthetic symbols, one book deciding them all (all in, sliced).
    universe = align(universe_bars(SYMBOLS, "1m", START, START + 86_400_000))
    writer = JournalWriter(path)
    engine = build_book_engine(
        load_config(None, {}, environ={}), list(universe.symbols), "backtest", journal=writer
    )
    engine.process(universe)
    writer.close()
    return path


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("home")
    return home, _book_journal(home / "book.jsonl")


def test_attribution_when_summed_over_the_symbols_is_the_book_s_return(book):
    # Arrange
    home, journal = book
    bt = load_backtest(journal, home)
    # Act
    table = books.attribution(bt.journal, bt.capital)
    # Assert
    final = float(bt.journal["equity"].iloc[-1])
    assert list(table.index) == SYMBOLS
    assert int(table["trades"].sum()) > 0  # the book traded, so the sum is not trivially 0
    assert abs(table["contribution_pct"].sum() - (final / bt.capital - 1.0) * 100.0) < 1e-9
    assert abs(table["contribution_pct"].sum() - backtest_figures(bt)["return_pct"]) < 1e-9


def test_book_figures_when_read_per_bar_count_bars_not_lines_and_trades_per_symbol(book):
    # Arrange
    home, journal = book
    bt = load_backtest(journal, home)
    # Act
    figures = backtest_figures(bt)
    # Assert
    assert bt.is_book and bt.symbols == SYMBOLS
    assert figures["bars"] == 1440 and figures["decisions"] == 1440 * len(SYMBOLS)
    assert (
        figures["closed_trades"]
        == len(bt.trips())
        == sum(books.attribution(bt.journal, bt.capital)["closed_trades"])
    )
    assert figures["final_equity"] == pytest.approx(float(bt.journal["equity"].iloc[-1]))


def _line(ts: str, symbol: str, price: float | None) -> dict[str, Any]:
    return {
        "ts": pd.Timestamp(ts, tz="UTC"),
        "symbol": symbol,
        "price": price,
        "position": 0.0,
        "equity": 1000.0,
    }


def test_equal_weight_hold_when_the_universe_is_planted_splits_the_capital_at_the_first_closes():
    # Arrange: A doubles, B halves; C has no bar at the first time (its first close is 10)
    journal = pd.DataFrame(
        [
            _line("2026-01-05 00:00", "A", 100.0),
            _line("2026-01-05 00:00", "B", 50.0),
            _line("2026-01-05 00:00", "C", None),
            _line("2026-01-05 00:01", "A", 150.0),
            _line("2026-01-05 00:01", "B", 40.0),
            _line("2026-01-05 00:01", "C", 10.0),
            _line("2026-01-05 00:02", "A", 200.0),
            _line("2026-01-05 00:02", "B", None),  # no bar: held at its latest close, 40
            _line("2026-01-05 00:02", "C", 12.0),
        ]
    )
    # Act
    hold = books.equal_weight_hold(journal, 900.0)
    per_bar = books.book_bars(journal, 900.0)
    # Assert: 300 each: 3 A, 6 B, 30 C
    assert hold.tolist() == pytest.approx([900.0, 3 * 150 + 6 * 40 + 300, 3 * 200 + 6 * 40 + 30 * 12])
    assert per_bar["price"].tolist() == pytest.approx(hold.tolist())
    assert per_bar["symbol"].tolist() == ["C", "C", "C"]  # the last line of each time: the book's


def test_exposure_when_sized_all_in_never_exceeds_the_equity(book):
    # Arrange
    home, journal = book
    bt = load_backtest(journal, home)
    # Act
    table = books.exposure(bt.journal)
    # Assert
    assert len(table) == 1440
    assert table["gross"].max() <= 1.0 + 1e-12
    assert table["gross"].max() > 0.5 and table["held"].max() >= 2  # it did hold several at once


def _in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a report's cells in this process instead of a kernel: each display becomes the output a
    kernel would give (its formats as IPython makes them), so the page is rendered in a second."""
    import IPython.display
    import papermill
    from IPython.core.formatters import DisplayFormatter
    from papermill.iorw import write_ipynb

    import labkit.reports.kernels

    def execute(input_path, output_path, parameters=None, cwd=None, **kwargs):
        nb = nbformat.read(input_path, as_version=4)
        space: dict[str, Any] = {}
        outputs: list[Any] = []
        formatter = DisplayFormatter()

        def display(*objects: Any, metadata: Any = None, **_: Any) -> None:
            for obj in objects:
                data, meta = formatter.format(obj)
                outputs.append(nbformat.v4.new_output("display_data", data=data, metadata=metadata or meta))

        monkeypatch.setattr(IPython.display, "display", display)
        with contextlib.chdir(cwd or "."):
            for cell in nb.cells:
                if cell.cell_type != "code":
                    continue
                outputs.clear()
                printed = io.StringIO()
                with contextlib.redirect_stdout(printed):
                    exec(compile(cell.source, "<cell>", "exec"), space)  # noqa: S102 - the report's own cells
                    if "parameters" in cell.metadata.get("tags", []):
                        space.update(parameters or {})
                if printed.getvalue():
                    outputs.insert(
                        0, nbformat.v4.new_output("stream", name="stdout", text=printed.getvalue())
                    )
                cell.outputs = list(outputs)
        write_ipynb(nb, output_path)
        return nb

    monkeypatch.setattr(labkit.reports.kernels, "start_kernel", lambda *args, **kwargs: None)
    monkeypatch.setattr(papermill, "execute_notebook", execute)


def test_report_backtest_when_the_journal_is_a_book_shows_the_book_sections(book, monkeypatch):
    # Arrange
    home, journal = book
    _in_process(monkeypatch)
    # Act
    result = render_backtest_report(journal, home, load_config(None, {}, environ={}))
    # Assert
    page = result.html.read_text(encoding="utf-8")
    for heading in BOOK_HEADINGS:
        assert heading in page
    assert "a book of 3: BTC/USDT, ETH/USDT, SOL/USDT" in page
    assert "the universe in equal parts" in page
    assert "the chart shows the first, BTC/USDT" in page  # the chart draws the first symbol, and says so
    assert "Traceback" not in page


def test_report_backtest_when_the_journal_is_one_symbol_shows_no_book_section(tmp_path, monkeypatch):
    # Arrange
    journal = tmp_path / "bt.jsonl"
    flags = ["--since", "2026-01-05", "--until", "2026-01-05T12:00", "--journal", str(journal)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--home", str(tmp_path), "backtest", *flags]) == 0
    _in_process(monkeypatch)
    # Act
    result = render_backtest_report(journal, tmp_path, load_config(None, {}, environ={}))
    # Assert
    page = result.html.read_text(encoding="utf-8")
    assert "Every closed trade" in page and "Actions on price" in page  # the page did render
    for heading in (*BOOK_HEADINGS, "a book of", "one book over", "the universe in equal parts"):
        assert heading not in page


def test_book_report_when_its_summary_names_the_source_draws_each_symbols_own_candles(tmp_path):
    # Arrange: the summary beside the journal records the universe, whose synthetic bars differ
    # from each symbol's market alone (a common factor): the chart must read them as the book did.
    from labkit.research.book_backtest import run_book_backtest

    config = load_config(None, {}, environ={"LABKIT_SESSION__SOURCE": "synthetic"})
    bars = universe_bars(SYMBOLS, "1m", START, START + 86_400_000)
    journal = tmp_path / "book.jsonl"
    run_book_backtest(config, bars, journal, tmp_path)
    bt = load_backtest(journal, tmp_path)
    # Act
    candles = {symbol: bt.price_bars(symbol) for symbol in SYMBOLS}
    # Assert
    for symbol, (frame, why) in candles.items():
        assert frame is not None, why
        assert frame["close"].to_numpy() == pytest.approx(bars[symbol]["close"].to_numpy(), rel=1e-12)
    assert 0 < backtest_figures(bt)["exposure_pct"] <= 100.0


def test_heat_when_entries_carry_stops_is_their_stop_risk_and_stays_near_the_limit(tmp_path):
    # Arrange: risk-sized entries with a stop, at most 3% of equity at stop risk.
    env = {
        "LABKIT_RISK__SIZING": "risk",
        "LABKIT_RISK__STOP_ATR": "40",  # wide stops: entries are sized by risk, not by the cash
        "LABKIT_RISK__RISK_PER_TRADE": "0.02",
        "LABKIT_PORTFOLIO__MAX_HEAT": "0.03",
    }
    universe = align(universe_bars(SYMBOLS, "5m", START, START + 2 * 86_400_000))
    path = tmp_path / "book.jsonl"
    writer = JournalWriter(path)
    engine = build_book_engine(
        load_config(None, {}, environ=env), list(universe.symbols), "backtest", journal=writer
    )
    engine.process(universe)
    writer.close()
    bt = load_backtest(path, tmp_path)
    # Act
    table = books.exposure(bt.journal)
    # Assert: some stop risk was open, never much above the limit (equity moves after each entry)
    assert table["heat"].max() > 0.015
    assert table["heat"].max() <= 0.03 * 1.1
    assert (table["heat"] <= table["gross"] + 1e-9).all()  # a stop risks less than the whole position
