"""`portfolio_heat`: in a book, refuse an entry that would put over `portfolio.max_heat` of equity at risk.

Heat is what the book loses if every open stop is hit: each open position's units times its entry
price less its stop (a position without a stop risks its whole cost), entries waiting for their
open included, plus the new entry's units times its stop distance.
"""

from __future__ import annotations

from labkit.gates.base import BUY, Block, DecisionContext, Gate, GateConfig


class PortfolioHeatGate(Gate):
    """Refuse an entry in a book when open stop risk plus its own would pass portfolio.max_heat x equity."""

    name = "portfolio_heat"
    order = 74
    reasons = ("portfolio_heat",)
    Config = GateConfig
    applies_to = frozenset({BUY})
    book_only = True

    def check(self, ctx: DecisionContext) -> Block | None:
        book = ctx.book
        if book is None or book.max_heat is None or not ctx.equity > 0:
            return None
        heat = (book.heat + book.entry_risk) / ctx.equity
        if not heat <= book.max_heat:  # NaN (an entry with no size) is refused too
            detail = {
                "heat": book.heat,
                "entry_risk": book.entry_risk,
                "equity": ctx.equity,
                "heat_fraction": heat,
                "limit": book.max_heat,
            }
            return Block(self.name, "portfolio_heat", detail)
        return None

    def describe(self) -> str:
        return "portfolio_heat: refuse entries putting over portfolio.max_heat of equity at stop risk (books)"
