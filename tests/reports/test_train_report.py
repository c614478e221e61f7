"""`labkit report train` and the research notebooks, on a tiny model trained once for the module.

The model learns two days of synthetic minute bars with small members (a couple of seconds); the
notebooks then run for real (papermill), so these are the slow tests of the file.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from labkit.cli import main
from labkit.config.loading import load_config
from labkit.reports import daily, research, sessions
from labkit.reports.index import write_index
from labkit.reports.render import notebooks_dir, render_report
from labkit.research.training import TrainPlan, train_model
from labkit.research.trials import read_trials
from tests import stubs

OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)
PLAN = TrainPlan(
    horizon=5,
    folds=2,
    seeds=3,
    member_params={
        "xgboost": {"n_estimators": 20, "max_depth": 2},
        "forest": {"max_iter": 20, "max_depth": 2},
    },
)


def _labkit(home: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--home", str(home), *args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    # Two days of synthetic BTC/USDT minute bars (2,880), the source and seed the reports load again.
    home = tmp_path_factory.mktemp("home")
    config = load_config(None, {}, environ={})
    bars = research.load_bars(home, "synthetic", "BTC/USDT", "1m", "2026-01-05", "2026-01-07", config)
    return home, train_model(config, home, bars, PLAN).model_id


@pytest.fixture(scope="module")
def train_page(trained: tuple[Path, str]) -> tuple[Path, str, str]:
    home, model_id = trained
    code, out, err = _labkit(home, "report", "train", "--model", model_id)
    assert code == 0, err
    return home, model_id, out


@pytest.mark.slow
def test_report_train_when_model_exists_writes_the_page_sidecar_and_notebook(train_page):
    # Arrange
    home, model_id, out = train_page
    folder = home / "reports" / "_models"
    meta = json.loads((home / "data" / "models" / model_id / "model.json").read_text())
    # Act
    page = (folder / f"train-{model_id}.html").read_text(encoding="utf-8")
    sidecar = json.loads((folder / f"train-{model_id}.json").read_text())
    # Assert
    outcome = f"AUC {meta['auc_mean']:.2f} ± {meta['auc_std']:.2f}"
    assert f"train report for model {model_id} (2026-01-05 to 2026-01-06, {outcome}): " in out
    assert (folder / f"train-{model_id}.ipynb").is_file()
    assert sidecar["kind"] == "train" and sidecar["ok"] and sidecar["outcome"] == outcome
    assert sidecar["parameters"] == {"home": ".", "model": model_id, "symbol": "BTC/USDT", "timeframe": "1m"}
    for section in (
        "Why these figures are honest",
        "Walk-forward folds",
        "majority accuracy",
        "Calibration",
        "Feature importance",
        "XGBoost gain share",
        "permutation AUC drop",
        "Out-of-sample equity",
        "buy and hold",
        "sma_cross-10-30",
    ):
        assert section in page, section
    assert f"Out-of-sample AUC {meta['auc_mean']:.3f} ± {meta['auc_std']:.3f}" in page
    assert page.count('src="data:image/png;base64') == 3  # calibration, importance, equity
    assert "equity" in page and "USDT" in page and "(UTC)" in page
    assert "REPORT FAILED" not in page and "differ from the bars" not in page
    assert str(home) not in page and not OUTSIDE.search(page)


@pytest.mark.slow
def test_report_train_when_rendered_is_listed_in_the_index_with_its_auc(train_page):
    # Arrange
    home, model_id, _ = train_page
    # Act
    index = (home / "reports" / "index.html").read_text(encoding="utf-8")
    # Assert
    assert f'href="_models/train-{model_id}.html"' in index
    assert re.search(
        rf"<td>train</td><td>{model_id}</td><td>2026-01-05 to 2026-01-06</td>"
        r'<td class="figure">AUC \d\.\d\d ± \d\.\d\d</td>',
        index,
    )


def test_report_train_when_model_is_missing_exits_2_naming_it(trained):
    # Arrange
    home, model_id = trained
    # Act
    code, _, err = _labkit(home, "report", "train", "--model", "ens-000000000000")
    # Assert
    assert code == 2
    assert "model ens-000000000000: unknown" in err and model_id in err  # the known ones are listed


def test_report_train_when_no_model_is_trained_exits_2(tmp_path):
    code, _, err = _labkit(tmp_path, "report", "train")
    assert code == 2 and "model latest: no model" in err and "labkit train" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("report", "daily", "--model", "latest"), "--model: only `labkit report train` takes it"),
        (("report", "train", "--date", "2026-01-05"), "--date: a train report covers one model"),
        (("report", "train", "--journal", "bt.jsonl"), "--journal: a train report covers one model"),
    ],
)
def test_report_when_flags_do_not_fit_the_kind_exits_2(tmp_path, args, message):
    code, _, err = _labkit(tmp_path, *args)
    assert code == 2 and message in err


def test_write_index_when_a_models_folder_is_gone_leaves_its_train_report_out(tmp_path):
    # Arrange: two train reports, one of a model still saved, one of a model deleted since
    folder = tmp_path / "reports" / "_models"
    folder.mkdir(parents=True)
    for model_id in ("ens-aaaaaaaaaaaa", "ens-bbbbbbbbbbbb"):
        (folder / f"train-{model_id}.html").write_text("<html></html>")
        sidecar = {
            "kind": "train",
            "session": model_id,
            "period": "2026-01-05 to 2026-01-06",
            "ok": True,
            "outcome": "AUC 0.53 ± 0.01",
            "generated_at": "2026-03-01T10:00:00.000Z",
            "html": f"train-{model_id}.html",
        }
        (folder / f"train-{model_id}.json").write_text(json.dumps(sidecar))
    (tmp_path / "data" / "models" / "ens-aaaaaaaaaaaa").mkdir(parents=True)
    (tmp_path / "data" / "models" / "ens-aaaaaaaaaaaa" / "model.json").write_text("{}")
    # Act
    page = write_index(tmp_path).read_text(encoding="utf-8")
    # Assert
    assert re.findall(r'href="([^"]+)"', page) == ["_models/train-ens-aaaaaaaaaaaa.html"]
    assert '<td class="figure">AUC 0.53 ± 0.01</td>' in page


def test_calibration_table_when_probabilities_are_calibrated_lies_on_the_diagonal():
    # Arrange: labels drawn with exactly the predicted probability
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20_000)
    oos = pd.DataFrame({"label": (rng.uniform(0, 1, len(p)) < p).astype(float), "probability": p})
    # Act
    table = research.calibration_table(oos)
    # Assert
    assert len(table) == 10 and table["rows"].sum() == len(p)
    assert (table["gap"].abs() < 0.03).all()


def test_research_tables_when_model_is_tiny_explain_folds_importance_and_equity(trained):
    # Arrange
    home, model_id = trained
    # Act
    record = research.load_model_record(home, "latest", "BTC/USDT", "1m")
    folds = research.walk_forward_table(record)
    importance = research.importance_table(record)
    oos = research.out_of_sample_equity(home, record)
    # Assert
    assert record.model_id == model_id and list(folds.index) == [0, 1]
    assert {"AUC (± over seeds)", "accuracy", "majority accuracy", "first tested (UTC)"} <= set(folds.columns)
    assert abs(importance["gain share"].sum() - 1.0) < 1e-9  # shares of the XGBoost member's gain
    assert importance["gain share"].is_monotonic_decreasing
    assert oos.same_data and oos.fee == pytest.approx(record.round_trip_cost / 2)
    assert list(oos.curves.index) == list(record.oos.index)  # exactly the tested bars
    assert oos.curves.iloc[0, 0] == oos.capital  # the model starts flat, with the capital
    assert oos.summary.loc["buy and hold", "entries"] == "1"


@pytest.mark.heavy
@pytest.mark.slow
def test_explore_notebook_when_run_on_two_days_records_the_grid_as_trials(trained, tmp_path):
    # Arrange
    import papermill

    home, _ = trained
    before = len(list(read_trials("synthetic", "BTC/USDT", "1m")))
    out = tmp_path / "explore.ipynb"
    # Act
    papermill.execute_notebook(
        str(notebooks_dir("research") / "explore.ipynb"),
        str(out),
        kernel_name="python3",
        progress_bar=False,
        parameters={"home": str(home), "since": "2026-01-05", "until": "2026-01-06T12:00"},
        extra_arguments=["--IPKernelApp.log_level=ERROR"],
        cwd=str(home),
    )
    # Assert
    executed = nbformat.read(out, as_version=4)
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # price and volume, correlation, grid
    assert "deflated Sharpe ratio" in text and "best (by Sharpe)" in text and "0.20%" in text
    assert len(list(read_trials("synthetic", "BTC/USDT", "1m"))) == before + 9  # each grid cell is a trial


@pytest.fixture(scope="module")
def model_session(trained: tuple[Path, str]) -> tuple[Path, str]:
    # Six hours of the day after the training window, decided by the model.
    home, model_id = trained
    stubs.replayed_session(
        home,
        "msess",
        "2026-01-07",
        "2026-01-07T06:00",
        **{"session.strategy": "model", "strategies.model.model": model_id},
    )
    return home, model_id


@pytest.mark.heavy
def test_model_drift_when_session_decided_with_a_trained_model_compares_features_and_probabilities(
    model_session,
):
    # Arrange
    home, model_id = model_session
    view = sessions.load_session(home, "msess")
    # Act
    drift = daily.model_drift(view, view.journal, "2026-01-07")
    # Assert
    table = drift.table.reset_index()
    assert drift.models == (model_id,) and drift.limit == 0.25
    assert table["series"].iloc[0] == "predicted probability" and len(table) == 1 + 21
    assert set(table["level"]) <= {"stable", "watch", "drift"}
    assert set(table["against threshold"]) <= {"above", "within", "not gated"}
    gated = table[table["against threshold"] != "not gated"]
    assert (
        gated["threshold"].str.contains(r"\(calibrated q0\.99 on \d+ training windows of 1440 bars\)").all()
    )
    clocks = table[table["series"].isin(["tod_sin", "tod_cos", "dow_sin", "dow_cos"])]
    assert list(clocks.index) == [18, 19, 20, 21]  # last: the gate leaves the clocks out
    assert set(clocks["against threshold"]) == {"not gated"}
    assert clocks.set_index("series").loc["dow_sin", "note"].endswith("one value all day")
    assert "gates.model.max_psi = 0.25" in drift.message


@pytest.mark.heavy
@pytest.mark.slow
def test_daily_report_when_session_has_a_model_shows_the_drift_table(model_session):
    # Arrange
    home, model_id = model_session
    config = load_config(None, {}, environ={})
    # Act
    result = render_report("daily", "msess", home, config)
    page = result.html.read_text(encoding="utf-8")
    # Assert
    assert result.ok and "Model drift" in page and "predicted probability" in page
    assert f"training window of {model_id}" in page and "against threshold" in page
    assert re.search(r"<td[^>]*>(stable|watch|drift)</td>", page)


def test_auc_line_when_a_model_was_trained_says_the_spread_is_across_folds_and_gives_the_seeds_apart():
    # Arrange: a model.json as train writes it: ± across the folds, the seeds' spread apart
    aucs = (0.52, 0.55, 0.50, 0.53)
    folds = [{"fold": i, "auc": auc, "auc_seed_std": 0.004, "test_bars": 2} for i, auc in enumerate(aucs)]
    meta = {"auc_mean": 0.525, "auc_std": 0.0208, "auc_seed_std": 0.0031, "folds": folds,
            "params": {"folds": 4, "seeds": 3}}  # fmt: skip
    oos = pd.DataFrame({"label": [0.0, 1.0] * 4, "probability": 0.5},
                       index=pd.date_range("2026-01-05", periods=8, freq="1min", tz="UTC"))  # fmt: skip
    record = research.ModelRecord("ens-000000000000", meta, oos, Path("."))
    # Act
    line = research.auc_line(record)
    table = research.walk_forward_table(record)
    # Assert
    assert line.startswith("Out-of-sample AUC 0.525 ± 0.021: the mean of the 4 folds' AUCs")
    assert "standard deviation across the folds" in line and "± 0.003 across the 3 seeds" in line
    assert list(table["AUC (± over seeds)"]) == [f"{auc:.3f} ± 0.004" for auc in aucs]


@pytest.mark.parametrize(
    ("stamps", "shown"),
    [
        ({"created_at": "2026-01-01T00:00:00Z", "trained_at": "2026-02-01T12:00:00Z"}, "2026-02-01 12:00"),
        ({"created_at": "2026-01-01T00:00:00Z"}, "2026-01-01 00:00"),  # saved before trained_at existed
    ],
    ids=["retrained", "older-model"],
)
def test_model_header_when_the_model_was_trained_again_shows_when_it_was_last_trained(trained, stamps, shown):
    # Arrange: a model folder first written in January, trained again (identical content) in February
    from dataclasses import replace

    home, model_id = trained
    record = research.load_model_record(home, model_id)
    meta = {k: v for k, v in record.meta.items() if k not in ("created_at", "trained_at")}
    record = replace(record, meta={**meta, **stamps})
    # Act
    header = research.model_header(record, {})
    # Assert
    assert header.loc["trained", "value"].startswith(shown)


# -- the conclusion ------------------------------------------------------------------------------


def _meta(mean, std, nets):
    return {
        "auc_mean": mean,
        "auc_std": std,
        "folds": [{"fold": i, "net_return_pct": n} for i, n in enumerate(nets)],
    }


def test_train_conclusion_when_the_model_ranks_well_but_loses_after_costs_says_both():
    # Arrange
    returns = {"model m1": -3.2, "sma_cross-10-30": -1.0, "buy and hold": 5.0}
    # Act
    text = research.train_conclusion(_meta(0.82, 0.08, [-2.1, 0.4, -1.0, -0.5]), returns)
    # Assert
    assert text.startswith("Out-of-sample AUC 0.82 ± 0.08 across 4 folds: above a coin (0.5)")
    assert "1 of its 4 folds gained and 3 lost (from -2.1% to 0.4%)" in text
    assert "the model returned -3.2%, sma_cross-10-30 -1.0% and buy and hold 5.0%" in text
    assert "it beat neither" in text and "did not pay for its costs" in text


def test_train_conclusion_when_the_auc_is_within_its_spread_of_a_coin_does_not_claim_an_edge():
    # Act
    text = research.train_conclusion(
        _meta(0.53, 0.04, [1.0, 2.0]), {"model m1": 2.0, "sma": 1.0, "buy and hold": 1.5}
    )
    # Assert
    assert "not clearly above a coin (0.5)" in text
    assert "all 2 folds gained" in text and "it beat both" in text


def test_train_conclusion_when_the_model_beats_only_sma_cross_says_it_did_not_beat_buy_and_hold():
    # Act
    text = research.train_conclusion(
        _meta(0.48, 0.01, [-1.0]), {"model m1": 1.0, "sma": 0.5, "buy and hold": 3.0}
    )
    # Assert
    assert "no better than a coin (0.5)" in text and "its 1 fold lost" in text
    assert "it beat sma but not buy and hold" in text


@pytest.mark.slow
def test_report_train_when_rendered_ends_with_its_conclusion(train_page):
    # Arrange
    home, model_id, _ = train_page
    # Act
    page = (home / "reports" / "_models" / f"train-{model_id}.html").read_text(encoding="utf-8")
    # Assert
    assert page.rindex("Conclusion") > page.rindex("Out-of-sample equity")
    assert "Out-of-sample AUC" in page[page.rindex("Conclusion") :]
