"""Features: named, past-only functions of bars, each with its lookback, and the labels training learns."""
