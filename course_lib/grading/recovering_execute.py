"""nbgrader's Execute step, but a cell that kills or wedges the kernel costs only that cell.

Plain nbgrader gives up on the whole notebook when the kernel dies (``os._exit``, a crash, a
hard resource limit) or when a cell runs past its time limit and ignores the interrupt (a
``while True`` loop around a bare ``except:``). The student then loses the points of every
cell, including the correct ones that already ran.

Here such a cell gets an error output that says what happened; then a fresh kernel is
started, the code cells before it are run again (without keeping their outputs) so that the
functions and data they defined exist again, and execution goes on with the next cell. Cells
that killed the kernel are left out of every later replay. After ``max_recoveries`` restarts
the notebook fails as it would in nbgrader, so a submission cannot make grading take
unboundedly long.

When ``record_names`` is set, each test cell named there runs with one line in front (taken
away again afterwards) that records its calls to the student's functions, so that
:mod:`.trusted_replay` can check the results outside this kernel (see
:mod:`.call_recorder`).
"""

from __future__ import annotations

import copy

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Dict, Integer

from .call_recorder import prefix

KERNEL_DIED = "KernelDied"
KERNEL_STUCK = "KernelStuck"


class RecoveringExecute(Execute):
    """Execute every cell; restart and replay after a cell that kills or wedges the kernel."""

    max_recoveries = Integer(
        3, help="Kernel restarts allowed per notebook before the notebook counts as failed."
    ).tag(config=True)

    record_names = Dict(
        {}, help="notebook name -> {grade id of a test cell: student functions it calls}; "
                 "those calls are recorded for the check outside the kernel."
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._recoveries = 0
        self._fatal: set[int] = set()
        self._notebook = (resources or {}).get("unique_key", "")
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        names = self.record_names.get(self._notebook, {}).get(gid)
        source = cell.source
        if cell.cell_type == "code" and names is not None:
            cell.source = prefix(gid, names, self._notebook) + source
        try:
            return super().preprocess_cell(cell, resources, index)
        except (DeadKernelError, CellTimeoutError) as exc:
            if self._recoveries >= self.max_recoveries:
                raise
            self._recoveries += 1
            self._fatal.add(index)
            died = isinstance(exc, DeadKernelError)
            self.log.warning("Cell %d %s; restarting the kernel", index,
                             "killed the kernel" if died else "did not stop when interrupted")
            cell.source = source
            self._restart_and_replay(index)
            cell.outputs = [_explanation(died, self.timeout)]
            return cell, self.resources
        finally:
            cell.source = source

    def _restart_and_replay(self, index: int) -> None:
        """Replace the kernel by a fresh one and re-run the code cells before ``index``."""
        mode = self.shutdown_kernel
        self.shutdown_kernel = "immediate"  # a wedged kernel would not answer a polite request
        try:
            self._cleanup_kernel()
        finally:
            self.shutdown_kernel = mode
        self.km = self.create_kernel_manager()
        self.start_new_kernel()
        self.start_new_kernel_client()
        self.wait_for_reply(self.kc.kernel_info())
        for i, earlier in enumerate(self.nb.cells[:index]):
            if earlier.cell_type == "code" and i not in self._fatal:
                # A copy: the outputs already recorded for the cell are the graded ones.
                self.execute_cell(copy.deepcopy(earlier), i, store_history=True)


def _explanation(died: bool, timeout) -> dict:
    if died:
        name = KERNEL_DIED
        text = ("The Python kernel stopped while running this cell (os._exit, a crash, or a "
                "memory or process limit).")
    else:
        name = KERNEL_STUCK
        text = (f"This cell ran past its time limit ({timeout} s) and did not stop when "
                "interrupted (does a loop catch KeyboardInterrupt or BaseException?).")
    text += (" The grader restarted the kernel and ran the cells before this one again, so the "
             "cells after it were still graded.")
    return new_output("error", ename=name, evalue=text, traceback=[f"{name}: {text}"])
