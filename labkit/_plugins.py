"""Finding gates, strategies and sources: labkit's own modules, then plug-ins' entry points.

A built-in is a class defined in a module of its package (``labkit/gates/halt.py``): adding one
is adding a file. A plug-in is a class its own distribution names in an entry-point group
(``labkit.gates``, ``labkit.strategies``, ``labkit.sources``), so users extend labkit without
forking it. A plug-in that fails to load, or takes a name labkit already uses, is skipped with a
warning that names it; it never stops the built-ins from working.
"""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
from importlib.metadata import entry_points
from typing import Any

log = logging.getLogger(__name__)
_SKIP = {"base", "registry"}


def discover(package: str, base: Any, group: str, key: str = "name") -> dict[str, Any]:
    """Return the concrete subclasses of `base` found in `package` and in entry-point `group`.

    Each class is keyed by its `key` attribute; built-ins come first, in module order.
    """
    found: dict[str, Any] = {}
    pkg = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name in _SKIP or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        for obj in vars(module).values():
            if _is_concrete(obj, base) and obj.__module__ == module.__name__:
                for name in _keys(obj, key):
                    found[name] = obj
    for ep in _entry_points().select(group=group):
        origin = f"{ep.dist.name if ep.dist else 'unknown'} ({ep.value})"
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plug-in must not take labkit down with it
            log.warning("plug-in %s in %s failed to load: %s", ep.name, group, exc)
            continue
        if not _is_concrete(obj, base):
            log.warning("plug-in %s in %s is not a %s; skipped", origin, group, base.__name__)
            continue
        for name in _keys(obj, key):
            if name in found:
                log.warning("plug-in %s in %s reuses the name %r; skipped", origin, group, name)
                continue
            found[name] = obj
    return found


@functools.cache
def _entry_points() -> Any:
    # Reading every installed distribution's metadata is the slow part (~30 ms); gates, strategies
    # and sources each ask, so it is read once per process. (Python 3.11 returns SelectableGroups,
    # 3.12 EntryPoints: both select by group.)
    return entry_points()


def origin(cls: type[Any]) -> str:
    """Return where a registered class comes from: ``labkit`` or the plug-in's module."""
    module = cls.__module__
    return "labkit" if module == "labkit" or module.startswith("labkit.") else module.split(".")[0]


def summary_line(cls: type[Any]) -> str:
    """Return the first line of a class's docstring as plain text: what the class does."""
    text = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
    return text.replace("``", "").replace("`", "")


def _is_concrete(obj: Any, base: type[Any]) -> bool:
    return (
        isinstance(obj, type)
        and issubclass(obj, base)
        and obj is not base
        and not getattr(obj, "__abstractmethods__", None)
    )


def _keys(cls: type[Any], key: str) -> tuple[str, ...]:
    value = getattr(cls, key, None)
    if isinstance(value, str):
        return (value,)
    return tuple(value or ())
