"""``simplehmc benchmark --suite mams``: the MAMS paper's benchmark suite
(:mod:`pyro_simplehmc.compare.benchmark_suite`).

A command module: :func:`add_parser` registers the subcommand (its handler is :func:`run`),
:func:`run` runs it and returns the exit status (0: done, 1: a contender's moments disagree with
the truth with a reliable verdict, or a contender raised).

Example::

    simplehmc benchmark --suite mams --quick --models banana gaussian --contenders MAMS NUTS
    simplehmc benchmark --suite mams --chains 16 --samples 1000 --warmup 500 --out results/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..compare.benchmark_suite import CONTENDERS, DEFAULT_CONTENDERS, QUICK, SUITES

NAME = "benchmark"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``benchmark`` on ``subparsers`` (from ``add_subparsers``); its handler is
    :func:`run`."""
    parser = subparsers.add_parser(
        NAME,
        help="a benchmark suite: contenders side by side, gradients to low bias",
        description="Run a benchmark suite: this package's kernels (vectorized), Pyro's NUTS "
        "and optionally NumPyro's and BlackJAX's samplers on each model, recording gradients "
        "to b^2 < 0.01, ESS per gradient, wall time and agreement with the truth.",
    )
    parser.add_argument("--suite", choices=sorted(SUITES), default="mams", help="the suite")
    parser.add_argument(
        "--models", nargs="+", metavar="MODEL", help="models of the suite (default: all)"
    )
    parser.add_argument(
        "--contenders",
        nargs="+",
        metavar="NAME",
        choices=CONTENDERS,
        help=f"from {', '.join(CONTENDERS)} (default: {' '.join(DEFAULT_CONTENDERS)})",
    )
    parser.add_argument(
        "--chains",
        type=_positive_int,
        help="chains of the vectorized and JAX contenders (default 16)",
    )
    parser.add_argument(
        "--nuts-chains",
        type=_positive_int,
        help="chains of Pyro's NUTS, one after the other (default 4)",
    )
    parser.add_argument("--samples", type=_positive_int, help="draws per chain (default 1000)")
    parser.add_argument("--warmup", type=int, help="warmup iterations (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--quick", action="store_true", help=f"tiny settings, to see that it runs ({QUICK})"
    )
    parser.add_argument("--out", type=Path, help="folder for results.json and results.md")
    parser.add_argument("--no-progress", action="store_true", help="no line per result")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the suite that ``args`` asks for; print the table; returns the exit status."""
    from ..compare.benchmark_suite import markdown_table, run_suite, write_results

    base = dict(QUICK) if args.quick else {}
    settings = {
        "num_chains": args.chains or base.get("num_chains", 16),
        "nuts_chains": args.nuts_chains or base.get("nuts_chains", 4),
        "num_samples": args.samples or base.get("num_samples", 1000),
        "warmup_steps": args.warmup if args.warmup is not None else base.get("warmup_steps", 500),
    }
    models = args.models or list(SUITES[args.suite])
    payload = run_suite(
        models=models,
        contenders=args.contenders,
        seed=args.seed,
        out=args.out,
        progress=None if args.no_progress else print,
        **settings,
    )
    print()
    print(markdown_table(payload))
    for note in payload["notes"]:
        print(f"note: {note}")
    if args.out is not None:
        path = write_results(payload, args.out)
        print(f"\nresults written to {path} and {path.with_suffix('.md')}")
    failed = [r for r in payload["rows"] if "error" in r or r.get("verdict") == "FAIL"]
    return 1 if failed else 0


__all__ = ["NAME", "add_parser", "run"]
