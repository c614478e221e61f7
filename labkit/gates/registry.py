"""The gate chain by name: labkit's own gates (a module each) and plug-ins' (``labkit.gates``).

Gates run in their ``order``, whatever order a config lists them in; the `data` gate cannot be
disabled, because no decision can be taken without data.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from labkit._plugins import discover
from labkit.gates.base import Gate, GateConfig

GROUP = "labkit.gates"


@functools.cache
def registered_gates() -> dict[str, type[Gate]]:
    """Return every registered gate class by stage name, in chain order."""
    gates = discover("labkit.gates", Gate, GROUP)
    return dict(sorted(gates.items(), key=lambda item: (item[1].order, item[0])))


def default_enabled() -> tuple[str, ...]:
    """Return the stages a default config enables: every registered gate, in chain order."""
    return tuple(registered_gates())


def chain_order(names: Iterable[str]) -> tuple[str, ...]:
    """Return `names` in chain order; raise ValueError naming an unknown stage or a missing `data`."""
    gates = registered_gates()
    names = tuple(names)
    unknown = [name for name in names if name not in gates]
    if unknown:
        raise ValueError(f"unknown gate {unknown[0]!r}; allowed: {', '.join(gates)}")
    if "data" not in names:
        raise ValueError("the data gate cannot be disabled: no decision without data")
    return tuple(name for name in gates if name in names)


def build_chain(enabled: Iterable[str], configs: Mapping[str, GateConfig]) -> list[Gate]:
    """Return the enabled gates in chain order, each built with its config (default when absent)."""
    gates = registered_gates()
    return [gates[name](configs.get(name)) for name in chain_order(enabled)]
