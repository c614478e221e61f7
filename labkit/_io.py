"""Atomic file writes and JSON Lines: the only copies.

``write_json_atomic`` replaces a file so readers see the old one or the new, never half (write to a
unique temp file, fsync, rename). JSON Lines files are appended whole and read back up to their last
complete line; a torn tail left by a crash is cut with a warning. ``file_hash`` names a file's
contents by the first 12 hex digits of their SHA-256, as reports and verdicts show them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

log = logging.getLogger(__name__)
# Files labkit writes hold a session's money, positions and configuration: private by default,
# whatever the umask. Pages meant for others to read (reports) ask for 0644 themselves.
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) as 0700 and return it; an existing folder is tightened."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    if path.stat().st_mode & 0o777 != PRIVATE_DIR:
        os.chmod(path, PRIVATE_DIR)
    return path


def named(exc: OSError, path: Path) -> OSError:
    """Return `exc` with the file it concerns, when the OS left it out (a write or an fsync)."""
    if exc.filename is None:
        return type(exc)(exc.errno, exc.strerror, str(path))
    return exc


def write_atomic(
    path: Path, content: bytes | Callable[[BinaryIO], object], mode: int | None = None
) -> None:
    """Replace `path` so that readers see the old file or the new, never half of one.

    `content` is the bytes, or a function that writes them to the open file. The file is written
    under a unique temporary name beside `path`, flushed to disk, then renamed over it; if anything
    fails (a full disk, an error in `content`), the old file stays and the temporary one is removed.
    `mode` sets the permissions, 0600 unless said otherwise.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None and mode != PRIVATE_FILE:
            os.chmod(tmp, mode)  # mkstemp makes 0600 whatever the umask
        with os.fdopen(fd, "wb") as handle:
            if isinstance(content, bytes):
                handle.write(content)
            else:
                content(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise named(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as indented JSON, atomically (`write_atomic`)."""
    text = json.dumps(data, indent=1, allow_nan=False, default=str)
    write_atomic(path, text.encode("utf-8"))


def read_json(path: Path) -> dict[str, Any] | None:
    """Return a JSON object from `path`, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def repair_torn_tail(path: Path) -> bool:
    """Cut a half-written last line (a crash mid-write) and say so; return True if one was cut."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - 1))
        if handle.read(1) == b"\n":
            return False
        block = 1 << 16
        pos = size
        while pos > 0:
            start = max(0, pos - block)
            handle.seek(start)
            chunk = handle.read(pos - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                cut = start + newline + 1
                break
            pos = start
        else:
            cut = 0
        handle.truncate(cut)
    log.warning("%s: cut a torn last line (%d bytes) left by an interrupted write", path, size - cut)
    return True


def iter_lines(path: Path, offset: int = 0) -> Iterator[dict[str, Any]]:
    """Yield the journal's complete decision lines in order, from byte `offset` (a line start)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        for raw in handle:
            if raw.endswith(b"\n"):
                yield orjson.loads(raw)


def last_whole_line(path: Path, skip_blank: bool = True) -> bytes | None:
    """Return the bytes of the file's last line that ends in a newline, without it, reading only its tail.

    What follows the last newline is a line torn by a crash, never returned. Blank lines are passed
    over unless `skip_blank` is False (a reader that must name a blank line as damage). None when
    there is no such line, or no file.
    """
    if not path.exists():
        return None
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        block = min(size, 1 << 16)
        while True:
            handle.seek(size - block)
            # What precedes the block's first newline may be part of a line: only whole ones count.
            whole = handle.read(block).split(b"\n")[1 if block < size else 0 : -1]
            if skip_blank:
                whole = [line for line in whole if line]
            if whole:
                return whole[-1]
            if block == size:
                return None
            block = min(size, block * 4)


def last_line(path: Path) -> dict[str, Any] | None:
    """Return the journal's last complete line, reading only the file's tail."""
    raw = last_whole_line(path)
    return None if raw is None else dict(orjson.loads(raw))


def fsync_dir(path: Path) -> None:
    """Flush folder `path`, so the renames made in it survive a power loss (best effort)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_append(path: Path) -> BinaryIO:
    """Open a JSON Lines file (0600) for appending, buffered, after cutting a torn tail left by a crash."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    repair_torn_tail(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)  # the umask may have loosened a new file, or an old one is wider
    return os.fdopen(fd, "ab", buffering=1 << 20)


def append_line(path: Path, line: bytes, mode: int = PRIVATE_FILE) -> int:
    """Append one whole line and fsync it; return the file's size after it.

    O_APPEND puts the line at the end even when two processes append at once, and the loop
    finishes a short write, so a line is never left half-written while the disk has room.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        return os.fstat(fd).st_size
    except OSError as exc:
        raise named(exc, path) from None
    finally:
        os.close(fd)


def short_hash(data: bytes) -> str:
    """Return the first 12 hex digits of the SHA-256 of `data`.

    Examples
    --------
    >>> short_hash(b"sma_cross-10-30")
    '54c3a2120af6'
    """
    return hashlib.sha256(data).hexdigest()[:12]


def file_hash(path: Path) -> str | None:
    """Return `short_hash` of a file's bytes, or None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()[:12]
