"""HMC and random-walk Metropolis on a 2-D Gaussian with correlation 0.95, inside Pyro.

The chapter's demonstration, run with this package's kernels through :class:`pyro.infer.MCMC`
and with the chapter's fixed settings (no adaptation): HMC with step size 0.2 and 20 leapfrog
steps, random-walk Metropolis with proposal standard deviation 0.3, identity mass matrix,
2000 iterations of which the first 200 are discarded.

Run ``python examples/correlated_gaussian.py [--quick] [--out DIR] [--seed S]``; writes
``correlated_gaussian.png`` (one leapfrog trajectory over the contours, and HMC's draws) and
``hmc_vs_rw_traces.png`` (trace plots of both kernels).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import arviz as az
import matplotlib.pyplot as plt
import pyro
import torch
from pyro.infer import MCMC

from pyro_simplehmc import RandomWalkMH, SimpleHMC
from pyro_simplehmc.checks.targets import correlated_gaussian
from pyro_simplehmc.teaching import density_grid, mass_levels, record_model_trajectory

RHO = 0.95
#: The chapter's target from :mod:`pyro_simplehmc.checks.targets`: a Pyro model with one site
#: ``"x"``, and the same density as a potential on ``{"x": tensor}``.
TARGET = correlated_gaussian(RHO)


def run(kernel, num_samples: int, burn_in: int) -> tuple[torch.Tensor, dict]:
    """Run one chain from the origin; with adaptation off, warmup is plain burn-in."""
    mcmc = MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=burn_in,
        initial_params={"x": torch.zeros(2, dtype=torch.float64)},
        disable_progbar=True,
    )
    mcmc.run()
    diagnostics = {
        key: value["chain 0"]
        for key, value in mcmc.diagnostics().items()
        if isinstance(value, dict) and "chain 0" in value
    }
    return mcmc.get_samples()["x"], diagnostics


def ess(x: torch.Tensor) -> float:
    """Bulk effective sample size of one chain (arviz, rank-normalised)."""
    return float(az.ess(x.numpy()[None, :]))


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="250 iterations instead of 2000")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="figure folder")
    parser.add_argument("--seed", type=int, default=305)
    args = parser.parse_args(argv)
    iterations, burn_in = (250, 50) if args.quick else (2000, 200)
    num_samples = iterations - burn_in

    pyro.set_rng_seed(args.seed)
    # potential_fn instead of model: the same kernels and the same MCMC loop, but on this small
    # target the time goes into Pyro tracing the model, so the plain potential keeps the run
    # short. record_model_trajectory below uses the model itself.
    potential = TARGET.potential_fn
    fixed = {"adapt_step_size": False, "adapt_mass_matrix": False}
    hmc = SimpleHMC(
        potential_fn=potential, step_size=0.2, num_steps=20, num_steps_jitter=0, **fixed
    )
    rw = RandomWalkMH(potential_fn=potential, step_size=0.3, **fixed)
    # A random number of steps (here 10 to 30) breaks the periodicity of a fixed trajectory.
    jittered = SimpleHMC(
        potential_fn=potential, step_size=0.2, num_steps=20, num_steps_jitter=0.5, **fixed
    )
    samples = {
        "HMC": run(hmc, num_samples, burn_in),
        "RW-MH": run(rw, num_samples, burn_in),
        "HMC, L in [11, 30]": run(jittered, num_samples, burn_in),
    }

    # One trajectory from the chapter's demonstration point, with a seeded momentum.
    pyro.set_rng_seed(1)
    start = {"x": torch.tensor([-1.5, 1.0], dtype=torch.float64)}
    path = record_model_trajectory(TARGET.model, step_size=0.2, num_steps=20, position=start)
    q_path = path.sites()["x"]

    x, y, density = density_grid(lambda q: -TARGET.log_density(q), (-3, 3), (-3, 3))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    # Contours of the regions holding 50%, 90% and 99% of the probability, labelled so.
    levels = mass_levels(density, (0.5, 0.9, 0.99))
    for ax in axes:
        lines = ax.contour(x, y, density, levels=list(levels), colors="grey", linewidths=0.8)
        ax.clabel(lines, fmt={level: f"{mass:.0%}" for level, mass in levels.items()}, fontsize=7)
        ax.set(xlabel="$q_1$", ylabel="$q_2$", xlim=(-3, 3), ylim=(-3, 3))
        ax.set_aspect("equal")
    axes[0].plot(q_path[:, 0], q_path[:, 1], "o-", ms=3, color="tab:blue", label="leapfrog path")
    axes[0].plot(*q_path[0], "o", ms=8, color="tab:green", label="start")
    axes[0].plot(*q_path[-1], "s", ms=8, color="tab:red", label="proposal")
    axes[0].set_title(
        f"one trajectory: ε=0.2, L=20, energy error {float(path.energy_error[-1]):+.3f}"
    )
    axes[0].legend(loc="upper left", fontsize=8)
    hmc_q = samples["HMC"][0]
    axes[1].scatter(hmc_q[:, 0], hmc_q[:, 1], s=4, alpha=0.4)
    axes[1].set_title(f"SimpleHMC in pyro.infer.MCMC: {num_samples} draws")
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "correlated_gaussian.png", dpi=80)
    plt.close(fig)

    shown = min(500, num_samples)
    fig, axes = plt.subplots(2, 2, figsize=(10, 5), sharex=True, sharey=True)
    for col, name in enumerate(["HMC", "RW-MH"]):
        q = samples[name][0]
        for row in range(2):
            axes[row, col].plot(q[:shown, row], lw=0.8)
            axes[row, col].set_ylabel(f"$q_{row + 1}$")
        axes[0, col].set_title(f"{name}: first {shown} draws after burn-in")
        axes[1, col].set_xlabel("iteration")
    fig.tight_layout()
    fig.savefig(args.out / "hmc_vs_rw_traces.png", dpi=80)
    plt.close(fig)

    report = {}
    for name, (q, diagnostics) in samples.items():
        coords = {"q1": q[:, 0], "q2": q[:, 1], "q1^2": q[:, 0] ** 2, "q2^2": q[:, 1] ** 2}
        report[name] = {
            "acceptance": diagnostics["acceptance rate"],
            "ess_q1_pyro": float(pyro.ops.stats.effective_sample_size(q[None, :, 0])),
            **{f"ess_{k}": ess(v) for k, v in coords.items()},
        }
        ess_text = ", ".join(f"{k} {ess(v):.0f}" for k, v in coords.items())
        print(
            f"{name:>18}: acceptance {diagnostics['acceptance rate']:.2f}; ESS out of "
            f"{num_samples}: {ess_text} (Pyro's ESS of q1: {report[name]['ess_q1_pyro']:.0f})"
        )
    return report


if __name__ == "__main__":
    main()
