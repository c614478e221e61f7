"""Loading the configuration in its precedence: flags, then ``LABKIT_*`` variables, then the file.

Command-line flags beat ``LABKIT_*`` environment variables, which beat ``labkit.yaml`` in the home,
which beats the defaults of the schema (`labkit.config`). A ``${NAME}`` value is read from the
environment. Every value is validated by pydantic; a bad one becomes a ``ConfigError`` naming its key
path, the value and what is allowed. `redacted` is what may be written to disk or shown.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from labkit.config import SECTIONS, LabkitConfig
from labkit.errors import ConfigError

CONFIG_FILE = "labkit.yaml"
# Variables that are not config keys: where labkit lives, and the paper-only turnover overrides.
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
    session = merged.get("session", {})
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
