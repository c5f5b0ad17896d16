"""Every kernel on every ported posteriordb posterior: ESS per gradient relative to NUTS.

``simplehmc leaderboard --page docs/leaderboard.md`` runs :func:`leaderboard` and writes the
table (:func:`write_leaderboard`) as CSV, JSON and the Markdown page of the documentation. Each
row is one :func:`~pyro_simplehmc.compare.compare_posterior` run: every kernel with its default
settings (adapted step size; a dense mass matrix up to
:data:`~pyro_simplehmc.compare.runner.DENSE_MAX_DIM` dimensions, diagonal above), the
posteriordb reference draws as the truth. :func:`estimator_board` compares the mass-matrix
estimators of one kernel (:mod:`pyro_simplehmc.core.mass_estimators`) on the same posteriors.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import pickle
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyro
import torch

from ..core import validation as check
from ..core.version import VERSION
from .execution import DEFAULT_BATCH_CHAINS, DEFAULT_MAX_EVALS
from .results import Comparison, finite
from .runner import DENSE_MAX_DIM, compare_posterior
from .specs import kernel_spec

#: The settings of the published leaderboard.
LEADERBOARD = {"num_samples": 500, "warmup_steps": 300, "num_chains": 2}
#: The kernels of the leaderboard; the last is the yardstick.
LEADERBOARD_KERNELS = ("RandomWalkMH", "MALA", "SimpleHMC", "MAMS", "NUTS")
#: The mass-matrix estimators compared by :func:`estimator_board`; the first is the yardstick.
MASS_ESTIMATORS = ("stan", "fisher", "low_rank")
COMMAND = "simplehmc leaderboard --page docs/leaderboard.md --estimators --jobs 2 --no-progress"


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
    reference: str | None = "NUTS",
    full_mass: bool | str | None = "auto",
    records: str | Path | None = None,
) -> list[Comparison]:
    """Run ``kernels`` on each of ``posteriors`` (default: all ported ones).

    :param kernels: names or :class:`~pyro_simplehmc.compare.specs.KernelSpec` objects.
    :param jobs: posteriors run at once, each in its own process (one torch thread each).
    :param batch_chains: as for :func:`~pyro_simplehmc.compare.compare`: this package's kernels
        run as one batch, until their verdict is reliable or ``max_evals`` is spent.
    :param max_evals: the budget of every kernel.
    :param reference_cache: where NUTS's runs are kept and reused (see
        :func:`~pyro_simplehmc.compare.compare`).
    :param reference: the kernel the others are compared with, or ``None``.
    :param full_mass: as for :func:`~pyro_simplehmc.compare.compare_posterior`.
    :param records: a folder that keeps each finished posterior's comparison
        (:func:`record_key`: the posterior, the kernels, these settings and the versions), so
        that a call interrupted part-way resumes from its finished posteriors; an entry that
        does not load is rerun and overwritten. ``None``: keep nothing.
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
        "reference": reference,
        "full_mass": full_mass,
    }
    folder = None if records is None else Path(records)
    if jobs == 1:
        return [_one(name, settings, progress, folder) for name in names]
    with ProcessPoolExecutor(max_workers=jobs, initializer=_one_thread) as pool:
        n = len(names)
        return list(pool.map(_one, names, [settings] * n, [False] * n, [folder] * n))


def _one_thread() -> None:
    torch.set_num_threads(1)


def record_key(posterior: str, settings: dict) -> str:
    """The key of a finished posterior in a ``records`` folder: a hash of the posterior's name,
    the kernels (names and settings), the run's settings and the versions of this package,
    Pyro and PyTorch."""
    kernels = [
        [k, {}] if isinstance(k, str) else [k.name, {n: repr(v) for n, v in k.settings.items()}]
        for k in settings["kernels"]
    ]
    run = {k: v for k, v in settings.items() if k not in ("kernels", "reference_cache")}
    data = [RECORD_FORMAT, posterior, kernels, run, [VERSION, pyro.__version__, torch.__version__]]
    text = json.dumps(data, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


#: Version of a ``records`` entry's layout (a pickled ``Comparison``).
RECORD_FORMAT = 1


def _one(name: str, settings: dict, progress: bool, records: Path | None = None) -> Comparison:
    path = None if records is None else records / f"{name}-{record_key(name, settings)}.pkl"
    if path is not None and path.is_file():
        try:
            kept = pickle.loads(path.read_bytes())
            if isinstance(kept, Comparison) and kept.target == name:
                return kept
        except Exception:  # a truncated or foreign file: rerun, never trust it
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the verdicts say it
        result = compare_posterior(name, progress=progress, keep_draws=False, **settings)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_bytes(pickle.dumps(result))
        os.replace(tmp, path)  # atomic: an interrupted write leaves no entry
    return result


def estimator_board(
    posteriors: Sequence[str] | None = None,
    kernel: str = "SimpleHMC",
    estimators: Sequence[str] = MASS_ESTIMATORS,
    jobs: int = 1,
    progress: bool = True,
    **run: Any,
) -> list[Comparison]:
    """``kernel`` with each of ``estimators`` on each posterior: the same runs as
    :func:`leaderboard` (``run``: its other arguments), with a diagonal mass matrix (the
    estimators' common ground: ``"fisher"`` is diagonal only) and no reference kernel; the
    kernels are named ``"SimpleHMC (fisher)"`` and so on.
    """
    specs = [
        replace(kernel_spec(kernel, {"mass_estimator": e}), name=f"{kernel} ({e})")
        for e in estimators
    ]
    return leaderboard(
        posteriors, specs, jobs=jobs, progress=progress, reference=None, full_mass=False, **run
    )


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


def estimator_summary(board: Sequence[Comparison]) -> list[str]:
    """For each estimator after the first: the median, smallest and largest ratio of its ESS
    per gradient to the first's over the posteriors where both got a reliable verdict."""
    table = rows(board, yardstick=board[0].results[0].name)
    first = board[0].results[0].name
    by_key = {(r["posterior"], r["kernel"]): r for r in table}
    lines = []
    for kernel in dict.fromkeys(r["kernel"] for r in table):
        if kernel == first:
            continue
        ratios = [
            r[f"relative_to_{first}"]
            for r in table
            if r["kernel"] == kernel
            and r["verdict"] in ("PASS", "FAIL")
            and by_key[r["posterior"], first]["verdict"] in ("PASS", "FAIL")
            and math.isfinite(r[f"relative_to_{first}"])
        ]
        if ratios:
            ratios.sort()
            median = (
                ratios[len(ratios) // 2]
                if len(ratios) % 2
                else 0.5 * (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2])
            )
            lines.append(
                f"- `{kernel}` / `{first}`: median {median:.2f}, from {ratios[0]:.2f} to "
                f"{ratios[-1]:.2f}, over the {len(ratios)} posteriors where both have a verdict"
            )
        else:
            lines.append(f"- `{kernel}`: no posterior where both have a verdict")
    return lines


def write_leaderboard(
    board: Sequence[Comparison],
    out: str | Path,
    page: str | Path | None = None,
    estimators: Sequence[Comparison] | None = None,
    wall_seconds: float | None = None,
) -> str:
    """Write ``leaderboard.csv``, ``leaderboard.json`` and ``leaderboard.md`` into ``out``, and
    the documentation page to ``page`` if given.

    :param estimators: an :func:`estimator_board` for the page (and ``estimators.json``).
    :param wall_seconds: the command's wall time, stated on the page.
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
    if estimators:
        (out / "estimators.json").write_text(
            json.dumps(finite([c.to_dict() for c in estimators]), indent=1) + "\n"
        )
    if page is not None:
        Path(page).write_text(_page(board, markdown, estimators, wall_seconds))
    return markdown


def _page(
    board: Sequence[Comparison],
    markdown: str,
    estimators: Sequence[Comparison] | None = None,
    wall_seconds: float | None = None,
) -> str:
    c = board[0]
    cpu = sum(r["seconds"] for r in rows(board)) + sum(
        r["seconds"] for r in rows(estimators or [], yardstick="")
    )
    wall = "" if wall_seconds is None else f"{wall_seconds / 60:.0f} minutes of wall time, "
    verdicts = [r["verdict"] for r in rows(board)]
    reliable = sum(v in ("PASS", "FAIL") for v in verdicts)
    if c.batch_chains is None:
        chains = f"{c.num_chains} chains per kernel, one at a time"
    else:
        chains = (
            f"{c.batch_chains} chains as one batch for this package's kernels (superchains of "
            f"four chains with one dispersed start each, pooled adaptation), {c.num_chains} "
            "chains of NUTS in parallel processes"
        )
    from ..checks.posteriordb import POSTERIORS

    missing = [name for name in POSTERIORS if name not in {b.target for b in board}]
    coverage = ""
    if missing:  # a page written from part of the set says which part
        coverage = (
            f"\n\n**This page covers {len(board)} of the {len(POSTERIORS)} ported posteriors**; "
            f"not yet run: {', '.join(f'`{m}`' for m in missing)}."
        )
    length = (
        f"{c.num_samples} draws per chain after {c.warmup_steps} warmup iterations"
        if c.max_evals is None
        else f"{c.num_samples} draws per chain after {c.warmup_steps} warmup iterations, and "
        "more (this package's kernels continue their chains, NUTS runs again, longer) until "
        f"the verdict is reliable or {c.max_evals:,} evaluations per kernel are spent"
    )
    section = ""
    if estimators:
        section = f"""
## Mass-matrix estimators

`SimpleHMC` with each `mass_estimator` (`"stan"`: Stan's windowed variance of the draws;
`"fisher"`: the diagonal $\\sqrt{{\\mathrm{{var}}(x) / \\mathrm{{var}}(\\nabla U)}}$ from draws and
gradients, as nutpie; `"low_rank"`: that diagonal with a low-rank correction), all with a
diagonal base (`full_mass=False`) and otherwise the settings above; each cell is the ESS per
gradient relative to `"stan"`'s, with the verdict against the reference draws.

{format_markdown(estimators, yardstick=estimators[0].results[0].name)}

{chr(10).join(estimator_summary(estimators))}
"""
    return f"""# Leaderboard: real posteriors

Every kernel on every posterior ported from
[posteriordb](https://github.com/stan-dev/posteriordb) (BSD 3-Clause; Magnusson, Bürkner &
Vehtari), scored against posteriordb's reference draws (10,000 draws of Stan's NUTS that pass
posteriordb's checks). Each cell is the kernel's **smallest bulk ESS per gradient evaluation**
(per potential evaluation for the random walk) **divided by NUTS's**, on the same posterior, with
the kernel's verdict against the reference in brackets: above 1, the kernel gets an effective
draw for fewer gradients than NUTS.

<!-- Generated by `{COMMAND}`; do not edit by hand. -->

Regenerate this page with one command (this run took {wall}{cpu / 60:.0f} CPU-minutes of
sampling; NUTS's runs are kept in the reference cache, so a second run reuses them;
`--jobs` runs that many posteriors side by side; an interrupted run, started again with the same
`--out`, resumes from the posteriors it finished, kept in `OUT/records`, and `--fresh` reruns
them all):

```bash
{COMMAND}
```

Settings: {chains}; {length}; seed {c.seed}; every kernel with its defaults (adapted step
size; a dense mass matrix up to {DENSE_MAX_DIM} dimensions, NUTS's included, diagonal above);
the validated numbers are each posterior's reference quantities (means and variances, in the
constrained space), Bonferroni over all of them. {reliable} of the {len(verdicts)} cells have a
reliable verdict.{coverage}

{markdown}

How to read it:

- **PASS / FAIL** only where the run's Monte-Carlo standard errors can be trusted: smallest bulk
  and tail ESS at least 100 and R-hat below 1.01 (nested R-hat for a batch's superchains). A
  `FAIL` there is a real disagreement with the reference.
- **TOO FEW DRAWS / NOT MIXED**: no verdict within the budget; the CSV and JSON files hold the
  number of draws per chain that would likely give one (`draws_needed`) and the runs' notes.
- The random walk is counted per potential evaluation, the others per gradient: a gradient costs
  about as much as one to a few potential evaluations, so compare the random walk's numbers with
  that in mind.
- `MAMS` is Metropolis-adjusted microcanonical HMC ([Beyond NUTS](beyond-nuts.md)).
- Pyro's `HMC` with a fixed trajectory length is left out: where a posterior's scales are small
  its adapted step size is too, and its number of steps per iteration explodes.
- One posterior from the command line: `simplehmc compare --posterior NAME`.
{section}"""
