"""The single-instance run lock: only one `labkit run` per session; everyone else only probes it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from labkit._io import PRIVATE_FILE
from labkit.errors import SessionBusyError
from labkit.session.paths import SessionPaths
from labkit.session.status import pid_alive


@contextmanager
def hold_lock(paths: SessionPaths) -> Iterator[None]:
    """Hold the session's run lock while the block runs; raise SessionBusyError when it is taken."""
    paths.root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(paths.lock, timeout=0, mode=PRIVATE_FILE)
    try:
        lock.acquire()
    except Timeout:
        raise SessionBusyError(
            f"session {paths.name!r} is already running ({holder_words(paths)}); "
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


def holder_words(paths: SessionPaths) -> str:
    """Name who holds the run lock: its live pid where the platform says, never a heartbeat's pid.

    A heartbeat's pid may be a run that died since (its lock went with it), so it names nobody.
    """
    holder = lock_holder(paths)
    if holder is not None and pid_alive(holder):
        return f"pid {holder}"
    return "the run lock is held by another process"


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
