"""The configuration schema: one frozen, validated config per component.

Each gate, strategy and data source keeps its own small config class beside its code, and so does
the engine (``risk`` and ``broker``, `labkit.engine.settings`); this module
composes them into `LabkitConfig`, with a section per gate (``gates.<name>``) and per strategy
(``strategies.<name>``), plug-ins included. `labkit.config.loading` reads a config from the file,
the environment and flags.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, create_model, field_validator, model_validator

from labkit.data.retry import DataConfig
from labkit.engine.book import PortfolioConfig
from labkit.engine.settings import BrokerConfig, RiskConfig
from labkit.errors import ConfigError
from labkit.gates.registry import chain_order, default_enabled, registered_gates
from labkit.home import NAME_RULE, SYMBOL_RULE, is_name, is_symbol
from labkit.strategies.registry import registered_strategies
from labkit.timeutil import parse_instant, timeframe_ms

# allow_inf_nan=False: "inf" and "nan" (from a flag, a LABKIT_ variable or YAML's .inf) pass every
# comparison or none, so a bound alone would let them through to the engine.
_FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
# Symbols are file names in the cache and words in logs and reports: printable, one line, short.
MAX_SYMBOL = 64
# A source spec may carry a file path, and paths run long; past this it is not a path anyone typed.
MAX_SOURCE = 4096
# Seeds are kept to what every RNG (and a JSON reader without big integers) takes as it is.
MAX_SEED = 2**32 - 1


class SessionConfig(BaseModel):
    model_config = _FROZEN
    name: str = "default"
    mode: Literal["shadow", "paper"] = "paper"
    symbol: str = "BTC/USDT"
    # A book over a universe (`--symbols A,B,C`): the symbols in decision order; `symbol` is the first.
    symbols: tuple[str, ...] = ()
    timeframe: str = "1m"
    interval: float = Field(
        60.0, gt=0, le=86_400, description="seconds between heartbeats and polls (0.5 to 86400)"
    )
    capital: float = Field(10_000.0, gt=0, le=1e15)
    source: str = "synthetic"
    pace: Literal["clock", "fast"] = "clock"
    since: str | None = None
    until: str | None = None
    # 10^8 bars is years of seconds; more is a typo that would generate bars until memory runs out.
    max_bars: int | None = Field(None, gt=0, le=100_000_000)
    strategy: str = Field("sma_cross", description="a registered strategy; parameters: strategies.<name>")
    seed: int = Field(7, ge=0, le=MAX_SEED, description="seed of the synthetic market")
    # The market's calendar readiness counts bars and annualises in; auto follows the source.
    calendar: Literal["auto", "24/7", "equities", "fx"] = "auto"
    # The exchange whose sessions ``equities`` trade, by exchange-calendars' name.
    exchange: str = "XNYS"

    @field_validator("mode", mode="before")
    @classmethod
    def _no_live(cls, value: Any) -> Any:
        if value == "live":
            raise ValueError(
                "live trading does not exist in labkit: it never places a real order; use shadow or paper"
            )
        return value

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        # The rule every command applies to --session (labkit.session.paths), stated once.
        if not is_name(value):
            raise ValueError(NAME_RULE)
        return value

    @field_validator("interval")
    @classmethod
    def _useful_interval(cls, value: float) -> float:
        # Positive is checked by the bound; below half a second a waiting session only burns CPU.
        if value < 0.5:
            raise ValueError("Input should be at least 0.5 seconds (a shorter wait only burns CPU)")
        return value

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a symbol is needed (e.g. BTC/USDT, SPY)")
        _one_printable_line(value, "a symbol", MAX_SYMBOL)
        if not is_symbol(value):
            raise ValueError(SYMBOL_RULE)
        return value

    @field_validator("symbols", mode="before")
    @classmethod
    def _universe(cls, value: Any) -> Any:
        from labkit.data.universe import parse_symbols

        if value is None or value == "" or value == () or value == []:
            return ()
        try:
            symbols = parse_symbols(value, "symbols")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("symbols: ")) from None
        for symbol in symbols:
            _one_printable_line(symbol, "a symbol", MAX_SYMBOL)
            if not is_symbol(symbol):
                raise ValueError(f"{symbol!r}: {SYMBOL_RULE}")
        return tuple(symbols)

    @model_validator(mode="before")
    @classmethod
    def _first_symbol(cls, data: Any) -> Any:
        # A book's `symbol` is its first symbol: what a single-symbol view of it names.
        if isinstance(data, dict) and data.get("symbols"):
            from labkit.data.universe import parse_symbols

            try:
                first = parse_symbols(data["symbols"], "symbols")[0]
            except (ConfigError, TypeError):
                return data  # the field's own validator names what is wrong
            return {**data, "symbol": first}
        return data

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str) -> str:
        with _as_value_error():
            timeframe_ms(value)
        return value

    @field_validator("since", "until", mode="before")
    @classmethod
    def _instant(cls, value: Any) -> Any:
        if value is not None:
            with _as_value_error():
                parse_instant(value)
            return str(value).strip()
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        from labkit.data.registry import check_source_spec  # sources register lazily

        _one_printable_line(value, "a source", MAX_SOURCE)
        with _as_value_error():
            check_source_spec(value)
        return value

    @field_validator("exchange")
    @classmethod
    def _exchange(cls, value: str) -> str:
        if value == "XNYS":
            return value  # the default, known without loading exchange-calendars (a quarter second)
        import exchange_calendars as xc

        names = xc.get_calendar_names(include_aliases=True)
        for name in (value, value.strip().upper()):
            if name in names:
                return str(xc.resolve_alias(name))
        near = difflib.get_close_matches(value.strip().upper(), names, n=3)
        hint = f"did you mean {', '.join(near)}? " if near else ""
        codes = [n for n in xc.get_calendar_names(include_aliases=False) if n.startswith("X")]
        raise ValueError(
            f"{value!r} is unknown to exchange-calendars; {hint}e.g. XNYS, XLON, XETR, XTKS, XHKG, XTSE "
            f"({len(codes)} ISO codes in all: exchange_calendars.get_calendar_names())"
        )

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, value: str) -> str:
        if value not in registered_strategies():
            raise ValueError(f"unknown strategy {value!r}; allowed: {', '.join(registered_strategies())}")
        return value


def _one_printable_line(value: str, what: str, limit: int) -> None:
    # A newline or a control character would forge a line in a log or the journal, or hide in a
    # file name; blanks around it make two spellings of one thing.
    if len(value) > limit:
        raise ValueError(f"{what} is at most {limit} characters (got {len(value)})")
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        raise ValueError(f"{what} has a control character ({bad!r}); use printable text on one line")
    if value != value.strip():
        raise ValueError(f"{what} has blanks at its start or end; remove them")


@contextmanager
def _as_value_error() -> Iterator[None]:
    # Inside a model, a helper's ConfigError becomes a pydantic error so the key path is named.
    try:
        yield
    except ConfigError as exc:
        raise ValueError(str(exc).split(": ", 1)[-1]) from None


class _GatesBase(BaseModel):
    model_config = _FROZEN
    enabled: tuple[str, ...] = ()

    @field_validator("enabled")
    @classmethod
    def _known_stages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Gates always run in chain order, whatever order the list is written in.
        return chain_order(value)


class _StrategiesBase(BaseModel):
    model_config = _FROZEN


# A section per registered gate and strategy, plug-ins included, each with its own config class.
if TYPE_CHECKING:
    GatesConfig = _GatesBase
    StrategiesConfig = _StrategiesBase
else:
    GatesConfig = create_model(
        "GatesConfig",
        __base__=_GatesBase,
        enabled=(tuple[str, ...], default_enabled()),
        **{name: (gate.Config, gate.Config()) for name, gate in registered_gates().items()},
    )
    StrategiesConfig = create_model(
        "StrategiesConfig",
        __base__=_StrategiesBase,
        **{name: (cls.Config, cls.Config()) for name, cls in registered_strategies().items()},
    )


class ReadinessConfig(BaseModel):
    model_config = _FROZEN
    min_coverage: float = Field(0.95, ge=0, le=1)
    min_trades: int = Field(20, ge=1, le=1_000_000)
    # Each sample resamples every trade: past a million the verdict takes hours and says no more.
    bootstrap_samples: int = Field(2000, ge=100, le=1_000_000)
    bootstrap_seed: int = Field(0, ge=0, le=MAX_SEED)
    subperiods: int = Field(4, ge=2, le=1000)
    min_same_sign: int = Field(3, ge=1, le=1000)
    min_psr: float = Field(0.95, ge=0, le=1)
    max_drawdown: float = Field(0.10, gt=0, le=1)
    max_cost_share: float = Field(0.5, ge=0)
    max_reason_share: float = Field(0.9, gt=0, le=1)
    max_data_error_share: float = Field(0.01, ge=0, le=1)
    # A decision counts as forward evidence when made within this many seconds of its bar's close;
    # None: one bar length, at least 60 s. Replays (fast pace, catch-up) are later than that.
    max_decision_lag: float | None = Field(None, gt=0, le=7 * 86_400)
    min_deflated_sharpe: float = Field(0.95, ge=0, le=1)


class ReportsConfig(BaseModel):
    model_config = _FROZEN
    cell_timeout: int = Field(600, gt=0, le=86_400, description="seconds a notebook cell may run")
    kernel: str = "python3"


class ScheduleConfig(BaseModel):
    model_config = _FROZEN
    daily_at: str = Field("00:15", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    weekly_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    weekly_at: str = Field("00:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class ServeConfig(BaseModel):
    """`labkit serve`: the HTTP API, health and metrics over the home (docs/serve.md)."""

    model_config = _FROZEN
    # SecretStr: a key never shows in a dump, a repr or a session's config.json, however written.
    api_keys: tuple[SecretStr, ...] = Field((), description="bearer keys of the control endpoints")
    host: str = Field("127.0.0.1", min_length=1, max_length=255)
    port: int = Field(8765, ge=1, le=65_535)
    rate_limit_per_minute: int = Field(600, ge=1, le=1_000_000, description="requests per client address")
    # None: stale exactly when `labkit status` says so (twice the session's beat period).
    stale_after_seconds: float | None = Field(None, gt=0, le=7 * 86_400)
    decisions_limit_max: int = Field(1000, ge=1, le=100_000)
    # None: the rate keys on the connection's address. Behind a proxy, the header it sets (its last
    # address is the client the proxy saw).
    forwarded_header: str | None = Field(None, description="header naming the client behind a proxy")

    @field_validator("forwarded_header")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        letters = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
        if value is not None and not (0 < len(value) <= 64 and set(value) <= letters and value[0] != "-"):
            raise ValueError("a header name: letters, digits and '-', e.g. X-Forwarded-For or X-Real-IP")
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _one_key(cls, value: Any) -> Any:
        # `api_keys: ${KEY}` (a string, not a list) is one key. YAML reads 0123 as 123 and an
        # unquoted `yes` as true: such a key would not be the one written, so it is refused.
        keys = [value] if isinstance(value, str | int | float) else value
        if isinstance(keys, list | tuple) and any(not isinstance(key, str) for key in keys):
            raise ValueError("a key is text; one here reads as a number or a boolean: put it in quotes")
        return tuple(keys) if isinstance(keys, list) else keys

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        _one_printable_line(value, "a host", 255)
        if " " in value:
            raise ValueError("a host is one name or address, without blanks (e.g. 127.0.0.1)")
        return value


class LabkitConfig(BaseModel):
    model_config = _FROZEN
    session: SessionConfig = SessionConfig()
    gates: GatesConfig = GatesConfig()
    strategies: StrategiesConfig = StrategiesConfig()
    risk: RiskConfig = RiskConfig()
    broker: BrokerConfig = BrokerConfig()
    portfolio: PortfolioConfig = PortfolioConfig()
    readiness: ReadinessConfig = ReadinessConfig()
    reports: ReportsConfig = ReportsConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    data: DataConfig = DataConfig()
    serve: ServeConfig = ServeConfig()
    exchanges: dict[str, dict[str, Any]] = Field(default_factory=dict)
    universes: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="named symbol lists for `labkit backtest --universe NAME`"
    )

    @field_validator("universes")
    @classmethod
    def _universes(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        # A universe is named on the command line like a session, and is a book's symbol list: each
        # symbol once, in the order it was written.
        for name, symbols in value.items():
            if not is_name(name):
                raise ValueError(f"universe {name!r}: {NAME_RULE}")
            if not symbols:
                raise ValueError(f"universe {name}: list at least one symbol, e.g. [BTC/USDT, ETH/USDT]")
            for symbol in symbols:
                _one_printable_line(symbol, f"universe {name}: a symbol", MAX_SYMBOL)
                if not is_symbol(symbol):
                    raise ValueError(f"universe {name}: {symbol!r}: {SYMBOL_RULE}")
            repeated = sorted({s for s in symbols if symbols.count(s) > 1})
            if repeated:
                raise ValueError(f"universe {name}: {', '.join(repeated)} listed twice; each symbol once")
        return value


SECTIONS = tuple(LabkitConfig.model_fields)


def gate_configs(config: LabkitConfig) -> dict[str, Any]:
    """Return each gate's config by stage name."""
    return {name: getattr(config.gates, name) for name in registered_gates()}


def strategy_config(config: LabkitConfig, name: str | None = None) -> Any:
    """Return the parameters of strategy `name` (default: the session's)."""
    return getattr(config.strategies, name or config.session.strategy)
