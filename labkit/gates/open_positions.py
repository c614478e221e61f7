"""`open_positions`: in a book, refuse an entry once `portfolio.max_open_positions` symbols are held."""

from __future__ import annotations

from labkit.gates.base import BUY, Block, DecisionContext, Gate, GateConfig


class OpenPositionsGate(Gate):
    """Refuse an entry in a book while portfolio.max_open_positions symbols are already held."""

    name = "open_positions"
    order = 72
    reasons = ("max_open_positions",)
    Config = GateConfig
    applies_to = frozenset({BUY})
    book_only = True

    def check(self, ctx: DecisionContext) -> Block | None:
        book = ctx.book
        if book is None or book.max_open_positions is None:
            return None
        if book.open_positions >= book.max_open_positions:
            detail = {"open": book.open_positions, "limit": book.max_open_positions}
            return Block(self.name, "max_open_positions", detail)
        return None

    def describe(self) -> str:
        return (
            "open_positions: refuse entries while portfolio.max_open_positions symbols are held (books only)"
        )
