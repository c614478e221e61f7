"""`load_bars`: a market's bars from any source, through the cache, for plain dates."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.api.inputs import home_path, instant_ms

if TYPE_CHECKING:
    import pandas as pd

# Where `load_bars` leaves the market on the frame, so `backtest` needs not be told it again.
MARKET_ATTRS = ("source", "symbol", "timeframe")


def load_bars(
    source: str,
    symbol: str,
    timeframe: str,
    since: Any,
    until: Any,
    *,
    home: str | Path | None = None,
) -> pd.DataFrame:
    """Return the bars of `symbol` `timeframe` from `source` whose open lies in ``[since, until)``.

    Parameters
    ----------
    source
        A source spec as ``--source`` takes it: ``synthetic``, ``csv:bars.csv``, ``ccxt:binance``...
        Exchange sources read and fill the home's cache.
    symbol, timeframe
        The market, e.g. ``"BTC/USDT"`` and ``"1m"``.
    since, until
        A date string, date, datetime, pandas Timestamp or epoch milliseconds (UTC without a zone).
    home
        The labkit home (its ``labkit.yaml``, cache and relative file paths); None: the usual one.

    Returns
    -------
    pandas.DataFrame
        open, high, low, close, volume indexed by the bars' UTC open times; ``attrs`` names the
        market, which `labkit.backtest` reads.

    Raises
    ------
    ConfigError
        For a date that is not one, an empty range, or a range that holds no bar.
    """
    from labkit.reports.research import load_bars as load_source_bars

    since_ms, until_ms = instant_ms(since, "since"), instant_ms(until, "until")
    bars = load_source_bars(home_path(home), source, symbol, timeframe, since_ms, until_ms)
    bars.attrs.update(dict(zip(MARKET_ATTRS, (source, symbol, timeframe), strict=True)))
    return bars


def synthetic_bars(symbol: str, timeframe: str, since: Any, until: Any, seed: int = 7) -> pd.DataFrame:
    """Return the embedded market's bars opening in ``[since, until)``, for plain dates or epoch ms.

    `labkit.data.synthetic.synthetic_bars` with `since` and `until` as `load_bars` takes them; no
    home or cache is involved.

    Examples
    --------
    >>> len(synthetic_bars("BTC/USDT", "1h", "2026-01-05", "2026-01-06"))
    24
    """
    from labkit.data.synthetic import synthetic_bars as generate

    bars = generate(symbol, timeframe, instant_ms(since, "since"), instant_ms(until, "until"), seed)
    bars.attrs.update(dict(zip(MARKET_ATTRS, ("synthetic", symbol, timeframe), strict=True)))
    return bars
