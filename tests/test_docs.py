"""The user docs keep up with the code: every reason code, config key and journal field is documented.

A gate, a config key or a journal field added later makes these tests fail until docs/ says what it
is. Plug-ins installed in the environment document themselves and are left out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from labkit._plugins import origin
from labkit.config.schema import LabkitConfig
from labkit.engine.journal import FIELDS, PASSED
from labkit.engine.portfolio import Portfolio
from labkit.gates.registry import registered_gates
from labkit.strategies.registry import registered_strategies

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _text(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _own_gates() -> dict[str, Any]:
    return {name: cls for name, cls in registered_gates().items() if origin(cls) == "labkit"}


def _plugin_sections() -> set[str]:
    gates = {f"gates.{n}" for n, cls in registered_gates().items() if origin(cls) != "labkit"}
    strategies = {f"strategies.{n}" for n, cls in registered_strategies().items() if origin(cls) != "labkit"}
    return gates | strategies


def config_keys(model: type[BaseModel] = LabkitConfig, prefix: str = "") -> list[str]:
    """Return every key of the config schema, dotted (``gates.turnover.min_ratio``).

    A section without keys of its own (``gates.halt``) is a key itself, so it is documented too.
    """
    keys = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += config_keys(annotation, f"{key}.") if annotation.model_fields else [key]
        else:
            keys.append(key)
    return keys


def _fill_keys() -> set[str]:
    book = Portfolio.start(1_000.0)
    book.pending_reason = "emergency_stop"  # an order from a command carries its reason
    entry = book.fill(1, 100.0, 0.001, 0.0, 1.0, 0)
    exit_ = book.fill(-1, 101.0, 0.001, 0.0, 1.0, 1)
    assert entry is not None and exit_ is not None
    return set(entry) | set(exit_)


def _code(word: str) -> str:
    return f"`{word}`"


@pytest.mark.parametrize(
    ("stage", "reason"),
    [(name, reason) for name, cls in _own_gates().items() for reason in cls.reasons]
    + [("passed", "already_flat"), ("data", "data_unavailable")],
)
def test_gates_doc_when_read_names_every_reason_code(stage, reason):
    # Arrange
    doc = _text("gates.md")
    # Act
    section = doc.split(f"### `{stage}`", 1)[-1].split("\n### ", 1)[0] if stage != "passed" else doc
    # Assert
    assert _code(stage) in doc and _code(reason) in section, f"docs/gates.md: {stage} {reason}"


@pytest.mark.parametrize("name", list(_own_gates()))
def test_gates_doc_when_read_names_each_gate_config_key_in_its_section(name):
    # Arrange
    section = _text("gates.md").split(f"### `{name}`", 1)
    keys = list(_own_gates()[name].Config.model_fields)
    # Act
    missing = [key for key in keys if len(section) < 2 or _code(key) not in section[1].split("\n### ", 1)[0]]
    # Assert
    assert len(section) == 2, f"docs/gates.md has no section ### `{name}`"
    assert missing == [], f"docs/gates.md, {name}: {missing}"


def test_gates_doc_when_read_lists_the_chain_in_order():
    # Arrange
    doc = _text("gates.md")
    # Act
    headings = re.findall(r"^### `([a-z_]+)`", doc, re.M)
    # Assert
    assert headings == list(_own_gates())
    assert " -> ".join(_own_gates()) in doc


def test_config_keys_when_walked_include_nested_sections():
    # Arrange / Act
    keys = config_keys()
    # Assert: the walk really descends into sections, per-gate and per-strategy ones included
    assert {"session.capital", "gates.enabled", "gates.turnover.min_ratio", "strategies.sma_cross.fast"} <= set(keys)
    assert "gates.halt" in keys and "exchanges" in keys


@pytest.mark.parametrize(
    "key", [k for k in config_keys() if not any(k.startswith(f"{s}.") or k == s for s in _plugin_sections())]
)
def test_config_doc_when_read_names_every_key(key):
    # Arrange / Act
    doc = _text("config.md")
    # Assert
    assert _code(key) in doc, f"docs/config.md does not document {key}"


@pytest.mark.parametrize("variable", ["LABKIT_PAPER_MIN_RATIO", "LABKIT_PAPER_MAX_DAILY", "LABKIT_HOME"])
def test_config_doc_when_read_names_the_variables_that_are_not_keys(variable):
    assert _code(variable) in _text("config.md")


@pytest.mark.parametrize("field", FIELDS)
def test_journal_doc_when_read_names_every_field(field):
    assert f"| `{field}` |" in _text("journal.md"), f"docs/journal.md does not document {field}"


@pytest.mark.parametrize("key", sorted(set(PASSED) | _fill_keys() | {"late_bars", "cancelled_order_seq"}))
def test_journal_doc_when_read_names_every_trace_and_fill_key(key):
    assert _code(key) in _text("journal.md"), f"docs/journal.md does not document {key}"


@pytest.mark.parametrize("path", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_user_doc_when_read_links_only_to_files_that_exist_and_never_to_design_md(path):
    # Arrange
    text = path.read_text(encoding="utf-8")
    # Act
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    missing = [t for t in targets if "://" not in t and not (path.parent / t).exists()]
    # Assert
    assert missing == []
    assert "DESIGN.md" not in text


def test_notebooks_and_labkit_when_read_never_mention_design_md():
    # Arrange: users have the package, its notebooks and docs/, never a file they were not given
    paths = [*(ROOT / "notebooks").rglob("*.ipynb"), *(ROOT / "labkit").rglob("*.py")]
    # Act
    mentions = [p.relative_to(ROOT) for p in paths if "DESIGN.md" in p.read_text(encoding="utf-8")]
    # Assert
    assert mentions == []
