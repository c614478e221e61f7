"""`correlation`: in a book, an entry that duplicates an open position's risk is scaled down or refused.

When the entry's returns over `portfolio.correlation_window` bars correlate above
`portfolio.max_correlation` with an open position (long-only: the same side), its size is multiplied
by `portfolio.correlated_scale` (the engine does it, and the line's detail says so); at a scale of 0
this gate refuses it, naming the symbol it duplicates.
"""

from __future__ import annotations

from labkit.gates.base import BUY, Block, DecisionContext, Gate, GateConfig


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
        if book is None or book.max_correlation is None or not book.correlations or book.correlated_scale > 0:
            return None
        symbol, c = max(book.correlations.items(), key=lambda item: item[1])
        if c > book.max_correlation:
            detail: dict[str, float | str] = {
                "correlated_with": symbol,
                "correlation": c,
                "limit": book.max_correlation,
            }
            return Block(self.name, "correlated_exposure", detail)
        return None

    def describe(self) -> str:
        return "correlation: scale down, or at scale 0 refuse, entries correlated with an open one (books)"
