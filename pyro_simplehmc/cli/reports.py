"""Running a comparison or the scaling experiment for a ``simplehmc`` command, and writing its
report: the text table (printed too), CSV, JSON and PNG figures, into the output folder.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

__all__ = ["run_compare", "run_scaling", "write_report"]


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
