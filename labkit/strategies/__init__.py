"""Strategies: bars in, proposals out (BUY, SELL or HOLD per bar, with a confidence)."""
