"""``simplehmc chapter``: the chapter's experiments as it ran them (plain torch), its settings
measured fairly, then the fair comparison and scaling run.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from ..checks.targets import get_target
from .reports import run_compare, run_scaling
from .settings import QUICK, VALIDATE, out_dir

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``chapter`` on the subparsers of ``simplehmc``."""
    chapter = subparsers.add_parser(
        "chapter", help="the chapter's experiments, then the fair version"
    )
    chapter.add_argument("--out", type=Path, help="output folder (created if needed)")
    chapter.add_argument("--quick", action="store_true", help="a short fair run")
    chapter.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    chapter.set_defaults(handler=run)
    return chapter


def run(args) -> int:
    """Run ``simplehmc chapter``; 0 if no kernel of the fair comparison was marked FAIL, else 1."""
    progress = not args.no_progress
    from ..compare.chapter import experiment_2d, experiment_scaling

    out = out_dir(args, "chapter")
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
