"""The ``simplehmc grid`` subcommand: build a grid from flags or a JSON spec, run it, report.

::

    simplehmc grid --quick                                   # 18 small cells, 2 workers
    simplehmc grid --dims 2 10 100 1000 --seeds 5 --workers 8 --out study
    simplehmc grid --spec grid.json --scheduler tcp://head:8786 --out study
    simplehmc grid --serial ...                              # without Dask, same records

Running the same command again in the same ``--out`` resumes: finished cells are skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: ``--quick``: a small grid for CI, under a minute on 2 cores.
GRID_QUICK = {
    "dims": [2, 10],
    "kernels": ["RandomWalkMH", "MALA", "SimpleHMC"],
    "seeds": 3,
    "num_samples": 200,
    "warmup_steps": 100,
    "num_chains": 1,
    "workers": 2,
    "batch_chains": 8,
    "max_evals": None,
}
#: The default grid: the scaling study with three replicates.
GRID_DEFAULT = {
    "dims": [2, 10, 50, 100],
    "kernels": ["RandomWalkMH", "MALA", "SimpleHMC", "NUTS"],
    "seeds": 3,
    "num_samples": 1000,
    "warmup_steps": 500,
    "num_chains": 2,
    "batch_chains": 32,
    "max_evals": 2_000_000,
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``grid`` on the subparsers of ``simplehmc``, its handler :func:`run`."""
    parser = add_grid_parser(subparsers)
    parser.set_defaults(handler=run)
    return parser


def add_grid_parser(sub) -> argparse.ArgumentParser:
    """Register ``grid`` on the subparsers ``sub`` of ``simplehmc``."""
    grid = sub.add_parser(
        "grid",
        help="a grid of comparisons (targets x dims x kernels x seeds) on Dask, resumable",
        description="Run a grid of comparisons, one kernel on one target per cell, on a local "
        "Dask cluster (one single-threaded worker per core), an existing cluster, or serially. "
        "Each finished cell is written to OUT/cells at once; the same command again resumes.",
    )
    grid.add_argument("--spec", type=Path, help="a JSON grid spec (instead of the flags below)")
    grid.add_argument("--targets", nargs="+", help="target names (default diagonal_gaussian)")
    grid.add_argument(
        "--posteriors", nargs="+", default=[], help="ported posteriordb posteriors to add"
    )
    grid.add_argument("--dims", nargs="+", type=int, help="sizes of the targets that take one")
    grid.add_argument("--kernels", nargs="+", help="kernel names (default RW, MALA, HMC, NUTS)")
    grid.add_argument(
        "--kernel-settings",
        nargs="+",
        default=[],
        metavar="NAME=JSON",
        help="constructor settings of a kernel, e.g. SimpleHMC='{\"num_steps\": 10}' (default: "
        "those of the scaling experiment)",
    )
    grid.add_argument("--seeds", type=int, help="replicates per cell (default 3)")
    grid.add_argument("--num-samples", type=int, help="draws per chain after warmup")
    grid.add_argument("--warmup-steps", type=int, help="warmup iterations per chain")
    grid.add_argument("--num-chains", type=int, help="chains per cell")
    grid.add_argument("--seed", type=int, default=0, help="seed of the first replicate")
    grid.add_argument(
        "--batch-chains",
        type=int,
        help="chains of this package's kernels per cell, as one batch (0: one chain at a time)",
    )
    grid.add_argument(
        "--max-evals",
        type=int,
        help="budget of evaluations per cell for a reliable verdict (0: fixed draws)",
    )
    grid.add_argument("--keep-draws", action="store_true", help="save each cell's draws (.npy)")
    where = grid.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local worker processes (default: cores)")
    where.add_argument("--scheduler", help="address of a running Dask scheduler, tcp://host:8786")
    where.add_argument("--serial", action="store_true", help="run here, without Dask")
    grid.add_argument(
        "--connect-timeout", type=float, default=5.0, help="seconds to wait for --scheduler"
    )
    grid.add_argument("--force", action="store_true", help="run in a folder of another grid")
    grid.add_argument("--retry-failed", action="store_true", help="rerun cells that failed")
    grid.add_argument("--out", type=Path, help="output folder (default simplehmc-grid)")
    grid.add_argument("--quick", action="store_true", help="a small grid for CI (< 1 minute)")
    grid.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    grid.add_argument("--no-figures", action="store_true", help="write no PNG figures")
    return grid


def _kernel_settings(items: list[str]) -> dict[str, dict]:
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        try:
            value = json.loads(text) if sep else None
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ValueError(
                f'--kernel-settings takes NAME=JSON-object, e.g. SimpleHMC={{"num_steps": 10}}; '
                f"got {item!r}"
            )
        out[name] = value
    return out


def cells_from_args(args) -> list:
    """The grid the flags describe (see :data:`GRID_DEFAULT`, :data:`GRID_QUICK`)."""
    from ..compare.grid import cells_from_spec, product_cells, scaling_settings

    if args.spec is not None:
        if (
            any(
                getattr(args, a) is not None
                for a in (
                    "targets", "dims", "kernels", "seeds", "num_samples", "warmup_steps",
                    "batch_chains", "max_evals",
                )
            )
            or args.posteriors
        ):
            raise ValueError("--spec describes the whole grid: give it without grid flags")
        try:
            spec = json.loads(args.spec.read_text())
        except OSError as error:
            raise ValueError(f"--spec: cannot read {args.spec}: {error}") from error
        except ValueError as error:
            raise ValueError(f"--spec: {args.spec} is not JSON: {error}") from error
        return cells_from_spec(spec)
    base = GRID_QUICK if args.quick else GRID_DEFAULT
    settings = {**scaling_settings(), **_kernel_settings(args.kernel_settings)}
    names = args.kernels or base["kernels"]
    unused = sorted(set(settings) - set(names) - set(scaling_settings()))
    if unused:
        raise ValueError(f"--kernel-settings names kernel(s) {unused} that --kernels lacks")
    return product_cells(
        targets=args.targets or ([] if args.posteriors else ["diagonal_gaussian"]),
        posteriors=args.posteriors,
        kernels=[(name, settings.get(name, {})) for name in names],
        dims=args.dims or base["dims"],
        seeds=base["seeds"] if args.seeds is None else args.seeds,
        seed=args.seed,
        num_samples=base["num_samples"] if args.num_samples is None else args.num_samples,
        warmup_steps=base["warmup_steps"] if args.warmup_steps is None else args.warmup_steps,
        num_chains=base["num_chains"] if args.num_chains is None else args.num_chains,
        keep_draws=args.keep_draws,
        batch_chains=_given(args.batch_chains, base["batch_chains"]),
        max_evals=_given(args.max_evals, base["max_evals"]),
    )


def _given(value: int | None, default: int | None) -> int | None:
    # A flag not given takes the default; 0 turns the feature off.
    return default if value is None else (value or None)


def run_grid_command(args) -> int:
    """Run ``simplehmc grid``; returns 0 if every cell ran, 1 if some failed to run."""
    from ..compare.grid import run_grid
    from ..compare.grid_report import format_grid_report, table_rows, write_grid_report

    cells = cells_from_args(args)
    out = args.out if args.out is not None else Path("simplehmc-grid")
    workers = args.workers
    if args.quick and not args.serial and args.scheduler is None and workers is None:
        workers = GRID_QUICK["workers"]
    try:
        run = run_grid(
            cells,
            out,
            serial=args.serial,
            workers=workers,
            scheduler=args.scheduler,
            force=args.force,
            retry_failed=args.retry_failed,
            progress=not args.no_progress,
            connect_timeout=args.connect_timeout,
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished cells are in {out}/cells; run the same command to resume",
            file=sys.stderr,
        )
        return 130
    records = [r for r in run.records if r is not None]
    write_grid_report(records, out, figures=not args.no_figures)
    print(format_grid_report(table_rows(records)))
    print(
        f"\n{len(cells)} cells: {run.ran} run now, {run.skipped} already recorded, "
        f"{run.failed} failed to run"
    )
    print(f"records in {out}/cells/, report and figures in {out}/")
    return 1 if run.failed else 0


#: The handler of ``simplehmc grid`` (``run(args) -> int``, as every command module has it).
run = run_grid_command
