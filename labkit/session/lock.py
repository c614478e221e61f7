"""The single-instance run lock: only one `labkit run` per session; everyone else only probes it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from labkit._io import PRIVATE_FILE, read_json
from labkit.errors import SessionBusyError
from labkit.session.paths import SessionPaths


@contextmanager
def hold_lock(paths: SessionPaths) -> Iterator[None]:
    """Hold the session's run lock while the block runs; raise SessionBusyError when it is taken."""
    paths.root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(paths.lock, timeout=0, mode=PRIVATE_FILE)
    try:
        lock.acquire()
    except Timeout:
        holder = (read_json(paths.heartbeat) or {}).get("pid", "unknown")
        raise SessionBusyError(
            f"session {paths.name!r} is already running (pid {holder}); "
            f"`labkit stop --session {paths.name}` stops it"
        ) from None
    try:
        yield
    finally:
        lock.release()


def lock_held(paths: SessionPaths) -> bool:
    """Return True when some process holds the session's run lock (a probe: never waits)."""
    if not paths.lock.exists():
        return False
    lock = FileLock(paths.lock, timeout=0, mode=PRIVATE_FILE)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False


def lock_holder(paths: SessionPaths) -> int | None:
    """Return the pid holding the run lock where the platform says (Linux's /proc/locks), else None."""
    try:
        inode = os.stat(paths.lock).st_ino
        with open("/proc/locks", encoding="ascii") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) > 5 and parts[5].split(":")[-1] == str(inode):
                    return int(parts[4])
    except (OSError, ValueError):
        return None
    return None
