"""``simplehmc scaling``: ESS per gradient against dimension, on the diagonal Gaussian; with
``--seeds`` 2 or more, intervals on the slopes.
"""

from __future__ import annotations

import argparse

from .reports import run_scaling
from .settings import QUICK, VALIDATE, add_run_options, out_dir, run_settings

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``scaling`` on the subparsers of ``simplehmc``."""
    scale = subparsers.add_parser("scaling", help="ESS per gradient against dimension")
    scale.add_argument("--dims", nargs="+", type=int, help="dimensions (default 2 10 50 100)")
    scale.add_argument("--kernels", nargs="+", help="kernel names (default: RW, MALA, HMC, NUTS)")
    scale.add_argument(
        "--seeds", type=int, default=1, help="replicates; with 2 or more, slope intervals"
    )
    add_run_options(scale, chains=2)
    scale.set_defaults(handler=run)
    return scale


def run(args) -> int:
    """Run ``simplehmc scaling``; 0 when done."""
    progress = not args.no_progress
    figures = not getattr(args, "no_figures", False)
    out = out_dir(args, "scaling")
    base = QUICK if args.quick else VALIDATE
    dims = args.dims or base["dims"]
    settings = run_settings(args, VALIDATE, 0)
    if args.quick:
        if args.num_samples is None:
            settings["num_samples"] = QUICK["scaling_samples"]
        if args.warmup_steps is None:
            settings["warmup_steps"] = QUICK["scaling_warmup"]
    settings["num_chains"] = base["scaling_chains"] if args.num_chains is None else args.num_chains
    run_scaling(dims, settings, args.kernels, out, figures, progress, args.seeds)
    print(f"\nreport and figures written to {out}/")
    return 0
