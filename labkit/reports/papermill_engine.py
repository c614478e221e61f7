"""The papermill engine report notebooks run with (`NAME`): papermill's own nbclient engine, saving less.

Papermill saves the executed notebook when a cell starts and again when it ends: two JSON writes
of a growing notebook per cell, about 0.3 s of a dozen-cell report with its figures, while the
kernel waits. This engine saves it when the run starts, on papermill's autosave during a long cell,
and when a run stops on an error from outside a cell (a timeout, a dead kernel), as the last cell's
end left it; papermill itself writes a finished notebook, or one whose cell raised, at the end. So
every file a run leaves is the one papermill's engine leaves.
"""

from __future__ import annotations

from typing import Any

from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

NAME = "labkit"


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
    """Papermill's nbclient engine, with an execution manager that saves at the start and on a stop."""

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


papermill_engines.register(NAME, Engine)
