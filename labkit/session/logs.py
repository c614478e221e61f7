"""Session logs: JSON lines under the session directory, rotated, with secrets redacted.

`RedactSecrets` masks known secret values, URL passwords and ``key=value`` secrets in each record's
message, its `extra` fields and its traceback; `config_secrets` lists a config's secrets for it: the
exchange credentials, URL passwords and every value that came from a ``${VAR}`` reference.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import orjson

from labkit._io import PRIVATE_FILE, make_private_dir
from labkit.config.loading import secret_values
from labkit.config.schema import LabkitConfig
from labkit.data.ccxt import SecretRedactor

EVENTS = "labkit.events"


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            # RedactSecrets leaves the traceback redacted in exc_text.
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class RedactSecrets(logging.Filter):
    """Mask known secret values, URL passwords and anything written ``key=...`` (`labkit.data.ccxt.mask`).

    The message, every `extra` field (inside lists and dicts too) and the traceback are redacted.
    `whole` are secrets no character of which may show (`labkit serve`'s keys): each becomes
    ``****``, as written, percent-encoded or JSON-escaped.
    """

    def __init__(self, secrets: Iterable[str] = (), whole: Iterable[str] = ()) -> None:
        super().__init__()
        self._redactor = SecretRedactor(secrets)
        self.secrets = self._redactor.secrets
        forms = {form for key in whole if key for form in _written_forms(key)}
        self._whole = sorted(forms, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for form in self._whole:
            if form in text:
                text = text.replace(form, "****")
        return self._redactor(text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = ()
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str | dict | list | tuple):
                setattr(record, key, self._deep(value))
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def _deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self._deep(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._deep(v) for v in value]
        if type(value) is tuple:
            return tuple(self._deep(v) for v in value)
        return value


def _written_forms(secret: str) -> tuple[str, ...]:
    # As it is written in a text, in a URL (percent-encoded) and in JSON (escaped).
    return (secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1])


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    # Log files are session files: 0600 whatever the umask, also after each rotation.
    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
        os.fchmod(fd, PRIVATE_FILE)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


@contextmanager
def session_log(
    directory: Path, secrets: Iterable[str] = (), max_bytes: int = 5 << 20, backups: int = 5
) -> Iterator[logging.Handler]:
    """Send labkit's log records to ``<directory>/logs/session.jsonl`` while the block runs."""
    make_private_dir(directory / "logs")
    handler = _PrivateRotatingFileHandler(
        directory / "logs" / "session.jsonl", maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactSecrets(secrets))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("labkit")
    events = logging.getLogger(EVENTS)  # per-decision events: the file only, not the terminal
    previous = root.level
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    events.setLevel(logging.INFO)
    events.propagate = False
    root.addHandler(handler)
    events.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        events.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


def config_secrets(config: LabkitConfig | Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Return the secret values a session log must mask (`labkit.config.loading.secret_values`).

    Give the config, or its ``exchanges`` (``config_secrets(config.exchanges)``, as the runner does):
    for a config `load_config` returned both cover the whole config, ``${VAR}`` values included.
    """
    return secret_values(config)
