"""``simplehmc validate``: the comparison on the 2-D correlated Gaussian, then a short scaling
run; ``--quick`` (CI) runs the comparison only, on an easier target, in under a minute.
"""

from __future__ import annotations

import argparse
import warnings

from ..checks.targets import get_target
from .reports import run_scaling, write_report
from .settings import VALIDATE, add_run_options, out_dir, run_settings

__all__ = [
    "QUICK_VALIDATE_LENGTHS",
    "QUICK_VALIDATE_RHO",
    "add_parser",
    "quick_validate_kernels",
    "run",
]

#: ``simplehmc validate --quick``: a smaller target (correlation 0.5 rather than 0.95) and fewer
#: kernels (this package's three and NUTS; the random walk with more of its cheap draws), so that
#: every kernel gets a reliable PASS or FAIL in under a minute on two cores. Measured at seeds 0
#: and 1: every smallest bulk ESS above 500, R-hat at most 1.009, 18-19 s of CPU time.
QUICK_VALIDATE_RHO = 0.5
QUICK_VALIDATE_LENGTHS = {"RandomWalkMH": 3000}


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``validate`` on the subparsers of ``simplehmc``."""
    validate = subparsers.add_parser(
        "validate",
        help="comparison on the 2-D correlated Gaussian and a scaling run (--quick: the "
        "comparison only, on an easier target, in under a minute)",
    )
    add_run_options(validate, chains=None)
    validate.set_defaults(handler=run)
    return validate


def quick_validate_kernels() -> list:
    """The kernels of ``simplehmc validate --quick``: RandomWalkMH, MALA, SimpleHMC (a fixed
    trajectory length with a jittered step size, as in the scaling run: a fixed number of steps
    can resonate on a Gaussian) and NUTS."""
    from ..compare.specs import KERNELS, SCALING_KERNELS

    return [KERNELS["RandomWalkMH"], KERNELS["MALA"], SCALING_KERNELS["SimpleHMC"], KERNELS["NUTS"]]


def run(args) -> int:
    """The comparison on the 2-D correlated Gaussian, then (not with ``--quick``) the scaling
    run; 0 if no kernel was marked FAIL, else 1."""
    progress = not args.no_progress
    figures = not getattr(args, "no_figures", False)

    from ..compare import compare

    out = out_dir(args, "validate")
    settings = run_settings(args, VALIDATE, 0)
    if args.quick:
        target = get_target("correlated_gaussian", rho=QUICK_VALIDATE_RHO)
        options = {"kernels": quick_validate_kernels(), "lengths": QUICK_VALIDATE_LENGTHS}
    else:
        target, options = get_target("correlated_gaussian"), {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the table lists the warnings
        result = compare(target, progress=progress, **options, **settings)
    passed = write_report(result, out, figures, target)
    if not args.quick:
        print()
        # The scaling run's cells, like the comparison's, run until their verdict is reliable:
        # the random walk's batch continues at D = 50 and 100, NUTS is rerun where its R-hat
        # from two chains is not yet below 1.01.
        scaling_settings = {**settings, "num_chains": VALIDATE["scaling_chains"]}
        run_scaling(VALIDATE["dims"], scaling_settings, None, out, figures, progress)
    print(f"\nreport and figures written to {out}/")
    return 0 if passed else 1
