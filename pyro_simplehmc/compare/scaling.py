r"""The dimension experiment: the cost of an effective draw as the dimension grows.

On the diagonal Gaussian with variances evenly spaced in :math:`[0.1, 1]`, each kernel runs with
an adapted step size and an adapted diagonal mass matrix, and its cost is counted in gradient
evaluations (potential evaluations for the random walk). Optimal-scaling theory predicts that
ESS per evaluation falls like :math:`D^{-1}` for the random walk, :math:`D^{-1/3}` for MALA and
:math:`D^{-1/4}` for HMC whose number of steps grows to keep the trajectory length fixed; the
fitted slopes of :math:`\log(\mathrm{ESS}/\mathrm{eval})` on :math:`\log D` are compared with
those numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..checks.statistics import t_interval
from ..core import validation as check
from .grid import Cell, replicate_seeds, run_grid_cell
from .results import KernelResult
from .slopes import THEORY_SLOPES, fit_slope
from .specs import KERNELS, SCALING_KERNELS, SCALING_SETTINGS, KernelSpec, resolve_kernels


def scaling(
    dims: Sequence[int] = (2, 10, 50, 100),
    kernels: Sequence[str | KernelSpec] | None = None,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    low: float = 0.1,
    high: float = 1.0,
    progress: bool = True,
    seeds: int = 1,
    batch_chains: int | None = None,
    max_evals: int | None = None,
) -> list[dict]:
    """Run the kernels on ``diagonal_gaussian(D)`` for every ``D`` in ``dims``: a small grid.

    Each (dimension, kernel, seed) is one cell of :mod:`.grid`, run here one after the other.

    :param dims: the dimensions, each at least 1.
    :param kernels: names from :data:`SCALING_KERNELS` (falling back on the comparison's
        :data:`~pyro_simplehmc.compare.runner.KERNELS`) or specs; default: all of
        :data:`SCALING_KERNELS`.
    :param seeds: independent replicates; replicate :math:`r` starts its chains at
        ``seed + r * num_chains`` (:func:`.grid.replicate_seeds`).
    :param batch_chains: run this package's kernels as one batch of this many chains, and
        ``max_evals`` their budget for a reliable verdict (see
        :func:`~pyro_simplehmc.compare.execution.run_cell`); ``None``: per chain, fixed draws.
    :returns: one row per (kernel, dimension, seed) with the comparison's summary, plus
        ``dim``, ``seed``, ``median_ess_per_eval`` (median bulk ESS of the coordinates per
        evaluation) and ``theory_slope``.
    """
    dims = check.int_list("dims", dims, 1)
    check.positive_finite("low", low)
    check.positive_finite("high", high)
    check.positive_int("seeds", seeds)
    check.positive_int("num_samples", num_samples)
    check.nonnegative_int("warmup_steps", warmup_steps)
    check.positive_int("num_chains", num_chains)
    check.boolean("progress", progress)
    specs = resolve_kernels(kernels, {**KERNELS, **SCALING_KERNELS})
    if kernels is None:
        specs = list(SCALING_KERNELS.values())
    named = {**KERNELS, **SCALING_KERNELS}
    settings = SCALING_SETTINGS
    seed_list = replicate_seeds(check.nonnegative_int("seed", seed), seeds, num_chains)
    cells = [
        (
            Cell(
                "diagonal_gaussian",
                spec.name,
                dim,
                s,
                settings.get(spec.name, {}) if spec.name in SCALING_KERNELS else {},
                # Only what differs from the defaults: then the cells are `simplehmc grid`'s.
                {k: v for k, v in (("low", low), ("high", high)) if v != _DEFAULT_RANGE[k]},
                num_samples,
                warmup_steps,
                num_chains,
                batch_chains=batch_chains,
                max_evals=max_evals,
            ),
            # A spec that is not one of the named ones (a kernel of your own) runs as given.
            None if named.get(spec.name) is spec else spec,
        )
        for dim in dims
        for spec in specs
        for s in seed_list
    ]
    bar = _progress(len(cells), progress)
    rows = []
    try:
        for cell, spec in cells:
            record = run_grid_cell(cell, spec)
            bar.update(1)
            if record["status"] == "ok":
                result = record["result"]
            else:  # a kernel that raised is a row with the verdict ERROR, as in compare()
                uses_gradient = (spec or named[cell.kernel]).uses_gradient
                failed = KernelResult.failed(
                    cell.kernel, uses_gradient, num_chains, record["error"]
                )
                result = {**failed.summary(), "warnings": []}
            rows.append(
                {
                    "dim": cell.dim,
                    "seed": cell.seed,
                    **{k: v for k, v in result.items() if k not in _GRID_ONLY},
                    "theory_slope": THEORY_SLOPES.get(cell.kernel, float("nan")),
                    "warnings": "; ".join(result["warnings"]),
                }
            )
    finally:
        bar.close()
    return rows


_DEFAULT_RANGE = {"low": 0.1, "high": 1.0}
#: Fields of a grid record's result that a scaling row leaves out (they are its settings).
_GRID_ONLY = ("label", "target", "dim", "threshold", "warnings")


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="scaling", unit="cell", leave=False, disable=not enabled)


def slope_intervals(rows: list[dict], metric: str = "ess_per_eval") -> dict[str, tuple]:
    """Per kernel: the mean over seeds of the per-seed slope, and its 95 % t interval."""

    out = {}
    for kernel in dict.fromkeys(r["kernel"] for r in rows):
        per_seed = []
        for seed in dict.fromkeys(r["seed"] for r in rows if r["kernel"] == kernel):
            mine = [r for r in rows if r["kernel"] == kernel and r["seed"] == seed]
            per_seed.append(fit_slope([r["dim"] for r in mine], [r[metric] for r in mine])[0])
        out[kernel] = t_interval(per_seed)
    return out


def slopes(rows: list[dict], metric: str = "ess_per_eval") -> dict[str, float]:
    """The fitted slope of each kernel (see :func:`fit_slope`)."""
    out = {}
    for kernel in dict.fromkeys(r["kernel"] for r in rows):
        mine = [r for r in rows if r["kernel"] == kernel]
        out[kernel] = fit_slope([r["dim"] for r in mine], [r[metric] for r in mine])[0]
    return out


def format_scaling_table(rows: list[dict]) -> str:
    """A plain-text table of a scaling run, with the fitted slopes."""
    header = ("kernel", "D", "status", "accept", "minESS", "evals", "ESS/eval", "medESS/eval")
    lines = [header]
    for r in rows:
        lines.append(
            (
                r["kernel"],
                str(r["dim"]),
                r["status"],
                f"{r['acceptance_rate']:.2f}",
                f"{min(r['min_ess_bulk_x'], r['min_ess_bulk_x2']):.0f}",
                str(r["sampling_evals"]),
                f"{r['ess_per_eval']:.2e}",
                f"{r['median_ess_per_eval']:.2e}",
            )
        )
    if len({r.get("seed") for r in rows}) > 1:
        header = (*header[:2], "seed", *header[2:])
        lines = [header] + [
            (*line[:2], str(r["seed"]), *line[2:]) for line, r in zip(lines[1:], rows, strict=True)
        ]
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    fitted, fitted_median = slopes(rows), slopes(rows, "median_ess_per_eval")
    text.append("")
    text.append("slope of log(ESS/eval) on log(D): min ESS / median ESS (theory)")
    for kernel, slope in fitted.items():
        theory = THEORY_SLOPES.get(kernel)
        theory_text = f"{theory:.2f}" if theory is not None else "-"
        text.append(f"  {kernel}: {slope:.2f} / {fitted_median[kernel]:.2f} ({theory_text})")
    seeds = len({r.get("seed") for r in rows})
    if seeds > 1:
        text.append("")
        text.append(f"slope of log(min ESS/eval) on log(D) per seed: mean [95 % t interval, "
                    f"{seeds} seeds] (theory)")  # fmt: skip
        for kernel, (mean, low, high) in slope_intervals(rows).items():
            theory = THEORY_SLOPES.get(kernel)
            theory_text = f"{theory:.2f}" if theory is not None else "-"
            text.append(f"  {kernel}: {mean:.2f} [{low:.2f}, {high:.2f}] ({theory_text})")
    return "\n".join(text)
