"""Every kernel on every ported posteriordb posterior: ESS per gradient relative to NUTS.

``simplehmc leaderboard --page docs/leaderboard.md`` runs :func:`leaderboard` and writes the
table (:func:`write_leaderboard`) as CSV, JSON and the Markdown page of the documentation. Each
cell is one :func:`~pyro_simplehmc.compare.compare_posterior` run: every kernel with its default
settings (adapted step size, adapted diagonal mass matrix), the posteriordb reference draws as the
truth.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from ..core import validation as check
from .execution import DEFAULT_BATCH_CHAINS, DEFAULT_MAX_EVALS
from .results import Comparison, finite
from .runner import compare_posterior

#: The settings of the published leaderboard.
LEADERBOARD = {"num_samples": 500, "warmup_steps": 300, "num_chains": 2}
#: The kernels of the leaderboard; the last is the yardstick.
LEADERBOARD_KERNELS = ("RandomWalkMH", "MALA", "SimpleHMC", "NUTS")
COMMAND = "simplehmc leaderboard --page docs/leaderboard.md --jobs 3 --no-progress"


def leaderboard(
    posteriors: Sequence[str] | None = None,
    kernels: Sequence[str] = LEADERBOARD_KERNELS,
    num_samples: int = LEADERBOARD["num_samples"],
    warmup_steps: int = LEADERBOARD["warmup_steps"],
    num_chains: int = 2,
    seed: int = 0,
    progress: bool = True,
    jobs: int = 1,
    batch_chains: int | None = DEFAULT_BATCH_CHAINS,
    max_evals: int | None = DEFAULT_MAX_EVALS,
    reference_cache: Any = None,
) -> list[Comparison]:
    """Run ``kernels`` on each of ``posteriors`` (default: all ported ones).

    :param jobs: posteriors run at once, each in its own process (one torch thread each).
    :param batch_chains: as for :func:`~pyro_simplehmc.compare.compare`: this package's kernels
        run as one batch, until their verdict is reliable or ``max_evals`` is spent.
    :param max_evals: the budget of every kernel.
    :param reference_cache: where NUTS's runs are kept and reused (see
        :func:`~pyro_simplehmc.compare.compare`).
    :returns: one :class:`~pyro_simplehmc.compare.results.Comparison` per posterior.
    """
    from ..checks.posteriordb import POSTERIORS

    names = list(POSTERIORS) if posteriors is None else list(posteriors)
    for name in names:
        check.one_of("posteriors", name, POSTERIORS)
    jobs = check.positive_int("jobs", jobs)
    settings = {
        "kernels": list(kernels),
        "num_samples": num_samples,
        "warmup_steps": warmup_steps,
        "num_chains": num_chains,
        "seed": seed,
        "batch_chains": batch_chains,
        "max_evals": max_evals,
        "reference_cache": reference_cache,
    }
    if jobs == 1:
        return [_one(name, settings, progress) for name in names]
    with ProcessPoolExecutor(max_workers=jobs, initializer=_one_thread) as pool:
        return list(pool.map(_one, names, [settings] * len(names), [False] * len(names)))


def _one_thread() -> None:
    torch.set_num_threads(1)


def _one(name: str, settings: dict, progress: bool) -> Comparison:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the verdicts say it
        return compare_posterior(name, progress=progress, keep_draws=False, **settings)


def rows(board: Sequence[Comparison], yardstick: str = "NUTS") -> list[dict]:
    """One row per (posterior, kernel): ESS per evaluation, its ratio to ``yardstick``'s, the
    verdict against the reference draws, and the run's cost."""
    out = []
    for comparison in board:
        base = next((r for r in comparison.results if r.name == yardstick), None)
        for r in comparison.results:
            ratio = (
                r.ess_per_eval / base.ess_per_eval
                if base is not None and base.ess_per_eval and base.error is None
                else float("nan")
            )
            out.append(
                {
                    "posterior": comparison.target,
                    "dim": comparison.dim,
                    "kernel": r.name,
                    "verdict": r.status_truth,
                    "max_abs_z": r.max_abs_z_truth,
                    "draws_needed": r.draws_needed,
                    "min_ess_bulk": r.min_bulk_ess,
                    "cost_unit": "gradient" if r.uses_gradient else "potential",
                    "ess_per_eval": r.ess_per_eval,
                    f"relative_to_{yardstick}": ratio,
                    "r_hat": r.r_hat,
                    "divergences": r.divergences,
                    "seconds": r.seconds["warmup"] + r.seconds["sampling"],
                    "error": r.error or "",
                }
            )
    return out


def _cell(row: dict, yardstick: str) -> str:
    if row["error"]:
        return "ERROR"
    ratio = row[f"relative_to_{yardstick}"]
    value = "-" if not math.isfinite(ratio) else f"{ratio:.2f}"
    return f"{value} ({row['verdict']})"


def format_markdown(board: Sequence[Comparison], yardstick: str = "NUTS") -> str:
    """The leaderboard as a Markdown table: posteriors down, kernels across."""
    table = rows(board, yardstick)
    kernels = list(dict.fromkeys(r["kernel"] for r in table))
    posteriors = list(dict.fromkeys(r["posterior"] for r in table))
    by_key = {(r["posterior"], r["kernel"]): r for r in table}
    header = ["posterior", "D", f"{yardstick} ESS/grad", *kernels]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in posteriors:
        base = by_key.get((name, yardstick))
        base_value = "-" if base is None or base["error"] else f"{base['ess_per_eval']:.4f}"
        dim = next(r["dim"] for r in table if r["posterior"] == name)
        cells = [_cell(by_key[name, k], yardstick) for k in kernels]
        lines.append("| " + " | ".join([f"`{name}`", str(dim), base_value, *cells]) + " |")
    return "\n".join(lines)


def write_leaderboard(
    board: Sequence[Comparison], out: str | Path, page: str | Path | None = None
) -> str:
    """Write ``leaderboard.csv``, ``leaderboard.json`` and ``leaderboard.md`` into ``out``, and
    the documentation page to ``page`` if given.

    :returns: the Markdown table.
    """
    out = Path(out)
    table = rows(board)
    with (out / "leaderboard.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    (out / "leaderboard.json").write_text(
        json.dumps(finite([c.to_dict() for c in board]), indent=1) + "\n"
    )
    markdown = format_markdown(board)
    (out / "leaderboard.md").write_text(markdown + "\n")
    if page is not None:
        Path(page).write_text(_page(board, markdown))
    return markdown


def _page(board: Sequence[Comparison], markdown: str) -> str:
    c = board[0]
    total = sum(r["seconds"] for r in rows(board))
    return f"""# Leaderboard: real posteriors

Every kernel on every posterior ported from
[posteriordb](https://github.com/stan-dev/posteriordb) (BSD 3-Clause; Magnusson, Bürkner &
Vehtari), scored against posteriordb's reference draws (10,000 draws of Stan's NUTS that pass
posteriordb's checks). Each cell is the kernel's **smallest bulk ESS per gradient evaluation**
(per potential evaluation for the random walk) **divided by NUTS's**, on the same posterior, with
the kernel's verdict against the reference in brackets: above 1, the kernel gets an effective
draw for fewer gradients than NUTS.

<!-- Generated by `{COMMAND}`; do not edit by hand. -->

Regenerate this page with one command (its runs took {total / 60:.0f} minutes of sampling in all
on the machine that wrote it; `--jobs` runs that many posteriors side by side):

```bash
{COMMAND}
```

Settings: {c.num_chains} chains x {c.num_samples} draws after {c.warmup_steps} warmup iterations
per kernel, seed {c.seed}; every kernel with its defaults (adapted step size and diagonal mass
matrix); the validated numbers are each posterior's reference quantities (means and variances,
in the constrained space), Bonferroni over all of them.

{markdown}

How to read it:

- **PASS / FAIL** only where the run's Monte-Carlo standard errors can be trusted: smallest bulk
  ESS at least 100 and R-hat below 1.01. A `FAIL` there is a real disagreement with the
  reference.
- **TOO FEW DRAWS / NOT MIXED**: no verdict; the CSV and JSON files hold the number of draws per
  chain that would likely give one (`draws_needed`). The ESS per gradient of such a run is itself
  rough.
- The random walk is counted per potential evaluation, the others per gradient: a gradient costs
  about as much as one to a few potential evaluations, so compare the random walk's numbers with
  that in mind.
- Longer runs, dense mass matrices and per-kernel lengths (the statistical tests in
  `tests/test_posteriordb.py`) give every kernel a verdict; this table is about cost at equal
  settings.
- Pyro's `HMC` with a fixed trajectory length is left out: where a posterior's scales are small
  its adapted step size is too, and its number of steps per iteration explodes (on `arK-arK` a
  200-draw run did not finish in five minutes).
- One posterior from the command line: `simplehmc compare --posterior NAME` (add
  `--full-mass dense` for the strongly correlated ones).
"""
