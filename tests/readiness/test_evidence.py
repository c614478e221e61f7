"""Beside the weekly gates: the deflated Sharpe ratio with its trials, and the execution models."""

from __future__ import annotations

import json

import pytest

from labkit.analysis.calendar import MarketCalendar
from labkit.cli import main
from labkit.engine.journal import read_journal
from labkit.readiness.evidence import sharpe_evidence
from tests import stubs

WEEK = "2026-W02"


def _session(home):
    stubs.replayed_session(home, "w", "2026-01-05", "2026-01-07", **{"broker.slippage": 0.0005})
    return read_journal(home / "data/sessions/w/decisions.jsonl")


@pytest.fixture(scope="module")
def dossier(tmp_path_factory):
    home = tmp_path_factory.mktemp("dossier")
    with pytest.MonkeyPatch.context() as patch:  # a ledger of its own: no other fixture's trials
        patch.setenv("LABKIT_TRIALS", str(home / "trials.jsonl"))
        return _dossier(home)


def _dossier(home):
    # One session and three backtests of its market, each a trial, one weekly report: the report
    # is what the tests read (a render costs seconds).
    _session(home)
    for fast in (5, 8, 12):
        assert (
            main(
                [
                    "--home",
                    str(home),
                    "backtest",
                    "--since",
                    "2026-01-05",
                    "--until",
                    "2026-01-06",
                    "--fast",
                    str(fast),
                    "--json",
                ]
            )
            == 0
        )
    assert main(["--home", str(home), "report", "weekly", "--session", "w", "--week", WEEK]) in (0, 1)
    verdict = json.loads((home / f"data/sessions/w/readiness/weekly-{WEEK}.json").read_text())
    return home, verdict


def test_weekly_report_when_saved_carries_deflated_sharpe_and_the_three_execution_models(dossier):
    _, verdict = dossier
    evidence, execution = verdict["evidence"], verdict["execution"]
    assert "track_record" in evidence and evidence["deflated_sharpe"] is not None
    assert set(execution) == {"optimistic", "base", "adversarial"}
    assert execution["base"]["outcome"] == verdict["outcome"]  # the verdict is the base model's
    assert (
        execution["adversarial"]["net_pnl"]
        < execution["base"]["net_pnl"]
        <= execution["optimistic"]["net_pnl"]
    )
    assert "2 bar(s) after the decision" in execution["adversarial"]["model"]


def test_trial_ledger_when_backtests_and_the_session_recorded_is_what_the_verdict_counts(dossier):
    _, verdict = dossier
    assert verdict["evidence"]["trials"] == 4  # three sma_cross variants backtested, and the session's


def test_weekly_verdict_when_saved_records_the_hashes_of_what_it_was_computed_from(dossier):
    import hashlib

    home, verdict = dossier
    root = home / "data/sessions/w"
    provenance = verdict["provenance"]
    for name in ("config.json", "tape.jsonl", "decisions.jsonl"):
        assert provenance[name] == hashlib.sha256((root / name).read_bytes()).hexdigest()[:12]
    assert list(provenance["models"]) == ["sma_cross-10-30"]


def test_sharpe_evidence_when_more_trials_were_tried_deflates_more(tmp_path):
    # A positive week: only its days with a gain, so its Sharpe ratio is above zero.
    journal = _session(tmp_path)
    journal = journal.assign(
        equity=10_000.0 * (1.0005 ** (journal.index.to_numpy() % 7 + journal.index.to_numpy() / 50))
    )
    calendar = MarketCalendar()
    one = sharpe_evidence(journal, WEEK, 60_000, calendar, trials=1, sharpe_variance=0.0, capital=10_000.0)
    many = sharpe_evidence(
        journal, WEEK, 60_000, calendar, trials=200, sharpe_variance=1e-4, capital=10_000.0
    )
    assert one["sharpe"] > 0
    assert many["deflated_sharpe"] < one["deflated_sharpe"]
    assert many["trials"] == 200
