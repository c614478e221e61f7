"""What a notebook hands the API, made into what labkit works with: instants and the home.

The coercions themselves live lower (`labkit.timeutil`, `labkit.home`) so the loaders under the
API take the same forms; they are named here too because the API modules import them from here.
"""

from __future__ import annotations

from pathlib import Path

from labkit.home import as_path, home_arg
from labkit.timeutil import DATE_FORMS, instant_ms

__all__ = ["DATE_FORMS", "as_path", "home_path", "instant_ms"]


def home_path(home: str | Path | None) -> Path:
    """Return the labkit home: `home` when given (str or Path), else ``LABKIT_HOME`` or the usual one."""
    return home_arg(home, "home")
