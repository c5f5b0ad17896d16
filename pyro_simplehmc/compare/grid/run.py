r"""Running a grid: one cell (:func:`run_grid_cell`), and all of them on Dask or in this process
(:func:`run_grid`)."""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...checks.statistics import bonferroni_threshold
from ...core import validation as check
from ..results import finite
from ..runner import run_cell
from ..specs import kernel_spec
from .cells import GRID_FORMAT, INSTALL_HINT, TIMING_FIELDS, Cell, cost_estimate, validate_cells
from .folder import GridFolder


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
                batch_chains=cell.batch_chains,
                max_evals=cell.max_evals,
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
    return json.loads(json.dumps(finite(out)))


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
        record = json.loads(json.dumps(finite({k: v for k, v in record.items() if k != "draws"})))
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


__all__ = ["GridRun", "failure_record", "run_grid", "run_grid_cell", "same_records"]
