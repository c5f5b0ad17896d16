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
    args = parser.parse_args(argv)
    settings = scaling_settings()
    cells = product_cells(
        targets=["diagonal_gaussian"],
        dims=[10, 50, 100],
        kernels=[(k, settings.get(k, {})) for k in ("RandomWalkMH", "MALA", "SimpleHMC", "NUTS")],
        seeds=2,
        num_samples=max(10, int(1000 * args.scale)),
        warmup_steps=max(10, int(500 * args.scale)),
        num_chains=2,
    )
    assert len(cells) == 24
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
