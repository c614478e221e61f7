"""Who may do what over HTTP: bearer keys checked in constant time, a rate per client, loopback binds.

Keys are compared as SHA-256 digests with `hmac.compare_digest`, against every configured key with
no early exit, so neither the time taken nor the key matched says anything about a key. The rate
limit is a token bucket per client holding a minute's worth of requests; a client is an address,
the whole loopback range being one (`client_name`), or, behind a proxy, the address its configured
header names. A client's text is quoted back or logged only when it cannot hold a key (`harmless`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from labkit.config.schema import ServeConfig
from labkit.errors import ConfigError

MIN_KEY = 16
MAX_KEY = 1024
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


def api_keys(config: ServeConfig) -> list[str]:
    """Return the configured keys, checked: at least `MIN_KEY` printable ASCII characters, no blank.

    Raises
    ------
    ConfigError
        Naming ``serve.api_keys`` and which key (by position, never by value) is unfit.
    """
    keys = [secret.get_secret_value() for secret in config.api_keys]
    for number, key in enumerate(keys):
        where = f"serve.api_keys[{number}]"
        if not MIN_KEY <= len(key) <= MAX_KEY:
            raise ConfigError(
                f"{where}: a key is {MIN_KEY} to {MAX_KEY} characters (this one has {len(key)}); "
                "make one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
            raise ConfigError(f"{where}: a key is printable ASCII without blanks (it goes in an HTTP header)")
    return keys


def harmless(text: str, keys: Iterable[str]) -> bool:
    """Return True when `text`, sent by a client, may be quoted in an answer or a log line.

    It is shorter than any key can be, and no key holds it (a text of four characters or more), so
    a key pasted in the wrong place (``?key=...``, a key as a parameter's name) never shows, not
    even in part.
    """
    if len(text) >= MIN_KEY:
        return False
    return len(text) < 4 or not any(text in key for key in keys)


def client_name(peer: str | None, forwarded: str | None = None) -> str:
    """Return who a request counts against in the rate limit.

    `peer` is the connection's address; `forwarded` the value of ``serve.forwarded_header`` when it
    is configured and sent: its last address is the one the proxy saw (the ones before it are what
    the client claimed). Every loopback address (127.0.0.0/8, ``::1``, and both as IPv4-mapped
    IPv6) is one client, ``loopback``; an IPv6 address counts as its /64, what one host is given.
    A forwarded value that is not an address falls back on the connection's.
    """
    if forwarded:
        named = _address_name(forwarded.split(",")[-1])
        if named is not None:
            return named
    if peer is None:
        return "unknown"
    return _address_name(peer) or peer


def _address_name(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def is_loopback(host: str) -> bool:
    """Return True when `host` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(config: ServeConfig, host_flag: str = "--host") -> None:
    """Refuse to listen beyond this machine while no key guards the control endpoints."""
    if not is_loopback(config.host) and not config.api_keys:
        raise ConfigError(
            f"{host_flag}: listening on {config.host!r} would let other machines reach the API; set "
            "serve.api_keys (as ${VAR}) first, or listen on 127.0.0.1, ::1 or localhost"
        )


class KeyRing:
    """The configured keys, as digests; `matches` checks a request's ``Authorization`` header."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [hashlib.sha256(key.encode("utf-8")).digest() for key in keys]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def matches(self, authorization: str | None) -> bool:
        """Return True when the header is ``Bearer KEY`` with KEY one of the keys."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        given = hashlib.sha256(token.strip().encode("utf-8", "surrogateescape")).digest()
        found = False
        for digest in self._digests:  # every key, always: no early exit
            found |= hmac.compare_digest(given, digest)
        return found and scheme.lower() == "bearer"


class RateLimiter:
    """A token bucket per client: `per_minute` requests at once, then `per_minute` a minute.

    The least recently seen clients are forgotten past `max_clients` (their buckets were full or
    nearly so), so a flood of addresses cannot fill the memory.
    """

    def __init__(
        self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> int:
        """Spend one request of `client`; return 0 when allowed, else the seconds to wait."""
        now = self.clock()
        tokens, at = self._buckets.pop(client, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        wait = 0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = max(1, math.ceil((1.0 - tokens) / self.rate))
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait
