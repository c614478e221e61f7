"""Small planted-signal data and fitted members, shared by the model tests (fitting is the slow part)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from labkit.models.ensemble import Calibrator, Ensemble, weights_from_log_loss
from labkit.models.members import KINDS, Member, make_member

ROWS, FEATURES = 2_000, 5
SCHEMA = {
    "names": ["ret_1", "ret_5", "vol_20", "rsi_14", "noise"],
    "lookbacks": [1, 5, 20, 14, 1],
    "version": "abc123def456",
}
META = {
    "symbol": "BTC/USDT",
    "timeframe": "1h",
    "source": "synthetic",
    "window": {"since": "2026-01-01T00:00:00Z", "until": "2026-03-25T08:00:00Z", "bars": ROWS},
    "data_hash": "0" * 64,
    "horizon": 4,
    "params": {"folds": 3, "seeds": 1},
    "folds": [{"fold": 0, "auc": 0.61, "log_loss": 0.67}, {"fold": 1, "auc": 0.63, "log_loss": 0.66}],
}


def planted(n: int = ROWS, seed: int = 0, nan_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return rows whose label leans on features 0 and 1 (the rest is noise), and the labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, FEATURES))
    y = (0.8 * X[:, 0] - 0.5 * X[:, 1] + rng.normal(size=n) > 0).astype(np.int64)
    if nan_share:
        X[rng.random(X.shape) < nan_share] = np.nan
    return X, y


def fitted(kind: str, seed: int = 0, X: np.ndarray | None = None, y: np.ndarray | None = None) -> Member:
    if X is None or y is None:
        X, y = planted(nan_share=0.0 if kind == "logistic" else 0.02)
    member = make_member(
        kind,
        seed,
        {"n_estimators": 60} if kind == "xgboost" else {"max_iter": 60} if kind == "forest" else None,
    )
    member.fit(X, y)
    return member


@pytest.fixture(scope="session")
def members() -> dict[str, Member]:
    return {kind: fitted(kind) for kind in KINDS}


@pytest.fixture(scope="session")
def ensemble(members: dict[str, Member]) -> Ensemble:
    X, y = planted(1_000, seed=1)
    losses = []
    for member in members.values():
        p = np.clip(member.predict_proba(X), 1e-15, 1 - 1e-15)
        losses.append(float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p))))
    weights = weights_from_log_loss(losses)
    average = sum(w * m.predict_proba(X) for w, m in zip(weights, members.values(), strict=True))
    return Ensemble(list(members.values()), weights, Calibrator.fit(average, y), SCHEMA, losses)


@pytest.fixture(scope="session")
def saved(tmp_path_factory: pytest.TempPathFactory, ensemble: Ensemble) -> tuple[Path, str]:
    from labkit.models.artifacts import save_model

    home = tmp_path_factory.mktemp("saved-home")
    return home, save_model(home, ensemble, META)


@pytest.fixture
def copy_of_saved(saved: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    # A test that damages a model gets its own copy of the home.
    home, model_id = saved
    shutil.copytree(home, tmp_path / "home")
    return tmp_path / "home", model_id
