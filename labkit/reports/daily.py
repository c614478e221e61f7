"""The daily report's tables: a day's health, and how far the day drifted from a model's training."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from labkit.analysis.formatting import money, share
from labkit.errors import ConfigError
from labkit.reports.figures import GREEN, RED
from labkit.reports.sessions import SessionView


def health_table(health: Mapping[str, Any], currency: str = "") -> pd.DataFrame:
    """Return `labkit.readiness.daily_health`'s result as a one-column table, money in `currency`."""

    items = {
        "day": health["day"],
        "decisions / bars expected": f"{health['decisions']} / {health['expected']} "
        f"({share(health['coverage'], 2)})",
        "missing bars": health["missing_bars"],
        "replays (decided long after the bar closed)": health.get("replays", 0),
        "heartbeat gaps (> 2 bars)": f"{health['heartbeat_gaps']} (longest "
        f"{health['max_gap_seconds']:.0f} s)",
        "data errors": f"{health['data_errors']} ({share(health['data_error_share'], 2)})",
        "actions BUY / SELL": f"{health['actions']['BUY']} / {health['actions']['SELL']}",
        "blocked decisions": health["blocked"],
        "top blocking reasons": "; ".join(
            f"{r['stage']}/{r['reason']} {r['count']}" for r in health["top_reasons"]
        )
        or "none",
        "closed trades": health["trades_closed"],
        "paper PnL": (
            f"{money(health['pnl'], currency)} ({share(health['pnl_pct'], 2)})"
            if health["pnl"] is not None
            else "n/a"
        ),
        "fees / slippage": f"{money(health['fees'], currency)} / {money(health['slippage'], currency)}",
        "max drawdown (within the day)": share(health["max_drawdown"], 2),
    }
    return pd.DataFrame(
        {"value": [str(v) for v in items.values()]}, index=pd.Index(list(items), name="figure")
    )


@dataclass(frozen=True)
class ModelDrift:
    """How far one day's features and predicted probabilities moved from a model's training window.

    `table` has a row per series (the predicted probability first, then each feature, largest PSI
    first): PSI, its level in words (`labkit.features.drift.drift_level`), the threshold the
    `model` gate holds that model to and where it came from (calibrated on the training data, or
    `limit`, the session's ``gates.model.max_psi``, for a model without calibration), whether the
    PSI is above it, and the rows compared. It is empty when the session decided with no trained
    model that day; `message` says what the section shows.
    """

    models: tuple[str, ...]
    message: str
    table: pd.DataFrame
    limit: float

    def styled(self) -> Any:
        """Return `table` styled: ``drift`` in red, ``watch`` in orange, ``stable`` in green."""
        from labkit.reports.figures import ORANGE

        colours = {"drift": RED, "watch": ORANGE, "stable": GREEN}

        def colour(value: str) -> str:
            return f"color:{colours[value]};font-weight:bold" if value in colours else ""

        return self.table.style.map(colour, subset=["level"])


def model_limit(config: Mapping[str, Any]) -> float:
    """Return the drift limit of a session's config: ``gates.model.max_psi`` (0.25 when unset)."""
    from labkit.features.drift import PSI_DRIFT

    value = (config.get("gates", {}).get("model") or {}).get("max_psi")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else PSI_DRIFT


def model_threshold(meta: Mapping[str, Any], limit: float) -> tuple[float, str]:
    """Return the drift threshold the `model` gate holds a model to, and where it came from.

    The threshold calibrated on its training data (model.json ``drift_calibration``) when it has
    one, else the session's `limit` (``gates.model.max_psi``), as `labkit.gates.model` decides.
    """
    from labkit.features.drift import DriftCalibration

    record = meta.get("drift_calibration")
    if record:
        try:
            found = DriftCalibration.from_dict(record)
        except ValueError:
            pass
        else:
            return found.threshold, f"{found.describe()} of {found.window} bars"
    return limit, "fixed max_psi (the model has no calibrated threshold)"


def _day_features(features: Any, bars: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    # The features of the day's bars; the bars before the day (when the tape has them) warm them up.
    if not len(bars):
        return pd.DataFrame(columns=list(features.names), dtype=float)
    upto = bars[bars.index < end]
    first = int(np.searchsorted(upto.index, start))
    frame = features.frame(upto.iloc[max(0, first - features.warmup + 1) :])
    return frame[frame.index >= start]


def model_drift(view: SessionView, rows: pd.DataFrame, day: str) -> ModelDrift:
    """Return the PSI of the day's features and predicted probabilities against each trained model
    the session decided with that day (`rows`: the day's journal lines).

    A model counts when the journal's ``model`` names a folder under ``data/models/``. Features are
    computed over the session's tape (bars before the day give the warm-up) for the day's bars;
    probabilities are the journal's ``confidence`` of the day's bars the model decided. Each is
    compared with model.json's ``drift`` and ``drift_probability`` profiles of the training window.
    """
    from labkit.analysis.periods import day_bounds
    from labkit.features.drift import CLOCK_FEATURES, FeatureProfile, drift_level, psi, psi_1d
    from labkit.features.featureset import FeatureSet
    from labkit.models.artifacts import load_model, models_dir

    limit = model_limit(view.config)
    named = [str(m) for m in rows["model"].dropna().unique()] if len(rows) else []
    trained = tuple(m for m in named if (models_dir(view.home) / m / "model.json").is_file())
    gate_on = "model" in (view.config.get("gates", {}).get("enabled") or [])
    if not trained:
        what = ", ".join(named) or "nothing"
        return ModelDrift(
            (),
            f"No model to drift: on {day} this session decided with {what}, not a model trained by "
            "labkit train, so there is no training window to compare the day with.",
            pd.DataFrame(),
            limit,
        )
    start, end = day_bounds(day)
    bars = view.bars()
    tables, notes = [], []
    thresholds = []
    for model_id in trained:
        try:
            meta = load_model(view.home, model_id).meta
        except ConfigError as exc:
            notes.append(f"{model_id} cannot be read ({exc}).")
            continue
        features = FeatureSet(list((meta.get("features") or {}).get("names") or []))
        threshold, source = model_threshold(meta, limit)
        profile = FeatureProfile.from_dict(meta["drift"])
        complete = _day_features(features, bars, start, end).dropna()
        scores = psi(profile, complete[list(profile.names)].to_numpy()) if len(complete) else {}
        decided = rows[(rows["model"] == model_id)]
        probability = pd.to_numeric(decided["confidence"], errors="coerce").dropna().to_numpy(dtype=float)
        entries: list[tuple[str, float, int, bool, str]] = []  # series, PSI, rows, gated, note
        if meta.get("drift_probability"):
            p_profile = FeatureProfile.from_dict(meta["drift_probability"])
            value = psi_1d(p_profile.edges[0], p_profile.proportions[0], probability)
            note = "against the training folds' probabilities; the gate reads the features"
            entries.append(("predicted probability", value, len(probability), True, note))
        market, clocks = [], []
        for name in profile.names:
            value = scores.get(name, float("nan"))
            one = bool(len(complete)) and complete[name].nunique() == 1
            if name in CLOCK_FEATURES:
                note = "a clock, not market state: the gate leaves it out" + (
                    "; one value all day" if one else ""
                )
                clocks.append((name, value, len(complete), False, note))
            else:
                market.append((name, value, len(complete), True, "one value all day" if one else ""))
        entries += sorted(market, key=lambda e: -e[1] if e[1] == e[1] else 1.0) + clocks

        def level(value: float, gated: bool, threshold: float = threshold) -> str:
            # A gated feature by the model's own threshold (watch from 80% of it); the rest by the
            # usual PSI bands, which a market's autocorrelated features pass on ordinary days.
            if value != value:
                return "n/a"
            if not gated:
                return drift_level(value)
            return "drift" if value > threshold else "watch" if value > 0.8 * threshold else "stable"

        def against(value: float, gated: bool, threshold: float = threshold) -> str:
            if not gated:
                return "not gated"
            return "n/a" if value != value else ("above" if value > threshold else "within")

        table = pd.DataFrame(
            {
                "model": model_id,
                "series": [e[0] for e in entries],
                "PSI": ["n/a" if e[1] != e[1] else f"{e[1]:.4f}" for e in entries],
                "level": [level(e[1], e[3]) for e in entries],
                "threshold": [f"{threshold:.4g} ({source})" if e[3] else "" for e in entries],
                "against threshold": [against(e[1], e[3]) for e in entries],
                "rows compared": [f"{e[2]:,}" for e in entries],
                "note": [e[4] for e in entries],
            }
        )
        tables.append(table)
        thresholds.append(f"{model_id}: {threshold:.4g}, {source}")
    table = pd.concat(tables).set_index(["model", "series"]) if tables else pd.DataFrame()
    message = (
        f"The population stability index (PSI) of {day}'s bars against the training window of "
        f"{', '.join(trained)}. A gated feature's level is read against the model's threshold (stable "
        "below 80% of it, watch up to it, drift above); the clocks, which the gate leaves out, by the "
        "usual bands (below 0.1 stable, 0.1 to 0.25 watch, above 0.25 drift). The model gate "
        "refuses entries while a market feature's PSI over its rolling window is above the model's "
        "threshold, calibrated on the training data's own windows when the model has one, else "
        f"gates.model.max_psi = {limit:g} from the session's config ("
        + "; ".join(thresholds)
        + "); the day's PSI here is over all the day's bars, a window as long as the gate's at 1440"
        " bars of 1m"
        + ("" if gate_on else " (the model gate is not enabled in this session: shown for reference)")
        + "."
        + (" " + " ".join(notes) if notes else "")
    )
    return ModelDrift(trained, message, table, limit)
