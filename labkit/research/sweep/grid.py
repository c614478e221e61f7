"""The grid file of a sweep: what to vary, read strictly and refused with the key path at fault.

A grid is a small YAML mapping (`Grid`); every list is a dimension of the sweep and every
combination is one backtest. The shape and types are checked by pydantic; the values by the same
rules a backtest applies (timeframes, instants, the strategy's own config class), each error naming
its key path (``params.fast[2]``) and what is allowed.
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo

from labkit.errors import ConfigError
from labkit.home import NAME_RULE, is_name

# A grid is a page of YAML; past this it is not a grid anyone wrote.
MAX_GRID_BYTES = 1 << 20
# The runs of one sweep are kept in memory while it runs (their rows and return blocks).
MAX_RUNS = 100_000

_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class Costs(BaseModel):
    """One set of trading costs; a key left out takes the home's ``broker`` value."""

    model_config = _STRICT
    fee: float | None = Field(None, ge=0, lt=0.5)
    slippage: float | None = Field(None, ge=0, lt=0.5)


class Grid(BaseModel):
    """A sweep: the market, strategy and costs to combine, every list a dimension."""

    model_config = _STRICT
    name: str
    source: str = "synthetic"
    strategy: str = "sma_cross"
    params: dict[str, list[Any]] = Field(default_factory=dict)
    # Each entry is a symbol (a single-symbol run) or a list of symbols (a book over that universe).
    symbols: list[Any] = Field(min_length=1)
    timeframes: list[str] = Field(default_factory=lambda: ["1m"], min_length=1)
    windows: list[list[Any]] = Field(min_length=1)
    costs: list[Costs] = Field(default_factory=lambda: [Costs()], min_length=1)
    capital: float | None = Field(None, gt=0, le=1e15)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    gates: Literal["on", "off"] = "on"

    @field_validator("gates", mode="before")
    @classmethod
    def _on_off(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare on/off as a boolean.
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @property
    def runs(self) -> int:
        """Return how many backtests the grid holds (the product of its dimensions)."""
        params = 1
        for values in self.params.values():
            params *= len(values)
        return len(self.symbols) * len(self.timeframes) * len(self.windows) * len(self.costs) * params

    def param_combinations(self) -> list[dict[str, Any]]:
        """Return every combination of the grid's parameters, the last one varying fastest."""
        names = list(self.params)
        return [dict(zip(names, values, strict=True)) for values in itertools.product(*self.params.values())]


# What each key allows, for messages (list indexes left out of the path).
_RULES = {
    "name": "text: letters, digits, '_', '.' or '-' (at most 64, not starting with '.' or '-')",
    "source": "text, a source spec (synthetic, csv:PATH, ccxt:EXCHANGE, ...)",
    "strategy": "text, a registered strategy",
    "params": "a mapping of the strategy's parameters to lists of values ({fast: [5, 10]})",
    "symbols": "a list of symbols or symbol lists ([BTC/USDT, [BTC/USDT, ETH/USDT]])",
    "timeframes": "a list of bar lengths ([1m, 1h])",
    "windows": 'a list of [since, until] pairs ([["2026-01-05", "2026-01-12"]])',
    "costs": "a list of {fee: FRACTION, slippage: FRACTION} mappings",
    "costs.fee": "a number >= 0 and < 0.5 (a fraction of each fill's notional)",
    "costs.slippage": "a number >= 0 and < 0.5 (a fraction of the price)",
    "capital": "a number > 0 (the starting cash)",
    "seed": "an integer from 0 to 4294967295",
    "gates": "on or off",
}


def load_grid(path: Path) -> Grid:
    """Read and check a grid file; raise ConfigError naming the file and the key path at fault.

    The YAML is read as strictly as ``labkit.yaml`` (at most 1 MiB, no duplicate keys, no tags).
    Shapes, types and values are checked here; what needs the home (a bar file, the strategy's
    combinations) is checked when the sweep is planned.
    """
    from labkit.config.loading import _load_yaml, _yaml_problem

    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_GRID_BYTES + 1)
    except IsADirectoryError:
        raise ConfigError(f"--grid: {path} is a directory; give a YAML file") from None
    except FileNotFoundError:
        raise ConfigError(f"--grid: {path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"--grid: {path} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_GRID_BYTES:
        raise ConfigError(
            f"--grid: {path} is larger than {MAX_GRID_BYTES:,} bytes (1 MiB); a grid is smaller"
        )
    try:
        data = _load_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--grid: {path} is not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_problem(path, exc)) from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(
            f"{path.name}: a grid is a mapping of keys ({', '.join(Grid.model_fields)}), not {kind}"
        )
    try:
        grid = Grid.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path.name}: {_explain(exc)}") from None
    try:
        return check_grid(grid)
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None


def check_grid(grid: Grid) -> Grid:
    """Return `grid` with its windows written as text, or raise ConfigError naming the key at fault."""
    from labkit.data.registry import check_source_spec
    from labkit.strategies.registry import registered_strategies
    from labkit.timeutil import timeframe_ms

    if not is_name(grid.name):
        raise ConfigError(f"name: {NAME_RULE} (got {_shown(grid.name)})")
    check_source_spec(grid.source)  # its message names `source:`
    strategies = registered_strategies()
    if grid.strategy not in strategies:
        raise ConfigError(
            f"strategy: unknown strategy {_shown(grid.strategy)}; allowed: {', '.join(strategies)}"
        )
    symbols = [_entry(grid.source, i, entry) for i, entry in enumerate(grid.symbols)]
    for i, timeframe in enumerate(grid.timeframes):
        try:
            timeframe_ms(timeframe)
        except ConfigError as exc:
            raise ConfigError(f"timeframes[{i}]: {str(exc).split(': ', 1)[-1]}") from None
    _no_repeats("symbols", [tuple(e) if isinstance(e, list) else e for e in symbols])
    _no_repeats("timeframes", grid.timeframes)
    windows = [_window(i, pair) for i, pair in enumerate(grid.windows)]
    _no_repeats("windows", [(lo, hi) for _, _, lo, hi in windows], "the same range as")
    _no_repeats("costs", [(c.fee, c.slippage) for c in grid.costs], "the same costs as")
    check_params(grid.strategy, grid.params)
    runs = grid.runs
    if runs > MAX_RUNS:
        raise ConfigError(
            f"grid: {runs:,} runs; a sweep holds at most {MAX_RUNS:,}: split it into several sweeps"
        )
    update = {"symbols": symbols, "windows": [[since, until] for since, until, _, _ in windows]}
    return grid.model_copy(update=update)


def book_symbols(entry: str | list[str]) -> list[str]:
    """Return the symbols of one ``symbols`` entry of a checked grid: one, or a book's universe."""
    return list(entry) if isinstance(entry, list) else [entry]


def _entry(source: str, i: int, entry: Any) -> str | list[str]:
    """Return one ``symbols`` entry checked: a symbol, or a book's list of two or more symbols.

    A list is checked as ``labkit backtest --symbols`` checks its symbols (no blank, no repeat),
    each member as a single run's symbol; a list of one symbol is that symbol's own run, as
    ``--symbols A`` is ``--symbol A``.
    """
    if isinstance(entry, str):
        _symbol(source, f"symbols[{i}]", entry)
        return entry
    if not isinstance(entry, list):
        raise ConfigError(
            f"symbols[{i}]: must be a symbol or a list of symbols ([BTC/USDT, ETH/USDT]) "
            f"(got {_shown(entry)})"
        )
    if not entry:
        raise ConfigError(f"symbols[{i}]: an empty list; give a symbol or a list of two or more symbols")
    seen: dict[str, int] = {}
    for k, member in enumerate(entry):
        path = f"symbols[{i}][{k}]"
        if not isinstance(member, str):
            raise ConfigError(
                f"{path}: must be a symbol (text), not a {type(member).__name__} (got {_shown(member)})"
            )
        if not member.strip():
            raise ConfigError(f"{path}: blank; give a symbol (BTC/USDT)")
        _symbol(source, path, member)
        if member in seen:
            raise ConfigError(
                f"{path}: {member} repeats symbols[{i}][{seen[member]}]; each symbol trades once in a book"
            )
        seen[member] = k
    return entry[0] if len(entry) == 1 else list(entry)


def _symbol(source: str, path: str, symbol: str) -> None:
    from labkit.config.schema import SessionConfig

    try:
        SessionConfig(symbol=symbol)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_message(exc.errors()[0])} (got {_shown(symbol)})") from None
    if source == "synthetic":
        _synthetic_pair(path, symbol)


def _synthetic_pair(path: str, symbol: str) -> None:
    # Refused here, before any run starts, rather than as the same failure in every run of it.
    from labkit.data.synthetic import check_pair

    try:
        check_pair(symbol)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {str(exc).removeprefix('symbol: ')}") from None


def check_params(strategy: str, params: dict[str, list[Any]]) -> None:
    """Check each value of each parameter on its own against the strategy's config class.

    A value refused by its field (a type, a bound) is the grid's error; a combination refused by
    the class as a whole (``slow`` not above ``fast``) is only that run's, recorded when it runs.
    """
    from labkit.strategies.registry import strategy_class

    config_class = strategy_class(strategy).Config
    fields = config_class.model_fields
    for name, values in params.items():
        if name not in fields:
            allowed = ", ".join(fields) or "none (it takes no parameters)"
            raise ConfigError(f"params.{name}: unknown parameter of {strategy}; allowed: {allowed}")
        if not values:
            raise ConfigError(f"params.{name}: must not be empty; give a list of values ({name}: [...])")
        for i, value in enumerate(values):
            problem = _param_problem(config_class, name, fields[name], value)
            if problem:
                raise ConfigError(f"params.{name}[{i}]: {problem}")
        _no_repeats(f"params.{name}", [orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in values])


def _param_problem(config_class: type[BaseModel], name: str, info: FieldInfo, value: Any) -> str | None:
    try:
        config_class.model_validate({name: value}, strict=True)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if tuple(e["loc"][:1]) == (name,)]
        if errors:
            described = _describe(info)
            custom = errors[0]["type"] in ("value_error", "assertion_error", "string_pattern_mismatch")
            problem = _message(errors[0]) if custom or described is None else f"must be {described}"
            return f"{problem} (got {_shown(value)})"
    return None


def _describe(info: FieldInfo) -> str | None:
    annotation = info.annotation
    kinds: dict[Any, str] = {int: "an integer", float: "a number", str: "text", bool: "true or false"}
    kind = kinds.get(annotation)
    if kind is None and get_origin(annotation) is Literal:
        kind = "one of " + ", ".join(str(v) for v in get_args(annotation))
    if kind is None:
        return None
    bounds = [
        f"{symbol} {getattr(meta, attr)}"
        for meta in info.metadata
        for attr, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
        if getattr(meta, attr, None) is not None
    ]
    return " ".join([kind, " and ".join(bounds)]) if bounds else kind


def _window(i: int, pair: list[Any]) -> tuple[str, str, int, int]:
    from labkit.timeutil import parse_instant

    if len(pair) != 2:
        raise ConfigError(f"windows[{i}]: must be a pair [since, until] (got {len(pair)} values)")
    since, until = (_instant_text(f"windows[{i}][{j}]", v) for j, v in enumerate(pair))
    lo, hi = parse_instant(since, f"windows[{i}][0]"), parse_instant(until, f"windows[{i}][1]")
    if hi <= lo:
        raise ConfigError(f"windows[{i}]: until ({until}) must be after since ({since})")
    return since, until, lo, hi


def _instant_text(path: str, value: Any) -> str:
    # YAML reads a bare 2026-01-05 as a date and 2026-01-05T00:00:00Z as a datetime.
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return str(value).strip()
    raise ConfigError(
        f"{path}: must be a date or datetime (2026-01-05, 2026-01-05T09:30:00Z) (got {_shown(value)})"
    )


def _no_repeats(path: str, values: list[Any], how: str = "repeats") -> None:
    seen: dict[Any, int] = {}
    for i, value in enumerate(values):
        if value in seen:
            raise ConfigError(f"{path}[{i}]: {how} {path}[{seen[value]}]; give each value once")
        seen[value] = i


def _explain(exc: ValidationError) -> str:
    # The first error is enough to fix; the next run names the next one. An unknown key goes first:
    # `symbol:` written for `symbols:` is the typo to fix, not the `symbols` it leaves missing.
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    path = _path(loc)
    rule = _RULES.get(".".join(str(part) for part in loc if not isinstance(part, int)))
    kind = err["type"]
    if kind == "missing":
        return f"{path}: missing; it is required ({rule})" if rule else f"{path}: missing; it is required"
    if kind == "extra_forbidden":
        model = Costs if loc[:1] == ("costs",) else Grid
        close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), 1, 0.6)
        meant = f" (did you mean {close[0]}?)" if close else ""
        return f"{path}: unknown key{meant}; allowed: {', '.join(model.model_fields)}"
    given = err.get("input")
    got = f" (got {_shown(given)})" if not isinstance(given, dict | list) else ""
    if kind == "too_short":
        return f"{path}: must not be empty; give {rule or 'at least one value'}"
    if rule and not isinstance(loc[-1], int):
        return f"{path}: must be {rule}{got}"
    return f"{path}: {_message(err)}{got}"


def _message(err: Any) -> str:
    kinds = {
        "int_type": "must be an integer",
        "float_type": "must be a number",
        "string_type": "must be text",
        "list_type": "must be a list",
        "dict_type": "must be a mapping",
        "model_type": "must be a mapping",
        "bool_type": "must be true or false",
    }
    return kinds.get(err["type"]) or str(err["msg"]).removeprefix("Value error, ")


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "grid"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:70]}... ({len(text)} characters)"
