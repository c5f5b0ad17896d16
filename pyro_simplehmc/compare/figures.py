"""Figures of a comparison and of a scaling run, drawn with matplotlib's Agg backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, and safe in CI

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..targets import Target
from .runner import MIN_RELIABLE_ESS, Comparison


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return (n + cols - 1) // cols, cols


def plot_traces(comparison: Comparison, path: str | Path, coords: int = 2) -> Path:
    """Trace plots: one panel per kernel, the first ``coords`` coordinates of chain 0."""
    names = list(comparison.draws)
    rows, cols = _grid(len(names))
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        draws = comparison.draws[name][0]
        for i in range(min(coords, draws.shape[1])):
            ax.plot(draws[:, i], lw=0.6, label=f"x[{i}]")
        result = comparison[name]
        ax.set_title(f"{name}  ({result.status_truth}, accept {result.acceptance_rate:.2f})")
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
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.8 * rows), squeeze=False)
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
    """Bar chart of the smallest bulk ESS per evaluation, failing kernels hatched."""
    results = comparison.results
    fig, ax = plt.subplots(figsize=(1.2 * len(results) + 2, 3.5))
    values = [r.ess_per_eval for r in results]
    bars = ax.bar([r.name for r in results], values)
    for bar, r in zip(bars, results, strict=True):
        if r.status_truth == "FAIL":
            bar.set_hatch("//")
            bar.set_facecolor("tab:red")
    ax.set_ylabel("min ESS per gradient\n(per potential for random walks)")
    ax.set_title(f"Cost of an effective draw on {comparison.target}")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return _save(fig, path)


#: The slope of log(ESS per evaluation) against log(D) that optimal-scaling theory predicts.
THEORY_SLOPES: dict[str, float] = {"RandomWalkMH": -1.0, "MALA": -1.0 / 3.0, "SimpleHMC": -0.25}


def plot_scaling(table: list[dict], path: str | Path, metric: str = "ess_per_eval") -> Path:
    """ESS per evaluation against :math:`D` on log-log axes, fitted slope beside the theory.

    :param table: rows with keys ``kernel``, ``dim``, ``metric`` (from :mod:`.scaling`).
    """
    from .scaling import fit_slope

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
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
    fig, ax = plt.subplots(figsize=(6.5, 4))
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


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
