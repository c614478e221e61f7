from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(.*)$", requirement)
    assert match, requirement
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


def test_environment_yml_when_compared_mirrors_pyproject_dependencies_and_dev_tools():
    # Arrange
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    # Act
    expected = dict(_name(dep) for dep in project["dependencies"] + project["optional-dependencies"]["dev"])
    conda = [dep for dep in env["dependencies"] if isinstance(dep, str)]
    pip_section = next(dep["pip"] for dep in env["dependencies"] if isinstance(dep, dict))
    result = dict(_name(dep) for dep in conda if not dep.startswith(("python", "pip")))
    # Assert
    assert result == expected
    assert "python=3.11" in conda and env["channels"] == ["conda-forge"]
    assert "-e ." in pip_section


def test_gitignore_when_read_ignores_generated_data_and_reports():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/data/*" in ignored and "/reports/*" in ignored and ".venv/" in ignored


def test_ci_when_run_calls_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
