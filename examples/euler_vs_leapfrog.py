"""Euler against leapfrog on the harmonic oscillator: phase-space paths and energy error.

The target is a standard normal, so :math:`U(q) = q^2/2` and, with unit mass, exact Hamiltonian
dynamics trace the circle of constant energy through the start ``(q, p) = (1, 0)``. The
trajectories come from :func:`pyro_simplehmc.teaching.record_trajectory`, which steps the same
integrator code the kernels use.

Run ``python examples/euler_vs_leapfrog.py [--quick] [--out DIR]``; writes
``euler_vs_leapfrog.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from pyro_simplehmc.teaching import (
    harmonic_oscillator,
    harmonic_oscillator_exact,
    record_trajectory,
)

TITLES = {
    "euler": "explicit Euler",
    "symplectic_euler": "symplectic Euler",
    "leapfrog": "leapfrog",
}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="(same run: it takes a second)")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="figure folder")
    parser.add_argument("--step-size", type=float, default=0.3)
    parser.add_argument("--num-steps", type=int, default=30)
    args = parser.parse_args(argv)

    q0, p0 = torch.tensor([1.0]), torch.tensor([0.0])
    paths = {
        name: record_trajectory(
            harmonic_oscillator,
            q0,
            p0,
            step_size=args.step_size,
            num_steps=args.num_steps,
            integrator=name,
        )
        for name in TITLES
    }
    circle_q, circle_p = harmonic_oscillator_exact(1.0, 0.0, torch.linspace(0, 2 * torch.pi, 200))

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    for ax, (name, path) in zip(axes, paths.items(), strict=False):
        ax.plot(circle_q, circle_p, "k--", lw=1, label="exact")
        ax.plot(path.positions[:, 0], path.momenta[:, 0], "o-", ms=3, lw=1, label="numerical")
        ax.set(xlabel="$q$", ylabel="$p$", title=f"{TITLES[name]}, ε={args.step_size}")
        ax.set_aspect("equal")
        ax.legend(loc="lower left", fontsize=8)
    for name, path in paths.items():
        axes[3].plot(path.times, path.energy_error, label=TITLES[name])
    axes[3].set(xlabel="time $t$", ylabel="$H(q_t,p_t) - H(q_0,p_0)$", title="energy error")
    axes[3].set_yscale("symlog", linthresh=1e-2)
    axes[3].legend(fontsize=8)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "euler_vs_leapfrog.png", dpi=80)
    plt.close(fig)

    errors = {name: float(path.energy_error[-1]) for name, path in paths.items()}
    for name, path in paths.items():
        print(
            f"{TITLES[name]:>17}: energy error at t={path.times[-1]:.1f}: "
            f"{errors[name]:+.4f}, largest |error| {path.max_abs_energy_error:.4f}"
        )
    return errors


if __name__ == "__main__":
    main()
