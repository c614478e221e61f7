from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


# pip names whose conda-forge package is named otherwise; both xgboost wheels are py-xgboost-cpu there.
CONDA_NAMES = {"xgboost-cpu": "py-xgboost-cpu", "xgboost": "py-xgboost-cpu"}


def _name(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*([^;]*)", requirement)
    assert match, requirement
    name = match.group(1).lower().replace("_", "-")
    return CONDA_NAMES.get(name, name), match.group(2).replace(" ", "")


def _extra(project: dict, name: str) -> list[str]:
    """Return an extra's requirements, with the extras it names of labkit itself spelled out."""
    out = []
    for dep in project["optional-dependencies"][name]:
        match = re.match(r"^labkit\[([a-z,]+)\]$", dep.replace(" ", ""))
        out += [d for inner in match.group(1).split(",") for d in _extra(project, inner)] if match else [dep]
    return out


def test_environment_yml_when_compared_mirrors_pyproject_dependencies_and_extras():
    # Arrange
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    # Act
    extras = _extra(project, "dev") + _extra(project, "lab") + _extra(project, "bench")
    expected = dict(_name(dep) for dep in project["dependencies"] + extras)
    conda = [dep for dep in env["dependencies"] if isinstance(dep, str)]
    pip_section = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    result = dict(_name(dep) for dep in conda if not dep.startswith(("python", "pip")))
    # Assert
    assert result == expected
    assert "python>=3.11" in conda and env["channels"] == ["conda-forge"]
    assert "-e ." in pip_section


def test_pyproject_when_read_declares_the_license_the_pep_639_way():
    # Arrange
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    # Act
    setuptools = dict(_name(dep) for dep in pyproject["build-system"]["requires"])["setuptools"]
    license_text = (ROOT / "LICENSE").read_text()
    # Assert
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert ">=77" in setuptools  # the first setuptools that writes License-Expression
    assert license_text.startswith("MIT License") and "labkit contributors" in license_text
    assert not any("License ::" in c for c in project.get("classifiers", []))


def test_pyproject_when_read_keeps_requests_a_test_dependency_and_dev_a_superset_of_test():
    # Arrange
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # Act
    runtime = {_name(dep)[0] for dep in project["dependencies"]}
    test = {_name(dep)[0] for dep in _extra(project, "test")}
    dev = {_name(dep)[0] for dep in _extra(project, "dev")}
    # Assert
    assert "requests" not in runtime and "requests" in test
    assert {"pytest", "setuptools"} <= test <= dev


def test_labkit_when_parsed_never_imports_requests():
    # Arrange / Act
    imported = set()
    for path in (ROOT / "labkit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update((alias.name.split(".")[0], path.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add((node.module.split(".")[0], path.name))
    # Assert
    assert not [where for name, where in imported if name == "requests"]


def test_pyproject_packages_when_compared_list_every_package_and_ship_the_notebooks():
    # Arrange
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    # Act
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "labkit").rglob("__init__.py")
    }
    # Assert
    missing = sorted(on_disk - set(tool["packages"]))
    assert missing == [], (
        f"add {missing} to [tool.setuptools] packages in pyproject.toml, or the wheel lacks them"
    )
    assert set(tool["packages"]) == on_disk | {"labkit.notebooks", "labkit.notebooks.research", "labkit.serve.static"}
    assert tool["package-dir"] == {"": "."}
    assert (ROOT / "labkit" / "notebooks").is_symlink() and (ROOT / "labkit" / "notebooks").resolve() == ROOT / "notebooks"
    assert tool["package-data"]["labkit.notebooks"] == ["*.ipynb"]
    assert tool["package-data"]["labkit.notebooks.research"] == ["*.ipynb"]
    assert (ROOT / "notebooks" / "__init__.py").is_file()
    assert (ROOT / "notebooks" / "research" / "__init__.py").is_file()


def test_editable_build_when_run_gives_no_setuptools_warning(tmp_path):
    # Arrange: the files an install reads, copied as they are (the notebooks link kept a link)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("labkit", "notebooks"):
        shutil.copytree(ROOT / folder, tmp_path / folder, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    build = "from setuptools import build_meta; build_meta.build_editable(sys.argv[1])"
    # Act: what `pip install -e .` asks setuptools for
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; {build}", str(tmp_path / "out")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    # Assert: no "may take precedence", "Package would be ignored" or meta path finder warning
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    for warning in ("precedence", "would be ignored", "meta path finder", "Warning"):
        assert warning not in said


def test_notebooks_dir_when_labkit_notebooks_is_importable_is_that_package():
    # Arrange
    import importlib.resources

    from labkit.reports.render import notebooks_dir

    # Act
    found = notebooks_dir()
    # Assert
    assert found == Path(str(importlib.resources.files("labkit.notebooks")))
    assert {"paper_session.ipynb", "daily_health.ipynb", "weekly_readiness.ipynb"} <= {
        p.name for p in found.glob("*.ipynb")
    }
    research = notebooks_dir("research")
    assert research == Path(str(importlib.resources.files("labkit.notebooks.research")))
    assert {"explore.ipynb", "train_model.ipynb"} <= {p.name for p in research.glob("*.ipynb")}


def _makefile() -> str:
    return (ROOT / "Makefile").read_text()


def _targets(makefile: str) -> dict[str, str]:
    """Return each rule's target and its prerequisites line."""
    rules = re.findall(r"^([A-Za-z0-9_.$()/-]+)\s*:(?!=)\s*(.*)$", makefile, re.M)
    return {target: prereqs for target, prereqs in rules}


def test_makefile_when_read_defines_every_phony_target():
    # Arrange
    makefile = _makefile()
    # Act
    phony = re.search(r"^\.PHONY\s*:(.*)$", makefile, re.M)
    defined = set(_targets(makefile))
    # Assert
    assert phony is not None
    assert set(phony.group(1).split()) - defined == set()


def _recipe(makefile: str, target: str) -> str:
    match = re.search(rf"^{re.escape(target)}\s*:.*\n((?:\t.*\n)*)", makefile, re.M)
    assert match, target
    return match.group(1)


def test_makefile_demo_when_run_again_starts_from_no_demo_session_and_no_demo_reports():
    # Arrange
    makefile = _makefile()
    # Act
    prereqs = _targets(makefile)["demo"].split()
    clean = _recipe(makefile, "clean-demo")
    # Assert
    assert "clean-demo" in prereqs
    assert "data/sessions/demo" in clean and "reports/demo" in clean and "write_index" in clean


@pytest.mark.skipif(shutil.which("make") is None or os.name != "posix", reason="needs make and a POSIX shell")
def test_make_demo_when_run_again_counts_only_its_own_trials_and_leaves_the_users_ledger_alone():
    # Arrange: the ledger is per user and shared by every home; the demo keeps its own in the home,
    # so a rerun starts from no trials and never touches the user's research.
    # Act: print the demo's commands without running them (the install stamp counts as done)
    done = subprocess.run(
        ["make", "-s", "-n", "-o", ".venv/.installed-dev", "demo"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    # Assert
    assert done.returncode == 0, done.stderr
    ledger = f"{ROOT}/data/demo-trials.jsonl"
    commands = [line for line in done.stdout.splitlines() if "/labkit --home" in line]
    assert commands and all(line.startswith(f"LABKIT_TRIALS='{ledger}' ") for line in commands)
    lines = done.stdout.replace("\\\n", " ").splitlines()
    removal = next(line for line in lines if line.startswith("rm -rf data/sessions/demo"))
    assert "data/demo-trials.jsonl" in removal.split()


@pytest.mark.skipif(shutil.which("make") is None or os.name != "posix", reason="needs make and a POSIX shell")
@pytest.mark.parametrize(("uid", "allowed"), [("0", True), ("1000", False)])
def test_make_lab_when_user_is_root_adds_allow_root_and_otherwise_not(tmp_path, uid, allowed):
    # Arrange: an `id` that answers for the user the case is about
    fake = tmp_path / "id"
    fake.write_text(f"#!/bin/sh\necho {uid}\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    # Act: print the recipe without running it (the install stamp counts as done)
    done = subprocess.run(
        ["make", "-s", "-n", "-o", ".venv/.installed-dev", "lab"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    # Assert
    assert done.returncode == 0, done.stderr
    launch = [line for line in done.stdout.splitlines() if "jupyter lab" in line]
    assert launch and ("--allow-root" in launch[0]) is allowed


def test_gitignore_when_read_ignores_generated_data_and_reports():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/data/*" in ignored and "/reports/*" in ignored and ".venv/" in ignored


def test_ci_when_run_calls_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()


def _session(home: Path, name: str, first_decided_at: str | None) -> None:
    root = home / "data" / "sessions" / name
    root.mkdir(parents=True)
    (root / "config.json").write_text("{}")
    line = json.dumps({"seq": 0, "decided_at": first_decided_at}) + "\n" if first_decided_at else ""
    (root / "decisions.jsonl").write_text(line)


def _report(home: Path, session: str, stem: str, generated_at: str, html: bool = True) -> None:
    folder = home / "reports" / session
    folder.mkdir(parents=True, exist_ok=True)
    if html:
        (folder / f"{stem}.html").write_text("<html></html>")
    kind, period = stem.split("-", 1)
    sidecar = {
        "kind": kind,
        "session": session,
        "period": period,
        "ok": True,
        "generated_at": generated_at,
        "html": f"{stem}.html",
    }
    (folder / f"{stem}.json").write_text(json.dumps(sidecar))


def test_write_index_when_a_session_was_started_again_lists_only_reports_of_the_current_run(tmp_path):
    # Arrange: `make demo` ran before with a daily report of another day, then deleted the session
    # and started it again; another session is gone; a third has not decided anything yet
    _session(tmp_path, "demo", "2026-03-01T10:00:00.000Z")
    _report(tmp_path, "demo", "daily-2026-01-06", "2026-02-01T09:00:00.000Z")  # the earlier run
    _report(tmp_path, "demo", "session-session", "2026-03-01T10:05:00.000Z")
    _report(tmp_path, "demo", "weekly-2026-W02", "2026-03-01T10:06:00.000Z", html=False)
    _report(tmp_path, "gone", "session-session", "2026-03-01T10:07:00.000Z")
    _session(tmp_path, "fresh", None)
    _report(tmp_path, "fresh", "session-session", "2026-03-01T10:08:00.000Z")
    # Act
    from labkit.reports.render import write_index

    page = write_index(tmp_path).read_text(encoding="utf-8")
    # Assert
    links = re.findall(r'href="([^"]+)"', page)
    assert links == ["fresh/session-session.html", "demo/session-session.html"]
    assert "2 reports" in page
    assert (tmp_path / "reports" / "demo" / "daily-2026-01-06.html").exists()  # left alone, not listed


def test_makefile_demo_when_read_backtests_the_model_train_printed_on_bars_after_what_it_saw():
    # Arrange: the demo's 1-minute bars; a model has seen its window and `horizon` bars after it
    from labkit.timeutil import parse_instant

    makefile = _makefile()
    recipe = _recipe(makefile, "demo")
    train = re.search(
        r"\$\(LABKIT\) train .*--until (\S+) --horizon (\d+) .*--json > \$\(DEMO_TRAINED\)", recipe
    )
    backtest = re.search(r"\$\(LABKIT\) backtest --since (\S+) .*--strategy model --model (\S+)", recipe)
    # Act
    assert train and backtest
    seen_until = parse_instant(train[1]) + int(train[2]) * 60_000
    # Assert: the id train printed (never `latest`), and no backtest bar inside what it saw
    assert (
        backtest[2] == "$(DEMO_MODEL)"
        and "$(DEMO_TRAINED)" in makefile.split("DEMO_MODEL =")[1].splitlines()[0]
    )
    assert parse_instant(backtest[1]) >= seen_until
    assert "report train --model $(DEMO_MODEL)" in recipe
