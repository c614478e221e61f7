from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(.*)$", requirement)
    assert match, requirement
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


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
    expected = dict(_name(dep) for dep in project["dependencies"] + _extra(project, "dev") + _extra(project, "lab"))
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
    assert set(tool["packages"]) == on_disk | {"labkit.notebooks"}
    assert tool["package-dir"] == {"labkit.notebooks": "notebooks"}
    assert tool["package-data"]["labkit.notebooks"] == ["*.ipynb"]
    assert (ROOT / "notebooks" / "__init__.py").is_file()


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


def test_gitignore_when_read_ignores_generated_data_and_reports():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/data/*" in ignored and "/reports/*" in ignored and ".venv/" in ignored


def test_ci_when_run_calls_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
