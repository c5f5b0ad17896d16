"""Figures of a comparison and of a scaling run, written to PNG files.

The figures are :class:`matplotlib.figure.Figure` objects saved directly, without
:mod:`matplotlib.pyplot`: no display is needed, and importing this module leaves matplotlib's
backend (and the user's own figures) alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..checks.statistics import FAIL, MIN_RELIABLE_ESS, PASS
from ..checks.targets import Target
from .plotting import save_figure as _save
from .plotting import subplots as _subplots
from .results import Comparison, KernelResult
from .slopes import THEORY_SLOPES, fit_slope


def _verdict(result: KernelResult) -> str:
    """The verdict a figure shows: against the truth if there is one, else the reference's."""
    return result.status_truth if result.status_truth != "-" else result.status_ref


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return (n + cols - 1) // cols, cols


def plot_traces(comparison: Comparison, path: str | Path, coords: int = 2) -> Path:
    """Trace plots: one panel per kernel, the first ``coords`` coordinates of chain 0."""
    names = list(comparison.draws)
    rows, cols = _grid(len(names))
    fig, axes = _subplots(rows, cols, figsize=(4.5 * cols, 2.6 * rows), squeeze=False)
    labels = comparison.coords or [f"x[{i}]" for i in range(comparison.dim)]
    for ax, name in zip(axes.flat, names, strict=False):
        draws = comparison.draws[name][0]
        for i in range(min(coords, draws.shape[1])):
            ax.plot(draws[:, i], lw=0.6, label=labels[i])
        result = comparison[name]
        ax.set_title(
            f"{name}  ({_verdict(result)}, accept {result.acceptance_rate:.2f})", fontsize="medium"
        )
        ax.set_xlabel("iteration after warmup")
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    axes.flat[0].legend(loc="upper right", fontsize="small")
    fig.suptitle(f"Traces on {comparison.target}")
    fig.tight_layout()
    return _save(fig, path)


#: Contour levels, relative to the peak: for a Gaussian, the 1, 2 and 3 standard-deviation ellipses.
LEVELS = [float(np.exp(-0.5 * k**2)) for k in (3, 2, 1)]


def plot_scatter(
    comparison: Comparison, target: Target, path: str | Path, max_points: int = 1000
) -> Path:
    """Draws of the first two coordinates over the contours of the target's density.

    For a target of more than two dimensions the contours are those of the conditional density
    with the other coordinates at their true means (exact for the marginal of a Gaussian only
    up to a rescaling, and labelled so).
    """
    names = list(comparison.draws)
    rows, cols = _grid(len(names))
    fig, axes = _subplots(rows, cols, figsize=(4 * cols, 3.8 * rows), squeeze=False)
    sd = target.var.sqrt()
    lo = (target.mean - 3.5 * sd)[:2].tolist()
    hi = (target.mean + 3.5 * sd)[:2].tolist()
    xs = torch.linspace(lo[0], hi[0], 120, dtype=target.mean.dtype)
    ys = torch.linspace(lo[1], hi[1], 120, dtype=target.mean.dtype)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    points = target.mean.expand(*gx.shape, target.dim).clone()
    points[..., 0], points[..., 1] = gx, gy
    with torch.no_grad():
        log_p = target.log_density(points)
    density = torch.exp(log_p - log_p.max()).numpy()
    for ax, name in zip(axes.flat, names, strict=False):
        ax.contour(gx.numpy(), gy.numpy(), density, levels=LEVELS, colors="grey", linewidths=0.8)
        draws = comparison.draws[name].reshape(-1, target.dim)
        step = max(1, len(draws) // max_points)
        ax.plot(draws[::step, 0], draws[::step, 1], ".", ms=2, alpha=0.5)
        ax.set_title(name)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_xlabel("x[0]")
        ax.set_ylabel("x[1]")
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    note = "" if target.dim == 2 else " (contours: slice at the mean)"
    fig.suptitle(f"Draws over the density of {comparison.target}{note}")
    fig.tight_layout()
    return _save(fig, path)


def plot_ess_per_eval(comparison: Comparison, path: str | Path) -> Path:
    """Bar chart of the smallest bulk ESS per evaluation, labelled with each kernel's verdict.

    ``FAIL``: red and hatched; ``TOO FEW DRAWS`` / ``NOT MIXED`` (no reliable verdict): grey and
    hatched; ``ERROR``: no bar.
    """
    results = comparison.results
    fig, ax = _subplots(figsize=(1.3 * len(results) + 2, 3.8))
    values = [0.0 if r.error is not None else r.ess_per_eval for r in results]
    bars = ax.bar([r.name for r in results], values)
    for bar, r in zip(bars, results, strict=True):
        status = _verdict(r)
        if status == FAIL:
            bar.set_hatch("//")
            bar.set_facecolor("tab:red")
        elif status not in (PASS, "-"):
            bar.set_hatch("..")
            bar.set_facecolor("lightgrey")
        ax.annotate(
            status,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize="x-small",
        )
    ax.set_ylabel("min ESS per gradient\n(per potential for random walks)")
    ax.set_title(f"Cost of an effective draw on {comparison.target}")
    ax.tick_params(axis="x", rotation=30)
    ax.margins(y=0.15)
    fig.tight_layout()
    return _save(fig, path)


def plot_z(comparison: Comparison, path: str | Path) -> Path:
    """The :math:`z`-score of every mean and variance, per kernel, with the threshold.

    Against the truth where there is one, else against the reference. A kernel without a
    reliable verdict is drawn with hollow markers and its verdict in the legend.
    """
    results = [r for r in comparison.results if r.error is None]
    coords = comparison.coords or [f"x[{i}]" for i in range(comparison.dim)]
    fig, axes = _subplots(1, 2, figsize=(max(7.0, 0.5 * len(coords) * 2 + 3), 3.8))
    for ax, what in zip(axes, ("mean", "var"), strict=True):
        for k, r in enumerate(results):
            truth = r.z_mean_truth is not None
            z = (
                (r.z_mean_truth if what == "mean" else r.z_var_truth)
                if truth
                else (r.z_mean_ref if what == "mean" else r.z_var_ref)
            )
            if z is None:
                continue
            status = _verdict(r)
            reliable = status in (PASS, FAIL)
            offset = (k - (len(results) - 1) / 2) * 0.1
            ax.plot(
                np.arange(len(z)) + offset,
                np.clip(z, -10, 10),
                "o",
                mfc=None if reliable else "white",
                label=f"{r.name} ({status})",
            )
        for sign in (-1, 1):
            ax.axhline(sign * comparison.threshold, color="grey", ls="--", lw=0.8)
        ax.set_xticks(range(len(coords)), coords, rotation=60, fontsize="x-small")
        ax.set_title(f"z of each {'mean' if what == 'mean' else 'variance'}", fontsize="medium")
    against = "the truth" if comparison.truth_mean is not None else comparison.reference
    axes[0].set_ylabel(f"z against {against} (clipped to ±10)")
    axes[1].legend(fontsize="x-small", loc="best")
    fig.suptitle(
        f"{comparison.target}: dashed: ±{comparison.threshold:.2f} (Bonferroni); "
        "hollow: no reliable verdict",
        fontsize="medium",
    )
    fig.tight_layout()
    return _save(fig, path)


def plot_scaling(table: list[dict], path: str | Path, metric: str = "ess_per_eval") -> Path:
    """ESS per evaluation against :math:`D` on log-log axes, fitted slope beside the theory.

    :param table: rows with keys ``kernel``, ``dim``, ``metric`` (from :mod:`.scaling`).
    """
    fig, ax = _subplots(figsize=(6.5, 4.5))
    for kernel in dict.fromkeys(row["kernel"] for row in table):
        rows = [r for r in table if r["kernel"] == kernel]
        dims = np.array([r["dim"] for r in rows], dtype=float)
        values = np.array([r[metric] for r in rows], dtype=float)
        slope, intercept = fit_slope(dims, values)
        label = f"{kernel}: slope {slope:.2f}"
        if kernel in THEORY_SLOPES:
            label += f" (theory {THEORY_SLOPES[kernel]:.2f})"
        (line,) = ax.plot(dims, np.where(values > 0, values, np.nan), "o-", label=label)
        # Hollow markers: fewer than MIN_RELIABLE_ESS effective draws, the ESS itself is rough.
        min_ess = np.array([min(r["min_ess_bulk_x"], r["min_ess_bulk_x2"]) for r in rows])
        rough = (min_ess < MIN_RELIABLE_ESS) & (values > 0)
        ax.plot(dims[rough], values[rough], "o", mfc="white", color=line.get_color())
        if np.isfinite(slope):
            ax.plot(dims, np.exp(intercept) * dims**slope, ":", color=line.get_color(), lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("dimension D")
    what = "min ESS" if metric == "ess_per_eval" else "median ESS of x"
    ax.set_ylabel(f"{what} per gradient (per potential for RW)")
    ax.set_title(
        "Cost of an effective draw against dimension (diagonal Gaussian)\n"
        f"hollow: smallest ESS below {MIN_RELIABLE_ESS}; dotted: fitted power law",
        fontsize="medium",
    )
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def plot_acceptance(table: list[dict], path: str | Path) -> Path:
    """Acceptance rate against :math:`D`: adapted kernels hold their targets."""
    fig, ax = _subplots(figsize=(6.5, 4))
    for kernel in dict.fromkeys(row["kernel"] for row in table):
        rows = [r for r in table if r["kernel"] == kernel]
        ax.plot([r["dim"] for r in rows], [r["acceptance_rate"] for r in rows], "o-", label=kernel)
    for level, text in ((0.234, "RW 0.234"), (0.574, "MALA 0.574"), (0.65, "HMC 0.65")):
        ax.axhline(level, color="grey", lw=0.6, ls="--")
        ax.text(
            0.99,
            level,
            text,
            transform=ax.get_yaxis_transform(),  # x in axes fraction, y in data
            fontsize="x-small",
            ha="right",
            va="bottom",
            color="grey",
        )
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("dimension D")
    ax.set_ylabel("acceptance rate")
    ax.set_title("Acceptance against dimension (adapted step sizes)")
    ax.legend(fontsize="small", loc="center left")
    fig.tight_layout()
    return _save(fig, path)
