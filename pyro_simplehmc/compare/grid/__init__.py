r"""Comparison grids: many independent comparisons, run on Dask or one after the other.

A *grid* is a list of :class:`Cell`\ s. A cell is one kernel, with its settings, run by
:func:`pyro_simplehmc.compare.run_cell` on one target of one size (or one ported posteriordb
posterior) with one seed; it returns a small JSON-ready *record* (the
:meth:`~pyro_simplehmc.compare.KernelResult.summary` of the kernel, its warnings, where and how
long it ran), and the draws only when asked.

:func:`run_grid` runs the cells that have no record yet

- on :mod:`dask.distributed`: a :class:`~distributed.LocalCluster` with one single-threaded
  worker process per core, or an existing cluster given by its scheduler's address (the same
  code on a laptop, over SSH, on Kubernetes or on an HPC queue through dask-jobqueue);
- or, with ``serial=True``, in this process without Dask, with identical records for the same
  seeds (every cell runs with one torch thread either way; only the timing fields differ).

Nothing is lost and nothing runs twice: each record is written to ``out/cells/<id>.json`` (by
an atomic rename) as soon as it arrives, and a later run of the same grid in the same folder
skips every cell that has a record. A cell that raises is recorded with its error (and skipped
on the next run unless ``retry_failed``); a cell whose worker dies is retried by Dask and
recorded as failed if it keeps killing workers. A record of a cell that ran is never replaced.

The folder's ``grid.json`` names the grid's cells; a folder holding records of another grid is
refused unless ``force=True``. See :mod:`.grid_report` for the merged table and figures.

Example::

    >>> cells = product_cells(targets=["diagonal_gaussian"], dims=[2, 10, 50],
    ...                       kernels=["MALA", "SimpleHMC"], seeds=3)
    >>> run = run_grid(cells, "my-grid", workers=2)
    >>> run.records[0]["result"]["ess_per_eval"]
"""

from ..specs import kernel_spec
from .cells import (
    GRID_FORMAT,
    KINDS,
    SIZED_TARGETS,
    TIMING_FIELDS,
    Cell,
    cells_from_spec,
    cost_estimate,
    grid_id,
    product_cells,
    replicate_seeds,
    scaling_settings,
    validate_cells,
)
from .folder import GridFolder, load_records
from .run import GridRun, failure_record, run_grid, run_grid_cell, same_records

__all__ = [
    "GRID_FORMAT",
    "KINDS",
    "SIZED_TARGETS",
    "TIMING_FIELDS",
    "Cell",
    "GridFolder",
    "GridRun",
    "cells_from_spec",
    "cost_estimate",
    "failure_record",
    "grid_id",
    "kernel_spec",
    "load_records",
    "product_cells",
    "replicate_seeds",
    "run_grid",
    "run_grid_cell",
    "same_records",
    "scaling_settings",
    "validate_cells",
]
