"""The package layout follows the data flow.

The import rules themselves (layers, no cycles, in-function and TYPE_CHECKING imports counted) are
import-linter contracts in pyproject.toml, checked by `lint-imports` in `make lint`. These tests keep
what those contracts cannot say, and show that the contracts can fail.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LABKIT = ROOT / "labkit"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# The ground floor, and the operations API: everything else lives in a package along the flow.
ROOT_MODULES = {"__init__", "_version", "_io", "_plugins", "errors", "timeutil", "home", "operations"}


def test_labkit_root_when_listed_holds_only_the_ground_floor_and_the_operations_api():
    found = {p.stem for p in LABKIT.glob("*.py")}
    assert found == ROOT_MODULES


def test_import_labkit_when_done_loads_no_pandas():
    # `labkit --help` is checked in tests/test_cli_parsing.py.
    code = "import labkit, sys; print('pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# Imports that break each contract, planted in one copy of labkit, and what lint-imports must say.
# Each is the only one that breaks its line: forbidden contracts follow indirect imports, so no
# plant sits in a module another plant's package reaches (data/synthetic, not data/bars).
PLANTS = [
    # A stage reaching up into what runs it.
    ("data/synthetic.py", "labkit.reports.render", "labkit.data is not allowed to import labkit.reports"),
    # Two siblings importing each other: research and session stay apart.
    ("session/tape.py", "labkit.research.backtest", "labkit.session is not allowed to import labkit.research"),
    # A feature opening a source; a model needing the feature definitions.
    ("features/windows.py", "labkit.data.registry", "Features read bars, never sources BROKEN"),
    ("models/members.py", "labkit.features.definitions", "Models never import features BROKEN"),
    # A cycle inside one package.
    ("engine/journal.py", "labkit.engine.core", "No cycles are allowed in labkit.engine."),
]


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (pip install -e '.[dev]')")
def test_import_contracts_when_imports_are_planted_are_each_broken(tmp_path):
    # Arrange: a copy of labkit with every plant, each inside a function (import-linter must count
    # imports that only run later)
    shutil.copytree(LABKIT, tmp_path / "labkit", ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for module, imported, _ in PLANTS:
        path = tmp_path / "labkit" / module
        path.write_text(path.read_text(encoding="utf-8") + f"\n\ndef _planted():\n    import {imported}  # noqa\n")
    # Act
    done = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Assert
    assert done.returncode != 0, done.stdout
    missing = [said for _, _, said in PLANTS if said not in done.stdout]
    assert missing == [], done.stdout
