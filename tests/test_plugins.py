"""Plug-ins without forking: a third-party package adds a gate, a strategy and a source.

The package is a real wheel (made here from `tests/plugin_demo.py`) installed by pip into a
directory of its own on the path of the `labkit` processes, rather than into the shared test venv,
so no other test sees it. labkit finds it through its entry points, as it would in a user's venv.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests import stubs

PLUGIN_SOURCE = Path(__file__).with_name("plugin_demo.py")
ENTRY_POINTS = """\
[labkit.gates]
odd_minute = labkit_plugin_demo:OddMinuteGate

[labkit.strategies]
every_n = labkit_plugin_demo:EveryN

[labkit.sources]
ramp = labkit_plugin_demo:RampSource
"""


def _wheel(directory: Path, entry_points: str, module: str = "labkit_plugin_demo") -> Path:
    dist = "labkit_plugin_demo-0.1.dist-info"
    files = {
        f"{module}.py": PLUGIN_SOURCE.read_bytes(),
        f"{dist}/METADATA": b"Metadata-Version: 2.1\nName: labkit-plugin-demo\nVersion: 0.1\n",
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: labkit-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist}/entry_points.txt": entry_points.encode(),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / "labkit_plugin_demo-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def _install(tmp_path: Path, entry_points: str = ENTRY_POINTS) -> dict[str, str]:
    site = tmp_path / "site"
    wheel = _wheel(tmp_path, entry_points)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--target",
            str(site),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return {**os.environ, "PYTHONPATH": str(site)}


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _install(tmp_path_factory.mktemp("plugin"))


def test_plugin_when_installed_its_source_strategy_and_gate_run_through_backtest(tmp_path, plugin_env):
    # Arrange
    journal = tmp_path / "decisions.jsonl"
    # Act
    done = stubs.run_labkit(
        tmp_path,
        "backtest",
        "--source",
        "ramp",
        "--strategy",
        "every_n",
        "--since",
        "2026-01-05",
        "--until",
        "2026-01-05T03:00",
        "--json",
        "--journal",
        str(journal),
        env=plugin_env,
    )
    # Assert
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    blocked = [x for x in lines if x["gate_trace"]["stage"] == "odd_minute"]
    entries = [x for x in lines if x["action"] == "BUY"]
    assert summary["strategy"] == "every_n-7-3" and summary["bars"] == 180
    assert summary["trades"] > 0 and entries
    assert blocked and all(x["rejection_reason"] == "odd_minute" for x in blocked)
    assert all((int(x["ts"][14:16]) % 2) == 0 for x in entries)  # no entry on an odd minute
    assert "odd_minute" in summary["gates"]


def test_plugin_when_installed_is_listed_with_its_description(tmp_path, plugin_env):
    # Arrange / Act
    done = stubs.run_labkit(tmp_path, "backtest", "--source", "nope", env=plugin_env)
    # Assert: the plug-in's source kind is among those a bad spec is told about
    assert done.returncode == 2
    assert "ramp" in done.stderr and "synthetic" in done.stderr


def test_plugin_when_broken_is_skipped_with_a_warning_and_labkit_still_works(tmp_path):
    # Arrange: an entry point naming a module that does not exist
    env = _install(tmp_path, "[labkit.gates]\nbroken = labkit_plugin_missing:Nothing\n")
    # Act
    done = stubs.run_labkit(
        tmp_path, "backtest", "--since", "2026-01-05", "--until", "2026-01-05T02:00", "--json", env=env
    )
    # Assert
    assert done.returncode == 0, done.stderr
    assert "plug-in broken in labkit.gates failed to load" in done.stderr
    assert "broken" not in json.loads(done.stdout)["gates"]
