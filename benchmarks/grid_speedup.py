r"""Speed-up of a 24-cell comparison grid on a local Dask cluster of 2 workers over ``--serial``.

Run from the repository root (needs the ``grid`` extra)::

    python benchmarks/grid_speedup.py                 # 24 cells: serial, then Dask (~6 + 6 min)
    python benchmarks/grid_speedup.py --scale 0.25    # shorter chains, for a first look
    python benchmarks/grid_speedup.py --scale 0.5 --repeats 2  # alternate serial and Dask

The grid is the scaling study's: ``diagonal_gaussian`` at D = 10, 50, 100, with RandomWalkMH,
MALA, SimpleHMC (fixed trajectory length) and NUTS, 2 seeds, 2 chains per cell. Both runs start
from an empty folder in this process (so the serial run pays no import either); the Dask run's
time includes starting the cluster, importing the package in each worker, and closing it. The
wall-clock ratio is the number to read; the script also checks that both runs give the same
records. It prints one Markdown line for ``docs/performance.md``.

``--runners`` measures instead what the batched runner (issue 20) buys a grid: the same 24 cells
run serially in this process, first with the per-chain runner (every kernel's 2 chains one after
the other, exactly the cell's draws: the grid as it ran before), then with this package's kernels
as one batch of ``--batch-chains`` chains continued until their verdict is reliable within the
comparison's budget (Pyro's NUTS as before, with a rerun when unreliable). It prints, per runner,
the wall seconds, the cells per hour and the reliable verdicts (PASS or FAIL) per hour, and with
``--workers`` above 0 the batched grid on Dask too.

    python benchmarks/grid_speedup.py --runners --scale 0.5 --workers 0
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyro_simplehmc.compare.execution import DEFAULT_BATCH_CHAINS, DEFAULT_MAX_EVALS
from pyro_simplehmc.compare.grid import (
    product_cells,
    run_grid,
    same_records,
    scaling_settings,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the chain lengths")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="serial/Dask pairs, alternating")
    parser.add_argument(
        "--runners",
        action="store_true",
        help="per-chain against batched runner, serially (and on Dask)",
    )
    parser.add_argument("--batch-chains", type=int, default=DEFAULT_BATCH_CHAINS)
    args = parser.parse_args(argv)
    if args.runners:
        return compare_runners(args)
    cells = grid_cells(args.scale)
    assert len(cells) == 24
    return serial_against_dask(cells, args)


def grid_cells(scale: float, **runner) -> list:
    """The 24 cells of the benchmark's grid (``runner``: ``batch_chains`` and ``max_evals``)."""
    settings = scaling_settings()
    return product_cells(
        targets=["diagonal_gaussian"],
        dims=[10, 50, 100],
        kernels=[(k, settings.get(k, {})) for k in ("RandomWalkMH", "MALA", "SimpleHMC", "NUTS")],
        seeds=2,
        num_samples=max(10, int(1000 * scale)),
        warmup_steps=max(10, int(500 * scale)),
        num_chains=2,
        **runner,
    )


def _reliable(records) -> int:
    return sum(r["status"] == "ok" and r["result"]["status"] in ("PASS", "FAIL") for r in records)


def compare_runners(args) -> int:
    """Per-chain and batched runner on the same cells, serially; then the batched on Dask."""
    runners = {
        "per chain, fixed draws": {},
        f"batched ({args.batch_chains} chains), until reliable": {
            "batch_chains": args.batch_chains, "max_evals": DEFAULT_MAX_EVALS,
        },
    }  # fmt: skip
    print("| runner | where | cells | wall s | cells / hour | reliable verdicts | "
          "reliable verdicts / hour |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, runner in runners.items():
        cells = grid_cells(args.scale, **runner)
        modes = [("serial", {"serial": True})]
        if runner and args.workers > 0:
            modes.append((f"Dask, {args.workers} workers", {"workers": args.workers, "echo": None}))
        for where, how in modes:
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                run = run_grid(cells, Path(tmp) / "grid", progress=False, **how)
                wall = time.perf_counter() - start
            reliable = _reliable(run.records)
            print(f"| {name} | {where} | {len(cells)} | {wall:.0f} | "
                  f"{3600 * len(cells) / wall:.0f} | {reliable} | {3600 * reliable / wall:.0f} |",
                  flush=True)  # fmt: skip
    cores = len(os.sched_getaffinity(0))
    print(f"\n{platform.node()}: {cores} cores usable, load average {os.getloadavg()[0]:.1f}")
    return 0


def serial_against_dask(cells, args) -> int:
    # Serial and Dask runs alternate, so that a drift in the machine's load hits both alike.
    ratios, same = [], True
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            load = os.getloadavg()[0]
            start = time.perf_counter()
            serial = run_grid(cells, Path(tmp) / "serial", serial=True, progress=False)
            serial_s = time.perf_counter() - start
            start = time.perf_counter()
            dask = run_grid(
                cells, Path(tmp) / "dask", workers=args.workers, progress=False, echo=None
            )
            dask_s = time.perf_counter() - start
            load = (load + os.getloadavg()[0]) / 2
        same &= all(same_records(a, b) for a, b in zip(serial.records, dask.records, strict=True))
        cell_s = sum(r["seconds"] for r in dask.records)
        ratios.append(serial_s / dask_s)
        print(f"repeat {repeat}: failed serial {serial.failed}, dask {dask.failed}")
        print(f"serial {serial_s:.0f} s; Dask {args.workers} workers {dask_s:.0f} s "
              f"(sum of cell times on the workers {cell_s:.0f} s)")  # fmt: skip
        cores = len(os.sched_getaffinity(0))
        print(
            f"| {platform.node()} ({cores} cores usable, load {load:.1f}) "
            f"| {len(cells)} | {serial_s:.0f} | {dask_s:.0f} | {serial_s / dask_s:.2f}x |"
        )
    print(f"same records (but for timing): {same}; speed-ups {[f'{r:.2f}' for r in ratios]}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
