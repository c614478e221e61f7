"""What the command handlers share: the home, config overrides from flags, confirmations, progress."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from labkit.errors import ConfigError

# A range longer than this is announced, and confirmed first on a terminal.
CONFIRM_BARS = 5_000_000


# Config keys and the flags that set them, so an error can name what the user typed.
FLAGS = {
    "session.name": "--session",
    "session.mode": "--mode",
    "session.symbol": "--symbol",
    "session.timeframe": "--timeframe",
    "session.interval": "--interval",
    "session.capital": "--capital",
    "session.source": "--source",
    "session.pace": "--pace",
    "session.since": "--since",
    "session.until": "--until",
    "session.max_bars": "--max-bars",
    "session.strategy": "--strategy",
    "strategies.sma_cross.fast": "--fast",
    "strategies.sma_cross.slow": "--slow",
    "strategies.sma_cross": "--fast, --slow",
    "session.seed": "--seed",
    "session.calendar": "--calendar",
    "broker.fee": "--fee",
    "broker.slippage": "--slippage",
    "serve.host": "--host",
    "serve.port": "--port",
}


def with_flags(message: str) -> str:
    for key, flag in FLAGS.items():
        message = message.replace(f"{key}:", f"{key} ({flag}):")
    return message


def home_of(args: argparse.Namespace) -> Path:
    """Return the home of a command; a --session it was given is checked first.

    Every command that names a session asks for its home before it touches a file, so a name like
    ``../x`` is refused here even by commands that hand it on without a path (``schedule``).
    """
    from labkit.home import resolve_home
    from labkit.session.paths import check_session_name

    if getattr(args, "session", None) is not None:
        check_session_name(args.session)
    return resolve_home(args.home)


def check_finite_flags(args: argparse.Namespace) -> None:
    """Refuse a number flag given as inf or nan (argparse's float() reads both), naming the flag."""
    for dest, value in vars(args).items():
        if isinstance(value, float) and not math.isfinite(value):
            flag = "--" + dest.replace("_", "-")
            raise ConfigError(f"{flag}: {value} is not a finite number; give a plain number (e.g. 1.5)")


def load(args: argparse.Namespace, overrides: dict[str, Any]) -> Any:
    from labkit.config.loading import load_config

    return load_config(home_of(args), overrides)


def session_overrides(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    dest = {
        "session": "session.name",
        "fast": "strategies.sma_cross.fast",
        "slow": "strategies.sma_cross.slow",
        "model": "strategies.model.model",
    }
    return {dest.get(n, f"session.{n}"): getattr(args, n, None) for n in names}


def confirm_size(bars: int, what: str, yes: bool) -> None:
    """Announce a run of more than `CONFIRM_BARS` bars; on a terminal, ask first unless `yes`.

    Parameters
    ----------
    bars
        How many bars the run is about to decide.
    what
        What they are, for the announcement (symbol, timeframe, source).
    yes
        True when ``--yes`` was given: announce, but do not ask.

    Raises
    ------
    ConfigError
        When the question is answered with anything but yes.
    """
    if bars <= CONFIRM_BARS:
        return
    print(f"about to run {bars:,} bars of {what}", file=sys.stderr, flush=True)
    if yes or not _interactive():
        return  # a script or a pipe cannot answer; the count above stays in its log
    print("continue? [y/N] ", end="", file=sys.stderr, flush=True)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise ConfigError(
            f"--yes: not confirmed, nothing was run; pass --yes to run {bars:,} bars without being "
            "asked, or narrow --since/--until/--max-bars"
        )


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


@contextmanager
def bar_progress(total: int, desc: str, unit: str = "bar") -> Iterator[Callable[[int], object] | None]:
    """Yield a progress bar's ``update`` on a terminal (None elsewhere) for `total` bars (or `unit`s)."""
    if not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, unit=unit, desc=desc, file=sys.stderr) as bar:
        yield bar.update


def fetch_kinds() -> list[str]:
    """Return the source kinds that fetch into the cache (what `labkit data fetch` takes)."""
    from labkit.data.cache import CachedSource
    from labkit.data.registry import registered_sources

    return [
        f"{kind}:{cls.argument}" if cls.argument else kind
        for kind, cls in registered_sources().items()
        if issubclass(cls, CachedSource)
    ]


def book_symbols_of(args: argparse.Namespace, config: Any) -> list[str] | None:
    """Return the book's symbols (``--symbols`` or ``--universe``), or None for a single symbol."""
    from labkit.research.book_backtest import book_symbols

    symbols, universe = getattr(args, "symbols", None), getattr(args, "universe", None)
    if symbols is None and universe is None:
        return None
    flag = "--symbols" if symbols is not None else "--universe"
    if args.symbol is not None:
        raise ConfigError(f"{flag}: give it or --symbol, not both (a book of one symbol is --symbol)")
    return book_symbols(config, symbols, universe)
