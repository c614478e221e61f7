"""`labkit report backtest`: a tearsheet from the journal `labkit backtest --journal` wrote."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.reports.backtests import (
    backtest_conclusion,
    backtest_figures,
    backtest_header,
    in_sample_html,
    load_backtest,
)

OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def _labkit(home: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--home", str(home), *args])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def backtest(tmp_path_factory: pytest.TempPathFactory):
    # A real backtest (a week of synthetic 1-minute bars: the guardrails halt it on its last day),
    # its journal written outside the home, then its report.
    home, elsewhere = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("elsewhere")
    journal = elsewhere / "bt.jsonl"
    window = ["--since", "2026-01-01", "--until", "2026-01-08"]
    code, out = _labkit(home, "backtest", *window, "--journal", str(journal), "--json")
    assert code == 0
    summary = json.loads(out)
    code, out = _labkit(home, "report", "backtest", "--journal", str(journal))
    assert code == 0, out
    return home, journal, summary, out


@pytest.mark.slow
def test_report_backtest_when_journal_is_real_renders_the_tearsheet(backtest):
    # Arrange
    home, journal, summary, out = backtest
    # Act
    (page,) = (home / "reports" / "_backtests").glob("backtest-bt-*.html")
    text = page.read_text(encoding="utf-8")
    # Assert
    assert f"backtest report for bt.jsonl (2026-01-01 to 2026-01-07, loss -12.7%): {page}" in out  # its return
    assert "Backtest: sma_cross-10-30 on BTC/USDT 1m" in text
    for section in (
        "Summary",
        "Equity, buy and hold, and underwater",
        "Rolling Sharpe ratio",
        "year (UTC)",  # monthly returns
        "Decisions by blocking stage and reason",
        "Gate ledger",
        "Every closed trade",
        "entry (UTC)",
    ):
        assert section in text, section
    assert text.count("data:image/png;base64") >= 4  # equity, rolling Sharpe, actions, blocks
    assert f"{summary['final_equity']:,.2f} USDT" in text
    assert f"{summary['sharpe']:,.2f}" in text and f"{summary['max_drawdown_pct']:.2f}%" in text
    assert "24/7" in text and "recorded by the backtest: synthetic source" in text
    assert "The guardrails stopped all trading" in text
    assert hashlib.sha256(journal.read_bytes()).hexdigest()[:12] in text
    assert not OUTSIDE.search(text)


@pytest.mark.slow
def test_report_backtest_when_rendered_is_listed_in_the_index_as_backtest(backtest):
    # Arrange
    home, _, _, _ = backtest
    # Act
    index = (home / "reports" / "index.html").read_text(encoding="utf-8")
    (sidecar,) = (home / "reports" / "_backtests").glob("backtest-bt-*.json")
    data = json.loads(sidecar.read_text())
    # Assert
    assert f'href="_backtests/{data["html"]}"' in index
    assert "<td>backtest</td><td>bt.jsonl</td><td>2026-01-01 to 2026-01-07</td>" in index
    assert (
        data["kind"] == "backtest"
        and data["outcome"].split()[0] in ("loss", "gain", "flat")
        and data["ok"] is True
    )
    assert "1 reports" in index


@pytest.mark.slow
def test_report_backtest_when_rendered_names_no_local_path_and_links_to_the_index(backtest):
    # Arrange
    home, journal, _, _ = backtest
    # Act
    (page,) = (home / "reports" / "_backtests").glob("backtest-bt-*.html")
    text = page.read_text(encoding="utf-8")
    # Assert
    assert str(home) not in text and str(journal.parent) not in text
    assert 'href="../index.html"' in text
    assert text.index('href="../index.html"') < text.index("Backtest report")  # at the top


@pytest.mark.slow
def test_backtest_figures_when_read_from_the_journal_equal_the_backtest_json(backtest):
    # Arrange
    _, journal, summary, _ = backtest
    # Act
    figures = backtest_figures(load_backtest(journal))
    # Assert: every figure the backtest printed, recomputed from its journal
    shared = set(summary) & set(figures)
    assert {"sharpe", "sortino", "calmar", "max_drawdown_pct", "profit_factor", "exposure_pct"} <= shared
    assert {"blocks", "guardrail_halt", "buy_hold_return_pct", "hit_rate_pct"} <= shared
    for key in shared:
        if isinstance(summary[key], float):
            assert figures[key] == pytest.approx(summary[key], rel=1e-12, abs=1e-9), key
        else:
            assert figures[key] == summary[key], key
    assert summary["guardrail_halt"] is not None  # the case that must show


def test_load_backtest_when_runs_were_appended_reads_the_last(tmp_path):
    # Arrange: two runs in one file, as `labkit backtest --append` leaves them
    path = tmp_path / "bt.jsonl"
    first = ["--since", "2026-01-01", "--until", "2026-01-01T02:00"]
    second = ["--since", "2026-01-02", "--until", "2026-01-02T01:00", "--append"]
    assert _labkit(tmp_path, "backtest", *first, "--journal", str(path))[0] == 0
    assert _labkit(tmp_path, "backtest", *second, "--journal", str(path))[0] == 0
    # Act
    view = load_backtest(path, tmp_path)
    # Assert
    assert view.runs == 2 and view.first_line == 121 and len(view.journal) == 60
    assert view.period == "2026-01-02 to 2026-01-02" and view.capital == 10_000.0


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b'{"schema":1,"seq":0', "is empty"),  # a torn line only
        (b"hello, world\n", "line 1 is not JSON"),
        (b"\x00\x01\x02binary\n", "line 1 is not JSON"),
        (b'{"kind":"bar","ts":"2026-01-01T00:00:00Z"}\n', "line 1 is not a decision line"),
        (b"[1, 2, 3]\n", "line 1 is not a decision line"),
        ("directory", "is not a file"),
    ],
    ids=["missing", "empty", "torn", "text", "binary", "tape-line", "array", "directory"],
)
def test_report_backtest_when_journal_is_bad_exits_2_naming_journal(tmp_path, capsys, content, words):
    # Arrange
    path = tmp_path / "bt.jsonl"
    if content == "directory":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    # Act
    code = main(["--home", str(tmp_path), "report", "backtest", "--journal", str(path)])
    # Assert
    err = capsys.readouterr().err
    assert code == 2
    assert "labkit report: --journal: " in err and words in err
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["report", "backtest"], "--journal: `labkit report backtest` needs the journal"),
        (["report", "session", "--journal", "x.jsonl"], "--journal: only `labkit report backtest`"),
        (["report", "backtest", "--journal", "x.jsonl", "--week", "2026-W02"], "--week: a backtest report"),
        (["report", "backtest", "--journal", "x.jsonl", "--title", "t" * 201], "--title: at most 200"),
    ],
)
def test_report_when_journal_flags_are_misused_exits_2(tmp_path, capsys, args, words):
    # Arrange
    (tmp_path / "x.jsonl").write_text("")
    # Act
    code = main(["--home", str(tmp_path), *args])
    # Assert
    assert code == 2 and words in capsys.readouterr().err


def _daily_weekday_file(tmp_path: Path) -> Path:
    # A year of daily GOOG-like bars on weekdays only, as an exchange's history reads.
    from labkit.data.synthetic import synthetic_bars
    from labkit.timeutil import parse_instant

    bars = synthetic_bars("GOOG", "1d", parse_instant("2025-01-06"), parse_instant("2026-01-05"))
    bars = bars[bars.index.day_of_week < 5]
    path = tmp_path / "goog_1d.csv"
    frame = bars.reset_index()
    frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.rename(columns={"ts": "timestamp"}).to_csv(path, index=False)
    return path


def test_report_backtest_when_daily_equities_annualises_as_the_backtest_did(tmp_path):
    # Arrange: the case, daily equities (the CLI says 0.9993, the report said 1.2026)
    source = f"csv:{_daily_weekday_file(tmp_path)}"
    journal = tmp_path / "goog.jsonl"
    market = ["--source", source, "--symbol", "GOOG", "--timeframe", "1d", "--calendar", "equities"]
    code, out = _labkit(
        tmp_path, "backtest", *market, "--fast", "5", "--slow", "20", "--journal", str(journal), "--json"
    )
    assert code == 0
    summary = json.loads(out)
    # Act: the report is given no --calendar; the backtest recorded its own
    view = load_backtest(journal, tmp_path)
    figures = backtest_figures(view)
    # Assert
    assert summary["periods_per_year"] == 252 and view.periods_per_year == 252
    assert figures["sharpe"] == pytest.approx(summary["sharpe"], rel=1e-12)
    assert figures["annualisation"] == summary["annualisation"]
    assert view.calendar.kind == "equities" and "recorded by the backtest" in view.calendar.describe()


def test_report_backtest_when_the_summary_beside_the_journal_is_of_another_run_ignores_it(tmp_path):
    # Arrange: a daily equities run, then its journal replaced by another run's lines
    source = f"csv:{_daily_weekday_file(tmp_path)}"
    journal = tmp_path / "goog.jsonl"
    market = ["--source", source, "--symbol", "GOOG", "--timeframe", "1d", "--calendar", "equities"]
    assert _labkit(tmp_path, "backtest", *market, "--journal", str(journal))[0] == 0
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:-10]))
    # Act
    view = load_backtest(journal, tmp_path)
    # Assert: not this run's summary, so the calendar is the assumed one, said so
    assert view.calendar.kind == "24/7" and "assumed" in view.calendar.describe()


@pytest.fixture(scope="module")
def model_journals(tmp_path_factory: pytest.TempPathFactory):
    # A small model of synthetic BTC/USDT 1m trained on 2026-01-05 .. 01-06 (labels 5 bars ahead),
    # backtested with a journal on a day of its training window and on bars after its embargo.
    from labkit.config.loading import load_config
    from labkit.data.synthetic import synthetic_bars
    from labkit.research.training import TrainPlan, train_model
    from labkit.timeutil import parse_instant

    home = tmp_path_factory.mktemp("model-home")
    bars = synthetic_bars("BTC/USDT", "1m", parse_instant("2026-01-05"), parse_instant("2026-01-07"))
    plan = TrainPlan(horizon=5, folds=2, seeds=3, model="logistic")
    model_id = train_model(load_config(None, {}, environ={}), home, bars, plan).model_id
    journals = {}
    for name, since, until in (
        ("inside", "2026-01-06", "2026-01-06T06:00"),
        ("after", "2026-01-07T00:05", "2026-01-07T06:00"),
    ):
        journals[name] = home / f"{name}.jsonl"
        window = ["--since", since, "--until", until, "--strategy", "model", "--model", model_id]
        code, _ = _labkit(home, "backtest", *window, "--journal", str(journals[name]))
        assert code == 0
    return home, model_id, journals


def test_load_backtest_when_the_model_was_trained_on_the_bars_shows_a_banner(model_journals):
    # Arrange
    home, model_id, journals = model_journals
    # Act
    view = load_backtest(journals["inside"], home)
    banner = in_sample_html(view.in_sample)
    header = backtest_header(view, {})
    # Assert
    assert view.in_sample["in_sample_fraction"] == 1.0 and view.in_sample["model"] == model_id
    assert "In sample:" in banner and f"100% of these bars were already seen by model {model_id}" in banner
    assert header.loc["out of sample", "value"].startswith("NO: 100.0% of the bars are inside")
    assert backtest_figures(view)["in_sample_fraction"] == 1.0


def test_load_backtest_when_the_model_runs_after_its_training_shows_no_banner(model_journals):
    # Arrange
    home, _, journals = model_journals
    # Act
    view = load_backtest(journals["after"], home)
    # Assert
    assert view.in_sample["in_sample_fraction"] == 0.0 and in_sample_html(view.in_sample) == ""
    assert backtest_header(view, {}).loc["out of sample", "value"].startswith("yes: every bar is after")


def test_load_backtest_when_the_summary_file_is_gone_measures_the_journal_against_the_home(
    model_journals, tmp_path
):
    # Arrange: a journal without the summary `labkit backtest` keeps beside it
    home, model_id, journals = model_journals
    copy = tmp_path / "inside.jsonl"
    copy.write_bytes(journals["inside"].read_bytes())
    # Act
    view = load_backtest(copy, home)
    # Assert: the model is the home's, so its training window is known all the same
    assert view.in_sample["model"] == model_id and view.in_sample["in_sample_fraction"] == 1.0
    assert "assumed" in view.calendar.describe()


@pytest.mark.slow
def test_report_backtest_when_the_model_was_trained_on_the_bars_says_so_at_the_top(model_journals):
    # Arrange
    home, model_id, journals = model_journals
    # Act
    code, _ = _labkit(home, "report", "backtest", "--journal", str(journals["inside"]))
    # Assert
    assert code == 0
    (page,) = (home / "reports" / "_backtests").glob("backtest-inside-*.html")
    text = page.read_text(encoding="utf-8")
    assert "In sample:" in text and f"already seen by model {model_id}" in text
    assert text.index("In sample:") < text.index("Summary")


# -- an exit filled on its entry's own bar (a line with `fill` and `exit_fill`) ----------------------

_FLAT = (100.0, 101.0, 99.0, 100.0)  # true range 2: with atr_window 2, ATR is 2 from bar 2 on
_LOW = (91.0, 92.0, 90.0, 91.0)  # the same range after the gap
_GAP_DOWN = (100.0, 100.5, 90.0, 91.0)  # opens at the entry's price and trades through its stop


def _scripted(buys: list[int]):
    # A strategy proposing BUY on the bars numbered `buys` (from 2026-01-05 00:00, 1m), else HOLD.
    import numpy as np

    from labkit.data.bars import ts_ms
    from labkit.strategies.base import Signals, Strategy
    from tests import stubs

    class Scripted(Strategy):
        name = "scripted"

        def __init__(self) -> None:
            super().__init__()
            self.model_id, self.warmup = "scripted", 1
            self.buy_at = {stubs.T0 + b * stubs.MINUTE for b in buys}

        def propose(self, bars):
            side = np.array([1 if t in self.buy_at else 0 for t in ts_ms(bars).tolist()], dtype="int8")
            return Signals(side, np.where(side != 0, 1.0, np.nan), np.full(len(side), np.nan))

    return Scripted()


def _entry_bar_exit_backtest(tmp_path: Path, **settings: object) -> tuple[Path, dict]:
    # A backtest whose first entry (decided at bar 3, filled at bar 4's open, 100) is stopped on its
    # own bar by a gap to 90, and whose second (decided at bar 7, filled at bar 8's open, 91, its
    # stop 2 below) is still open at the end. Returns the journal and the run's summary.
    import numpy as np

    from labkit.config.loading import load_config
    from labkit.data.bars import make_bars
    from labkit.engine.journal import JournalWriter
    from labkit.research.backtest import run_backtest
    from tests import stubs

    rows = [_FLAT] * 4 + [_GAP_DOWN] + [_LOW] * 5
    o, h, low, c = (np.array(col, dtype="float64") for col in zip(*rows, strict=True))
    times = stubs.T0 + stubs.MINUTE * np.arange(len(rows), dtype="int64")
    bars = make_bars(times, {"open": o, "high": h, "low": low, "close": c, "volume": np.ones(len(rows))})
    base = {
        "broker.fee": 0.001,
        "broker.slippage": 0.0005,
        "gates.enabled": ["data"],
        "risk.atr_window": 2,
        "risk.stop_atr": 1.0,
    }
    config = load_config(None, {**base, **settings}, environ={})
    path = tmp_path / "bt.jsonl"
    journal = JournalWriter(path)
    result = run_backtest(config, bars, journal, home=tmp_path, strategy=_scripted([3, 7]), trial=False)
    journal.close()
    return path, result.summary


def test_backtest_figures_when_an_entry_is_stopped_on_its_bar_count_the_exit_fill(tmp_path):
    # Arrange
    path, summary = _entry_bar_exit_backtest(tmp_path, **{"risk.position_frac": 0.5})
    view = load_backtest(path, tmp_path)
    assert view.journal["exit_fill_side"].iloc[4] == "SELL"  # the case: two fills on line 4
    # Act
    figures = backtest_figures(view)
    # Assert: the journal's figures are the engine's own
    assert (summary["trades"], summary["fills"], summary["closed_trades"]) == (2, 3, 1)
    for key in ("trades", "fills", "closed_trades", "open_position"):
        assert figures[key] == summary[key], key
    for key in ("fees", "slippage", "hit_rate_pct", "exposure_pct", "avg_trade_pct"):
        assert figures[key] == pytest.approx(summary[key], rel=1e-12), key


def test_open_since_when_an_earlier_entry_was_stopped_on_its_bar_is_the_open_entry(tmp_path):
    # Arrange
    from labkit.reports.backtests import open_since

    path, _ = _entry_bar_exit_backtest(tmp_path)
    journal = load_backtest(path, tmp_path).journal
    # Act
    since = open_since(journal)
    # Assert: the position held at the end was entered at bar 8, not at bar 4 (stopped there)
    assert since == journal["ts"].iloc[8]


def test_paid_rates_when_a_line_has_both_fills_reads_the_entry_share_before_either(tmp_path):
    # Arrange: all in with half the cash, fee 0.1%, slippage 0.05%
    from labkit.reports.backtests import paid_rates

    path, _ = _entry_bar_exit_backtest(tmp_path, **{"risk.position_frac": 0.5})
    journal = load_backtest(path, tmp_path).journal
    # Act
    fee, slippage, share = paid_rates(journal)
    # Assert
    assert fee == pytest.approx(0.001, rel=1e-9) and slippage == pytest.approx(0.0005, rel=1e-9)
    assert share == pytest.approx(0.5, rel=1e-9)


def test_load_backtest_when_a_model_decided_sizes_the_ledger_by_the_run_s_entry_threshold(model_journals):
    # Arrange: the model backtest ran with the default entry threshold; the home's says 0.9
    from labkit.config.loading import load_config

    home, _, journals = model_journals
    entry = load_config(None, {}, environ={}).strategies.model.entry
    view = load_backtest(journals["after"], home)
    # Act
    costs = view.ledger_costs({"strategies": {"model": {"entry": 0.9}}, "risk": {"position_frac": 0.5}})
    # Assert
    assert costs["confidence_floor"] == entry != 0.9
    assert costs["risk"]["position_frac"] == 1.0 and "recorded beside its journal" in costs["sizing_basis"]


# -- the conclusion ------------------------------------------------------------------------------


def _figures(**changes):
    figures = {
        "return_pct": -13.6,
        "buy_hold_return_pct": -12.9,
        "trades": 30,
        "closed_trades": 30,
        "hit_rate_pct": 6.7,
        "sharpe": -4.1,
        "psr": 0.0,
        "open_position": 0.0,
        "guardrail_halt": None,
        "model": None,
        "model_in_sample": None,
        "in_sample_fraction": 0.0,
    }
    figures.update(changes)
    return figures


def test_backtest_conclusion_when_the_run_lost_more_than_holding_says_so_with_its_trades_and_psr():
    # Act
    text = backtest_conclusion(_figures())
    # Assert
    assert "lost 13.6% after costs, against -12.9% for buy and hold" in text
    assert "worse than holding the market" in text
    assert "30 entries" in text and "hit rate 6.7%" in text
    assert "Sharpe ratio is not shown to be above zero (PSR 0.00)" in text
    assert "trained on" not in text


def test_backtest_conclusion_when_the_run_gained_more_than_holding_says_it_beat_it_on_these_bars_only():
    # Act
    text = backtest_conclusion(_figures(return_pct=4.2, buy_hold_return_pct=1.0, sharpe=2.5, psr=0.97))
    # Assert
    assert "gained 4.2% after costs, against 1.0% for buy and hold" in text
    assert "better than holding the market" in text
    assert "above zero with 95% confidence (PSR 0.97)" in text and "these bars" in text


def test_backtest_conclusion_when_it_never_traded_says_there_is_nothing_to_judge():
    # Act
    text = backtest_conclusion(
        _figures(return_pct=0.0, trades=0, closed_trades=0, hit_rate_pct=None, sharpe=None, psr=None)
    )
    # Assert
    assert "never entered a trade" in text and "hit rate" not in text


def test_backtest_conclusion_when_the_model_saw_the_bars_warns_that_the_figures_prove_little():
    # Arrange
    span = {"since": "2026-01-05T00:00:00Z", "until": "2026-01-07T00:05:00Z"}
    # Act
    text = backtest_conclusion(
        _figures(return_pct=9.0, model="m1", model_in_sample=span, in_sample_fraction=0.4)
    )
    # Assert
    assert "In sample: 40% of these bars were already seen by model m1" in text
    assert "no evidence that it works" in text


@pytest.mark.slow
def test_report_backtest_when_rendered_ends_with_its_conclusion(backtest):
    # Arrange
    home, _, summary, _ = backtest
    # Act
    (page,) = (home / "reports" / "_backtests").glob("backtest-bt-*.html")
    text = page.read_text(encoding="utf-8")
    # Assert
    assert text.rindex("Conclusion") > text.rindex("Exits against the signal alone")
    assert backtest_conclusion(summary).split(",")[0] in text


@pytest.mark.slow
def test_backtest_summary_when_the_run_spans_a_week_marks_its_annual_figures_extrapolated(backtest):
    # Arrange: seven days of bars; "CAGR -100%" from them is a projection, not a figure earned
    from labkit.reports.backtests import backtest_summary

    _, journal, _, _ = backtest
    # Act
    table = backtest_summary(load_backtest(journal))["value"]
    # Assert
    for row in ("annual return", "annual volatility", "Sharpe ratio", "Sortino ratio", "Calmar ratio"):
        assert "(extrapolated from 7.0 days)" in table[row], row
    assert "extrapolated" not in table["total return"] and "extrapolated" not in table["max drawdown"]
