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

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core import validation as check

#: Version of the record and manifest layout; a folder of another version is another grid.
GRID_FORMAT = 1
#: Summary fields measured with a clock: they differ between two runs of the same cell.
TIMING_FIELDS = frozenset({"ess_per_second", "warmup_seconds", "sampling_seconds"})
#: What a cell runs on: a target of :mod:`pyro_simplehmc.checks.targets`, or a ported
#: posteriordb posterior (:data:`pyro_simplehmc.checks.posteriordb.POSTERIORS`), validated
#: against its reference.
KINDS = ("target", "posterior")
#: The targets that take their size as ``dim``.
SIZED_TARGETS = frozenset({"diagonal_gaussian", "ill_conditioned_gaussian", "funnel"})
#: What to install for :func:`run_grid` on Dask.
INSTALL_HINT = 'Dask is needed for grids: pip install "pyro-simplehmc[grid]" (or use --serial)'


# ---------------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Cell:
    """One comparison of a grid: one kernel on one target of one size, with one seed.

    :ivar target: a target name (see :data:`~pyro_simplehmc.checks.targets.TARGETS`), or with
        ``kind="posterior"`` a posteriordb name
        (:data:`~pyro_simplehmc.checks.posteriordb.POSTERIORS`).
    :ivar kernel: a kernel name (see :data:`~pyro_simplehmc.compare.KERNELS`).
    :ivar dim: the target's size, for the targets that take one (else ``None``).
    :ivar seed: the seed of the cell's first chain; chain :math:`c` uses ``seed + c``.
    :ivar settings: keyword arguments of the kernel's constructor (e.g. ``trajectory_length``).
    :ivar target_kwargs: other keyword arguments of the target (e.g. ``rho``, ``low``).
    :ivar num_samples: draws per chain after warmup.
    :ivar warmup_steps: warmup iterations per chain.
    :ivar num_chains: chains, run one after the other.
    :ivar keep_draws: return the draws with the record (written beside it as ``.npy``).
    :ivar kind: ``"target"`` or ``"posterior"`` (see :data:`KINDS`).
    """

    target: str
    kernel: str
    dim: int | None = None
    seed: int = 0
    settings: Mapping[str, Any] = field(default_factory=dict)
    target_kwargs: Mapping[str, Any] = field(default_factory=dict)
    num_samples: int = 1000
    warmup_steps: int = 500
    num_chains: int = 2
    keep_draws: bool = False
    kind: str = "target"

    def to_dict(self) -> dict[str, Any]:
        """The cell as plain JSON data (dict keys sorted, so that equal cells serialise equally)."""
        out = asdict(self)
        out["settings"] = dict(sorted(dict(self.settings).items()))
        out["target_kwargs"] = dict(sorted(dict(self.target_kwargs).items()))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        """The inverse of :meth:`to_dict`; unknown keys are an error."""
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown cell field(s) {unknown}; allowed: {sorted(names)}")
        return cls(**data)

    @property
    def id(self) -> str:
        """A stable name: a hash of :meth:`to_dict`, the record's file name."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """The kernel and its settings, e.g. ``SimpleHMC[trajectory_length=2.0]``."""
        if not self.settings:
            return self.kernel
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.settings.items()))
        return f"{self.kernel}[{inner}]"

    def make_problem(self):
        """Build what the cell runs on: a :class:`~pyro_simplehmc.compare.problems.Problem`."""
        from ..checks.targets import TARGETS, get_target
        from .problems import from_posterior, from_target

        if self.kind == "posterior":
            if self.dim is not None or self.target_kwargs:
                raise ValueError("a posterior takes no dim or target_kwargs")
            return from_posterior(self.target)
        if self.kind != "target":
            raise ValueError(f"kind must be one of {list(KINDS)}; got {self.kind!r}")
        if str(self.target).replace("-", "_") not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; choose one of {sorted(TARGETS)}")
        kwargs = dict(self.target_kwargs)
        if self.dim is not None:
            kwargs["dim"] = self.dim
        return from_target(get_target(self.target, **kwargs))


def kernel_spec(name: str, settings: Mapping[str, Any] | None = None):
    """The :class:`~pyro_simplehmc.compare.KernelSpec` of kernel ``name`` with ``settings``.

    Without settings this is the comparison's own spec; with settings the kernel is built with
    them on top of that spec's fixed constructor arguments (``full_mass`` is one of them).

    :raises ValueError: for an unknown kernel or a setting its constructor does not take.
    """
    import inspect

    from .specs import KERNELS, CountingRandomWalkKernel, KernelSpec

    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}; choose from {sorted(KERNELS)}")
    settings = dict(settings or {})
    if not settings:
        return KERNELS[name]
    cls, base = _kernel_constructors()[name]
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "model", "potential_fn"}
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise ValueError(
            f"kernel {name!r} takes no setting(s) {unknown}; allowed: {sorted(allowed)}"
        )
    kwargs = {**base, **settings}
    if name == "RandomWalkKernel":

        def make(problem, potential_fn):
            def reuse(built):
                potential_fn.potential_fn = built
                return potential_fn

            if problem.model is None:
                raise ValueError("Pyro's RandomWalkKernel needs a model; this problem has none")
            return CountingRandomWalkKernel(problem.model, reuse, **kwargs)

    else:

        def make(problem, potential_fn):
            return cls(potential_fn=potential_fn, **kwargs)

    return KernelSpec(name, make, KERNELS[name].uses_gradient, KERNELS[name].ours)


def _kernel_constructors() -> dict[str, tuple[type, dict[str, Any]]]:
    # The constructor and fixed arguments behind each spec of KERNELS (Pyro's HMC holds its
    # trajectory length fixed there).
    from pyro.infer import HMC, NUTS, RandomWalkKernel

    from ..kernels import MALA, RandomWalkMH, SimpleHMC

    return {
        "RandomWalkMH": (RandomWalkMH, {}),
        "MALA": (MALA, {}),
        "SimpleHMC": (SimpleHMC, {}),
        "NUTS": (NUTS, {}),
        "HMC": (HMC, {"trajectory_length": 2.0}),
        "RandomWalkKernel": (RandomWalkKernel, {}),
    }


def scaling_settings() -> dict[str, dict[str, Any]]:
    """Kernel settings of the scaling experiment (see :data:`.scaling.SCALING_KERNELS`):
    SimpleHMC with a fixed trajectory length and a jittered step size; the others as in
    :data:`~pyro_simplehmc.compare.KERNELS`."""
    from .scaling import SCALING_TRAJECTORY_LENGTH

    return {"SimpleHMC": {"trajectory_length": SCALING_TRAJECTORY_LENGTH, "step_size_jitter": 0.2}}


def replicate_seeds(seed: int, replicates: int, num_chains: int) -> list[int]:
    """First-chain seeds of ``replicates`` independent replicates: no chain seed is shared.

    Replicate :math:`r` starts at ``seed + r * num_chains`` (its chains use the next
    ``num_chains`` seeds), so replicate 0 is the single run with ``seed``.
    """
    return [seed + r * num_chains for r in range(replicates)]


def product_cells(
    targets: Sequence[str] = ("diagonal_gaussian",),
    kernels: Sequence[str | tuple[str, Mapping[str, Any]]] = ("MALA", "SimpleHMC"),
    dims: Sequence[int | None] = (None,),
    seeds: int | Sequence[int] = 1,
    seed: int = 0,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    target_kwargs: Mapping[str, Any] | None = None,
    keep_draws: bool = False,
    posteriors: Sequence[str] = (),
) -> list[Cell]:
    """The cells of (targets x dims + posteriors) x kernels x seeds.

    :param targets: target names.
    :param kernels: kernel names, or ``(name, settings)`` pairs.
    :param dims: sizes; a target that takes no size gets ``None`` (one cell, not one per size).
    :param posteriors: posteriordb names, run besides the targets (they have no size).
    :param seeds: a number of replicates (seeded by :func:`replicate_seeds` from ``seed``) or
        the first-chain seeds themselves.
    """
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        check.positive_int("seeds", seeds)
        seed_list = replicate_seeds(check.nonnegative_int("seed", seed), seeds, num_chains)
    else:
        seed_list = [check.nonnegative_int("seeds", s) for s in seeds]
    cells = []
    problems = [("target", t, d) for t in targets for d in _sizes(t, dims)]
    problems += [("posterior", p, None) for p in posteriors]
    for kind, target, dim in problems:
        for kernel in kernels:
            name, settings = (kernel, {}) if isinstance(kernel, str) else kernel
            for s in seed_list:
                cells.append(
                    Cell(
                        target,
                        name,
                        dim,
                        s,
                        dict(settings),
                        dict(target_kwargs or {}) if kind == "target" else {},
                        num_samples,
                        warmup_steps,
                        num_chains,
                        keep_draws,
                        kind,
                    )
                )
    return cells


def _sizes(target: str, dims: Sequence[int | None]) -> list[int | None]:
    return list(dict.fromkeys(dims)) if target in SIZED_TARGETS else [None]


def validate_cells(cells: Iterable[Cell]) -> list[Cell]:
    """Check every cell before anything runs: names, sizes, settings, counts.

    Each distinct target is built once here (cheap), so that a bad name or size fails now
    rather than in a worker an hour later.

    :raises ValueError: naming the cell and what is wrong.
    """
    cells = list(cells)
    if not cells:
        raise ValueError("the grid has no cells")
    from .specs import CountingPotential

    problems: dict[str, Any] = {}
    kernels: set[str] = set()
    for i, cell in enumerate(cells):
        if not isinstance(cell, Cell):
            raise ValueError(f"cell {i} must be a Cell; got {type(cell).__name__}")
        where = f"cell {i} ({cell.target}, {cell.label}, dim {cell.dim}, seed {cell.seed})"
        try:
            check.positive_int("num_samples", cell.num_samples)
            check.nonnegative_int("warmup_steps", cell.warmup_steps)
            check.positive_int("num_chains", cell.num_chains)
            check.nonnegative_int("seed", cell.seed)
            check.boolean("keep_draws", cell.keep_draws)
            json.dumps(cell.to_dict())
            spec = kernel_spec(cell.kernel, cell.settings)
            data = cell.to_dict()
            key = json.dumps([cell.kind, cell.target, cell.dim, data["target_kwargs"]])
            if key not in problems:
                problems[key] = cell.make_problem()
            kernel_key = json.dumps([key, cell.kernel, data["settings"]])
            if kernel_key not in kernels:
                # Constructing runs nothing, and checks the settings' values now.
                problem = problems[key]
                spec.build(problem, CountingPotential(problem.potential_fn))
                kernels.add(kernel_key)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{where}: {error}") from error
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):
        raise ValueError("the grid lists the same cell twice")
    return cells


def grid_id(cells: Sequence[Cell]) -> str:
    """A hash of the set of cell ids: the identity of a grid, whatever the order of its cells."""
    text = ",".join(sorted(c.id for c in cells))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------- one cell


def run_grid_cell(cell: Cell | Mapping[str, Any], spec: Any = None) -> dict[str, Any]:
    """Run one cell with one torch thread; never raises for an error of the cell itself.

    :param cell: the cell.
    :param spec: a :class:`~pyro_simplehmc.compare.KernelSpec` to run instead of the cell's
        named kernel (for a kernel of your own, in this process: a spec is not data).

    :returns: the record: ``{"format", "id", "cell", "status": "ok" | "error", "result",
        "error", "traceback", "host", "pid", "seconds"}``, plus ``"draws"`` (an array of shape
        ``(chains, draws, D)``) when the cell keeps its draws.
    """
    import torch

    if not isinstance(cell, Cell):
        cell = Cell.from_dict(cell)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one cell, one core: cells run side by side
    start = time.perf_counter()
    record: dict[str, Any] = {
        "format": GRID_FORMAT,
        "id": cell.id,
        "cell": cell.to_dict(),
        "status": "ok",
        "result": None,
        "error": None,
        "traceback": None,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    try:
        from ..checks.statistics import bonferroni_threshold
        from .runner import run_cell

        problem = cell.make_problem()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)  # kept in the record instead
            result, draws = run_cell(
                spec if spec is not None else kernel_spec(cell.kernel, cell.settings),
                problem,
                num_samples=cell.num_samples,
                warmup_steps=cell.warmup_steps,
                num_chains=cell.num_chains,
                seed=cell.seed,
            )
        if result.error is not None:  # the kernel raised: run_cell warned with the traceback
            tracebacks = [str(w.message) for w in caught if " raised on " in str(w.message)]
            record.update(status="error", error=result.error, traceback="\n".join(tracebacks))
        else:
            record["result"] = {
                **result.summary(),
                "label": cell.label,
                "target": problem.name,
                "dim": problem.dim,
                "threshold": bonferroni_threshold(2 * problem.dim),
                "median_ess_per_eval": (
                    result.median_bulk_ess_x / result.cost if result.cost else 0.0
                ),
                "warnings": list(result.warnings),
            }
            if cell.keep_draws:
                record["draws"] = draws
    except Exception as error:  # the grid goes on; the record says what went wrong
        record.update(
            status="error",
            error=f"{type(error).__name__}: {error}",
            traceback=traceback.format_exc(),
        )
    finally:
        torch.set_num_threads(threads)
    record["seconds"] = time.perf_counter() - start
    return record


def failure_record(cell: Cell, error: BaseException, note: str) -> dict[str, Any]:
    """The record of a cell that never returned (its worker died, or Dask gave up on it)."""
    return {
        "format": GRID_FORMAT,
        "id": cell.id,
        "cell": cell.to_dict(),
        "status": "error",
        "result": None,
        "error": f"{note}: {type(error).__name__}: {error}",
        "traceback": None,
        "host": None,
        "pid": None,
        "seconds": None,
    }


def same_records(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two records of a cell agree on everything but timing and where they ran."""
    return _comparable(a) == _comparable(b)


def _comparable(record: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k not in ("host", "pid", "seconds", "draws")}
    if out.get("result") is not None:
        out["result"] = {k: v for k, v in out["result"].items() if k not in TIMING_FIELDS}
    if out.get("traceback") is not None:
        out["traceback"] = None  # file paths and line numbers of the process that ran it
    return json.loads(json.dumps(_finite(out)))


# ---------------------------------------------------------------------------------- the folder


class GridFolder:
    """The output folder of a grid: ``grid.json`` (the cells) and ``cells/<id>.json`` records.

    :param path: the folder (created if needed).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.cells_dir = self.path / "cells"
        self.manifest = self.path / "grid.json"

    def claim(self, cells: Sequence[Cell], force: bool = False) -> None:
        """Make the folder this grid's, refusing one that holds another grid's records.

        :raises ValueError: if the folder holds records of a different grid and not ``force``.
        """
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"out must be a folder; {self.path} is a file")
        this = grid_id(cells)
        if self.manifest.exists():
            try:
                data = json.loads(self.manifest.read_text())
                other = data.get("grid_id")
                other_n = len(data.get("cells", []))
            except (OSError, ValueError, AttributeError):
                other, other_n = None, "?"
            if other != this and not force:
                raise ValueError(
                    f"out folder {self.path} holds records of a different grid ({other_n} "
                    f"cells, grid id {other}; this grid: {len(cells)} cells, grid id {this}); "
                    "choose another folder, or pass --force (force=True) to run this grid "
                    "there (records of cells in both grids are reused, none is deleted)"
                )
        elif self.cells_dir.exists() and any(self.cells_dir.glob("*.json")) and not force:
            raise ValueError(
                f"out folder {self.path} holds cell records but no grid.json; choose another "
                "folder, or pass --force (force=True)"
            )
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": GRID_FORMAT,
            "grid_id": this,
            "cells": [c.to_dict() for c in cells],
        }
        _atomic_write(self.manifest, json.dumps(manifest, indent=1) + "\n")

    def record_path(self, cell_id: str) -> Path:
        return self.cells_dir / f"{cell_id}.json"

    def read(self, cell_id: str) -> dict[str, Any] | None:
        """The record of a cell, or ``None`` if it has none (or an unreadable one)."""
        path = self.record_path(cell_id)
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get("format") != GRID_FORMAT:
            return None
        return record

    def write(self, record: dict[str, Any]) -> Path:
        """Write a record (atomically); a record of a cell that ran is never replaced.

        Draws, if any, go to ``cells/<id>.npy`` first, so that a record on disk always has them.
        """
        path = self.record_path(record["id"])
        existing = self.read(record["id"])
        if existing is not None and existing["status"] == "ok":
            return path
        record = dict(record)
        draws = record.pop("draws", None)
        if draws is not None:
            import numpy as np

            tmp = path.with_suffix(".npy.tmp")
            with tmp.open("wb") as f:
                np.save(f, np.asarray(draws))
            os.replace(tmp, path.with_suffix(".npy"))
            record["draws_file"] = path.with_suffix(".npy").name
        _atomic_write(path, json.dumps(_finite(record), indent=1) + "\n")
        return path


def _atomic_write(path: Path, text: str) -> None:
    # A killed run leaves either the old file or the new one, never half of one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _finite(value):
    from .report import finite

    return finite(value)


# ---------------------------------------------------------------------------------- the run


@dataclass
class GridRun:
    """What :func:`run_grid` did.

    :ivar records: the record of every cell of the grid, in the grid's order (``None`` for a
        cell that has none, after an interruption).
    :ivar ran: cells run now.
    :ivar skipped: cells that already had a record.
    :ivar failed: cells whose record is an error (run now or before).
    :ivar out: the output folder.
    :ivar dashboard: the Dask dashboard's address, if a cluster was used.
    """

    records: list[dict[str, Any] | None]
    ran: int
    skipped: int
    failed: int
    out: Path
    dashboard: str | None = None


def run_grid(
    cells: Sequence[Cell],
    out: str | Path,
    *,
    serial: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    force: bool = False,
    retry_failed: bool = False,
    progress: bool = True,
    retries: int = 2,
    connect_timeout: float = 5.0,
    echo: Callable[[str], None] | None = print,
    _task: Callable[[Cell], dict[str, Any]] | None = None,
) -> GridRun:
    """Run the cells of a grid that have no record in ``out``, writing each record at once.

    :param cells: the grid (see :func:`product_cells`, :func:`cells_from_spec`).
    :param out: the output folder.
    :param serial: run in this process, without Dask.
    :param workers: worker processes of the local cluster (default: one per core).
    :param scheduler: address of an existing Dask scheduler (``tcp://host:8786``) instead of a
        local cluster.
    :param client: an existing :class:`distributed.Client` (of any cluster: dask-jobqueue,
        Kubernetes, ...) instead of ``workers`` or ``scheduler``; it is left open.
    :param force: run in a folder that holds another grid's records.
    :param retry_failed: rerun the cells whose record is an error.
    :param progress: one progress bar for the grid.
    :param retries: how often a local cluster reruns a cell whose worker died before giving up
        on it (Dask's ``distributed.scheduler.allowed-failures``; an existing scheduler keeps
        its own setting).
    :param connect_timeout: seconds to wait for ``scheduler`` (and for its first worker).
    :param echo: where to print the dashboard's address (``None``: nowhere).
    """
    cells = validate_cells(cells)
    check.boolean("serial", serial)
    if workers is not None:
        check.positive_int("workers", workers)
    check.nonnegative_int("retries", retries)
    if serial and (workers is not None or scheduler is not None):
        raise ValueError("serial runs without Dask: give serial, or workers/scheduler, not both")
    if sum(x is not None for x in (workers, scheduler, client)) > 1 or (serial and client):
        raise ValueError(
            "give at most one of serial, workers (a local cluster), scheduler (an address) and "
            "client (a connected Client)"
        )
    if not serial:
        _require_dask()
    folder = GridFolder(out)
    folder.claim(cells, force=force)

    records: dict[str, dict[str, Any]] = {}
    pending = []
    for cell in cells:
        record = folder.read(cell.id)
        if record is None or (retry_failed and record["status"] != "ok"):
            pending.append(cell)
        else:
            records[cell.id] = record
    skipped = len(cells) - len(pending)
    failed_before = sum(r["status"] != "ok" for r in records.values())
    bar = _GridBar(len(cells), skipped, failed_before, enabled=bool(progress))

    def arrived(record: dict[str, Any]) -> None:
        folder.write(record)
        # Kept as written (NaN as null), so that a record read back later is the same.
        record = json.loads(json.dumps(_finite({k: v for k, v in record.items() if k != "draws"})))
        records[record["id"]] = record
        bar.finished(record["status"] == "ok")

    dashboard = None
    task = _task or run_grid_cell
    try:
        if serial:
            for cell in pending:
                bar.running(1)
                arrived(task(cell))
        elif pending:
            dashboard = _run_on_dask(
                pending,
                arrived,
                bar,
                task,
                workers,
                scheduler,
                client,
                retries,
                connect_timeout,
                echo,
            )
    finally:
        bar.close()
    ordered = [records.get(c.id) for c in cells]
    return GridRun(
        records=ordered,
        ran=len(pending),
        skipped=skipped,
        failed=sum(1 for r in ordered if r is not None and r["status"] != "ok"),
        out=folder.path,
        dashboard=dashboard,
    )


def _require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error


def _run_on_dask(pending, arrived, bar, task, workers, scheduler, client, retries, timeout, echo):
    import dask
    from distributed import Client, LocalCluster, as_completed

    cluster, own_client = None, client is None
    with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
        if client is not None:
            pass
        elif scheduler is None:
            cluster = LocalCluster(
                n_workers=workers or _usable_cores(),
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=50,  # logging.CRITICAL: the progress bar is the report
            )
            client = Client(cluster)
        else:
            client = _connect(scheduler, timeout)
    try:
        dashboard = client.dashboard_link
        if cluster is not None and echo is not None:
            echo(f"Dask dashboard: {dashboard}")
        try:
            client.wait_for_workers(1, timeout=timeout if scheduler else None)
        except TimeoutError as error:
            address = client.scheduler.address
            raise ValueError(
                f"the Dask scheduler at {address} has no worker (waited {timeout:g} s); "
                f"start some with: dask worker {address} --nthreads 1"
            ) from error
        threads = sum(client.nthreads().values()) or 1
        futures = {}
        for cell in pending:
            future = client.submit(
                task,
                cell,
                key=f"grid-cell-{cell.id}",
                pure=False,
                priority=cost_estimate(cell),
            )
            futures[future] = cell
        for future in as_completed(futures):
            cell = futures[future]
            bar.running(min(threads, sum(not f.done() for f in futures)))
            try:
                record = future.result()
            except Exception as error:  # the worker died `retries + 1` times, or similar
                record = failure_record(cell, error, "the cell never returned")
            arrived(record)
            future.release()
        return dashboard
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()


#: Rough cost of an iteration relative to one gradient, per kernel: for :func:`cost_estimate`.
_KERNEL_COST = {"NUTS": 30.0, "HMC": 10.0, "SimpleHMC": 10.0, "MALA": 1.0, "RandomWalkMH": 1.0}


def cost_estimate(cell: Cell) -> float:
    """A rough relative cost of a cell, so that Dask starts the longest cells first.

    Started last, one long cell would leave the other workers idle at the end of the grid. The
    estimate only orders cells; it is iterations times a per-kernel factor times
    :math:`D^{1/4}` (the growth of an HMC trajectory).
    """
    iterations = (cell.num_samples + cell.warmup_steps) * cell.num_chains
    return iterations * _KERNEL_COST.get(cell.kernel, 1.0) * (cell.dim or 1) ** 0.25


def _usable_cores() -> int:
    # The cores this process may run on (a container or a batch job may allow fewer than exist).
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _connect(address: str, timeout: float):
    from distributed import Client

    if not isinstance(address, str) or not address:
        raise ValueError(f"scheduler must be an address such as tcp://host:8786; got {address!r}")
    try:
        return Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as error:
        raise ValueError(
            f"no Dask scheduler answers at {address} (waited {timeout:g} s): {error}"
        ) from error


class _GridBar:
    """One progress bar for the grid: cells done, failed and running."""

    def __init__(self, total: int, done: int, failed: int, enabled: bool = True):
        self.done, self.failed, self.now_running = done, failed, 0
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=done, desc="grid", unit="cell", leave=False)
            self._show()

    def running(self, n: int) -> None:
        self.now_running = n
        self._show()

    def finished(self, ok: bool) -> None:
        self.done += 1
        self.failed += not ok
        if self.bar is not None:
            self.bar.update(1)
        self._show()

    def _show(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"failed {self.failed}, running {self.now_running}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------------- specs


def cells_from_spec(spec: Mapping[str, Any]) -> list[Cell]:
    """Cells from a JSON grid spec: explicit cells, or the axes of a product.

    ``{"cells": [{"target": ..., "kernel": ..., ...}, ...]}`` lists the cells;
    otherwise the keys are those of :func:`product_cells`, kernels given as names or as
    ``{"name": ..., "settings": {...}}``::

        {"targets": ["diagonal_gaussian"], "dims": [2, 10, 100, 1000],
         "kernels": ["MALA", {"name": "SimpleHMC", "settings": {"trajectory_length": 2.0}}],
         "seeds": 5, "num_samples": 1000, "warmup_steps": 500, "num_chains": 2}
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"a grid spec must be a JSON object; got {type(spec).__name__}")
    if "cells" in spec:
        extra = sorted(set(spec) - {"cells"})
        if extra:
            raise ValueError(f"a spec with 'cells' takes no other key; got {extra}")
        return [Cell.from_dict(c) for c in spec["cells"]]
    allowed = {
        "targets",
        "kernels",
        "dims",
        "seeds",
        "seed",
        "num_samples",
        "warmup_steps",
        "num_chains",
        "target_kwargs",
        "keep_draws",
        "posteriors",
    }
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"unknown grid spec key(s) {unknown}; allowed: {sorted(allowed)}")
    kwargs = dict(spec)
    if "kernels" in kwargs:
        kernels = []
        for k in kwargs["kernels"]:
            if isinstance(k, Mapping):
                extra = sorted(set(k) - {"name", "settings"})
                if "name" not in k or extra:
                    raise ValueError(
                        f"a kernel of a grid spec is a name or {{'name', 'settings'}}; got {k!r}"
                    )
                kernels.append((k["name"], dict(k.get("settings", {}))))
            else:
                kernels.append(k)
        kwargs["kernels"] = kernels
    return product_cells(**kwargs)


def load_records(out: str | Path) -> list[dict[str, Any]]:
    """The records of the grid in folder ``out``, in the order of its ``grid.json``."""
    folder = GridFolder(out)
    if not folder.manifest.exists():
        raise ValueError(f"{folder.path} holds no grid (no grid.json)")
    cells = [Cell.from_dict(c) for c in json.loads(folder.manifest.read_text())["cells"]]
    return [r for r in (folder.read(c.id) for c in cells) if r is not None]


def is_nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


__all__ = [
    "GRID_FORMAT",
    "KINDS",
    "Cell",
    "GridFolder",
    "GridRun",
    "cells_from_spec",
    "cost_estimate",
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
