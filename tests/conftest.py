from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Each test worker trains with one thread: two workers' OpenMP pools on two cores would spin
# against each other (XGBoost and scikit-learn fits run many times slower oversubscribed).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# yfinance installs a warnings filter of its own when first imported; importing it here, before any
# test, lets the project's filterwarnings (which pytest applies per test) take precedence.
import yfinance  # noqa: F401, E402


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own LABKIT_* settings must not change what the tests see.
    import os

    for name in list(os.environ):
        if name.startswith("LABKIT_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session", autouse=True)
def _no_user_trial_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Fixtures wider than one test (a module's sweep, a trained model) record trials too: never in
    # the developer's own ledger (~/.local/share/labkit/trials.jsonl).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LABKIT_TRIALS", str(tmp_path_factory.mktemp("trials") / "trials.jsonl"))
        yield


@pytest.fixture(autouse=True)
def _trial_ledger_per_test(
    _isolated_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Each test starts with an empty ledger of its own, so trial counts never depend on test order.
    monkeypatch.setenv("LABKIT_TRIALS", str(tmp_path_factory.mktemp("trials") / "trials.jsonl"))
