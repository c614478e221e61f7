"""A sweep on disk: one `SweepPaths` naming every file, and the sweeps under a home.

``data/sweeps/<name>/`` holds ``runs/<run_id>.json`` (each finished run, written atomically),
``results.parquet`` (a row per run) and ``blocks.parquet`` (each run's returns in blocks), both
rebuilt from the runs, ``grid.json`` (the grid as last started), ``sweep.lock`` and ``owner.json``
(who holds it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labkit.home import check_name, is_name

RESULTS, BLOCKS = "results.parquet", "blocks.parquet"
GRIDS = ("grid.yaml", "grid.json")  # the grid as run: a copy the user left, else the one labkit wrote


@dataclass(frozen=True)
class SweepPaths:
    """Every file of one sweep, named once."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def shown(self) -> str:
        """How messages name the folder, relative to the home: ``data/sweeps/<name>``."""
        return f"data/sweeps/{self.name}"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def lock(self) -> Path:
        return self.root / "sweep.lock"

    @property
    def owner(self) -> Path:
        return self.root / "owner.json"

    @property
    def results(self) -> Path:
        return self.root / RESULTS

    @property
    def blocks(self) -> Path:
        return self.root / BLOCKS

    @property
    def grid_written(self) -> Path:
        return self.root / "grid.json"

    def grid_file(self) -> Path | None:
        """The grid beside the results, the first of `GRIDS` found; None without one."""
        return next((self.root / name for name in GRIDS if (self.root / name).is_file()), None)


def sweeps_dir(home: Path) -> Path:
    """Return the folder every sweep of the home lives in, ``data/sweeps/``."""
    return Path(home) / "data" / "sweeps"


def sweep_paths(home: Path, name: str) -> SweepPaths:
    """Return the files of the sweep `name`, after checking the name (ConfigError naming ``sweep``)."""
    return SweepPaths(sweeps_dir(home) / check_name(name, "sweep"))


def sweep_names(home: Path) -> list[str]:
    """Return the sweeps of the home that have results, newest first."""
    root = sweeps_dir(home)
    if not root.is_dir():
        return []
    found = [
        (p.stat().st_mtime, p.parent.name)
        for p in root.glob(f"*/{RESULTS}")
        if p.is_file() and is_name(p.parent.name)
    ]
    return [name for _, name in sorted(found, reverse=True)]
