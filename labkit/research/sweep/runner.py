"""Running a sweep: the runs not yet finished, on a `concurrent.futures` executor, into the sweep's files.

One loop drives both engines: a local process pool (``spawn``ed workers, one thread pool each) or
a Dask cluster's executor (`distributed.Client.get_executor`). It keeps a few tasks per worker in
flight, writes each run's file as it finishes, appends its trial, and rebuilds the tables about
every 10 seconds and at the end, also when interrupted.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from labkit.errors import ConfigError, LabkitError
from labkit.research.sweep.grid import book_symbols
from labkit.research.sweep.plan import Run, SweepPlan
from labkit.research.sweep.store import SweepStore

log = logging.getLogger(__name__)

# Tasks in flight per worker: enough that none waits for the next, few enough to cancel quickly.
IN_FLIGHT_PER_WORKER = 2
FLUSH_SECONDS = 10.0
DASK_TIMEOUT = "10s"

Progress = Callable[[int, int, int], object]  # (runs in the grid, finished, failed)


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did: its tables, its runs (all, run now, finished before) and the best by Sharpe."""

    name: str
    folder: Path
    table: Path
    blocks: Path
    runs: int
    ran: int
    skipped: int
    failed: int
    seconds: float
    workers: int
    top: list[dict[str, Any]] = field(default_factory=list)


def run_sweep(
    plan: SweepPlan,
    workers: int | None = None,
    dask: str | None = None,
    resume: bool = False,
    progress: Progress | None = None,
    flush_seconds: float = FLUSH_SECONDS,
) -> SweepResult:
    """Run the grid's runs not yet finished and return what was done; the tables are rebuilt at the end.

    Parameters
    ----------
    plan
        The sweep's runs (`SweepPlan`).
    workers
        Local worker processes (default: the machine's cores); ignored with `dask`.
    dask
        The address of a Dask scheduler (``tcp://HOST:8786``) whose workers see the same home.
    resume
        Continue a sweep that has finished runs: those that succeeded are skipped, failed ones run
        again. Without it, a sweep folder holding finished runs is refused.
    progress
        Called with (runs, finished, failed) at the start and after each run.

    Raises
    ------
    ConfigError
        When the folder holds finished runs and `resume` is False, or the Dask cluster cannot run them.
    SessionBusyError
        When another process is running the same sweep.
    """
    start = time.perf_counter()
    store = SweepStore(plan.paths)
    shown = store.shown
    with store.hold():
        finished = store.load()
        if finished and not resume:
            raise ConfigError(
                f"{shown} has {finished} finished runs; pass --resume to continue it, or choose another name"
            )
        write_grid(plan, store)
        pending: list[tuple[str, Any]] = []
        seen: set[str] = set()
        for run in plan.runs():
            if run.run_id in seen:
                raise ConfigError(f"grid: two runs are the same backtest ({run.key}); give each value once")
            seen.add(run.run_id)
            if not store.ok(run.run_id, run.key):
                pending.append((run.run_id, run.index))
        skipped = plan.total - len(pending)
        slots = 0
        try:
            if pending:
                g = plan.grid
                markets = {(tuple(book_symbols(g.symbols[i[0]])), g.timeframes[i[1]]) for _, i in pending}
                plan.prepare_bars(markets)
                with open_executor(workers, dask, plan.home) as (executor, slots):
                    _drive(plan, store, executor, slots, [i for _, i in pending], progress, flush_seconds)
            elif progress is not None:
                progress(plan.total, plan.total, store.failed())
        finally:
            store.write_tables()
    return SweepResult(
        name=plan.grid.name,
        folder=plan.folder,
        table=store.results_path,
        blocks=store.blocks_path,
        runs=plan.total,
        ran=len(pending),
        skipped=skipped,
        failed=store.failed(),
        seconds=time.perf_counter() - start,
        workers=slots,
        top=top_runs(store.rows.values()),
    )


def top_runs(rows: Any, n: int = 3) -> list[dict[str, Any]]:
    """Return the `n` rows with the highest Sharpe ratio among those that did not fail."""
    good = [r for r in rows if r.get("error") is None and isinstance(r.get("sharpe"), int | float)]
    return sorted(good, key=lambda r: (-r["sharpe"], r["run_id"]))[:n]


def write_grid(plan: SweepPlan, store: SweepStore) -> None:
    """Write the grid this sweep was last started with beside its runs (``grid.json``), for the record."""
    from labkit._io import write_json_atomic

    write_json_atomic(store.paths.grid_written, plan.grid.model_dump(mode="json"))


@contextmanager
def open_executor(workers: int | None, dask: str | None, home: Path) -> Iterator[tuple[Executor, int]]:
    """Yield a `concurrent.futures` executor and how many runs it runs at once.

    Locally, a process pool of `workers` ``spawn``ed processes (a parent with threads must not
    fork); with `dask`, the executor of a client of that scheduler, after checking that every
    worker runs labkit and sees the home.
    """
    if dask:
        with _dask_executor(dask, home) as found:
            yield found
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from labkit.research.sweep.worker import init_worker

    n = workers or os.cpu_count() or 1
    pool = ProcessPoolExecutor(
        max_workers=n,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker,
        initargs=(os.getpid(),),
    )
    ok = False
    try:
        yield pool, n
        ok = True
    finally:
        # Interrupted: cancel what has not started and return at once (the workers got the signal too).
        pool.shutdown(wait=ok, cancel_futures=True)


@contextmanager
def _dask_executor(address: str, home: Path) -> Iterator[tuple[Executor, int]]:
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError(
            "--dask: needs the distributed package on this machine: pip install 'labkit[dask]'"
        ) from None
    from labkit.research.sweep.worker import probe

    try:
        client = Client(address, timeout=DASK_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"--dask: no Dask scheduler answered at {address} ({exc})") from None
    try:
        try:
            answers = client.run(probe, str(home))
        except Exception as exc:  # a worker without labkit cannot even unpickle the probe
            raise ConfigError(
                f"--dask: the workers of {address} cannot run labkit ({type(exc).__name__}: {exc}); "
                "install labkit on every worker"
            ) from None
        if not answers:
            raise ConfigError(f"--dask: the scheduler at {address} has no workers; start some (dask worker)")
        blind = sorted(f"{a['host']} ({addr})" for addr, a in answers.items() if not a["home"])
        if blind:
            raise ConfigError(
                f"--dask: the home {home} is not a directory on {', '.join(blind)}; put the home on "
                "storage every worker mounts at the same path"
            )
        slots = sum(client.nthreads().values())
        executor = client.get_executor(pure=False)
        yield executor, slots
    finally:
        client.close()


def _drive(
    plan: SweepPlan,
    store: SweepStore,
    executor: Executor,
    slots: int,
    pending: list[Any],
    progress: Progress | None,
    flush_seconds: float,
) -> None:
    from labkit.research.sweep.worker import run_one

    todo = iter(pending)
    in_flight: dict[Future[dict[str, Any]], Run] = {}
    window = max(2, slots * IN_FLIGHT_PER_WORKER)
    done = plan.total - len(pending)
    if progress is not None:
        progress(plan.total, done, store.failed())
    next_flush = time.monotonic() + flush_seconds
    while True:
        while len(in_flight) < window:
            index = next(todo, None)
            if index is None:
                break
            run = plan.run(index)
            if run.config is None:  # refused by its strategy: recorded here, nothing to run
                _finish(plan, store, _refused_row(run), None, None)
                done += 1
                if progress is not None:
                    progress(plan.total, done, store.failed())
                continue
            in_flight[executor.submit(run_one, _task(plan, run))] = run
        if not in_flight:
            break
        timeout = max(0.0, next_flush - time.monotonic())
        finished, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
        for future in finished:
            run = in_flight.pop(future)
            try:
                answer = future.result()
            except Exception as exc:
                _raise_if_pool_broken(exc, store)
                # A Dask worker lost while running it, or a task that could not be sent: the run's error.
                error = f"{type(exc).__name__}: {exc}"
                row = {**_refused_row(run), "config_hash": run.run_id, "error": error}
                answer = {"row": row, "trial": None, "blocks": None}
            _finish(plan, store, answer["row"], answer["trial"], answer["blocks"])
            done += 1
            if progress is not None:
                progress(plan.total, done, store.failed())
        if time.monotonic() >= next_flush:
            began = time.monotonic()
            store.write_tables()
            # A large sweep's tables take a while to write: at most a fifth of the time goes to them.
            next_flush = time.monotonic() + max(flush_seconds, 5 * (time.monotonic() - began))


def _task(plan: SweepPlan, run: Run) -> dict[str, Any]:
    from labkit.timeutil import parse_instant

    assert run.config is not None
    s = run.config.session
    config = run.config.model_dump(mode="json")
    config["exchanges"] = {}  # workers read bars from files: credentials stay in this process
    task: dict[str, Any] = {
        "run_id": run.run_id,
        "key": run.key,
        "config": config,
        "home": str(plan.home),
        "since_ms": parse_instant(s.since or "", "session.since"),
        "until_ms": parse_instant(s.until or "", "session.until"),
    }
    if run.book:  # its members in the book's order, each with the file of its bars
        task["book"] = [[m, str(plan.member_bars_path(run.symbols, m, s.timeframe))] for m in run.symbols]
    else:
        task["bars"] = str(plan.bars_path(s.symbol, s.timeframe))
    return task


def _finish(
    plan: SweepPlan,
    store: SweepStore,
    row: dict[str, Any],
    trial: dict[str, Any] | None,
    blocks: dict[str, list[float]] | None,
) -> None:
    # The trial first: a crash between the two repeats the run on resume, and the repeated trial
    # (the same identity) counts once, whereas a lost trial would never be counted.
    if trial is not None:
        from labkit.research.trials import append_trial

        append_trial(trial)
        row = {**row, "trial": orjson.dumps(trial).decode()}
    store.save(row, blocks)


def _refused_row(run: Run) -> dict[str, Any]:
    tail = {"config_hash": None, "trial": None, "error": run.error, "seconds": 0.0}
    return {"run_id": run.run_id, **run.key, **tail}


def _raise_if_pool_broken(exc: BaseException, store: SweepStore) -> None:
    from concurrent.futures.process import BrokenProcessPool

    if isinstance(exc, BrokenProcessPool):
        raise LabkitError(
            f"a worker process died ({exc}); the {len(store.rows)} finished runs are kept: run the "
            "sweep again with --resume to continue it"
        ) from None
