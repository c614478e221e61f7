"""Session statuses for the server, read from a session's files once per change, not once per request.

`/health`, `/metrics` and `/api/sessions` ask for every session's status at each request; fifty
clients at once would read and parse the same files fifty times. `StatusCache` keeps each
session's status with the signature of the files it came from (inode, size and times of
``heartbeat.json``, ``state.json``, ``config.json`` and the journal): a status is read again when
one of them changes, and at least every `ttl` seconds, since a status also depends on what no file
records (whether the process still runs, how old its last beat is). The list of sessions is kept
the same way, with the signature of the sessions folder: a session created or removed there shows
at the next request.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit.errors import ConfigError
from labkit.session.paths import list_sessions, session_paths, sessions_root

Signature = tuple[tuple[int, int, int, int] | None, ...]
TTL = 1.0  # seconds: how late a death or a stale heartbeat may show


class StatusCache:
    """What `labkit.session.status.session_status` returns for each session of a home, kept per change.

    Parameters
    ----------
    home
        The labkit home.
    ttl
        Seconds after which a status is read again even when its files did not change.
    clock
        Monotonic seconds (injectable for tests).
    """

    def __init__(self, home: Path, ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.home = home
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[Signature, float, dict[str, Any]]] = {}
        self._files: dict[str, tuple[str, ...]] = {}  # each session's files, as `_signature` stats them
        self._names: tuple[Signature, float, list[str]] | None = None
        # One reader at a time: the others find its result rather than read the same files again.
        self._lock = threading.Lock()

    def statuses(self) -> list[dict[str, Any]]:
        """Return every session's status, in `list_sessions` order (one removed meanwhile left out)."""
        with self._lock:
            names = self._list()
            for gone in set(self._entries) - set(names):
                del self._entries[gone]
                self._files.pop(gone, None)
            found = [self._status(name) for name in names]
        return [status for status in found if status is not None]

    def status(self, name: str) -> dict[str, Any] | None:
        """Return one session's status, or None when it has no files (any more)."""
        with self._lock:
            return self._status(name)

    def _list(self) -> list[str]:
        signature = _signature((str(sessions_root(self.home)),))
        now = self.clock()
        if self._names is not None and self._names[0] == signature and now - self._names[1] < self.ttl:
            return self._names[2]
        names = list_sessions(self.home)
        self._names = (signature, now, names)
        return names

    def _status(self, name: str) -> dict[str, Any] | None:
        from labkit.session import status as session_status

        files = self._files.get(name)
        if files is None:
            paths = session_paths(self.home, name)
            files = tuple(str(p) for p in (paths.heartbeat, paths.state, paths.config, paths.decisions))
            self._files[name] = files
        signature = _signature(files)
        now = self.clock()
        entry = self._entries.get(name)
        if entry is not None and entry[0] == signature and now - entry[1] < self.ttl:
            return entry[2]
        try:
            status = session_status.session_status(self.home, name)
        except ConfigError:
            self._entries.pop(name, None)
            self._names = None  # removed since it was listed: list again
            return None
        self._entries[name] = (signature, now, status)
        return status


def _signature(files: tuple[str, ...]) -> Signature:
    # A file rewritten by rename gets another inode; one appended to, another size.
    found: list[tuple[int, int, int, int] | None] = []
    for path in files:
        try:
            stat = os.stat(path)
        except OSError:
            found.append(None)
            continue
        found.append((stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns))
    return tuple(found)
