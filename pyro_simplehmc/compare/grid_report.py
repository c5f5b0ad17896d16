r"""The report of a grid: a merged table, intervals across seeds, fitted slopes, verdict counts.

Seeds are independent replicates, so every interval here is a Student-:math:`t` interval over
seeds (95 % by default), computed on the log scale where the quantity is a rate:

- the ESS per evaluation of each (target, :math:`D`, kernel) is summarised by its geometric mean
  over seeds with the interval :math:`\exp(\bar y \pm t_{n-1} s / \sqrt n)`, :math:`y = \log`
  ESS/eval;
- the slope of :math:`\log(\mathrm{ESS}/\mathrm{eval})` on :math:`\log D` is fitted per seed
  (:func:`~pyro_simplehmc.compare.scaling.fit_slope`), and the interval is the :math:`t`
  interval of those slopes; with one seed there is a slope and no interval.

Optimal-scaling theory (Roberts, Gelman & Gilks 1997; Roberts & Rosenthal 1998; Beskos et al.
2013) predicts slopes of :math:`-1` (random walk), :math:`-1/3` (MALA) and :math:`-1/4` (HMC
with a fixed trajectory length) on i.i.d.-like Gaussian targets; the table and figure put the
fitted intervals beside those numbers.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..checks.statistics import t_interval
from .plotting import save_figure, subplots
from .results import finite
from .slopes import THEORY_SLOPES, fit_slope

#: Confidence level of every interval of the report.
LEVEL = 0.95

#: The columns of the merged table taken from each cell (the rest come from its result).
CELL_COLUMNS = (
    "target",
    "dim",
    "kernel",
    "label",
    "seed",
    "num_samples",
    "warmup_steps",
    "num_chains",
)


def theory_slopes() -> dict[str, float]:
    """The optimal-scaling slopes (:data:`.slopes.THEORY_SLOPES`)."""
    return dict(THEORY_SLOPES)


def table_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per record: the cell's fields, the status, the error and the summary."""
    rows = []
    for record in records:
        cell = record["cell"]
        label = cell["kernel"]
        if cell.get("settings"):
            inner = ",".join(f"{k}={v}" for k, v in sorted(cell["settings"].items()))
            label = f"{label}[{inner}]"
        row: dict[str, Any] = {
            "id": record["id"],
            **{k: cell.get(k) for k in CELL_COLUMNS if k != "label"},
            "label": label,
            "settings": json.dumps(cell.get("settings") or {}, sort_keys=True),
            "cell_status": record["status"],
            "error": record.get("error") or "",
        }
        result = record.get("result") or {}
        row["size"] = result.get("dim")  # the number of validated quantities
        if result.get("dim") is not None and cell.get("kind", "target") == "target":
            row["dim"] = result["dim"]  # a posterior keeps None: it is no point of a D axis
        for key, value in result.items():
            if key in ("kernel", "label", "target", "dim"):
                continue
            row[key] = "; ".join(value) if key == "warnings" else value
        row["verdict"] = result.get("status", "ERROR") if record["status"] == "ok" else "ERROR"
        rows.append(row)
    # A kernel run with one set of settings only is labelled by its name alone.
    variants: dict[str, set] = {}
    for row in rows:
        variants.setdefault(row["kernel"], set()).add(row["settings"])
    for row in rows:
        if len(variants[row["kernel"]]) == 1:
            row["label"] = row["kernel"]
    return rows


def _value(row: Mapping[str, Any], metric: str) -> float:
    value = row.get(metric)
    return float("nan") if value is None else float(value)


def cell_summary(rows: Sequence[Mapping[str, Any]], metric: str = "ess_per_eval") -> list[dict]:
    """One row per (target, :math:`D`, kernel label): counts, verdicts, intervals over seeds.

    ``metric`` is summarised by its geometric mean and interval over the seeds where it is
    positive (a chain that never moved has 0, which the ``zero`` column counts).
    """
    groups: dict[tuple, list] = {}
    for row in rows:
        groups.setdefault((row["target"], row["dim"], row["label"]), []).append(row)
    out = []
    for (target, dim, label), mine in groups.items():
        ok = [r for r in mine if r["cell_status"] == "ok"]
        values = [_value(r, metric) for r in ok]
        logs = [math.log(v) for v in values if v > 0 and np.isfinite(v)]
        mean, low, high = t_interval(logs)
        accept = t_interval([_value(r, "acceptance_rate") for r in ok])[0]
        out.append(
            {
                "target": target,
                "dim": dim,
                "label": label,
                "kernel": mine[0]["kernel"],
                "cells": len(mine),
                "ok": len(ok),
                "zero": sum(1 for v in values if v == 0),
                "verdicts": dict(Counter(r["verdict"] for r in mine)),
                f"{metric}_geomean": math.exp(mean) if np.isfinite(mean) else float("nan"),
                f"{metric}_low": math.exp(low) if np.isfinite(low) else float("nan"),
                f"{metric}_high": math.exp(high) if np.isfinite(high) else float("nan"),
                "acceptance_mean": accept,
            }
        )
    return out


def slope_summary(rows: Sequence[Mapping[str, Any]], metric: str = "ess_per_eval") -> list[dict]:
    """The slope of :math:`\\log` ``metric`` on :math:`\\log D` per (target, kernel label).

    Fitted per seed over the dimensions that seed has; the interval is over seeds.
    """

    theory = theory_slopes()
    groups: dict[tuple, dict[int, list]] = {}
    for row in rows:
        if row["cell_status"] != "ok" or row["dim"] is None:
            continue
        key = (row["target"], row["label"])
        groups.setdefault(key, {}).setdefault(row["seed"], []).append(row)
    out = []
    for (target, label), by_seed in groups.items():
        dims = sorted({r["dim"] for seed_rows in by_seed.values() for r in seed_rows})
        if len(dims) < 2:
            continue
        per_seed = [
            fit_slope([r["dim"] for r in seed_rows], [_value(r, metric) for r in seed_rows])[0]
            for seed_rows in by_seed.values()
        ]
        mean, low, high = t_interval(per_seed)
        kernel = next(iter(by_seed.values()))[0]["kernel"]
        out.append(
            {
                "target": target,
                "label": label,
                "kernel": kernel,
                "dims": dims,
                "seeds": sum(1 for s in per_seed if np.isfinite(s)),
                "slope": mean,
                "slope_low": low,
                "slope_high": high,
                "theory": theory.get(kernel, float("nan")),
            }
        )
    return out


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return format(value, spec)


def _table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]

    def line(cells):
        return "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return [line(header), line(["-" * w for w in widths]), *(line(c) for c in lines)]


def format_grid_report(rows: Sequence[Mapping[str, Any]], level: float = LEVEL) -> str:
    """The text report: per-cell summary over seeds, verdict counts, slopes against theory."""
    summary = cell_summary(rows)
    pct = f"{100 * level:.0f} %"
    lines = [
        f"{len(rows)} cells: {sum(r['cell_status'] == 'ok' for r in rows)} ran, "
        f"{sum(r['cell_status'] != 'ok' for r in rows)} failed to run",
        "",
        f"ESS/eval: geometric mean over seeds [{pct} t interval]; verdicts: count per verdict",
        "",
    ]
    body = []
    for s in summary:
        interval = f"[{_fmt(s['ess_per_eval_low'], '.2e')}, {_fmt(s['ess_per_eval_high'], '.2e')}]"
        verdicts = " ".join(f"{k} {v}" for k, v in sorted(s["verdicts"].items()))
        body.append(
            (
                s["target"],
                _fmt(s["dim"], "d"),
                s["label"],
                f"{s['ok']}/{s['cells']}",
                _fmt(s["ess_per_eval_geomean"], ".2e"),
                interval,
                _fmt(s["acceptance_mean"], ".2f"),
                verdicts,
            )
        )
    lines += _table(
        ("target", "D", "kernel", "ran", "ESS/eval", "interval", "accept", "verdicts"), body
    )
    slopes = slope_summary(rows)
    if slopes:
        lines += ["", f"slope of log(ESS/eval) on log D, per seed: mean [{pct} t interval]", ""]
        lines += _table(
            ("target", "kernel", "seeds", "slope", "interval", "theory"),
            [
                (
                    s["target"],
                    s["label"],
                    str(s["seeds"]),
                    _fmt(s["slope"], ".2f"),
                    f"[{_fmt(s['slope_low'], '.2f')}, {_fmt(s['slope_high'], '.2f')}]",
                    _fmt(s["theory"], ".2f"),
                )
                for s in slopes
            ],
        )
    errors = [r for r in rows if r["cell_status"] != "ok"]
    if errors:
        lines += ["", "cells that failed to run:"]
        lines += [
            f"  {r['target']} D={r['dim']} {r['label']} seed {r['seed']}: {r['error']}"
            for r in errors
        ]
    return "\n".join(lines)


def write_grid_report(
    records: Sequence[Mapping[str, Any]], out: str | Path, figures: bool = True
) -> list[Path]:
    """Write ``grid_report.txt``, ``grid_cells.csv`` (the merged table), ``grid_summary.json``
    and, with ``figures``, ``grid_ess_per_eval.png`` and ``grid_slopes.png`` into ``out``."""

    out = Path(out)
    rows = table_rows(records)
    paths = []
    text = format_grid_report(rows)
    paths.append(out / "grid_report.txt")
    paths[-1].write_text(text + "\n")
    if rows:
        names = list(dict.fromkeys(k for r in rows for k in r))
        paths.append(out / "grid_cells.csv")
        with paths[-1].open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=names)
            writer.writeheader()
            writer.writerows(rows)
    paths.append(out / "grid_summary.json")
    summary = {"cells": cell_summary(rows), "slopes": slope_summary(rows), "level": LEVEL}
    paths[-1].write_text(json.dumps(finite(summary), indent=1) + "\n")
    if figures and any(r["dim"] is not None for r in rows):
        paths.append(plot_grid_scaling(rows, out / "grid_ess_per_eval.png"))
        if summary["slopes"]:
            paths.append(plot_slopes(summary["slopes"], out / "grid_slopes.png"))
    return paths


def plot_grid_scaling(
    rows: Sequence[Mapping[str, Any]], path: str | Path, metric: str = "ess_per_eval"
) -> Path:
    """ESS per evaluation against :math:`D`, one panel per target: the geometric mean over
    seeds with its interval as a band, every seed as a dot."""

    summary = [s for s in cell_summary(rows, metric) if s["dim"] is not None]
    targets = list(dict.fromkeys(s["target"] for s in summary))
    fig, axes = subplots(1, len(targets), figsize=(6.5 * len(targets), 4.5), squeeze=False)
    for ax, target in zip(axes.flat, targets, strict=True):
        for label in dict.fromkeys(s["label"] for s in summary if s["target"] == target):
            mine = sorted(
                (s for s in summary if s["target"] == target and s["label"] == label),
                key=lambda s: s["dim"],
            )
            dims = np.array([s["dim"] for s in mine], dtype=float)
            centre = np.array([s[f"{metric}_geomean"] for s in mine], dtype=float)
            (line,) = ax.plot(dims, centre, "o-", label=label)
            low = np.array([s[f"{metric}_low"] for s in mine], dtype=float)
            high = np.array([s[f"{metric}_high"] for s in mine], dtype=float)
            ax.fill_between(dims, low, high, color=line.get_color(), alpha=0.2, lw=0)
            points = [
                (r["dim"], _value(r, metric))
                for r in rows
                if r["target"] == target and r["label"] == label and r["cell_status"] == "ok"
            ]
            points = [(d, v) for d, v in points if v > 0]
            if points:
                d, v = zip(*points, strict=True)
                ax.plot(d, v, ".", color=line.get_color(), alpha=0.4, ms=4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        dims = sorted({s["dim"] for s in summary if s["target"] == target})
        ax.set_xticks(dims, [str(d) for d in dims])
        ax.minorticks_off()
        ax.set_xlabel("dimension D")
        ax.set_ylabel("min ESS per gradient (per potential for RW)")
        ax.set_title(f"{target}: geometric mean over seeds, {100 * LEVEL:.0f} % band", fontsize=10)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_slopes(slopes: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Fitted slopes with their intervals (error bars) beside the theory (crosses)."""

    fig, ax = subplots(figsize=(1.4 * len(slopes) + 3, 4))
    x = np.arange(len(slopes))
    mean = np.array([s["slope"] for s in slopes], dtype=float)
    low = np.array([s["slope_low"] for s in slopes], dtype=float)
    high = np.array([s["slope_high"] for s in slopes], dtype=float)
    has = np.isfinite(low) & np.isfinite(high)
    yerr = np.where(has, [mean - low, high - mean], 0.0)
    ax.errorbar(x, mean, yerr=yerr, fmt="o", capsize=4, label=f"fitted, {100 * LEVEL:.0f} % CI")
    theory = np.array([s["theory"] for s in slopes], dtype=float)
    ax.plot(x, theory, "x", color="black", ms=9, label="optimal-scaling theory")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xticks(x, [f"{s['label']}\n{s['target']}" for s in slopes], fontsize="x-small")
    ax.set_ylabel("slope of log(ESS/eval) on log D")
    ax.set_title("Fitted slopes across seeds against theory (-1, -1/3, -1/4)", fontsize=10)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = [
    "cell_summary",
    "format_grid_report",
    "plot_grid_scaling",
    "plot_slopes",
    "slope_summary",
    "t_interval",
    "table_rows",
    "write_grid_report",
]
