"""The wheel is all a user needs: installed in a fresh venv, it runs a session and renders its report.

The wheel is built offline from a copy of the checkout and installed without its dependencies into a
venv outside the checkout; a ``.pth`` file lends that venv the project venv's site-packages for the
dependencies (and ``JUPYTER_PATH`` their data files), while labkit itself (code and notebooks) must
come from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A build reads the project's files; the rest of a working tree (venv, sessions, reports) stays behind.
_TOP_LEVEL_ONLY = {".git", ".venv", "data", "reports", "build", "dist"}
_ANYWHERE = shutil.ignore_patterns("__pycache__", "*.egg-info", ".*_cache", ".ipynb_checkpoints")


def _not_source(directory: str, names: list[str]) -> set[str]:
    top = _TOP_LEVEL_ONLY if Path(directory) == ROOT else set()
    return (top & set(names)) | set(_ANYWHERE(directory, names))


def _run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [str(a) for a in args]
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
@pytest.mark.heavy
def test_wheel_when_installed_in_a_fresh_venv_runs_a_session_and_renders_its_report(tmp_path):
    # Arrange: build the wheel from a copy of the checkout, offline
    # LABKIT_TRIALS stays: the session run below is a trial, never of the user's own ledger.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("LABKIT_")}
    env["LABKIT_TRIALS"] = os.environ["LABKIT_TRIALS"]
    source, dist = tmp_path / "src", tmp_path / "dist"
    shutil.copytree(ROOT, source, ignore=_not_source)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    build = ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist, source]
    _run([*pip, *build], tmp_path, env)
    (wheel,) = dist.glob("labkit-*.whl")
    # A venv outside the checkout, with the project's dependencies on its path but not labkit.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    scripts = venv / ("Scripts" if os.name == "nt" else "bin")
    python = scripts / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(_run([python, "-c", purelib], tmp_path, env).stdout.strip())
    (site / "project_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # The dependencies' data files (nbconvert's templates) stay in the project venv's share/ too.
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    _run([*pip, "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel], tmp_path, env)
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    labkit = scripts / "labkit"
    # Act
    probe = (
        "import labkit, labkit.reports.render as r; print(labkit.__file__); print(r.notebooks_dir()); "
        "print(r.notebooks_dir('research'))"
    )
    where = _run([python, "-c", probe], work, env).stdout.split()
    session = "run --pace fast --session w --source synthetic --since 2026-01-05 --until 2026-01-05T05:00"
    _run([labkit, "--home", home, *session.split()], work, env)
    _run([labkit, "--home", home, "report", "session", "--session", "w"], work, env)
    # Assert
    assert Path(where[0]).is_relative_to(site) and Path(where[1]).is_relative_to(site), where
    assert Path(where[2]).is_relative_to(site) and (Path(where[2]) / "train_model.ipynb").is_file(), where
    decisions = (home / "data" / "sessions" / "w" / "decisions.jsonl").read_text().splitlines()
    assert len(decisions) == 300
    page = home / "reports" / "w" / "session-session.html"
    assert page.is_file() and "sma_cross-10-30" in page.read_text(encoding="utf-8")
    index = (home / "reports" / "index.html").read_text(encoding="utf-8")
    assert 'href="w/session-session.html"' in index and "1 reports" in index
