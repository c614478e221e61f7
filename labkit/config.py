"""Configuration: one frozen, validated config per component, loaded in DESIGN.md's precedence.

Command-line flags beat ``LABKIT_*`` environment variables, which beat ``labkit.yaml`` in the home,
which beats the defaults here. Every value is validated by pydantic; a bad one becomes a
``ConfigError`` naming its key path, the value and what is allowed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from labkit.errors import ConfigError
from labkit.gates import (
    GATE_ORDER,
    ConfidenceConfig,
    DataGateConfig,
    GuardrailsConfig,
    HaltConfig,
    RiskBudgetConfig,
    TurnoverConfig,
)
from labkit.timeutil import parse_instant, timeframe_ms

CONFIG_FILE = "labkit.yaml"
_FROZEN = ConfigDict(frozen=True, extra="forbid")
_SESSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SessionConfig(BaseModel):
    model_config = _FROZEN
    name: str = "default"
    mode: Literal["shadow", "paper"] = "paper"
    symbol: str = "BTC/USDT"
    timeframe: str = "1m"
    interval: float = Field(60.0, gt=0, description="seconds between heartbeats and polls")
    capital: float = Field(10_000.0, gt=0)
    source: str = "synthetic"
    pace: Literal["clock", "fast"] = "clock"
    since: str | None = None
    until: str | None = None
    max_bars: int | None = Field(None, gt=0)
    strategy: Literal["sma_cross"] = "sma_cross"
    fast: int = Field(10, ge=1)
    slow: int = Field(30, ge=2)
    seed: int = Field(7, ge=0, description="seed of the synthetic market")

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
        if not _SESSION_NAME.match(value):
            raise ValueError(
                "use letters, digits, '_', '.' or '-' (at most 64, not starting with '.' or '-')"
            )
        return value

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
            return str(value)
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        from labkit.sources import check_source_spec

        with _as_value_error():
            check_source_spec(value)
        return value

    @field_validator("slow")
    @classmethod
    def _slow_after_fast(cls, value: int, info: Any) -> int:
        fast = info.data.get("fast")
        if fast is not None and value <= fast:
            raise ValueError(f"slow must be greater than fast ({fast})")
        return value


@contextmanager
def _as_value_error() -> Iterator[None]:
    # Inside a model, a helper's ConfigError becomes a pydantic error so the key path is named.
    try:
        yield
    except ConfigError as exc:
        raise ValueError(str(exc).split(": ", 1)[-1]) from None


class GatesConfig(BaseModel):
    model_config = _FROZEN
    enabled: tuple[str, ...] = GATE_ORDER
    halt: HaltConfig = HaltConfig()
    data: DataGateConfig = DataGateConfig()
    confidence: ConfidenceConfig = ConfidenceConfig()
    turnover: TurnoverConfig = TurnoverConfig()
    risk_budget: RiskBudgetConfig = RiskBudgetConfig()
    guardrails: GuardrailsConfig = GuardrailsConfig()

    @field_validator("enabled")
    @classmethod
    def _known_stages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in GATE_ORDER]
        if unknown:
            raise ValueError(f"unknown gate {unknown[0]!r}; allowed: {', '.join(GATE_ORDER)}")
        if "data" not in value:
            raise ValueError("the data gate cannot be disabled: no decision without data")
        # Gates always run in DESIGN.md's order, whatever order the list is written in.
        return tuple(name for name in GATE_ORDER if name in value)


class RiskConfig(BaseModel):
    model_config = _FROZEN
    position_frac: float = Field(1.0, gt=0, le=1, description="share of cash an entry spends")


class BrokerConfig(BaseModel):
    model_config = _FROZEN
    fee: float = Field(0.001, ge=0, lt=0.5, description="fraction of each fill's notional")
    slippage: float = Field(0.0, ge=0, lt=0.5, description="adverse fraction of the fill price")


class DataConfig(BaseModel):
    model_config = _FROZEN
    retries: int = Field(6, ge=1, le=50, description="tries per request (6 survives 5 failures in a row)")
    backoff_base: float = Field(0.5, gt=0, description="seconds before the first retry; doubles each time")
    backoff_cap: float = Field(30.0, gt=0, description="longest wait between tries, Retry-After included")
    live_retries: int = Field(2, ge=1, le=10, description="tries per request in a clock-paced session")
    breaker_threshold: int = Field(3, ge=1, description="failed operations in a row that open the circuit")
    breaker_cooldown: float = Field(30.0, gt=0, description="seconds before an open circuit is probed")
    page_limit: int = Field(1000, ge=1, le=5000, description="bars asked per request")


class ReadinessConfig(BaseModel):
    model_config = _FROZEN
    min_coverage: float = Field(0.95, ge=0, le=1)
    min_trades: int = Field(20, ge=1)
    bootstrap_samples: int = Field(2000, ge=100)
    bootstrap_seed: int = 0
    subperiods: int = Field(4, ge=2)
    min_same_sign: int = Field(3, ge=1)
    min_psr: float = Field(0.95, ge=0, le=1)
    max_drawdown: float = Field(0.10, gt=0, le=1)
    max_cost_share: float = Field(0.5, ge=0)
    max_reason_share: float = Field(0.9, gt=0, le=1)
    max_data_error_share: float = Field(0.01, ge=0, le=1)


class ReportsConfig(BaseModel):
    model_config = _FROZEN
    cell_timeout: int = Field(600, gt=0, description="seconds a notebook cell may run")
    kernel: str = "python3"


class ScheduleConfig(BaseModel):
    model_config = _FROZEN
    daily_at: str = Field("00:15", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    weekly_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    weekly_at: str = Field("00:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class LabkitConfig(BaseModel):
    model_config = _FROZEN
    session: SessionConfig = SessionConfig()
    gates: GatesConfig = GatesConfig()
    risk: RiskConfig = RiskConfig()
    broker: BrokerConfig = BrokerConfig()
    readiness: ReadinessConfig = ReadinessConfig()
    reports: ReportsConfig = ReportsConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    data: DataConfig = DataConfig()
    exchanges: dict[str, dict[str, Any]] = Field(default_factory=dict)


SECTIONS = tuple(LabkitConfig.model_fields)
# Variables that are not config keys: where labkit lives, and DESIGN.md's paper-only overrides.
_RESERVED_ENV = {"LABKIT_HOME", "LABKIT_PAPER_MIN_RATIO", "LABKIT_PAPER_MAX_DAILY"}
_CCXT_KEYS = {
    "apikey": "apiKey",
    "privatekey": "privateKey",
    "walletaddress": "walletAddress",
    "enableratelimit": "enableRateLimit",
    "ratelimit": "rateLimit",
}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load_config(
    home: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LabkitConfig:
    """Return the validated configuration: flags (`overrides`), then env, then file, then defaults.

    `overrides` uses dotted keys (``{"session.capital": 5000}``); None values are ignored.
    """
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    if home is not None and (home / CONFIG_FILE).is_file():
        merged = _read_yaml(home / CONFIG_FILE)
    _deep_merge(merged, _env_overrides(environ))
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(merged, key, value)
    _apply_paper_overrides(merged, environ)
    merged = _interpolate(merged, environ, path="")
    try:
        return LabkitConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of sections ({', '.join(SECTIONS)})")
    return data


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Read ``LABKIT_<SECTION>__<KEY>[__<KEY>]`` variables, e.g. ``LABKIT_BROKER__FEE=0.002``."""
    result: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("LABKIT_") or name in _RESERVED_ENV:
            continue
        parts = name[len("LABKIT_") :].lower().split("__")
        if parts[0] not in SECTIONS or len(parts) < 2:
            raise ConfigError(
                f"{name}: not a labkit setting; write LABKIT_<SECTION>__<KEY> with a section of "
                f"{', '.join(SECTIONS)} (e.g. LABKIT_BROKER__FEE=0.002)"
            )
        if parts[0] == "exchanges":
            # Variable names are upper case; ccxt's option names are camelCase.
            parts = [_CCXT_KEYS.get(part, part) for part in parts]
        _set_dotted(result, ".".join(parts), _env_value(value))
    return result


def _env_value(value: str) -> Any:
    # YAML scalars give env values the same types as the file: 0.002, true, [halt, data].
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def _apply_paper_overrides(merged: dict[str, Any], environ: Mapping[str, str]) -> None:
    session = merged.get("session")
    if (session.get("mode", "paper") if isinstance(session, dict) else None) != "paper":
        return
    for var, key in (("LABKIT_PAPER_MIN_RATIO", "min_ratio"), ("LABKIT_PAPER_MAX_DAILY", "max_daily")):
        if var in environ:
            _set_dotted(merged, f"gates.turnover.{key}", _env_value(environ[var]))


def _interpolate(value: Any, environ: Mapping[str, str], path: str) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, environ, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def substitute(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in environ:
                raise ConfigError(
                    f"{path}: refers to ${{{var}}} but the environment variable {var} is not set"
                )
            return environ[var]

        return _ENV_REF.sub(substitute, value)
    return value


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = target
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {part} is a value, not a section")
        node = child
    node[leaf] = value


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(part) for part in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parent = err["loc"][:-1]
            allowed = _allowed_keys(parent)
            msg = f"unknown key; allowed: {', '.join(allowed)}" if allowed else "unknown key"
        given = err.get("input")
        shown = (
            ""
            if err["type"] in ("extra_forbidden", "missing") or isinstance(given, dict)
            else f" (got {given!r})"
        )
        lines.append(f"{path}: {msg}{shown}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = LabkitConfig
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))


def redacted(config: LabkitConfig) -> dict[str, Any]:
    """Return the config as JSON-ready data with secrets cut to their last four characters."""
    data = config.model_dump(mode="json")
    for options in data.get("exchanges", {}).values():
        _redact(options)
    return data


_SECRET_KEYS = re.compile(r"(key|secret|password|token|passphrase|privatekey|uid)$", re.I)


def _redact(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and _SECRET_KEYS.search(str(key)):
                node[key] = "****" + value[-4:] if len(value) > 4 else "****"
            else:
                _redact(value)
