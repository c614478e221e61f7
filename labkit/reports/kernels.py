"""Kernels for report notebooks: started ahead of papermill, and the papermill engine that runs them.

A kernel takes most of a second to start, in its own process. `start_kernel` starts one before
papermill runs, so a report judges its verdict while the kernel starts (on another core); papermill
then runs the notebook in it (``km=``), and `stop_kernel` ends it.

The engine (`ENGINE`) is papermill's nbclient engine with these differences:

- papermill saves the executed notebook when a cell starts and again when it ends: two JSON writes
  of a growing notebook per cell, about 0.3 s of a dozen-cell report with its figures, while the
  kernel waits. This engine saves it when the run starts, on papermill's autosave during a long
  cell, and when a run stops on an error from outside a cell (a timeout, a dead kernel), as the
  last cell's end left it; papermill itself writes a finished notebook, or one whose cell raised, at
  the end. So every file a run leaves is the one papermill's engine leaves.
- the client of a kernel from `start_kernel` does not wait, once the kernel has answered, for its
  messages to fall silent for 0.2 s (nbclient reads only what its own requests caused);
- a kernel manager passed in (`start_kernel`) is killed after the last cell without waiting for
  it to exit; the caller collects it later (`stop_kernel`), so that wait overlaps its own work.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_core.utils import ensure_async
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
from papermill.log import logger
from papermill.utils import merge_kwargs, remove_args

ENGINE = "labkit"


def start_kernel(name: str, cwd: Path, arguments: Sequence[str]) -> Any | None:
    """Start the kernel `name` in `cwd`, as nbclient would, and return its manager (for papermill's ``km``).

    Return None when it cannot start: papermill then starts it, and reports what went wrong where
    a report shows it.
    """
    if not name:
        return None  # the notebook names its kernel
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync

    manager = AsyncKernelManager(kernel_name=name, client_class=f"{__name__}.{_Client.__name__}")
    extra = list(arguments)
    if manager.ipykernel:
        extra.append("--HistoryManager.hist_file=:memory:")  # nbclient's ipython_hist_file
    try:
        run_sync(manager.start_kernel)(extra_arguments=extra, cwd=str(cwd))
    except Exception:  # noqa: BLE001 - papermill meets the same error and reports it
        stop_kernel(manager)
        return None
    return manager


def stop_kernel(manager: Any | None) -> None:
    """End the kernel of `manager` at once and release its resources, if it has any (None: nothing to do)."""
    if manager is None or not manager.has_kernel:
        return
    from jupyter_core.utils import run_sync

    run_sync(manager.shutdown_kernel)(now=True)


def _kill(manager: Any) -> None:
    # Send SIGKILL without waiting for the process to exit (`stop_kernel` collects it).
    import signal

    from jupyter_core.utils import run_sync

    if manager.has_kernel and run_sync(manager.is_alive)():
        run_sync(manager.signal_kernel)(signal.SIGKILL)


class _Client(AsyncKernelClient):
    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        # jupyter_client's, without its last step: reading IOPub until it has been silent for
        # 0.2 s. nbclient reads only the messages its own requests caused, so what the kernel
        # said before needs no draining, and a report need not wait 0.2 s for it.
        deadline = time.time() + (math.inf if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                msg = await ensure_async(self.shell_channel.get_msg(timeout=1))
            except Empty:
                pass
            else:
                if msg["msg_type"] == "kernel_info_reply":
                    try:  # IOPub is connected when it carries the reply's status
                        await ensure_async(self.iopub_channel.get_msg(timeout=0.2))
                    except Empty:
                        pass
                    else:
                        self._handle_kernel_info_reply(msg)
                        return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.time() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    wait_for_ready = _async_wait_for_ready


class _Manager(NotebookExecutionManager):
    # Papermill's execution manager, without the save at each cell's start and end.
    _holding = False

    def save(self, **kwargs: Any) -> None:
        if not self._holding:
            super().save(**kwargs)

    def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        self._holding = True
        try:
            super().cell_start(cell, cell_index, **kwargs)
        finally:
            self._holding = False

    def cell_complete(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        self._holding = True
        try:
            super().cell_complete(cell, cell_index, **kwargs)
        finally:
            self._holding = False


class Engine(NBClientEngine):
    """Papermill's nbclient engine, saving at the start and on a stop, and ending a kernel passed in."""

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: bool = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        **kwargs: Any,
    ) -> Any:
        nb_man = _Manager(
            nb,
            output_path=output_path,
            progress_bar=progress_bar,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        except BaseException:
            nb_man.save()  # what papermill's save at the last cell's end wrote
            raise
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: int = 60,
        execution_timeout: int | None = None,
        **kwargs: Any,
    ) -> Any:
        # NBClientEngine's, but the client owns a kernel manager passed in (`km`).
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(
            safe_kwargs,
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=logger,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
        )
        client = PapermillNotebookClient(nb_man, **final_kwargs)
        passed = client.km
        try:
            return client.execute()
        finally:
            if passed is not None:
                # The caller's kernel: its channels are closed and it is killed now, but the
                # caller collects it (`stop_kernel`) after its own work, by when it has exited,
                # instead of waiting ~0.1 s here for it to go.
                if client.kc is not None:
                    client.kc.stop_channels()
                _kill(passed)


papermill_engines.register(ENGINE, Engine)
