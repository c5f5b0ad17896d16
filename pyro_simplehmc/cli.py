"""The ``simplehmc`` command: compare kernels with NUTS, run the scaling experiment, report.

::

    simplehmc validate [--quick] [--out DIR]      # the main job: comparison + short scaling run
    simplehmc compare --target correlated_gaussian --kernels MALA SimpleHMC NUTS
    simplehmc scaling --dims 2 10 50 100 1000
    simplehmc chapter                             # the chapter's experiments, then the fair ones

Every command writes a text table, CSV and JSON files and PNG figures into ``--out`` and prints
the folder's name at the end. ``python -m pyro_simplehmc`` is the same command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from .targets import TARGETS, get_target

#: Settings of ``--quick`` (CI) and of the default run, per command.
#: The scaling run uses ``scaling_chains``: two chains make the Monte-Carlo standard errors (and
#: so the validation) far more reliable than one; ``--quick`` spends one.
QUICK = {
    "num_samples": 200,
    "warmup_steps": 100,
    "num_chains": 2,
    "scaling_chains": 1,
    "dims": [2, 10],
}
VALIDATE = {
    "num_samples": 1000,
    "warmup_steps": 500,
    "num_chains": 2,
    "scaling_chains": 2,
    "dims": [2, 10, 50, 100],
}


def _add_run_options(parser: argparse.ArgumentParser, chains: int | None) -> None:
    parser.add_argument("--num-samples", type=int, help="draws per chain after warmup")
    parser.add_argument("--warmup-steps", type=int, help="warmup iterations per chain")
    if chains is not None:
        parser.add_argument("--num-chains", type=int, help=f"chains per kernel (default {chains})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first chain")
    parser.add_argument("--out", type=Path, help="output folder (created if needed)")
    parser.add_argument("--quick", action="store_true", help="a short run for CI (< 1 minute)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--no-figures", action="store_true", help="write no PNG figures")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simplehmc",
        description="Validate RandomWalkMH, MALA and SimpleHMC against Pyro's NUTS and "
        "measure their cost.",
    )
    parser.add_argument(
        "--threads", type=_positive_int, default=1, help="torch intra-op threads (default 1)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    validate = sub.add_parser(
        "validate", help="comparison on the 2-D correlated Gaussian and a short scaling run"
    )
    _add_run_options(validate, chains=None)

    comp = sub.add_parser("compare", help="run kernels side by side on one target")
    comp.add_argument(
        "--target", default="correlated_gaussian", help=f"one of {', '.join(sorted(TARGETS))}"
    )
    comp.add_argument("--dim", type=int, help="dimension, for targets that take one")
    comp.add_argument("--rho", type=float, help="correlation of correlated_gaussian")
    comp.add_argument("--kernels", nargs="+", help="kernel names (default: all)")
    _add_run_options(comp, chains=2)

    scale = sub.add_parser("scaling", help="ESS per gradient against dimension")
    scale.add_argument("--dims", nargs="+", type=int, help="dimensions (default 2 10 50 100)")
    scale.add_argument("--kernels", nargs="+", help="kernel names (default: RW, MALA, HMC, NUTS)")
    _add_run_options(scale, chains=2)

    chapter = sub.add_parser("chapter", help="the chapter's experiments, then the fair version")
    chapter.add_argument("--out", type=Path, help="output folder (created if needed)")
    chapter.add_argument("--quick", action="store_true", help="a short fair run")
    chapter.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _settings(args, defaults: dict, chains_default: int) -> dict:
    base = QUICK if args.quick else defaults
    return {
        "num_samples": args.num_samples or base["num_samples"],
        "warmup_steps": base["warmup_steps"] if args.warmup_steps is None else args.warmup_steps,
        "num_chains": getattr(args, "num_chains", None) or chains_default or base["num_chains"],
        "seed": args.seed,
    }


def _out_dir(args, name: str) -> Path:
    out = args.out if args.out is not None else Path(f"simplehmc-{name}")
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_compare(target, settings: dict, kernels, out: Path, figures: bool, progress: bool) -> bool:
    """Run a comparison and write its table, CSV, JSON and figures into ``out``.

    :returns: whether no kernel was marked FAIL with a reliable verdict.
    """
    from .compare import compare
    from .compare.report import format_table, write_csv, write_json

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the table lists the warnings
        result = compare(target, kernels=kernels, progress=progress, **settings)
    table = format_table(result)
    print(table)
    stem = target.name
    (out / f"{stem}.txt").write_text(table + "\n")
    write_csv(result, out / f"{stem}.csv")
    write_json(result, out / f"{stem}.json")
    if figures:
        from .compare import figures as fig

        fig.plot_traces(result, out / f"{stem}_traces.png")
        fig.plot_scatter(result, target, out / f"{stem}_scatter.png")
        fig.plot_ess_per_eval(result, out / f"{stem}_ess_per_eval.png")
    return not result.reliable_failures


def run_scaling(dims, settings: dict, kernels, out: Path, figures: bool, progress: bool) -> None:
    """Run the scaling experiment and write its table, CSV, JSON and figures into ``out``."""
    import csv

    from .compare.scaling import format_scaling_table, scaling, slopes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rows = scaling(dims, kernels=kernels, progress=progress, **settings)
    table = format_scaling_table(rows)
    print(table)
    (out / "scaling.txt").write_text(table + "\n")
    with (out / "scaling.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = {
        "settings": {**settings, "dims": list(dims)},
        "slopes_min_ess": slopes(rows),
        "slopes_median_ess": slopes(rows, "median_ess_per_eval"),
        "rows": rows,
    }
    from .compare.report import _finite

    (out / "scaling.json").write_text(json.dumps(_finite(summary), indent=1) + "\n")
    if figures:
        from .compare import figures as fig

        fig.plot_scaling(rows, out / "scaling_ess_per_eval.png")
        fig.plot_scaling(rows, out / "scaling_median_ess_per_eval.png", "median_ess_per_eval")
        fig.plot_acceptance(rows, out / "scaling_acceptance.png")


def _target_kwargs(args) -> dict:
    kwargs = {}
    if args.dim is not None:
        kwargs["dim"] = args.dim
    if args.rho is not None:
        kwargs["rho"] = args.rho
    return kwargs


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``simplehmc``; returns the exit status.

    0: done; 1: a kernel was marked FAIL with enough draws for the verdict to be reliable (its
    smallest bulk ESS at least 100); 2: bad input.
    """
    args = build_parser().parse_args(argv)
    # The tensors here are tiny: extra intra-op threads only contend with each other (tenfold
    # slower on a busy two-core machine), so one thread unless asked otherwise.
    import torch

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    try:
        status = _dispatch(args)
    except ValueError as error:  # bad input: say what is wrong, no traceback
        print(f"simplehmc: error: {error}", file=sys.stderr)
        return 2
    print(f"\ndone in {time.perf_counter() - start:.0f} s")
    return status


def _dispatch(args) -> int:
    progress = not args.no_progress
    figures = not getattr(args, "no_figures", False)
    if args.command == "compare":
        out = _out_dir(args, "compare")
        target = get_target(args.target, **_target_kwargs(args))
        passed = run_compare(
            target, _settings(args, VALIDATE, 0), args.kernels, out, figures, progress
        )
        print(f"\nreport and figures written to {out}/")
        return 0 if passed else 1
    if args.command == "scaling":
        out = _out_dir(args, "scaling")
        dims = args.dims or (QUICK if args.quick else VALIDATE)["dims"]
        settings = _settings(args, VALIDATE, 0)
        settings["num_chains"] = (
            args.num_chains or (QUICK if args.quick else VALIDATE)["scaling_chains"]
        )
        run_scaling(dims, settings, args.kernels, out, figures, progress)
        print(f"\nreport and figures written to {out}/")
        return 0
    if args.command == "validate":
        out = _out_dir(args, "validate")
        settings = _settings(args, VALIDATE, 0)
        passed = run_compare(
            get_target("correlated_gaussian"), settings, None, out, figures, progress
        )
        print()
        dims = (QUICK if args.quick else VALIDATE)["dims"]
        scaling_settings = {
            **settings,
            "num_chains": (QUICK if args.quick else VALIDATE)["scaling_chains"],
        }
        run_scaling(dims, scaling_settings, None, out, figures, progress)
        print(f"\nreport and figures written to {out}/")
        return 0 if passed else 1
    if args.command == "chapter":
        return _chapter(args, progress)
    raise AssertionError(args.command)


def _chapter(args, progress: bool) -> int:
    from .compare.chapter import experiment_2d, experiment_scaling

    out = _out_dir(args, "chapter")
    lines = ["The chapter's experiments (plain torch, torch.manual_seed(305)):", ""]
    two = experiment_2d()
    lines.append(
        f"2-D, rho 0.95: HMC acceptance {two['hmc_acceptance']:.2f}, ESS q1 "
        f"{two['hmc_ess_q1']:.0f}; RW-MH acceptance {two['rw_acceptance']:.2f}, ESS q1 "
        f"{two['rw_ess_q1']:.0f} (of 1800)"
    )
    lines += [
        "",
        "| D | HMC ESS q1 | RW-MH ESS q1 | HMC accept | RW accept |",
        "|---|---|---|---|---|",
    ]
    rows = experiment_scaling()
    for r in rows:
        lines.append(
            f"| {r['dim']} | {r['hmc_ess_q1']:.0f} | {r['rw_ess_q1']:.0f} | "
            f"{r['hmc_acceptance']:.2f} | {r['rw_acceptance']:.2f} |"
        )
    text = "\n".join(lines)
    print(text)
    (out / "chapter.txt").write_text(text + "\n")
    (out / "chapter.json").write_text(
        json.dumps({"two_d": two, "scaling": rows}, indent=1, default=str) + "\n"
    )
    print(
        "\nThe chapter's settings, measured fairly (same kernels, all coordinates and squares):\n"
    )
    from .compare import compare
    from .compare.chapter import chapter_settings_specs
    from .compare.report import format_table, write_csv

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        measured = compare(
            get_target("correlated_gaussian"),
            kernels=chapter_settings_specs(),
            num_samples=1800,
            warmup_steps=200,
            num_chains=2,
            reference=None,
            progress=progress,
            keep_draws=False,
        )
    table = format_table(measured)
    print(table)
    (out / "chapter_settings.txt").write_text(table + "\n")
    write_csv(measured, out / "chapter_settings.csv")
    print("\nThe fair version:\n")
    settings = {**(QUICK if args.quick else VALIDATE)}
    dims = settings.pop("dims")
    scaling_chains = settings.pop("scaling_chains")
    passed = run_compare(
        get_target("correlated_gaussian"), {**settings, "seed": 0}, None, out, True, progress
    )
    print()
    run_scaling(
        dims, {**settings, "num_chains": scaling_chains, "seed": 0}, None, out, True, progress
    )
    print(f"\nreport and figures written to {out}/")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
