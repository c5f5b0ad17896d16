"""What several ``simplehmc`` commands share: the run settings of ``--quick`` and of the
default run, the run options every comparison command takes, and how they become a run's settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..compare.execution import DEFAULT_BATCH_CHAINS, DEFAULT_MAX_EVALS
from ..core import validation as check

__all__ = [
    "BATCH_CHAINS",
    "MAX_EVALS",
    "QUICK",
    "VALIDATE",
    "add_run_options",
    "out_dir",
    "positive_int",
    "run_settings",
]

#: Settings of ``--quick`` (CI) and of the default run, per command.
#: The scaling run uses ``scaling_chains``: two chains make the Monte-Carlo standard errors (and
#: so the validation) far more reliable than one; ``--quick`` spends one, with
#: ``scaling_samples`` draws: it measures cost, and its rows say ``TOO FEW DRAWS`` where they
#: have too few for a verdict.
#: ``--quick`` comparisons run four chains of 500 draws: a verdict needs a smallest bulk ESS of
#: 100 and R-hat below 1.01, and R-hat from four chains is far steadier than from two.
QUICK = {
    "num_samples": 500,
    "warmup_steps": 200,
    "num_chains": 4,
    "scaling_chains": 1,
    "scaling_samples": 200,
    "scaling_warmup": 100,
    "dims": [2, 10],
}
#: Chains of this package's kernels in a comparison, as one batch, and the budget of each kernel
#: for a reliable verdict (:mod:`pyro_simplehmc.compare.execution`).
BATCH_CHAINS = DEFAULT_BATCH_CHAINS
MAX_EVALS = DEFAULT_MAX_EVALS
VALIDATE = {
    "num_samples": 1000,
    "warmup_steps": 500,
    "num_chains": 2,
    "scaling_chains": 2,
    "dims": [2, 10, 50, 100],
}


def add_run_options(parser: argparse.ArgumentParser, chains: int | None) -> None:
    parser.add_argument("--num-samples", type=int, help="draws per chain after warmup")
    parser.add_argument("--warmup-steps", type=int, help="warmup iterations per chain")
    if chains is not None:
        parser.add_argument("--num-chains", type=int, help=f"chains per kernel (default {chains})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first chain")
    parser.add_argument(
        "--batch-chains",
        type=int,
        help=f"chains of this package's kernels, run as one batch (default {BATCH_CHAINS}; "
        "0: one chain at a time, as Pyro's kernels)",
    )
    parser.add_argument(
        "--max-evals",
        type=int,
        help=f"budget of evaluations per kernel for a reliable verdict (default {MAX_EVALS:,}; "
        "0: exactly --num-samples draws)",
    )
    parser.add_argument(
        "--refresh-reference",
        action="store_true",
        help="recompute the reference run even if it is in the reference cache",
    )
    parser.add_argument(
        "--no-reference-cache",
        action="store_true",
        help="neither read nor write the reference cache ($PYRO_SIMPLEHMC_CACHE, else "
        "~/.cache/pyro-simplehmc/references)",
    )
    parser.add_argument("--out", type=Path, help="output folder (created if needed)")
    parser.add_argument("--quick", action="store_true", help="a short run for CI (< 1 minute)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--no-figures", action="store_true", help="write no PNG figures")


def positive_int(text: str) -> int:
    try:
        return check.positive_int("the value", int(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text}") from error


def run_settings(args, defaults: dict, chains_default: int) -> dict:
    """The run's settings; a value given on the command line is checked, never replaced."""
    base = QUICK if args.quick else defaults
    chains = getattr(args, "num_chains", None)
    settings = {
        "num_samples": base["num_samples"] if args.num_samples is None else args.num_samples,
        "warmup_steps": base["warmup_steps"] if args.warmup_steps is None else args.warmup_steps,
        "num_chains": chains if chains is not None else (chains_default or base["num_chains"]),
        "seed": args.seed,
    }
    batch_chains = getattr(args, "batch_chains", None)
    max_evals = getattr(args, "max_evals", None)
    if batch_chains is not None:
        check.nonnegative_int("--batch-chains", batch_chains)
    if max_evals is not None:
        check.nonnegative_int("--max-evals", max_evals)
    settings["batch_chains"] = BATCH_CHAINS if batch_chains is None else (batch_chains or None)
    settings["max_evals"] = MAX_EVALS if max_evals is None else (max_evals or None)
    if getattr(args, "no_reference_cache", False):
        settings["reference_cache"] = None
    else:
        from ..compare.reference_cache import ReferenceCache

        settings["reference_cache"] = ReferenceCache(
            refresh=getattr(args, "refresh_reference", False)
        )
    check.positive_int("--num-samples", settings["num_samples"])
    check.nonnegative_int("--warmup-steps", settings["warmup_steps"])
    check.positive_int("--num-chains", settings["num_chains"])
    check.nonnegative_int("--seed", settings["seed"])
    return settings


def out_dir(args, name: str) -> Path:
    out = args.out if args.out is not None else Path(f"simplehmc-{name}")
    out.mkdir(parents=True, exist_ok=True)
    return out
