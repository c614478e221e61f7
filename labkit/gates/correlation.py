"""`correlation`: in a book, an entry that duplicates an open position's risk is scaled down or refused.

When the entry's returns over `portfolio.correlation_window` bars correlate above
`portfolio.max_correlation` with an open position (long-only: the same side), its size is multiplied
by `portfolio.correlated_scale` (the engine does it, and the line's detail says so); at a scale of 0
this gate refuses it, naming the symbol it duplicates.
"""

from __future__ import annotations

from typing import Any

from labkit.gates.base import BUY, Block, BookFacts, DecisionContext, Gate, GateConfig


class CorrelationGate(Gate):
    """Refuse an entry in a book correlated above portfolio.max_correlation with an open one (at scale 0)."""

    name = "correlation"
    order = 76
    reasons = ("correlated_exposure",)
    Config = GateConfig
    applies_to = frozenset({BUY})
    book_only = True

    def check(self, ctx: DecisionContext) -> Block | None:
        book = ctx.book
        found = None if book is None or book.correlated_scale > 0 else most_correlated(book)
        if found is None:
            return None
        assert book is not None
        detail: dict[str, float | str | None] = {
            "correlated_with": found[0],
            "correlation": found[1],
            "limit": book.max_correlation,
        }
        return Block(self.name, "correlated_exposure", detail)

    def describe(self) -> str:
        return "correlation: scale down, or at scale 0 refuse, entries correlated with an open one (books)"


def most_correlated(book: BookFacts) -> tuple[str, float] | None:
    """Return the open symbol most correlated with the entry, when above `max_correlation`; else None."""
    if book.max_correlation is None or not book.correlations:
        return None
    symbol, c = max(book.correlations.items(), key=lambda item: item[1])
    return (symbol, c) if c > book.max_correlation else None


def correlated_scale(book: BookFacts) -> tuple[float, dict[str, Any]]:
    """Return what an entry's size is multiplied by for its correlation with open positions, and why.

    The book engine applies it to an entry this gate let through (`correlated_scale` above 0).
    """
    found = most_correlated(book)
    if found is None:
        return 1.0, {}
    scale = book.correlated_scale
    return scale, {"correlated_with": found[0], "correlation": found[1], "scaled_by": scale}
