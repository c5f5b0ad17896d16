"""``simplehmc compare``: run kernels side by side on a target, your model (``--model
FILE.py:FUNCTION``, with ``--args``) or a ported posteriordb posterior.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import warnings
from collections.abc import Callable
from pathlib import Path

from ..checks.targets import TARGETS, get_target
from ..compare.runner import DENSE_MAX_DIM
from ..core import validation as check
from .reports import write_report
from .settings import VALIDATE, add_run_options, out_dir, run_settings

__all__ = ["QUICK_COMPARE_KERNELS", "add_parser", "load_callable", "load_model_args", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``compare`` on the subparsers of ``simplehmc``."""
    comp = subparsers.add_parser(
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
    what.add_argument("--posterior", help="a ported posteriordb posterior (see --list-posteriors)")
    comp.add_argument(
        "--args",
        dest="model_args",
        help="FILE.py:FUNCTION or MODULE:FUNCTION returning (args, kwargs) for --model",
    )
    comp.add_argument("--dim", type=int, help="dimension, for targets that take one")
    comp.add_argument("--rho", type=float, help="correlation of correlated_gaussian")
    comp.add_argument(
        "--kernels",
        nargs="+",
        help="kernel names (default: all; with --quick on a target, all but Pyro's "
        "RandomWalkKernel)",
    )
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
        choices=["auto", "diagonal", "dense"],
        help="mass matrix of every kernel that takes one; auto: dense up to "
        f"{DENSE_MAX_DIM} dimensions, diagonal above (default: auto with --model and "
        "--posterior, each kernel's own on a target)",
    )
    comp.add_argument(
        "--list-posteriors", action="store_true", help="list the ported posteriors and exit"
    )
    add_run_options(comp, chains=2)
    comp.set_defaults(handler=run)
    return comp


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


def _target_kwargs(args) -> dict:
    kwargs = {}
    if args.dim is not None:
        kwargs["dim"] = args.dim
    if args.rho is not None:
        kwargs["rho"] = args.rho
    return kwargs


#: The kernels of ``simplehmc compare --quick`` on a target: every kernel but Pyro's
#: ``RandomWalkKernel``, which runs one chain at a time and cannot continue its chains: on the
#: correlated Gaussian it needs about 50,000 draws per chain for a reliable verdict, rerun from
#: the start (about 70 s on two cores, more than the other five kernels together).
QUICK_COMPARE_KERNELS = ("RandomWalkMH", "MALA", "SimpleHMC", "NUTS", "HMC")


def _full_mass(args, default: bool | str | None) -> bool | str | None:
    if args.full_mass is None:
        return default
    return "auto" if args.full_mass == "auto" else args.full_mass == "dense"


def run(args) -> int:
    """Run ``simplehmc compare``; 0 if no kernel was marked FAIL (or with ``--list-posteriors``),
    else 1."""
    progress = not args.no_progress
    figures = not getattr(args, "no_figures", False)
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
    settings = run_settings(args, VALIDATE, 0)
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
                full_mass=_full_mass(args, "auto"),
                progress=progress,
                **settings,
            )
            out = out_dir(args, "compare")
        elif args.posterior is not None:
            result = compare_posterior(
                args.posterior,
                kernels=args.kernels,
                reference=args.reference,
                full_mass=_full_mass(args, "auto"),
                progress=progress,
                **settings,
            )
            out = out_dir(args, "compare")
        else:
            target = get_target(args.target or "correlated_gaussian", **_target_kwargs(args))
            kernels = args.kernels
            if kernels is None and args.quick:
                kernels = list(QUICK_COMPARE_KERNELS)
            result = compare(
                target,
                kernels=kernels,
                reference=args.reference,
                full_mass=_full_mass(args, None),
                progress=progress,
                **settings,
            )
            out = out_dir(args, "compare")
    passed = write_report(result, out, figures, target)
    print(f"\nreport and figures written to {out}/")
    return 0 if passed else 1
