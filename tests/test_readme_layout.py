"""The README's Layout section names what the checkout holds: no folder missing, none invented."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _layout() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block, "the Layout section holds one code block"
    return block.group(1)


def test_readme_layout_when_read_names_every_package_folder_and_no_other():
    # Arrange
    layout = _layout()
    packages = {p.name for p in (ROOT / "labkit").iterdir() if p.is_dir() and not p.name.startswith("_")}
    # Act: the lines indented under labkit/ name its folders
    named = set(re.findall(r"^  (\w+)/? ", layout, re.M))
    # Assert
    assert named == packages


def test_readme_layout_when_read_names_every_notebook_doc_and_benchmark():
    layout = _layout()
    for path in [*(ROOT / "notebooks").rglob("*.ipynb"), *(ROOT / "benchmarks").glob("*.py")]:
        assert path.stem in layout, path
    for path in (ROOT / "docs").glob("*.md"):
        assert path.stem in layout, path
    for folder in ("labkit", "notebooks", "docs", "examples", "tests", "benchmarks", "data", "reports"):
        assert f"\n{folder}/" in f"\n{layout}", folder
    for example in (ROOT / "examples").iterdir():
        assert example.name in layout, example
