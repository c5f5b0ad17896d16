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
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from ..checks.targets import TARGETS, get_target
from ..compare.execution import DEFAULT_BATCH_CHAINS, DEFAULT_MAX_EVALS
from ..core import validation as check

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
#: ``simplehmc validate --quick``: a smaller target (correlation 0.5 rather than 0.95) and fewer
#: kernels (this package's three and NUTS; the random walk with more of its cheap draws), so that
#: every kernel gets a reliable PASS or FAIL in under a minute on two cores. Measured at seeds 0
#: and 1: every smallest bulk ESS above 500, R-hat at most 1.009, 18-19 s of CPU time.
QUICK_VALIDATE_RHO = 0.5
QUICK_VALIDATE_LENGTHS = {"RandomWalkMH": 3000}
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


def _add_run_options(parser: argparse.ArgumentParser, chains: int | None) -> None:
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


def _positive_int(text: str) -> int:
    try:
        return check.positive_int("the value", int(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text}") from error


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
        "validate",
        help="comparison on the 2-D correlated Gaussian and a scaling run (--quick: the "
        "comparison only, on an easier target, in under a minute)",
    )
    _add_run_options(validate, chains=None)

    comp = sub.add_parser(
        "compare", help="run kernels side by side on a target, your model or a posterior"
    )
    what = comp.add_mutually_exclusive_group()
    what.add_argument(
        "--target", help=f"one of {', '.join(sorted(TARGETS))} (default correlated_gaussian)"
    )
    what.add_argument(
        "--model",
        help="your Pyro model, as path/to/file.py:function or package.module:function; "
        "validated against a longer run of --reference",
    )
    what.add_argument(
        "--posterior", help="a ported posteriordb posterior (see --list-posteriors)"
    )
    comp.add_argument(
        "--args",
        dest="model_args",
        help="FILE.py:FUNCTION or MODULE:FUNCTION returning (args, kwargs) for --model",
    )
    comp.add_argument("--dim", type=int, help="dimension, for targets that take one")
    comp.add_argument("--rho", type=float, help="correlation of correlated_gaussian")
    comp.add_argument("--kernels", nargs="+", help="kernel names (default: all)")
    comp.add_argument(
        "--reference", default="NUTS", help="the kernel the others are compared with (NUTS)"
    )
    comp.add_argument(
        "--reference-samples",
        type=int,
        help="draws per chain of the reference with --model (default 4 x --num-samples)",
    )
    comp.add_argument(
        "--full-mass",
        choices=["diagonal", "dense"],
        help="mass matrix of every kernel that takes one (default: each kernel's own)",
    )
    comp.add_argument(
        "--list-posteriors", action="store_true", help="list the ported posteriors and exit"
    )
    _add_run_options(comp, chains=2)

    board = sub.add_parser(
        "leaderboard", help="ESS per gradient relative to NUTS on every ported posterior"
    )
    board.add_argument(
        "--page", type=Path, help="also write the Markdown page there (docs/leaderboard.md)"
    )
    board.add_argument(
        "--jobs", type=_positive_int, default=1, help="posteriors run at once (processes)"
    )
    _add_run_options(board, chains=2)

    scale = sub.add_parser("scaling", help="ESS per gradient against dimension")
    scale.add_argument("--dims", nargs="+", type=int, help="dimensions (default 2 10 50 100)")
    scale.add_argument("--kernels", nargs="+", help="kernel names (default: RW, MALA, HMC, NUTS)")
    scale.add_argument(
        "--seeds", type=int, default=1, help="replicates; with 2 or more, slope intervals"
    )
    _add_run_options(scale, chains=2)

    chapter = sub.add_parser("chapter", help="the chapter's experiments, then the fair version")
    chapter.add_argument("--out", type=Path, help="output folder (created if needed)")
    chapter.add_argument("--quick", action="store_true", help="a short fair run")
    chapter.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    from . import benchmark
    from .grid import add_grid_parser

    add_grid_parser(sub)
    benchmark.add_parser(sub)
    return parser


def _settings(args, defaults: dict, chains_default: int) -> dict:
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


def load_callable(spec: str, option: str) -> Callable:
    """The function ``spec`` names: ``path/to/file.py:function`` or ``package.module:function``.

    :param spec: the text given on the command line.
    :param option: the option's name, for error messages.
    :raises ValueError: naming ``option``, for a missing file, module or function.
    """
    check.string_or_none(option, spec)
    source, sep, name = str(spec).rpartition(":")
    if not sep or not source or not name:
        raise ValueError(
            f"{option} must be path/to/file.py:function or package.module:function; got {spec!r}"
        )
    if source.endswith(".py") or "/" in source or Path(source).is_file():
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"{option}: no such file {source!r}")
        module_name = f"_simplehmc_user_{abs(hash(str(path.resolve())))}"
        loader = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(loader)
        try:
            loader.loader.exec_module(module)
        except Exception as error:
            raise ValueError(
                f"{option}: running {source!r} raised {type(error).__name__}: {error}"
            ) from error
    else:
        try:
            module = importlib.import_module(source)
        except ImportError as error:
            raise ValueError(f"{option}: cannot import module {source!r}: {error}") from error
    function = getattr(module, name, None)
    if function is None:
        defined = sorted(
            k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
        )
        raise ValueError(f"{option}: {source!r} has no {name!r}; it defines {defined}")
    if not callable(function):
        raise ValueError(f"{option}: {source}:{name} is not callable")
    return function


def load_model_args(spec: str | None) -> tuple[tuple, dict]:
    """``(args, kwargs)`` from the function ``--args`` names (none: no arguments).

    The function returns ``(args, kwargs)`` (a tuple or list and a dict), or the argument tuple
    alone, as ``mcmc.run(*args)`` takes it: a tuple whose last element is not a dict.
    """
    if spec is None:
        return (), {}
    value = load_callable(spec, "--args")()
    if (
        isinstance(value, tuple | list)
        and len(value) == 2
        and isinstance(value[0], tuple | list)
        and isinstance(value[1], dict)
    ):
        return tuple(value[0]), dict(value[1])
    if isinstance(value, tuple) and not (value and isinstance(value[-1], dict)):
        return value, {}
    raise ValueError(
        f"--args: {spec} must return (args, kwargs), a tuple or list and a dict, or the "
        f"argument tuple alone (a tuple whose last element is not a dict); got "
        f"{type(value).__name__} {str(value)[:80]}"
    )


def _out_dir(args, name: str) -> Path:
    out = args.out if args.out is not None else Path(f"simplehmc-{name}")
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_compare(target, settings: dict, kernels, out: Path, figures: bool, progress: bool) -> bool:
    """Run a comparison on a target and write its table, CSV, JSON and figures into ``out``.

    :returns: whether no kernel was marked FAIL (a FAIL is always reliable) and none raised.
    """
    from ..compare import compare

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the table lists the warnings
        result = compare(target, kernels=kernels, progress=progress, **settings)
    return write_report(result, out, figures, target)


def write_report(result, out: Path, figures: bool, target=None) -> bool:
    """Print the table of ``result`` and write it, the CSV, JSON and figures into ``out``.

    :returns: :attr:`~pyro_simplehmc.compare.results.Comparison.passed`.
    """
    from ..compare.report import format_table, write_csv, write_json

    table = format_table(result)
    print(table)
    stem = result.target
    (out / f"{stem}.txt").write_text(table + "\n")
    write_csv(result, out / f"{stem}.csv")
    write_json(result, out / f"{stem}.json")
    if figures:
        from ..compare import figures as fig

        if result.draws:
            fig.plot_traces(result, out / f"{stem}_traces.png")
            if target is not None and target.dim >= 2:
                fig.plot_scatter(result, target, out / f"{stem}_scatter.png")
        fig.plot_z(result, out / f"{stem}_z.png")
        fig.plot_ess_per_eval(result, out / f"{stem}_ess_per_eval.png")
    return result.passed


def run_scaling(
    dims, settings: dict, kernels, out: Path, figures: bool, progress: bool, seeds: int = 1
) -> None:
    """Run the scaling experiment and write its table, CSV, JSON and figures into ``out``."""
    import csv

    from ..compare.scaling import format_scaling_table, scaling, slope_intervals, slopes

    settings = {k: v for k, v in settings.items() if k != "reference_cache"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rows = scaling(dims, kernels=kernels, progress=progress, seeds=seeds, **settings)
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
        "slope_intervals_min_ess": {k: list(v) for k, v in slope_intervals(rows).items()},
        "seeds": seeds,
        "rows": rows,
    }
    from ..compare.report import finite

    (out / "scaling.json").write_text(json.dumps(finite(summary), indent=1) + "\n")
    if figures:
        from ..compare import figures as fig

        fig.plot_scaling(rows, out / "scaling_ess_per_eval.png")
        fig.plot_scaling(rows, out / "scaling_median_ess_per_eval.png", "median_ess_per_eval")
        fig.plot_acceptance(rows, out / "scaling_acceptance.png")
        if seeds > 1:  # the grid's figures: bands and slope intervals over the seeds
            from ..compare.grid_report import plot_grid_scaling, plot_slopes, slope_summary

            grid_rows = [
                {
                    **r,
                    "target": "diagonal_gaussian",
                    "label": r["kernel"],
                    "verdict": r["status"],
                    "cell_status": "error" if r["status"] == "ERROR" else "ok",
                }
                for r in rows
            ]
            plot_grid_scaling(grid_rows, out / "scaling_ess_per_eval_band.png")
            plot_slopes(slope_summary(grid_rows), out / "scaling_slopes.png")


def _target_kwargs(args) -> dict:
    kwargs = {}
    if args.dim is not None:
        kwargs["dim"] = args.dim
    if args.rho is not None:
        kwargs["rho"] = args.rho
    return kwargs


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
        status = _dispatch(args)
    except (ValueError, ImportError) as error:  # bad input or a missing extra: no traceback
        print(f"simplehmc: error: {error}", file=sys.stderr)
        return 2
    print(f"\ndone in {time.perf_counter() - start:.0f} s")
    return status


def _dispatch(args) -> int:
    if getattr(args, "handler", None) is not None:  # a command module's run(args)
        return args.handler(args)
    progress = not args.no_progress
    figures = not getattr(args, "no_figures", False)
    if args.command == "compare":
        return _compare(args, figures, progress)
    if args.command == "leaderboard":
        return _leaderboard(args, progress)
    if args.command == "scaling":
        out = _out_dir(args, "scaling")
        base = QUICK if args.quick else VALIDATE
        dims = args.dims or base["dims"]
        settings = _settings(args, VALIDATE, 0)
        if args.quick:
            if args.num_samples is None:
                settings["num_samples"] = QUICK["scaling_samples"]
            if args.warmup_steps is None:
                settings["warmup_steps"] = QUICK["scaling_warmup"]
        settings["num_chains"] = (
            base["scaling_chains"] if args.num_chains is None else args.num_chains
        )
        run_scaling(dims, settings, args.kernels, out, figures, progress, args.seeds)
        print(f"\nreport and figures written to {out}/")
        return 0
    if args.command == "validate":
        return _validate(args, figures, progress)
    if args.command == "chapter":
        return _chapter(args, progress)
    if args.command == "grid":
        from .grid import run_grid_command

        return run_grid_command(args)
    raise AssertionError(args.command)


def quick_validate_kernels() -> list:
    """The kernels of ``simplehmc validate --quick``: RandomWalkMH, MALA, SimpleHMC (a fixed
    trajectory length with a jittered step size, as in the scaling run: a fixed number of steps
    can resonate on a Gaussian) and NUTS."""
    from ..compare.specs import KERNELS, SCALING_KERNELS

    return [KERNELS["RandomWalkMH"], KERNELS["MALA"], SCALING_KERNELS["SimpleHMC"], KERNELS["NUTS"]]


def _validate(args, figures: bool, progress: bool) -> int:
    """The comparison on the 2-D correlated Gaussian, then (not with ``--quick``) the scaling
    run."""
    from ..compare import compare

    out = _out_dir(args, "validate")
    settings = _settings(args, VALIDATE, 0)
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
        # Fixed draws in the scaling run: at D = 100 a continuation to a reliable verdict for
        # every kernel (NUTS rerun chain by chain) takes far longer than the run it extends.
        scaling_settings = {
            **settings, "num_chains": VALIDATE["scaling_chains"], "max_evals": None,
        }  # fmt: skip
        run_scaling(VALIDATE["dims"], scaling_settings, None, out, figures, progress)
    print(f"\nreport and figures written to {out}/")
    return 0 if passed else 1


def _full_mass(args) -> bool | None:
    return None if args.full_mass is None else args.full_mass == "dense"


def _compare(args, figures: bool, progress: bool) -> int:
    from ..checks.posteriordb import POSTERIORS
    from ..compare import compare, compare_model, compare_posterior

    if args.list_posteriors:
        print("\n".join(POSTERIORS))
        return 0
    if args.model is None and args.model_args is not None:
        raise ValueError("--args goes with --model")
    if args.model is None and args.reference_samples is not None:
        raise ValueError("--reference-samples goes with --model")
    if (args.model is not None or args.posterior is not None) and (
        args.dim is not None or args.rho is not None
    ):
        raise ValueError("--dim and --rho go with --target")
    settings = _settings(args, VALIDATE, 0)
    full_mass = _full_mass(args)
    target = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the table lists the warnings
        if args.model is not None:
            model = load_callable(args.model, "--model")
            model_args, model_kwargs = load_model_args(args.model_args)
            result = compare_model(
                model,
                model_args,
                model_kwargs,
                kernels=args.kernels,
                reference=args.reference,
                reference_num_samples=args.reference_samples,
                full_mass=full_mass,
                progress=progress,
                **settings,
            )
            out = _out_dir(args, "compare")
        elif args.posterior is not None:
            result = compare_posterior(
                args.posterior,
                kernels=args.kernels,
                reference=args.reference,
                full_mass=full_mass,
                progress=progress,
                **settings,
            )
            out = _out_dir(args, "compare")
        else:
            target = get_target(args.target or "correlated_gaussian", **_target_kwargs(args))
            result = compare(
                target,
                kernels=args.kernels,
                reference=args.reference,
                full_mass=full_mass,
                progress=progress,
                **settings,
            )
            out = _out_dir(args, "compare")
    passed = write_report(result, out, figures, target)
    print(f"\nreport and figures written to {out}/")
    return 0 if passed else 1


def _leaderboard(args, progress: bool) -> int:
    from ..compare.leaderboard import LEADERBOARD, leaderboard, write_leaderboard

    base = {**LEADERBOARD, "num_samples": 200, "warmup_steps": 100} if args.quick else LEADERBOARD
    settings = {
        "num_samples": base["num_samples"] if args.num_samples is None else args.num_samples,
        "warmup_steps": base["warmup_steps"] if args.warmup_steps is None else args.warmup_steps,
        "num_chains": base["num_chains"] if args.num_chains is None else args.num_chains,
        "seed": args.seed,
    }
    common = _settings(args, VALIDATE, 0)
    for key in ("batch_chains", "max_evals", "reference_cache"):
        settings[key] = common[key]
    out = _out_dir(args, "leaderboard")
    board = leaderboard(progress=progress, jobs=args.jobs, **settings)
    text = write_leaderboard(board, out, page=args.page)
    print(text)
    print(f"\nleaderboard written to {out}/" + (f" and {args.page}" if args.page else ""))
    return 0


def _chapter(args, progress: bool) -> int:
    from ..compare.chapter import experiment_2d, experiment_scaling

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
    from ..compare import compare
    from ..compare.chapter import chapter_settings_specs
    from ..compare.report import format_table, write_csv

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
    base = QUICK if args.quick else VALIDATE
    settings = {k: base[k] for k in ("num_samples", "warmup_steps", "num_chains")}
    dims, scaling_chains = base["dims"], base["scaling_chains"]
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
