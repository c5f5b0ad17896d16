"""The comparison as a terminal table, a CSV file and a JSON file."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from ..checks.statistics import MAX_RELIABLE_RHAT, MIN_RELIABLE_ESS
from .execution import SUPERCHAIN_SIZE, chain_starts
from .results import Comparison, finite

#: (header, summary key, format) of the terminal table's columns; ``{ref}`` is the reference.
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("kernel", "kernel", "{}"),
    ("chains", "num_chains", "{}"),
    ("draws", "num_samples", "{}"),
    ("truth", "status", "{}"),
    ("max|z|", "max_abs_z_truth", "{:.2f}"),
    ("vs {ref}", "vs_ref", "{}"),
    ("max|z| {ref}", "max_abs_z_ref", "{:.2f}"),
    ("draws needed", "draws_needed", "{}"),
    ("minESS x", "min_ess_bulk_x", "{:.0f}"),
    ("medESS x", "median_ess_bulk_x", "{:.0f}"),
    ("minESS x2", "min_ess_bulk_x2", "{:.0f}"),
    ("min tail", "_min_tail", "{:.0f}"),
    ("evals", "sampling_evals", "{}"),
    ("unit", "_unit", "{}"),
    ("ESS/eval", "ess_per_eval", "{:.4f}"),
    ("95% interval", "_interval", "{}"),
    ("evals to b2<0.01", "evals_to_low_bias", "{:.0f}"),
    ("b2 95% interval", "_b2_interval", "{}"),
    ("ESS/s", "ess_per_second", "{:.0f}"),
    ("R-hat", "r_hat", "{:.3f}"),
    ("accept", "acceptance_rate", "{:.2f}"),
    ("div", "divergences", "{}"),
    ("time s", "_seconds", "{:.1f}"),
)


def _row(summary: dict[str, Any]) -> list[str]:
    summary = dict(summary)
    summary["_min_tail"] = min(summary["min_ess_tail_x"], summary["min_ess_tail_x2"])
    summary["_unit"] = "grad" if summary["cost_unit"] == "gradient" else "pot"
    summary["_seconds"] = summary["warmup_seconds"] + summary["sampling_seconds"]
    low, high = summary["ess_per_eval_low"], summary["ess_per_eval_high"]
    summary["_interval"] = None if not (low == low and high == high) else f"{low:.3g}-{high:.3g}"
    low, high = (float(summary.get(f"evals_to_low_bias_{end}") or "nan") for end in ("low", "high"))
    summary["_b2_interval"] = (
        None if math.isnan(low) or math.isnan(high) else f"{low:.0f}-{high:.0f}".replace("inf", "∞")
    )
    cells = []
    for _, key, fmt in COLUMNS:
        value = summary[key]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            cells.append("-")
        else:
            cells.append(fmt.format(value))
    return cells


def format_table(comparison: Comparison) -> str:
    """A plain-text table of the comparison, with its settings, legend and warnings."""
    c = comparison
    ref = c.reference or "ref"
    header = [h.format(ref=ref) for h, _, _ in COLUMNS]
    rows = [_row(r.summary()) for r in c.results]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells):
        return "  ".join(
            str(cell).rjust(w) if i else str(cell).ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        )

    if c.batch_chains is None:
        chains = f"{c.num_chains} chains per kernel, one at a time"
    else:
        starts = chain_starts(c.batch_chains)
        nested = (
            f" in {len(set(starts))} superchains of {SUPERCHAIN_SIZE} (one start each; nested "
            "R-hat)"
            if len(set(starts)) < len(starts)
            else ""
        )
        chains = (
            f"{c.batch_chains} chains as one batch{nested} (pooled adaptation) for this "
            f"package's kernels, {c.num_chains} one at a time for the others"
        )
    if c.max_evals is None:
        length = f"{c.num_samples} draws per chain"
    else:
        length = (
            f"{c.num_samples} draws per chain, more until the verdict is reliable within a "
            f"budget of {c.max_evals:,} evaluations per kernel"
        )
    out = [
        f"{c.target}: {c.description}",
        f"{chains}; {length}; {c.warmup_steps} warmup, seed {c.seed}; "
        f"FAIL if any |z| > {c.threshold:.2f} (Bonferroni over {c.num_tests} tests: a mean and "
        "a variance per coordinate, family-wise 0.001)",
        "",
        line(header),
        line(["-" * w for w in widths]),
        *(line(r) for r in rows),
        "",
        f"Verdicts: PASS / FAIL only when the smallest bulk ESS is >= {MIN_RELIABLE_ESS} and "
        f"R-hat < {MAX_RELIABLE_RHAT}; otherwise TOO FEW DRAWS or NOT MIXED (REF ...: the "
        "reference's draws), with the draws per chain that would likely give a reliable verdict.",
        "ESS: arviz bulk ESS (min / median over coordinates x_i, min over squares x_i^2); "
        "min tail: smallest tail ESS of x and x^2.",
        "ESS/eval: smallest bulk ESS per sampling-phase gradient (per potential evaluation for "
        "gradient-free kernels); evals: that cost, all chains; 95% interval: over groups of "
        "chains; evals to b2<0.01: per chain, until the squared bias of every second moment "
        "stays below 0.01 of its variance (known truth only), with a bootstrap interval over "
        "chains.",
        f"z: (estimate - truth) / MCSE for each mean and variance; vs {ref}: the same against "
        f"{ref} with both MCSEs combined.",
    ]
    notes = [f"warning: {r.name}: {w}" for r in c.results for w in r.warnings]
    notes += [f"error: {r.name}: {r.error}" for r in c.results if r.error is not None]
    deterministic = sorted({site for r in c.results for site in r.deterministic})
    if deterministic:
        notes.append(
            "deterministic sites (reported in the JSON file, not tested): "
            + ", ".join(deterministic)
        )
    if notes:
        out += ["", *notes]
    return "\n".join(out)


def write_csv(comparison: Comparison, path: str | Path) -> Path:
    """One row per kernel with every scalar column of :meth:`KernelResult.summary`."""
    path = Path(path)
    rows = [
        {"target": comparison.target, "reference": comparison.reference or "", **r.summary()}
        for r in comparison.results
    ]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_json(comparison: Comparison, path: str | Path) -> Path:
    """The whole comparison (settings, per-coordinate arrays, summaries), without the draws."""
    path = Path(path)
    path.write_text(json.dumps(finite(comparison.to_dict()), indent=1) + "\n")
    return path
