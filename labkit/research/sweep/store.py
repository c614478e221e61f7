"""A sweep on disk: one small file per finished run, the two tables rebuilt from them, and its lock.

``runs/<run_id>.json`` holds a finished run's row and its return blocks, written atomically as the
run finishes: a sweep killed at any moment keeps every run it finished. ``results.parquet`` and
``blocks.parquet`` are rebuilt from those rows (sorted by run id, written atomically), so the
tables of a sweep resumed after a crash equal those of a sweep never interrupted.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from filelock import FileLock, Timeout

from labkit._io import PRIVATE_FILE, make_private_dir, read_json, write_atomic, write_json_atomic
from labkit.errors import SessionBusyError
from labkit.research.sweep.paths import SweepPaths
from labkit.research.sweep.plan import HEAD, TAIL
from labkit.timeutil import iso_ms, now_ms

log = logging.getLogger(__name__)

# Each successful run's per-bar returns, cut into this many consecutive blocks of equal length.
BLOCKS = 64


class SweepStore:
    """The files of one sweep, and the finished runs read from them (kept in memory while it runs)."""

    def __init__(self, paths: SweepPaths) -> None:
        self.paths = paths
        self.folder = paths.root
        self.shown = paths.shown
        self.runs_dir = paths.runs
        self.lock_path = paths.lock
        self.owner_path = paths.owner
        self.results_path = paths.results
        self.blocks_path = paths.blocks
        self.rows: dict[str, dict[str, Any]] = {}
        self.blocks: dict[str, np.ndarray] = {}  # run id -> (BLOCKS, 3): n, sum, sum of squares

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the sweep's lock while the block runs; raise SessionBusyError (exit 3) when it is taken."""
        make_private_dir(self.folder)
        lock = FileLock(self.lock_path, timeout=0, mode=PRIVATE_FILE)
        try:
            lock.acquire()
        except Timeout:
            holder = _lock_holder(self.lock_path) or (read_json(self.owner_path) or {}).get("pid", "unknown")
            raise SessionBusyError(
                f"{self.shown} is being swept by another process (pid {holder}); wait for it to "
                "finish, or stop it and continue the sweep with --resume"
            ) from None
        try:
            owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": iso_ms(now_ms())}
            write_json_atomic(self.owner_path, owner)
            yield
        finally:
            lock.release()

    def load(self) -> int:
        """Read every finished run into memory and return how many there are.

        A file that is not a well-formed run (unreadable, not JSON, a row or return blocks of the
        wrong shape, a value of another type than the same column holds in the other runs) is
        skipped with a warning naming it: its run runs again and its file is replaced. The
        temporary files of writes a crash interrupted are removed.
        """
        make_private_dir(self.runs_dir)
        for stale in self.runs_dir.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        self.rows.clear()
        self.blocks.clear()
        found: dict[str, tuple[Path, dict[str, Any], dict[str, list[float]] | None]] = {}
        for path in sorted(self.runs_dir.glob("*.json")):
            try:
                row, blocks = read_run(path)
            except DamagedRunError as exc:
                _skip(path, str(exc))
                continue
            found[path.stem] = (path, row, blocks)
        for run_id, why in _odd_values({run_id: row for run_id, (_, row, _) in found.items()}).items():
            _skip(found.pop(run_id)[0], why)
        for _, row, blocks in found.values():
            self._keep(row, blocks)
        return len(self.rows)

    def ok(self, run_id: str, key: dict[str, Any] | None = None) -> bool:
        """Return True when the run finished without an error (a failed run is tried again).

        With `key` (the run's grid values, as the plan makes them), a finished run whose file holds
        other values is forgotten with a warning and runs again: its file is not this run's.
        """
        row = self.rows.get(run_id)
        if row is not None and key is not None and any(row.get(k) != v for k, v in key.items()):
            wrong = next(k for k, v in key.items() if row.get(k) != v)
            why = f"{wrong} is {_short(row.get(wrong))}, where the grid's run has {_short(key[wrong])}"
            _skip(self.runs_dir / f"{run_id}.json", why)
            self.rows.pop(run_id)
            self.blocks.pop(run_id, None)
            return False
        return row is not None and row.get("error") is None

    def failed(self) -> int:
        """Return how many finished runs failed."""
        return sum(row.get("error") is not None for row in self.rows.values())

    def save(self, row: dict[str, Any], blocks: dict[str, list[float]] | None) -> None:
        """Write one finished run's file atomically, then keep it in memory for the tables."""
        data = orjson.dumps({"row": row, "blocks": blocks}, option=orjson.OPT_SERIALIZE_NUMPY)
        write_atomic(self.runs_dir / f"{row['run_id']}.json", data)
        self._keep(row, blocks)

    def write_tables(self) -> None:
        """Rebuild ``results.parquet`` and ``blocks.parquet`` from the finished runs, rows by run id."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        ids = sorted(self.rows)
        rows = [self.rows[i] for i in ids]
        results = pa.table({name: pa.array([row.get(name) for row in rows]) for name in _columns(rows)})
        write_atomic(self.results_path, lambda handle: pq.write_table(results, handle))
        done = [i for i in ids if i in self.blocks]
        cube = np.stack([self.blocks[i] for i in done]) if done else np.empty((0, BLOCKS, 3))
        blocks = pa.table(
            {
                "run_id": pa.array(np.repeat(np.array(done, dtype=object), BLOCKS), pa.string()),
                "block": pa.array(np.tile(np.arange(BLOCKS, dtype="int64"), len(done))),
                "n": pa.array(cube[:, :, 0].ravel().astype("int64")),
                "sum": pa.array(cube[:, :, 1].ravel()),
                "sumsq": pa.array(cube[:, :, 2].ravel()),
            }
        )
        write_atomic(self.blocks_path, lambda handle: pq.write_table(blocks, handle))

    def _keep(self, row: dict[str, Any], blocks: dict[str, list[float]] | None) -> None:
        run_id = row["run_id"]
        row.setdefault("symbols", 1)  # a run finished before books were swept is a single symbol's
        self.rows[run_id] = row
        if blocks is None:
            self.blocks.pop(run_id, None)
        else:
            columns = [np.asarray(blocks[k], dtype="float64") for k in ("n", "sum", "sumsq")]
            self.blocks[run_id] = np.stack(columns, axis=1)


class DamagedRunError(ValueError):
    """A run file that is not a well-formed finished run; the message says what is wrong."""


# The kind of value each of the grid's and the run's own columns holds when it holds one.
_KINDS = {
    "run_id": "text",
    "symbol": "text",
    "symbols": "number",
    "timeframe": "text",
    "since": "text",
    "until": "text",
    "fee": "number",
    "slippage": "number",
    "config_hash": "text",
    "trial": "text",
    "error": "text",
    "seconds": "number",
}
_INT64 = 2**63


def read_run(path: Path) -> tuple[dict[str, Any], dict[str, list[float]] | None]:
    """Return the row and return blocks of a run file, or raise DamagedRunError saying what is wrong.

    A row maps column names to one plain value each (no lists, no mappings), its ``run_id`` is the
    file's name, and each grid column holds its kind of value. A run without an error has blocks:
    ``n``, ``sum`` and ``sumsq``, each `BLOCKS` finite numbers; a failed run has none.
    """
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise DamagedRunError(f"cannot be read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise DamagedRunError(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or not {"row", "blocks"} <= data.keys():
        raise DamagedRunError("not a mapping of a row and its blocks")
    row, blocks = data["row"], data["blocks"]
    _check_row(row, path.stem)
    if row.get("error") is None:
        _check_blocks(blocks)
    elif blocks is not None:
        raise DamagedRunError("a failed run with return blocks")
    return row, blocks


def _check_row(row: Any, run_id: str) -> None:
    if not isinstance(row, dict) or row.get("run_id") != run_id:
        raise DamagedRunError("not the row of this run")
    for name, value in row.items():
        kind = _kind(value)
        if kind == "bad":
            raise DamagedRunError(f"{name} holds {type(value).__name__} {_short(value)}, not one plain value")
        wanted = _KINDS.get(name)
        if kind is not None and wanted is not None and kind != wanted:
            raise DamagedRunError(f"{name} holds {_short(value)}, not {wanted}")


def _check_blocks(blocks: Any) -> None:
    if not isinstance(blocks, dict) or set(blocks) != {"n", "sum", "sumsq"}:
        raise DamagedRunError("its return blocks are not n, sum and sumsq")
    for name, values in blocks.items():
        if not isinstance(values, list) or len(values) != BLOCKS:
            raise DamagedRunError(f"blocks.{name} is not a list of {BLOCKS} numbers")
        if any(_kind(v) != "number" for v in values):
            raise DamagedRunError(f"blocks.{name} holds something other than finite numbers")


def _kind(value: Any) -> str | None:
    # The kinds a column of the results table can hold; "bad" for what no column holds.
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "number" if -_INT64 <= value < _INT64 else "bad"
    if isinstance(value, float):
        return "number" if np.isfinite(value) else "bad"
    return "text" if isinstance(value, str) else "bad"


def _odd_values(rows: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Return the runs holding a value of another kind than most runs hold in that column, and why.

    A table column holds one kind of value; where runs disagree, the kind most of them hold stands
    (a number over text or a flag on a tie, as the backtest's figures are numbers).
    """
    kinds: dict[str, dict[str, list[str]]] = {}
    for run_id, row in rows.items():
        for name, value in row.items():
            kind = _kind(value)
            if kind is not None:
                kinds.setdefault(name, {}).setdefault(kind, []).append(run_id)
    odd: dict[str, str] = {}
    for name, held in kinds.items():
        if len(held) < 2:
            continue
        usual = max(held, key=lambda k: (len(held[k]), k == "number", k))
        for kind, ids in held.items():
            for run_id in ids if kind != usual else []:
                why = f"{name} holds {_short(rows[run_id][name])}, where the other runs hold a {usual}"
                odd.setdefault(run_id, why)
    return odd


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _skip(path: Path, why: str) -> None:
    log.warning("%s: not a finished run (%s); it runs again", path, why)


def return_blocks(returns: np.ndarray) -> dict[str, list[float]]:
    """Return the count, sum and sum of squares of `returns` in `BLOCKS` consecutive blocks.

    The blocks are cut by position into lengths that differ by at most one (`numpy.array_split`),
    so the mean and variance of any union of blocks, and its Sharpe ratio, follow exactly.

    Examples
    --------
    >>> b = return_blocks(np.arange(130, dtype=float))
    >>> b["n"][:3], b["sum"][:2], len(b["n"])
    ([3.0, 3.0, 2.0], [3.0, 12.0], 64)
    """
    parts = np.array_split(np.asarray(returns, dtype="float64"), BLOCKS)
    return {
        "n": [float(len(p)) for p in parts],
        "sum": [float(p.sum()) for p in parts],
        "sumsq": [float((p * p).sum()) for p in parts],
    }


def _lock_holder(path: Path) -> int | None:
    # Linux says who holds a lock (/proc/locks, by inode); owner.json is what the holder wrote.
    try:
        inode = str(os.stat(path).st_ino)
        with open("/proc/locks", encoding="ascii") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) > 5 and parts[5].split(":")[-1] == inode:
                    return int(parts[4])
    except (OSError, ValueError):
        return None
    return None


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    # The grid's columns first, the run's own (time, error, trial) last, the rest as they first appear.
    seen = dict.fromkeys(HEAD)
    for row in rows:
        seen.update(dict.fromkeys(k for k in row if k not in TAIL))
    return [*seen, *TAIL]
