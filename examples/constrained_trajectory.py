"""Leapfrog trajectories of a Pyro model with a positive site, in both coordinate systems.

The model has a location ``mu`` and a scale ``sigma > 0``. Pyro (and so every kernel here) moves
in the unconstrained space ``(mu, log sigma)``, where the potential energy includes the
log-Jacobian of ``sigma = exp(z)``. :func:`pyro_simplehmc.teaching.record_model_trajectory`
records the trajectory there, and ``trajectory.sites("constrained")`` maps the same path back to
``(mu, sigma)``. Straight-ish leapfrog segments in one space are curves in the other, and the
contours differ by the Jacobian.

Run ``python examples/constrained_trajectory.py [--quick] [--out DIR] [--seed S]``; writes
``constrained_trajectory.png``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pyro
import pyro.distributions as dist
import torch

from pyro_simplehmc.teaching import mass_levels, record_model_trajectory

DATA = torch.tensor([1.9, 3.4, 2.2, 2.9, 4.1, 2.6])


def model(y: torch.Tensor) -> None:
    mu = pyro.sample("mu", dist.Normal(0.0, 10.0))
    sigma = pyro.sample("sigma", dist.HalfCauchy(2.5))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(mu, sigma), obs=y)


def log_density(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The model's log posterior density in (mu, sigma), vectorised over a grid for contours."""
    likelihood = dist.Normal(mu[..., None], sigma[..., None]).log_prob(DATA).sum(-1)
    return dist.Normal(0.0, 10.0).log_prob(mu) + dist.HalfCauchy(2.5).log_prob(sigma) + likelihood


def contour(ax, x, y, logp, weights=None) -> None:
    """Contours of the regions holding 50%, 90% and 99% of the posterior, labelled so.

    The grid is uniform in (mu, log sigma); in (mu, sigma) its cells have areas proportional to
    sigma, which ``weights`` passes on so that the masses are those of the plotted density.
    """
    density = torch.exp(logp - logp.max())
    levels = mass_levels(density, (0.5, 0.9, 0.99), weights=weights)
    lines = ax.contour(x, y, density, levels=list(levels), colors="grey", linewidths=0.8)
    ax.clabel(lines, fmt={level: f"{mass:.0%}" for level, mass in levels.items()}, fontsize=7)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="(same run: it takes a second)")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="figure folder")
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args(argv)

    pyro.set_rng_seed(args.seed)
    start = {"mu": torch.tensor(2.4), "sigma": torch.tensor(0.5)}
    paths = [
        record_model_trajectory(model, (DATA,), step_size=0.04, num_steps=25, position=start)
        for _ in range(3)
    ]

    # The grid reaches down to sigma = 0.01, where the constraint sigma > 0 shapes the density:
    # a wall in (mu, sigma), a smooth tail in (mu, log sigma).
    mu = torch.linspace(0.0, 5.0, 200)
    log_sigma = torch.linspace(math.log(0.01), math.log(8.0), 300)
    m, z = torch.meshgrid(mu, log_sigma, indexing="xy")
    logp_constrained = log_density(m, z.exp())
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3))
    # Unconstrained: the density of z = log(sigma) carries the Jacobian |d sigma / d z| = sigma.
    contour(axes[0], m, z, logp_constrained + z)
    contour(axes[1], m, z.exp(), logp_constrained, weights=z.exp())
    for i, path in enumerate(paths):
        free, bounded = path.sites("unconstrained"), path.sites("constrained")
        label = f"momentum {i + 1}: energy error {float(path.energy_error[-1]):+.3f}"
        axes[0].plot(free["mu"], free["sigma"], ".-", ms=3, label=label)
        axes[1].plot(bounded["mu"], bounded["sigma"], ".-", ms=3)
    for ax in axes:
        ax.plot(2.4, 0.5 if ax is axes[1] else math.log(0.5), "ko", ms=6)
    axes[0].set(
        xlabel=r"$\mu$", ylabel=r"$\log\sigma$", title="unconstrained space (where HMC moves)"
    )
    axes[1].set(xlabel=r"$\mu$", ylabel=r"$\sigma$", title="constrained space (the model's)")
    axes[0].set(xlim=(0.0, 5.0), ylim=(math.log(0.1), math.log(8.0)))
    axes[1].set(xlim=(0.0, 5.0), ylim=(0.0, 4.0))
    axes[1].axhline(0.0, color="black", lw=1.5)
    axes[1].annotate("constraint: σ > 0", (0.2, 0.08), fontsize=8)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "constrained_trajectory.png", dpi=80)
    plt.close(fig)
    errors = {f"path {i + 1}": float(p.energy_error[-1]) for i, p in enumerate(paths)}
    print("energy error at the end of each trajectory:", errors)
    return errors


if __name__ == "__main__":
    main()
