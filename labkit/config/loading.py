"""Loading the configuration in its precedence: flags, then ``LABKIT_*`` variables, then the file.

Command-line flags beat ``LABKIT_*`` environment variables, which beat ``labkit.yaml`` in the home,
which beats the defaults of the schema (`labkit.config.schema`). A ``${NAME}`` value is read from the
environment, once: a value that itself holds ``${...}`` is kept as it is. Every value is validated by
pydantic; a bad one becomes a ``ConfigError`` naming its key path, the value and what is allowed.

Secrets: `redacted` is what may be written to disk or shown, and `secret_values` what a log must
never show. Both cover every exchange credential (`labkit.data.ccxt.is_secret_key`), the userinfo of
every URL, every query parameter of a URL whose name says it is a secret (``?token=``, ``?apiKey=``,
``?sig=``), and every value that came from a ``${VAR}`` reference, whatever its key: the loader
remembers which values those were for each config it returns.

The file is read by a strict YAML loader: at most 1 MiB, nested at most 32 levels, text keys only,
no duplicate key, no tag beyond YAML's plain types, and anchors/aliases only while they add at most
1,000 values in all (a "billion laughs" file is refused before it expands).
"""

from __future__ import annotations

import os
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml
from pydantic import ValidationError

from labkit.config.schema import SECTIONS, LabkitConfig
from labkit.data.ccxt import (
    add_secret_values,
    is_secret_key,
    mask,
    option_secrets,
    redact_userinfo,
    userinfo_secrets,
)
from labkit.errors import ConfigError
from labkit.home import as_path

CONFIG_FILE = "labkit.yaml"
# Variables that are not config keys: where labkit lives, where the trial ledger is, and the
# paper-only turnover overrides.
_RESERVED_ENV = {"LABKIT_HOME", "LABKIT_TRIALS", "LABKIT_PAPER_MIN_RATIO", "LABKIT_PAPER_MAX_DAILY"}
_CCXT_KEYS = {
    "apikey": "apiKey",
    "privatekey": "privateKey",
    "walletaddress": "walletAddress",
    "enableratelimit": "enableRateLimit",
    "ratelimit": "rateLimit",
    "httpproxy": "httpProxy",
    "httpsproxy": "httpsProxy",
    "socksproxy": "socksProxy",
    "proxyurl": "proxyUrl",
    "useragent": "userAgent",
}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# A URL's query (scheme://...?query, up to a fragment or a blank) and one name=value of it.
_URL_QUERY = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s\"'<>?#]*\?)([^\s\"'<>#]*)")
# Query names that hold a secret beyond what `is_secret_key` names (a URL signature is often `sig`).
_QUERY_SECRET_NAMES = frozenset({"sig", "hmac"})
MAX_YAML_BYTES = 1 << 20
MAX_YAML_DEPTH = 32
MAX_ALIASED_VALUES = 1_000

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class _Secrets:
    """What a loaded config holds from ``${VAR}`` references: where (key paths) and which values."""

    paths: frozenset[KeyPath]
    values: tuple[str, ...]


# id(config) -> (a weak reference to it, its secrets); an entry goes when its config does. A frozen
# config with dict fields cannot be hashed, so a WeakKeyDictionary cannot hold it.
_SECRETS: dict[int, tuple[weakref.ref[LabkitConfig], _Secrets]] = {}


def load_config(
    home: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> LabkitConfig:
    """Return the validated configuration: flags (`overrides`), then env, then file, then defaults.

    `overrides` uses dotted keys (``{"session.capital": 5000}``); None values are ignored.
    """
    environ = os.environ if environ is None else environ
    home = as_path(home, "home") if home is not None else None
    merged: dict[str, Any] = {}
    if home is not None and (home / CONFIG_FILE).is_file():
        merged = _read_yaml(home / CONFIG_FILE)
    _deep_merge(merged, _env_overrides(environ))
    for key, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(merged, key, value)
    _apply_paper_overrides(merged, environ)
    found: dict[KeyPath, list[str]] = {}
    merged = _interpolate(merged, environ, (), found)
    try:
        config = LabkitConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, set(found))) from None
    values = {v for parts in found.values() for v in parts}
    _remember(config, _Secrets(frozenset(found), tuple(sorted(values))))
    add_secret_values(values)
    return config


# --- Reading labkit.yaml ----------------------------------------------------------------------------


class _Refused(yaml.MarkedYAMLError):
    """What the strict loader refuses, at the line it found it."""

    def __init__(self, mark: Any, problem: str) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing what has no place in a config file and what could blow it up.

    Aliases are counted as the values they repeat: once they would add more than MAX_ALIASED_VALUES
    the file is refused, at the alias, before anything expands (the composer shares alias nodes;
    only later walks would multiply them). An alias inside the value it names is refused too.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliased = 0
        self._open_anchors: list[str] = []
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            if event.anchor in self._open_anchors:
                raise _Refused(event.start_mark, f"alias *{event.anchor} is inside the value it names")
            node = self.anchors.get(event.anchor)
            if node is not None:
                self._aliased += self._size(node)
                if self._aliased > MAX_ALIASED_VALUES:
                    raise _Refused(
                        event.start_mark,
                        f"aliases are limited: *{event.anchor} would take the values they repeat "
                        f"past {MAX_ALIASED_VALUES:,}; write the values out instead of anchors (&) "
                        "and aliases (*)",
                    )
            return super().compose_node(parent, index)
        event = self.peek_event()
        if self._depth >= MAX_YAML_DEPTH:
            raise _Refused(event.start_mark, f"nested more than {MAX_YAML_DEPTH} levels deep")
        anchor = getattr(event, "anchor", None)
        self._depth += 1
        if anchor:
            self._open_anchors.append(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if anchor:
                self._open_anchors.pop()

    def _size(self, node: yaml.Node) -> int:
        # How many values `node` stands for; shared (aliased) nodes are counted once per use.
        known = self._sizes.get(id(node))
        if known is None:
            if isinstance(node, yaml.MappingNode):
                known = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
            elif isinstance(node, yaml.SequenceNode):
                known = 1 + sum(self._size(v) for v in node.value)
            else:
                known = 1
            self._sizes[id(node)] = known
        return known

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused(key_node.start_mark, "a key must be text, not a list or a mapping")
            if key_node.tag != "tag:yaml.org,2002:str":
                kind = key_node.tag.rsplit(":", 1)[-1]
                raise _Refused(
                    key_node.start_mark,
                    f"key {key_node.value!r} is read as {kind}, not text; write it in quotes",
                )
            if key_node.value in seen:
                raise _Refused(
                    key_node.start_mark,
                    f"duplicate key {key_node.value!r} (first on line {seen[key_node.value]})",
                )
            seen[key_node.value] = line
        return super().construct_mapping(node, deep=deep)

    def construct_undefined(self, node: yaml.Node) -> Any:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        raise _Refused(
            node.start_mark,
            f"tag {tag} is not allowed: the config holds only mappings, lists, text, numbers, booleans, "
            "dates and null",
        )


_StrictLoader.add_constructor(None, _StrictLoader.construct_undefined)


def research_overrides(
    *,
    fee: float | None = None,
    slippage: float | None = None,
    gates: str | None = None,
    mode: str | None = None,
) -> dict[str, Any]:
    """Return the overrides every research run (a backtest, a training run, a sweep) starts from.

    It replays as fast as it goes; a cost left None keeps the configured one; ``gates="off"`` keeps
    only the ``data`` stage, for comparisons with tools that have no gates.

    Examples
    --------
    >>> research_overrides(fee=0.002, gates="off", mode="paper")  # doctest: +NORMALIZE_WHITESPACE
    {'session.pace': 'fast', 'broker.fee': 0.002, 'broker.slippage': None, 'session.mode': 'paper',
     'gates.enabled': ['data']}
    """
    overrides: dict[str, Any] = {"session.pace": "fast", "broker.fee": fee, "broker.slippage": slippage}
    if mode is not None:
        overrides["session.mode"] = mode
    if gates == "off":
        overrides["gates.enabled"] = ["data"]
    return overrides


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_YAML_BYTES:,} bytes (1 MiB); a config file is smaller")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = _load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_problem(path, exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: must be a mapping of sections ({', '.join(SECTIONS)}), not {type(data).__name__}"
        )
    return data


def _load_yaml(text: str) -> Any:
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _yaml_problem(path: Path, exc: yaml.YAMLError) -> str:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return f"{path}: not valid YAML: {exc}"
    mark = exc.problem_mark or exc.context_mark
    where = f"{path}: line {mark.line + 1}" if mark is not None else str(path)
    if isinstance(exc, _Refused):
        return f"{where}: {exc.problem}"
    problem = "; ".join(part for part in (exc.context, exc.problem) if part)
    return f"{where}: not valid YAML: {problem}"


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
            # Variable names are upper case; ccxt's option names are camelCase. A credential is kept
            # as written: YAML would read 0123 as 123, yes as true and cut "abc #1" at the #.
            parts = [_CCXT_KEYS.get(part, part) for part in parts]
            if is_secret_key(parts[-1]):
                _set_dotted(result, ".".join(parts), value)
                continue
        _set_dotted(result, ".".join(parts), _env_value(value))
    return result


def _env_value(value: str) -> Any:
    # YAML scalars give env values the same types as the file: 0.002, true, [halt, data].
    try:
        return _load_yaml(value)
    except yaml.YAMLError:
        return value


def _apply_paper_overrides(merged: dict[str, Any], environ: Mapping[str, str]) -> None:
    session = merged.get("session", {})
    if (session.get("mode", "paper") if isinstance(session, dict) else None) != "paper":
        return
    for var, key in (("LABKIT_PAPER_MIN_RATIO", "min_ratio"), ("LABKIT_PAPER_MAX_DAILY", "max_daily")):
        if var in environ:
            _set_dotted(merged, f"gates.turnover.{key}", _env_value(environ[var]))


_CREDENTIAL_SECTIONS = frozenset({"exchanges", "serve"})


def _interpolate(
    value: Any, environ: Mapping[str, str], path: KeyPath, found: dict[KeyPath, list[str]]
) -> Any:
    """Replace each ``${NAME}`` by the variable's value, once; note where and what in `found`.

    What a variable holds is never read again for ``${...}``: the substitution is a single pass.
    """
    if isinstance(value, dict):
        return {k: _interpolate(v, environ, (*path, k), found) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, environ, (*path, i), found) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        used: list[str] = []

        def substitute(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in environ:
                raise ConfigError(
                    f"{_dotted(path)}: refers to ${{{var}}} but the environment variable {var} is not set"
                )
            used.append(environ[var])
            return environ[var]

        result = _ENV_REF.sub(substitute, value)
        # Credentials live with exchanges and the HTTP service; a symbol or a threshold read from
        # the environment is not a secret, and a session resumes from what config.json shows.
        if used and path and path[0] in _CREDENTIAL_SECTIONS:
            found[path] = [result, *used]
        return result
    return value


def _dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


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


def _explain(exc: ValidationError, secret_paths: set[KeyPath]) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(part) for part in err["loc"])
        secret = tuple(err["loc"]) in secret_paths or (
            err["loc"][:1] == ("exchanges",) and any(is_secret_key(str(p)) for p in err["loc"][2:])
        )
        hidden = err["loc"][:2] == ("serve", "api_keys")  # keys are secrets however written: never echoed
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            parent = err["loc"][:-1]
            allowed = _allowed_keys(parent)
            msg = f"unknown key; allowed: {', '.join(allowed)}" if allowed else "unknown key"
        given = err.get("input")
        if secret and isinstance(given, str | int | float) and not isinstance(given, bool):
            given = mask(given)
        elif isinstance(given, str):
            given = redact_userinfo(given)
        shown = (
            ""
            if err["type"] in ("extra_forbidden", "missing") or isinstance(given, dict) or hidden
            else f" (got {_short(repr(given))})"
        )
        lines.append(f"{path}: {msg}{shown}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _short(text: str, limit: int = 80) -> str:
    # A hostile value can be megabytes long: name it, do not echo it whole.
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: Any = LabkitConfig
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return list(getattr(model, "model_fields", {}))


# --- Secrets ----------------------------------------------------------------------------------------


def _remember(config: LabkitConfig, secrets: _Secrets) -> None:
    key = id(config)
    _SECRETS[key] = (weakref.ref(config, lambda _: _SECRETS.pop(key, None)), secrets)


def _secrets_of(config: LabkitConfig) -> _Secrets | None:
    entry = _SECRETS.get(id(config))
    if entry is not None and entry[0]() is config:
        return entry[1]
    # A copy (`model_copy`) shares its sections with the config it was made from.
    owner = _owner_of(config.exchanges)
    return None if owner is None else _SECRETS[id(owner)][1]


def secret_values(config: LabkitConfig | Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Return the secret values of a config, for a log to redact.

    Given a config: every exchange credential, every URL password in any section, and every value
    read through ``${VAR}``. Given the ``exchanges`` of a config `load_config` returned, the same for
    that whole config; given any other exchanges mapping, the secrets its options show.
    """
    if isinstance(config, LabkitConfig):
        secrets = _secrets_of(config)
        data = config.model_dump(mode="json")
        found = [s for options in config.exchanges.values() for s in option_secrets(options)]
        found += [s for text in _strings(data) for s in userinfo_secrets(text)]
        found += [s for text in _strings(data) for s in query_secrets(text)]
        found += list(secrets.values) if secrets is not None else []
        return sorted(set(found))
    owner = _owner_of(config)
    if owner is not None:
        return secret_values(owner)
    plain = {s for options in config.values() for s in option_secrets(options)}
    plain |= {s for text in _strings(dict(config)) for s in query_secrets(text)}
    return sorted(plain)


def _owner_of(exchanges: Mapping[str, Any]) -> LabkitConfig | None:
    for ref, _ in list(_SECRETS.values()):
        owner = ref()
        if owner is not None and owner.exchanges is exchanges:
            return owner
    return None


def redacted(config: LabkitConfig) -> dict[str, Any]:
    """Return the config as JSON-ready data with every secret masked (`labkit.data.ccxt.mask`).

    Masked: each exchange credential (any value under a key `is_secret_key` names), each value read
    through ``${VAR}`` whatever its key, the userinfo of each URL anywhere
    (``http://user:****22@proxy:3128``; a user alone is a token: ``http://****@host``), and each
    secret query parameter of a URL anywhere, whole (``https://host/v1?token=****``).
    """
    data = config.model_dump(mode="json")
    secrets = _secrets_of(config)
    for path in secrets.paths if secrets is not None else ():
        _mask_at(data, path)
    for options in data.get("exchanges", {}).values():
        _mask_credentials(options, False)
    result: dict[str, Any] = _map_strings(data, lambda text: redact_query(redact_userinfo(text)))
    return result


def _secret_parameter(name: str) -> bool:
    plain = unquote(name)
    return is_secret_key(plain) or plain.lower() in _QUERY_SECRET_NAMES


def redact_query(text: str) -> str:
    """Mask, whole, the value of every secret query parameter of the URLs in `text`.

    ``https://api.example/v1?region=eu&token=abc123`` becomes
    ``https://api.example/v1?region=eu&token=****``: a secret's name (`is_secret_key`, or ``sig``)
    stays, so the reader sees what was set, and no character of its value does.
    """

    def replace(match: re.Match[str]) -> str:
        pairs = []
        for pair in match.group(2).split("&"):
            name, equals, value = pair.partition("=")
            pairs.append(f"{name}=****" if equals and value and _secret_parameter(name) else pair)
        return match.group(1) + "&".join(pairs)

    return _URL_QUERY.sub(replace, text)


def query_secrets(text: str) -> list[str]:
    """Return the values of the secret query parameters of the URLs in `text`, as written and decoded."""
    found = []
    for match in _URL_QUERY.finditer(text):
        for pair in match.group(2).split("&"):
            name, equals, value = pair.partition("=")
            if equals and value and _secret_parameter(name):
                found += [value, unquote(value)]
    return sorted(set(found))


def _mask_at(data: Any, path: KeyPath) -> None:
    node = data
    for part in path[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return
    leaf = path[-1] if path else None
    try:
        value = node[leaf]
    except (KeyError, IndexError, TypeError):
        return
    node[leaf] = _map_scalars(value, mask)


def _mask_credentials(node: Any, secret: bool) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if secret or is_secret_key(str(key)):
                node[key] = _map_scalars(value, mask)
            else:
                _mask_credentials(value, False)
    elif isinstance(node, list):
        for value in node:
            _mask_credentials(value, secret)
    return node


def _map_scalars(node: Any, fn: Any) -> Any:
    # None and booleans say whether something is set, not what: they stay.
    if isinstance(node, dict):
        return {k: _map_scalars(v, fn) for k, v in node.items()}
    if isinstance(node, list):
        return [_map_scalars(v, fn) for v in node]
    if node is None or isinstance(node, bool):
        return node
    return fn(node)


def _map_strings(node: Any, fn: Any) -> Any:
    if isinstance(node, dict):
        return {k: _map_strings(v, fn) for k, v in node.items()}
    if isinstance(node, list):
        return [_map_strings(v, fn) for v in node]
    return fn(node) if isinstance(node, str) else node


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []
