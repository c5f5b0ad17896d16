"""``simplehmc leaderboard``: ESS per gradient relative to NUTS, every kernel on every ported
posteriordb posterior, as a table and (``--page``) the Markdown page.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from .settings import VALIDATE, add_run_options, out_dir, positive_int, run_settings

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``leaderboard`` on the subparsers of ``simplehmc``."""
    board = subparsers.add_parser(
        "leaderboard", help="ESS per gradient relative to NUTS on every ported posterior"
    )
    board.add_argument(
        "--page", type=Path, help="also write the Markdown page there (docs/leaderboard.md)"
    )
    board.add_argument(
        "--jobs", type=positive_int, default=1, help="posteriors run at once (processes)"
    )
    board.add_argument(
        "--estimators",
        action="store_true",
        help="also compare SimpleHMC's mass-matrix estimators (stan, fisher, low_rank)",
    )
    board.add_argument(
        "--fresh",
        action="store_true",
        help="rerun every posterior (default: reuse those an earlier run with the same --out "
        "and settings finished, kept in OUT/records)",
    )
    add_run_options(board, chains=2)
    board.set_defaults(handler=run)
    return board


def run(args) -> int:
    """Run ``simplehmc leaderboard``; 0 when done."""
    progress = not args.no_progress
    from ..compare.leaderboard import LEADERBOARD, estimator_board, leaderboard, write_leaderboard

    base = {**LEADERBOARD, "num_samples": 200, "warmup_steps": 100} if args.quick else LEADERBOARD
    settings = {
        "num_samples": base["num_samples"] if args.num_samples is None else args.num_samples,
        "warmup_steps": base["warmup_steps"] if args.warmup_steps is None else args.warmup_steps,
        "num_chains": base["num_chains"] if args.num_chains is None else args.num_chains,
        "seed": args.seed,
    }
    common = run_settings(args, VALIDATE, 0)
    for key in ("batch_chains", "max_evals", "reference_cache"):
        settings[key] = common[key]
    out = out_dir(args, "leaderboard")
    records = out / "records"
    if args.fresh and records.is_dir():
        shutil.rmtree(records)
    # A resumed run's wall time is not the page's: then the page states CPU time only.
    resumed = records.is_dir() and any(records.glob("*.pkl"))
    start = time.perf_counter()
    board = leaderboard(progress=progress, jobs=args.jobs, records=records, **settings)
    estimators = None
    if args.estimators:
        estimators = estimator_board(jobs=args.jobs, progress=progress, records=records, **{
            k: v for k, v in settings.items() if k != "reference_cache"
        })  # fmt: skip
    wall = time.perf_counter() - start
    text = write_leaderboard(
        board, out, page=args.page, estimators=estimators, wall_seconds=None if resumed else wall
    )
    print(text)
    print(f"\nleaderboard written to {out}/" + (f" and {args.page}" if args.page else ""))
    return 0
