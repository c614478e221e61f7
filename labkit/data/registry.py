"""Data sources by kind: labkit's own (a module each in `labkit.data`) and plug-ins' (``labkit.sources``).

A source spec is ``KIND`` or ``KIND:ARG`` (``synthetic``, ``csv:bars.csv``, ``ccxt:binance``). A
source answers one question, `bars(symbol, timeframe, since_ms, until_ms)`, with validated bars
whose open lies in the half-open range.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labkit._plugins import discover, summary_line
from labkit.data.retry import DataConfig
from labkit.errors import ConfigError
from labkit.home import as_path
from labkit.timeutil import as_ms

if TYPE_CHECKING:
    import pandas as pd

GROUP = "labkit.sources"


@dataclass(frozen=True)
class SourceContext:
    """What opening a source may use: the home (relative paths, the cache) and the config."""

    home: Path
    seed: int = 7
    data: DataConfig = field(default_factory=DataConfig)
    exchanges: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    live: bool = False  # a clock-paced session: short retries, it must keep deciding


class Source(ABC):
    """A market data source. Subclass it in a module of `labkit.data` or in a plug-in.

    ``kinds`` are the spec prefixes it serves; ``argument`` names what follows the colon
    (``PATH``, ``EXCHANGE``), or is None when the kind takes nothing.
    """

    kinds: ClassVar[tuple[str, ...]] = ()
    argument: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every source, plug-ins' too, takes since/until as the notebook API does (a date string,
        # date, datetime, Timestamp or epoch ms) without each one converting them itself.
        super().__init_subclass__(**kwargs)
        if "bars" in cls.__dict__:
            cls.bars = _coerced_range(cls.__dict__["bars"])  # type: ignore[method-assign]

    order: ClassVar[int] = 100  # where `labkit sources` and error messages list it
    spec: str

    @classmethod
    @abstractmethod
    def open(cls, kind: str, arg: str, ctx: SourceContext) -> Source:
        """Return the source for ``kind:arg``."""

    @abstractmethod
    def bars(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pd.DataFrame:
        """Return validated bars with ``since_ms <= open < until_ms``."""

    def universe_bars(
        self, symbols: Sequence[str], timeframe: str, since_ms: int, until_ms: int
    ) -> dict[str, pd.DataFrame]:
        """Return each symbol's bars of a universe, in the order given: by default each on its own.

        A source whose symbols move together by construction (the synthetic market) overrides it.
        """
        return {symbol: self.bars(symbol, timeframe, since_ms, until_ms) for symbol in symbols}

    @classmethod
    def describe(cls) -> str:
        """Return the first line of the class docstring: what the source serves."""
        return summary_line(cls)


def _coerced_range(bars: Callable[..., pd.DataFrame]) -> Callable[..., pd.DataFrame]:
    @functools.wraps(bars)
    def coerced(self: Source, symbol: str, timeframe: str, since_ms: Any, until_ms: Any) -> pd.DataFrame:
        return bars(self, symbol, timeframe, as_ms(since_ms, "since"), as_ms(until_ms, "until"))

    return coerced


@functools.cache
def registered_sources() -> dict[str, type[Source]]:
    """Return every registered source class by kind."""
    sources = discover("labkit.data", Source, GROUP, key="kinds")
    return dict(sorted(sources.items(), key=lambda item: (item[1].order, item[0])))


def source_kinds() -> list[str]:
    """Return every kind as a user writes it: ``synthetic``, ``csv:PATH``, ``ccxt:EXCHANGE``..."""
    return [f"{kind}:{cls.argument}" if cls.argument else kind for kind, cls in registered_sources().items()]


def check_source_spec(spec: str) -> str:
    """Return `spec` when it names a registered kind with its argument, else raise ConfigError."""
    kind, colon, arg = spec.partition(":")
    cls = registered_sources().get(kind)
    if cls is not None and bool(cls.argument) == bool(arg) and (bool(colon) == bool(cls.argument)):
        return spec
    raise ConfigError(f"source: {spec!r} is not a source; allowed: {', '.join(source_kinds())}")


def open_source(
    spec: str,
    home: str | Path,
    seed: int = 7,
    *,
    data: DataConfig | None = None,
    exchanges: Mapping[str, Mapping[str, Any]] | None = None,
    live: bool = False,
) -> Source:
    """Return the source a spec names; file paths are relative to the home.

    `data` holds the cache and retry settings and `exchanges` ccxt's constructor options per
    exchange (the config's ``data`` and ``exchanges`` sections). Exchange sources read and fill
    the cache under ``data/ohlcv/``; `live` gives them the short retry policy of a clock-paced
    session, which must keep deciding (and say why it holds) during an outage.
    """
    check_source_spec(spec)
    kind, _, arg = spec.partition(":")
    ctx = SourceContext(
        home=as_path(home, "home"),
        seed=seed,
        data=data if data is not None else DataConfig(),
        exchanges=exchanges if exchanges is not None else {},
        live=live,
    )
    return registered_sources()[kind].open(kind, arg, ctx)
