from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own LABKIT_* settings must not change what the tests see.
    import os

    for name in list(os.environ):
        if name.startswith("LABKIT_"):
            monkeypatch.delenv(name)
