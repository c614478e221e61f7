"""A sweep planned: its base configuration, each run's configuration and id, and where its bars are.

Every run is the base configuration (``labkit.yaml`` and ``LABKIT_*`` variables under the grid's
source, strategy, capital, seed and gates) with one entry of ``symbols`` (a symbol, or a book's
list of symbols), timeframe, window, set of costs and combination of parameters. Its id is
`labkit.research.trials.config_hash` of that configuration; a book's is that of its configuration
with the symbol list, joined by commas, as its symbol (`book_config`), the ``config_hash`` its
trial line holds. A combination its strategy refuses (``slow`` not above ``fast``) has no
configuration, and its id hashes the base configuration's hash with the run's grid values instead.

Workers never receive bars: they read them from a Parquet file by path and range. Cached sources
(ccxt, yfinance) are fetched once per symbol and timeframe, over every window, into the cache under
``data/ohlcv/``; synthetic bars and bar files are written once into the sweep's ``bars/`` folder.
A book reads each member's bars from the same files when its source serves a universe symbol by
symbol; a source that makes a universe as one market (the synthetic one) has each book's members
written under ``bars/books/``.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from labkit.config.loading import load_config, research_overrides
from labkit.config.schema import BrokerConfig, LabkitConfig, SessionConfig, strategy_config
from labkit.data.registry import Source
from labkit.errors import ConfigError
from labkit.home import check_symbol
from labkit.research.sweep.grid import Grid, book_symbols
from labkit.research.sweep.paths import sweep_paths
from labkit.research.trials import config_hash

# The results table's first and last columns; the strategy's parameters and the summary go between.
HEAD = ("run_id", "symbol", "symbols", "timeframe", "since", "until", "fee", "slippage")
TAIL = ("config_hash", "trial", "error", "seconds")

Index = tuple[int, int, int, int, int]  # symbol, timeframe, window, costs, parameters


@dataclass(frozen=True)
class Run:
    """One backtest of the grid: its id, its grid values (`key`) and its configuration.

    `config` is None when the strategy refuses the combination of parameters; `error` says why.
    `symbols` is the book's universe, in its order; a single-symbol run's is that symbol alone.
    """

    run_id: str
    index: Index
    key: dict[str, Any]
    config: LabkitConfig | None
    error: str | None = None
    symbols: tuple[str, ...] = ()

    @property
    def book(self) -> bool:
        """Return True when the run is a book over several symbols."""
        return len(self.symbols) > 1


def book_config(config: LabkitConfig, symbols: list[str] | tuple[str, ...]) -> LabkitConfig:
    """Return `config` with the book's symbols, joined by commas, as its symbol: what its id hashes.

    The same substitution `labkit.research.book_backtest.record_book_trial` makes for the book's
    trial, so a book run's id is its trial's ``config_hash``, as a single run's is.
    """
    session = config.session.model_copy(update={"symbol": ",".join(symbols)})
    return config.model_copy(update={"session": session})


class SweepPlan:
    """The runs of a grid in one home, built on demand from their index (none is kept)."""

    def __init__(self, grid: Grid, home: Path, environ: Mapping[str, str] | None = None) -> None:
        for i, entry in enumerate(grid.symbols):
            # Before anything is written: `..` names no market.
            if isinstance(entry, list):
                for k, symbol in enumerate(entry):
                    check_symbol(symbol, f"symbols[{i}][{k}]")
            else:
                check_symbol(entry, f"symbols[{i}]")
        self.grid = grid
        self.home = home
        self.paths = sweep_paths(home, grid.name)
        self.folder = self.paths.root
        first = grid.windows[0]
        overrides: dict[str, Any] = {
            "session.source": grid.source,
            "session.strategy": grid.strategy,
            "session.symbol": book_symbols(grid.symbols[0])[0],
            "session.timeframe": grid.timeframes[0],
            "session.since": first[0],
            "session.until": first[1],
            "session.capital": grid.capital,
            "session.seed": grid.seed,
            # Costs vary by run (`costs`): each run's broker is made from the base's.
            **research_overrides(gates=grid.gates, mode="paper"),
        }
        self.base = load_config(home, overrides, environ)
        self.base_hash = config_hash(self.base)
        self.brokers: list[BrokerConfig] = []
        for i, costs in enumerate(grid.costs):
            self.brokers.append(self._broker(i, costs.fee, costs.slippage))
        self.combinations = grid.param_combinations()
        self.strategy_params = self._strategy_params()
        self.param_columns = {
            name: f"param_{name}" if name in HEAD or name in TAIL else name
            for name in type(strategy_config(self.base)).model_fields
        }
        self._sessions: dict[tuple[int, int, int], SessionConfig] = {}
        self._source: Source | None = None

    @property
    def total(self) -> int:
        """Return how many runs the grid holds."""
        return self.grid.runs

    def max_run_bars(self) -> int:
        """Return the bars of the longest run (the widest window at the shortest timeframe)."""
        from labkit.timeutil import parse_instant, timeframe_ms

        shortest = min(timeframe_ms(tf) for tf in self.grid.timeframes)
        widest = max(parse_instant(hi) - parse_instant(lo) for lo, hi in self.grid.windows)
        return -(-widest // shortest)

    def runs(self) -> Iterator[Run]:
        """Yield every run, symbols outermost and parameters innermost."""
        g = self.grid
        dims = (g.symbols, g.timeframes, g.windows, self.brokers, self.combinations)
        for index in itertools.product(*(range(len(d)) for d in dims)):
            yield self.run(index)  # type: ignore[arg-type]

    def run(self, index: Index) -> Run:
        """Return the run at `index` (symbol, timeframe, window, costs, parameters)."""
        s, t, w, c, p = index
        g = self.grid
        broker = self.brokers[c]
        session = self._session(s, t, w)
        params = self.strategy_params[p]
        symbols = tuple(book_symbols(g.symbols[s]))
        key: dict[str, Any] = {
            "symbol": ",".join(symbols),
            "symbols": len(symbols),
            "timeframe": session.timeframe,
            "since": session.since,
            "until": session.until,
            "fee": broker.fee,
            "slippage": broker.slippage,
        }
        if isinstance(params, str):
            shown = {**strategy_config(self.base).model_dump(mode="json"), **self.combinations[p]}
            key.update({self.param_columns[name]: value for name, value in shown.items()})
            # `symbols` left out: `symbol` names a book's every symbol, and a refused run of a sweep
            # made before books keeps its id.
            hashed_key = {k: v for k, v in key.items() if k != "symbols"}
            digest = orjson.dumps({"base": self.base_hash, "key": hashed_key}, option=orjson.OPT_SORT_KEYS)
            run_id = hashlib.sha256(digest).hexdigest()[:16]
            return Run(run_id, index, key, None, params, symbols)
        key.update({self.param_columns[k]: v for k, v in params.model_dump(mode="json").items()})
        strategies = self.base.strategies.model_copy(update={g.strategy: params})
        config = self.base.model_copy(update={"session": session, "broker": broker, "strategies": strategies})
        hashed = book_config(config, symbols) if len(symbols) > 1 else config
        return Run(config_hash(hashed), index, key, config, None, symbols)

    def bars_path(self, symbol: str, timeframe: str) -> Path:
        """Return the Parquet file a worker reads the bars of `symbol` and `timeframe` from.

        One file per exact symbol (`labkit.data.cache.symbol_folder`): ``BTC/USDT`` and ``BTC-USDT``
        never read each other's bars.

        Raises
        ------
        ConfigError
            When `symbol` has no letter or digit (``..``): it names no market.
        """
        from labkit.data.cache import cache_path, safe_name, symbol_folder

        if self.cached_source:
            return cache_path(self.home, self.source().spec, symbol, timeframe)
        return self.folder / "bars" / symbol_folder(symbol) / f"{safe_name(timeframe)}.parquet"

    def member_bars_path(self, symbols: tuple[str, ...], symbol: str, timeframe: str) -> Path:
        """Return the Parquet file a worker reads the bars of `symbol`, a member of the book `symbols`, from.

        A source serving a universe symbol by symbol serves each member as alone: the single-symbol
        file (`bars_path`). One that makes the universe as one market has a folder per book.
        """
        from labkit.data.cache import safe_name, symbol_folder

        if not self.universe_as_one:
            return self.bars_path(symbol, timeframe)
        digest = hashlib.sha256("\n".join(symbols).encode()).hexdigest()[:16]
        return (
            self.folder
            / "bars"
            / "books"
            / digest
            / symbol_folder(symbol)
            / f"{safe_name(timeframe)}.parquet"
        )

    @property
    def universe_as_one(self) -> bool:
        """Return True when the source makes a universe as one market (its own `Source.universe_bars`)."""
        return type(self.source()).universe_bars is not Source.universe_bars

    def source(self) -> Source:
        """Return the grid's data source, opened once."""
        from labkit.data.registry import open_source

        if self._source is None:
            s = self.base.session
            self._source = open_source(
                s.source, self.home, s.seed, data=self.base.data, exchanges=self.base.exchanges
            )
        return self._source

    @property
    def cached_source(self) -> bool:
        """Return True when the source fetches into the cache (ccxt, yfinance)."""
        from labkit.data.cache import CachedSource
        from labkit.data.registry import registered_sources

        return issubclass(registered_sources()[self.grid.source.partition(":")[0]], CachedSource)

    def prepare_bars(self, markets: set[tuple[tuple[str, ...], str]]) -> None:
        """Put the bars of each (symbols, timeframe) in `markets`, over every window, where workers read them.

        `symbols` is a run's symbol alone or a book's universe. A cached source fetches what its
        cache lacks (once, over the merged windows); synthetic bars and bar files are written to the
        sweep's ``bars/`` folder, atomically; a book of a source that makes a universe as one market
        has its members written together (`member_bars_path`).
        """
        import pandas as pd

        from labkit._io import write_atomic
        from labkit.data.cache import CachedSource, merge_ranges
        from labkit.timeutil import parse_instant

        source = self.source()
        ranges = merge_ranges([[parse_instant(lo), parse_instant(hi)] for lo, hi in self.grid.windows])
        books = {(s, tf) for s, tf in markets if len(s) > 1 and self.universe_as_one}
        for symbols, timeframe in sorted(books):
            parts = [source.universe_bars(list(symbols), timeframe, lo, hi) for lo, hi in ranges]
            for symbol in symbols:
                frames = [part[symbol] for part in parts]
                bars = frames[0] if len(frames) == 1 else pd.concat(frames)
                write_atomic(self.member_bars_path(symbols, symbol, timeframe), bars.to_parquet)
        singles = {(symbol, tf) for s, tf in markets if (s, tf) not in books for symbol in s}
        for symbol, timeframe in sorted(singles):
            if isinstance(source, CachedSource):
                for lo, hi in ranges:
                    source.fetch(symbol, timeframe, lo, hi)
                continue
            frames = [source.bars(symbol, timeframe, lo, hi) for lo, hi in ranges]
            bars = frames[0] if len(frames) == 1 else pd.concat(frames)
            write_atomic(self.bars_path(symbol, timeframe), bars.to_parquet)

    def _session(self, s: int, t: int, w: int) -> SessionConfig:
        found = self._sessions.get((s, t, w))
        if found is None:
            since, until = self.grid.windows[w]
            # A book's session holds its first symbol; its run id and trial name every one (`book_config`).
            symbol = book_symbols(self.grid.symbols[s])[0]
            update = {"symbol": symbol, "timeframe": self.grid.timeframes[t]}
            data = {**self.base.session.model_dump(), **update, "since": since, "until": until}
            found = self._sessions[(s, t, w)] = SessionConfig.model_validate(data)
        return found

    def _broker(self, i: int, fee: float | None, slippage: float | None) -> BrokerConfig:
        broker = BrokerConfig(
            fee=self.base.broker.fee if fee is None else fee,
            slippage=self.base.broker.slippage if slippage is None else slippage,
        )
        for j, other in enumerate(self.brokers):
            if other == broker:
                raise ConfigError(f"costs[{i}]: the same costs as costs[{j}] once the defaults are filled in")
        return broker

    def _strategy_params(self) -> list[BaseModel | str]:
        # Each combination once: its validated parameters, or why the strategy refuses it.
        config_class = type(strategy_config(self.base))
        base = strategy_config(self.base).model_dump()
        out: list[BaseModel | str] = []
        for combination in self.combinations:
            try:
                out.append(config_class.model_validate({**base, **combination}))
            except ValidationError as exc:
                err = exc.errors()[0]
                path = ".".join(["strategies", self.grid.strategy, *(str(p) for p in err["loc"])])
                out.append(f"{path}: {str(err['msg']).removeprefix('Value error, ')}")
        return out
