"""The ``simplehmc`` command: compare kernels with NUTS, run the scaling experiment, report.

::

    simplehmc validate [--quick] [--out DIR]      # the main job: comparison + short scaling run
    simplehmc compare --target correlated_gaussian --kernels MALA SimpleHMC NUTS
    simplehmc compare --model my_model.py:model --args my_model.py:make_args --full-mass dense
    simplehmc compare --posterior eight_schools-eight_schools_noncentered
    simplehmc leaderboard --page docs/leaderboard.md   # every kernel on every ported posterior
    simplehmc scaling --dims 2 10 50 100 1000
    simplehmc chapter                             # the chapter's experiments, then the fair ones
    simplehmc grid --dims 2 10 100 --seeds 5      # a grid of comparisons on Dask, resumable

Every command writes a text table, CSV and JSON files and PNG figures into ``--out`` and prints
the folder's name at the end. ``python -m pyro_simplehmc`` is the same command.

Each subcommand is a module of this package with ``add_parser(subparsers)`` (which registers it
and sets its ``handler``) and ``run(args) -> int``; :data:`COMMANDS` lists them in the order of
``--help``, so a new command is a new module and one entry there.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from . import benchmark, chapter, compare, grid, leaderboard, scaling, validate
from .settings import positive_int

__all__ = ["COMMANDS", "build_parser", "main"]

#: The subcommands, in the order ``simplehmc --help`` lists them.
COMMANDS = (validate, compare, leaderboard, scaling, chapter, grid, benchmark)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``simplehmc``: the global options and every command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="simplehmc",
        description="Validate RandomWalkMH, MALA and SimpleHMC against Pyro's NUTS and "
        "measure their cost.",
    )
    parser.add_argument(
        "--threads", type=positive_int, default=1, help="torch intra-op threads (default 1)"
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``simplehmc``; returns the exit status.

    0: done; 1: a kernel was marked FAIL (only ever with a reliable verdict: smallest bulk ESS
    at least 100 and R-hat below 1.01) or raised on the model; 2: bad input.
    """
    args = build_parser().parse_args(argv)
    # The tensors here are tiny: extra intra-op threads only contend with each other (tenfold
    # slower on a busy two-core machine), so one thread unless asked otherwise.
    import torch

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    try:
        status = args.handler(args)
    except (ValueError, ImportError) as error:  # bad input or a missing extra: no traceback
        print(f"simplehmc: error: {error}", file=sys.stderr)
        return 2
    print(f"\ndone in {time.perf_counter() - start:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
