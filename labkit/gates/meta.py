"""`meta`: refuse the primary strategy's entries a meta-label model gives too low a probability of paying.

A meta model (``labkit train --meta STRATEGY``) learnt, from the primary's own past entries, which
of them reached their profit barrier before their stop or time limit (AFML ch. 3.6). The primary
still decides the side; this gate only says whether to take the entry. It reads the per-bar
``meta_probability`` fact the meta-labeled strategy (`labkit.strategies.model.MetaLabeled`)
computes for the bars where the primary proposes BUY.

The gate is opt-in: it joins the chain only when ``gates.meta.model`` names a meta model
(``--meta ID|latest``); without one, runs, journals and trial identities are what they were
before it existed.
"""

from __future__ import annotations

import re

from pydantic import Field

from labkit.errors import ConfigError
from labkit.gates.base import BUY, Block, DecisionContext, Gate, GateConfig

# The fact the meta-labeled strategy provides and this gate reads.
FACT = "meta_probability"
REFERENCE = r"^(latest|meta-[0-9a-f]{12})$"


def meta_reference(value: str) -> str:
    """Return `value` if it names a meta model (an id or latest); else raise ConfigError naming ``--meta``."""
    if not re.fullmatch(REFERENCE, value):
        raise ConfigError(
            f"--meta: {value!r} is not a meta model id (they look like meta-3f9a1c2b7d4e; `labkit models` "
            "lists them) nor latest"
        )
    return value


class MetaConfig(GateConfig):
    model: str | None = Field(
        None,
        pattern=REFERENCE,
        description="the meta model: an id (labkit models) or latest, the newest for the primary strategy, "
        "symbol and timeframe; None leaves the gate out of the chain",
    )
    min_probability: float = Field(
        0.5, ge=0, lt=1, description="refuse entries whose meta probability is below this"
    )


class MetaGate(Gate):
    """Refuse the primary's entries whose meta-label probability of reaching the profit barrier is low."""

    name = "meta"
    order = 45
    reasons = ("meta_label_low",)
    Config = MetaConfig
    config: MetaConfig
    applies_to = frozenset({BUY})
    # The config key that puts this gate in the chain: without a meta model there is nothing to judge.
    opt_in = "model"

    def __init__(self, config: GateConfig | None = None) -> None:
        super().__init__(config)
        # The resolved meta model id (``latest`` names one only once loaded), for each refusal's detail.
        self.model_id: str | None = self.config.model

    def check(self, ctx: DecisionContext) -> Block | None:
        p = ctx.facts.get(FACT, float("nan"))
        if p >= self.config.min_probability:
            return None
        # NaN (no features yet, or no meta model loaded) is refused too: no estimate is no evidence.
        detail = {
            "p": None if p != p else round(p, 6),
            "min": self.config.min_probability,
            "model": self.model_id,
        }
        return Block(self.name, "meta_label_low", detail)

    def describe(self) -> str:
        return (
            f"meta: refuse entries whose meta-label probability (model {self.model_id}) is below "
            f"{self.config.min_probability:g}"
        )
