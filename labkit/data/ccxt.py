"""Exchange data through ccxt: paginated fetches into the Parquet cache, resilient to outages.

`CcxtSource.bars` answers from the cache and fetches only what the cache has not covered yet, so a
backtest over cached data needs no network. Only public endpoints are called (markets and OHLCV),
even when keys are configured. Transient failures are retried with backoff; an empty or unreadable
page inside the range is retried too, and only then remembered as a gap the exchange confirms.

Secrets: what ccxt is given must never be shown. `is_secret_key`, `mask` and `SecretRedactor` are the
rules labkit redacts by everywhere (``config.json``, session logs, ccxt's own output): they live beside
the exchange client, the lowest place every other module may import. ccxt's ``verbose`` dumps and its
``ccxt.base.exchange`` debug log pass through a `SecretRedactor` built from the exchange's options.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import numpy as np
from tqdm import tqdm

from labkit.data.bars import make_bars, validate_bars
from labkit.data.cache import (
    CachedSource,
    cache_path,
    read_meta,
    subtract_ranges,
    write_meta,
    write_parquet,
)
from labkit.data.registry import SourceContext
from labkit.data.retry import CircuitBreaker, DataConfig, TransientError, with_retries
from labkit.errors import ConfigError, SourceUnavailableError
from labkit.timeutil import iso_s, now_ms, timeframe_ms

log = logging.getLogger(__name__)


_UNAVAILABLE_WORDS = ("503", "502", "504", "service unavailable", "temporarily unavailable", "maintenance")


# --- Secrets ----------------------------------------------------------------------------------------

# The credential fields of ccxt's exchanges; any option whose name holds one of the words of
# _SECRET_WORDS is a secret too (``secretKey``, ``X-API-TOKEN``, ``Authorization``...).
CREDENTIAL_FIELDS = frozenset(
    {"apiKey", "secret", "password", "uid", "login", "twofa", "privateKey", "walletAddress", "token"}
)
_SECRET_WORDS = re.compile(
    r"key|secret|passw|pwd|token|phrase|auth|credential|cookie|signature|mnemonic|jwt|twofa|login|uid|wallet",
    re.IGNORECASE,
)
# scheme://userinfo@ : the authority ends at the first / ? # or blank, so the userinfo runs to its last @
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#\s\"'<>\\]*)@")
# key=value, key: value, "key": "value" and Authorization: Bearer value, as written in logs and dumps
_INLINE_SECRET = re.compile(
    r"(?i)([\w-]{0,40}(?:api[_-]?key|secret|token|passw(?:or)?d|passphrase|signature|twofa|private[_-]?key"
    r"|authorization|cookie)[\w-]{0,40}[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)"
    r"([^\s\"',;&)}\]]+)"
)
# Values labkit's config read from ``${VAR}`` references (`labkit.config.loading` adds them): secrets
# whatever the key that holds them, so an exchange's options that contain one are redacted too.
_SECRET_VALUES: set[str] = set()
_MASK = "****"


def is_secret_key(name: str) -> bool:
    """Return whether an option called `name` holds a secret: a ccxt credential field or a secret word."""
    return name in CREDENTIAL_FIELDS or bool(_SECRET_WORDS.search(name))


def mask(value: object) -> str:
    """Return `value` cut to ``****`` and at most its last four characters.

    A third of the value at most is shown, never more than four characters: ``****1234`` for 12
    characters or more, ``****22`` for ``hunter22``, ``****`` for 4 characters or fewer. A value
    already masked is returned as it is, so redacting twice changes nothing.
    """
    text = str(value)
    if text.startswith(_MASK):
        return text
    shown = min(4, len(text) // 3) if len(text) > 4 else 0
    return _MASK + (text[-shown:] if shown else "")


def redact_userinfo(text: str) -> str:
    """Mask the userinfo of every URL in `text`.

    ``scheme://user:password@host`` keeps the user and masks the password, as `mask` does:
    ``http://user:hunter22@proxy:3128`` becomes ``http://user:****22@proxy:3128``. A userinfo without
    a password is a token and is masked whole: ``https://****@host``.
    """

    def replace(match: re.Match[str]) -> str:
        user, colon, password = match.group(2).partition(":")
        return f"{match.group(1)}{user}:{mask(password)}@" if colon else f"{match.group(1)}{mask(user)}@"

    return _URL_USERINFO.sub(replace, text)


def userinfo_secrets(text: str) -> list[str]:
    """Return the passwords (or tokens, when alone) in the userinfo of the URLs in `text`."""
    found = []
    for match in _URL_USERINFO.finditer(text):
        user, colon, password = match.group(2).partition(":")
        found.append(password if colon else user)
    return [s for s in found if s]


def add_secret_values(values: Iterable[str]) -> None:
    """Remember values read from the environment through ``${VAR}``: secrets wherever they appear."""
    _SECRET_VALUES.update(v for v in values if len(v) >= 4)


def option_secrets(options: Mapping[str, Any]) -> list[str]:
    """Return the secret values in one exchange's options, for redaction.

    Every value under a secret key (`is_secret_key`), however deep; the passwords of URLs; and the
    ``${VAR}`` values (`add_secret_values`) any option contains, whatever its key.
    """
    found: list[str] = []

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, secret or is_secret_key(str(key)))
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value, secret)
        elif isinstance(node, str):
            if secret:
                found.append(node)
            found.extend(userinfo_secrets(node))
            found.extend(v for v in _SECRET_VALUES if v in node)
        elif secret and node is not None and not isinstance(node, bool):
            found.append(str(node))

    walk(options, False)
    return found


class SecretRedactor:
    """Cut known secret values, URL passwords and anything written ``key=...`` in a text (`mask`).

    A secret is also found as it appears in URLs (percent-encoded) and in JSON (escaped), and the
    long words of a secret with blanks are secrets too (the token of ``Bearer <token>``). Values
    shorter than four characters are left to the key and URL rules, which do not need them.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        given = {s for s in secrets if s}
        given |= {word for s in given for word in s.split() if len(word) >= 8}
        self.secrets = sorted({s for s in given if len(s) >= 4}, key=len, reverse=True)
        forms: dict[str, str] = {}
        for secret in self.secrets:
            for form in (secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]):
                forms.setdefault(form, mask(secret))
        self._forms = sorted(forms.items(), key=lambda item: len(item[0]), reverse=True)

    def __call__(self, text: str) -> str:
        for form, masked in self._forms:
            if form in text:
                text = text.replace(form, masked)
        text = redact_userinfo(text)
        return _INLINE_SECRET.sub(lambda m: m.group(1) + mask(m.group(2)), text)


class _RedactingLogger(logging.LoggerAdapter):
    """ccxt's ``exchange.logger``: each record's text is redacted before any handler sees it."""

    def __init__(self, logger: logging.Logger, redact: SecretRedactor) -> None:
        super().__init__(logger, {})
        self.redact = redact

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = " ".join(str(part) for part in (msg, *args))
        kwargs.setdefault("stacklevel", 2)
        self.logger.log(level, self.redact(text), **kwargs)


class EmptyPageError(TransientError):
    """An empty or unreadable page where bars were expected."""


class CcxtSource(CachedSource):
    """Any exchange ccxt supports (public market data only), through the cache under ``data/ohlcv/``."""

    kinds = ("ccxt",)
    order = 30
    argument = "EXCHANGE"

    @classmethod
    def open(cls, kind: str, arg: str, ctx: SourceContext) -> CcxtSource:
        return cls(arg, ctx.home, dict(ctx.exchanges.get(arg, {})), ctx.data, live=ctx.live)

    def __init__(
        self,
        exchange_id: str,
        home: Path,
        options: dict[str, Any],
        data: DataConfig,
        live: bool = False,
        clock: Callable[[], int] = now_ms,
        sleep: Callable[[float], None] = time.sleep,
        progress: bool | None = None,
    ) -> None:
        self.spec = f"ccxt:{exchange_id}"
        self.exchange_id = exchange_id
        self.home = home
        self.options = options
        self.data = data
        self.attempts = data.live_retries if live else data.retries
        self.clock = clock
        self.sleep = sleep
        self.progress = progress
        self.breaker = CircuitBreaker(self.spec, data.breaker_threshold, data.breaker_cooldown)
        self.redact = SecretRedactor(option_secrets(options))
        self._exchange: Any = None

    def fetch(
        self, symbol: str, timeframe: str, since_ms: int, until_ms: int, refill_gaps: bool = False
    ) -> dict[str, int]:
        """Fetch the closed bars of ``[since, until)`` the cache lacks; return counts of what happened."""
        tf = timeframe_ms(timeframe)
        until_ms = min(until_ms, (self.clock() // tf) * tf)  # never the forming candle
        since_ms = -(-since_ms // tf) * tf
        path = cache_path(self.home, self.spec, symbol, timeframe)
        meta = read_meta(path)
        known = meta["covered"] if refill_gaps is False else _minus(meta["covered"], meta["gaps"])
        todo = subtract_ranges([since_ms, until_ms], known) if until_ms > since_ms else []
        stats = {"requested": 0, "fetched": 0, "gaps": 0}
        if not todo:
            return stats
        expected = sum((hi - lo) // tf for lo, hi in todo)
        with tqdm(
            total=expected,
            unit="bar",
            disable=None if self.progress is None else not self.progress,
            desc=f"{self.spec} {symbol} {timeframe}",
        ) as bar:
            for lo, hi in todo:
                self._fetch_range(symbol, timeframe, tf, lo, hi, path, stats, bar)
        return stats

    def _fetch_range(
        self,
        symbol: str,
        timeframe: str,
        tf: int,
        lo: int,
        hi: int,
        path: Path,
        stats: dict[str, int],
        bar: tqdm,
    ) -> None:
        cursor = lo
        rows: list[list[float]] = []
        gaps: list[list[int]] = []
        try:
            while cursor < hi:
                page_end = min(hi, cursor + self.data.page_limit * tf)
                try:
                    page = self._page(symbol, timeframe, cursor, page_end, tf)
                except EmptyPageError:
                    # Retried and still empty: the exchange has nothing there. Remember it.
                    gaps.append([cursor, page_end])
                    log.warning(
                        "%s %s %s: no bars %s .. %s after retries; remembered as a gap",
                        self.spec,
                        symbol,
                        timeframe,
                        iso_s(cursor),
                        iso_s(page_end),
                    )
                    bar.update((page_end - cursor) // tf)
                    cursor = page_end
                    continue
                stats["requested"] += 1
                first, last = int(page[0][0]), int(page[-1][0])
                if first > cursor:
                    gaps.append([cursor, first])
                times = np.array([r[0] for r in page], dtype="int64")
                for i in np.flatnonzero(np.diff(times) > tf):
                    gaps.append([int(times[i] + tf), int(times[i + 1])])
                rows.extend(page)
                bar.update((last + tf - cursor) // tf)
                cursor = last + tf
                if len(rows) >= 50_000:  # keep what is fetched even if a later page fails for good
                    self._store(rows, gaps, path, lo, cursor, stats)
                    lo, rows, gaps = cursor, [], []
        finally:
            self._store(rows, gaps, path, lo, cursor, stats)

    def _store(
        self,
        rows: list[list[float]],
        gaps: list[list[int]],
        path: Path,
        lo: int,
        hi: int,
        stats: dict[str, int],
    ) -> None:
        meta = read_meta(path)
        if rows:
            data = np.array(rows, dtype="float64")
            bars = make_bars(
                data[:, 0].astype("int64"),
                {k: data[:, i + 1] for i, k in enumerate(("open", "high", "low", "close", "volume"))},
            )
            validate_bars(bars, f"{self.spec} reply")
            write_parquet(bars, path)
            stats["fetched"] += len(bars)
        stats["gaps"] += len(gaps)
        if hi > lo:
            write_meta(path, meta["covered"] + [[lo, hi]], meta["gaps"] + gaps)

    def _page(self, symbol: str, timeframe: str, since: int, until: int, tf: int) -> list[list[float]]:
        exchange = self._client()

        def request() -> list[list[float]]:
            try:
                page = exchange.fetch_ohlcv(
                    symbol, timeframe, since=since, limit=self.data.page_limit, params={"until": until - 1}
                )
            except Exception as exc:  # noqa: BLE001 - sorted into transient and permanent below
                raise _classify(exc, exchange, self.redact) from exc
            closed = [r for r in page or [] if since <= r[0] < until and r[0] + tf <= self.clock()]
            if not closed:
                raise EmptyPageError(f"{self.spec}: empty or unreadable page at {iso_s(since)}")
            return closed

        def attempt_all() -> list[list[float]]:
            return with_retries(
                request,
                self.attempts,
                self.data.backoff_base,
                self.data.backoff_cap,
                sleep=self.sleep,
                on_retry=_log_retry,
            )

        try:
            return self.breaker.call(attempt_all)
        except EmptyPageError:
            raise
        except TransientError as exc:
            raise SourceUnavailableError(
                f"{self.spec}: still failing after {self.attempts} tries: {exc}"
            ) from exc

    def _client(self) -> Any:
        if self._exchange is None:
            import ccxt

            if not hasattr(ccxt, self.exchange_id):
                raise ConfigError(f"source: ccxt has no exchange {self.exchange_id!r}")
            config = {"enableRateLimit": True, **self.options}
            exchange = getattr(ccxt, self.exchange_id)(config)
            # ccxt prints its verbose dumps through `log` and logs requests at debug: both redacted.
            exchange.log = self._print_redacted
            exchange.logger = _RedactingLogger(exchange.logger, self.redact)
            # Public data only: never let market loading reach private endpoints, even with keys.
            exchange.options["fetchCurrencies"] = False
            exchange.options["fetchMargins"] = False
            if not exchange.has.get("fetchOHLCV"):
                raise ConfigError(f"source: {self.exchange_id} does not serve OHLCV bars through ccxt")
            self._exchange = exchange
        return self._exchange

    def _print_redacted(self, *args: object) -> None:
        # What ccxt's own `log` does (print to stdout), once the secrets are cut.
        print(self.redact(" ".join(str(arg) for arg in args)))


def _classify(exc: Exception, exchange: Any, redact: Callable[[str], str] = str) -> Exception:
    import ccxt

    text = redact(str(exc))
    if isinstance(exc, ccxt.OperationFailed):  # network errors, timeouts, rate limits, unavailable
        headers = getattr(exchange, "last_response_headers", None) or {}
        retry_after = headers.get("Retry-After") or headers.get("retry-after")
        try:
            wait = float(retry_after) if retry_after is not None else None
        except ValueError:
            wait = None
        return TransientError(f"{type(exc).__name__}: {text[:300]}", wait)
    if isinstance(exc, ccxt.ExchangeError) and any(w in text.lower() for w in _UNAVAILABLE_WORDS):
        return TransientError(f"{type(exc).__name__}: {text[:300]}")
    if isinstance(exc, ccxt.BaseError):
        return ConfigError(f"source: the exchange refused the request ({type(exc).__name__}): {text[:300]}")
    return TransientError(f"{type(exc).__name__}: {text[:300]}")


def _log_retry(state: Any) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning("retrying after failure %d: %s", state.attempt_number, exc)


def _minus(covered: list[list[int]], gaps: list[list[int]]) -> list[list[int]]:
    result: list[list[int]] = []
    for lo, hi in covered:
        result.extend(subtract_ranges([lo, hi], gaps))
    return result
