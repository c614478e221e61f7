from __future__ import annotations

import os

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
