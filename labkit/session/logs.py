"""Session logs: JSON lines under the session directory, rotated, with secrets redacted."""

from __future__ import annotations

import logging
import logging.handlers
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

EVENTS = "labkit.events"


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


_INLINE_SECRET = re.compile(
    r"(?i)((?:api[_-]?key|secret|token|password|passphrase)[\"']?\s*[:=]\s*[\"']?)([^\s\"',}]+)"
)


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
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class RedactSecrets(logging.Filter):
    """Cut known secret values, and anything written as ``key=...``, to their last four characters."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "****" + secret[-4:])
        return _INLINE_SECRET.sub(lambda m: m.group(1) + "****" + m.group(2)[-4:], text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = ()
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


@contextmanager
def session_log(
    directory: Path, secrets: Iterable[str] = (), max_bytes: int = 5 << 20, backups: int = 5
) -> Iterator[logging.Handler]:
    """Send labkit's log records to ``<directory>/logs/session.jsonl`` while the block runs."""
    (directory / "logs").mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
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


def config_secrets(exchanges: dict[str, dict[str, Any]]) -> list[str]:
    """Return the secret values in exchange options, for redaction."""
    found: list[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, str) and re.search(r"(?i)(key|secret|password|token|passphrase|uid)$", key):
            found.append(node)

    walk(exchanges)
    return found
