"""What the engine tells whoever runs it, besides the journal: each fill and each gate verdict.

A backtest keeps its fills for the round trips and counts what the gates refused without writing
a journal; a session logs. Either passes an `Observer` to the engine and overrides what it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from labkit.gates.base import Block


class Observer:
    """Hears the engine's fills and verdicts as they happen; the base class ignores them all."""

    def on_fill(self, ts: int, fill: Mapping[str, Any]) -> None:
        """A fill on the bar opening at `ts` (epoch ms): an order at its open, or an exit at its level."""

    def on_verdict(self, ts: int, proposed: str, block: Block | None) -> None:
        """The gates' verdict on the bar opening at `ts`: every block, and every entry let through.

        Every block is heard (`block` is the first gate's refusal, in chain order), and so is every
        entry proposal that passed (`block` None): whether a gate let an entry through says as much
        as its refusals do. HOLDs and exits that passed, nearly every bar, are not.
        """
