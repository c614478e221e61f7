"""Where labkit keeps its files: one home, so every command finds the same sessions and reports."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from labkit._version import __version__
from labkit.errors import ConfigError

# A session's or a sweep's name is one directory under the home's data/: no separator, no "..", no
# hidden directory, nothing a shell, a systemd unit name, a crontab line or a URL would read
# differently. Sessions and sweeps share it, so whatever one command may create, another may list.
NAME_RULE = "use letters, digits, '_', '.' or '-' (at most 64, not starting with '.' or '-', no '..')"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)


def is_name(name: object) -> bool:
    """Return True when `name` may name a session or a sweep (`NAME_RULE`).

    Examples
    --------
    >>> is_name("sma-2026.01"), is_name("a..b"), is_name(".hidden")
    (True, False, False)
    """
    return isinstance(name, str) and _NAME.fullmatch(name) is not None and ".." not in name


def check_name(name: object, key: str) -> str:
    """Return `name` when it may name a session or a sweep, else raise ConfigError naming `key`."""
    if not is_name(name):
        shown = repr(name) if len(repr(name)) <= 80 else f"{repr(name)[:70]}... ({len(str(name))} characters)"
        raise ConfigError(f"{key}: {NAME_RULE} (got {shown})")
    return str(name)


# A symbol is the market's own spelling (BTC/USDT, ^GSPC, EURUSD=X) and is kept exactly; only one
# with no letter or digit is refused: made of dots or separators, it names no market, and as a
# folder name it would climb out of the cache or hide in it.
SYMBOL_RULE = (
    "a symbol needs a letter or a digit, as the market spells it (BTC/USDT, ^GSPC, SPY); "
    "one made only of dots or separators names no market"
)


def is_symbol(symbol: object) -> bool:
    """Return True when `symbol` may name a market (`SYMBOL_RULE`).

    Examples
    --------
    >>> is_symbol("BTC/USDT"), is_symbol("^GSPC"), is_symbol(".."), is_symbol("/")
    (True, True, False, False)
    """
    return isinstance(symbol, str) and any(c.isalnum() for c in symbol)


def check_symbol(symbol: object, key: str) -> str:
    """Return `symbol` when it may name a market, else raise ConfigError naming `key` and the rule."""
    if not is_symbol(symbol):
        shown = repr(symbol) if len(repr(symbol)) <= 80 else f"{repr(symbol)[:70]}..."
        raise ConfigError(f"{key}: {shown} is not a symbol: {SYMBOL_RULE}")
    return str(symbol)


def as_path(value: object, field: str) -> Path:
    """Return `value` (a str or any os.PathLike, e.g. a Path) as a Path, else raise ConfigError.

    Notebook users pass plain strings where labkit's loaders work on Paths; anything else (a
    number, None, a list) would fail later with a TypeError that names no argument.
    """
    if isinstance(value, Path):
        return value
    if isinstance(value, str | os.PathLike):
        return Path(value)
    raise ConfigError(f"{field}: {value!r} is not a path; give a str or a pathlib.Path")


def home_arg(home: object, field: str = "home") -> Path:
    """Return the home a function's `home` argument names: a str or Path, or None/"" for the usual one.

    The notebook-facing functions take the home as a user writes it, through `resolve_home`, and
    refuse anything else by name rather than with a TypeError from deep inside.
    """
    if home is None or home == "":
        return resolve_home(None)
    return _directory(str(as_path(home, field)), field)


def resolve_home(flag: str | None = None) -> Path:
    """Return the home: ``--home``, else ``LABKIT_HOME``, else the checkout labkit runs from, else cwd.

    Raises
    ------
    ConfigError
        When the home given is a file, or lies under one (naming ``--home`` or ``LABKIT_HOME``).
    """
    if flag:
        return _directory(flag, "--home")
    env = os.environ.get("LABKIT_HOME")
    if env:
        return _directory(env, "LABKIT_HOME")
    checkout = _checkout()
    return checkout if checkout is not None else Path.cwd()


def _directory(given: str, name: str) -> Path:
    if "\0" in given:
        raise ConfigError(f"{name}: {given!r} has a NUL character; give the path of a directory")
    path = Path(given).expanduser().resolve()
    # A home that does not exist yet is made by the first command that writes; whatever part of it
    # exists must be directories, or that command would fail half-way with an OS error.
    for part in (path, *path.parents):
        if os.path.isdir(part):
            break
        if os.path.lexists(part):
            where = "is a file" if part == path else f"is under {part}, which is a file"
            raise ConfigError(f"{name}: {path} {where}; give a directory (it is created if missing)")
    return path


def _checkout() -> Path | None:
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "labkit"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def code_version() -> str:
    """Return labkit's version and, in a checkout, its git commit (``+dirty`` when modified)."""
    version = __version__
    root = _checkout()
    if root is None:
        return version
    try:
        commit = _git(root, "rev-parse", "--short=12", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+g{commit}{'.dirty' if dirty else ''}"


def git_commit() -> str | None:
    """Return the full git commit labkit runs from, in a checkout; None elsewhere."""
    root = _checkout()
    if root is None:
        return None
    try:
        return _git(root, "rev-parse", "HEAD") or None
    except (OSError, subprocess.SubprocessError):
        return None


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=5, check=True)
    return done.stdout.strip()
