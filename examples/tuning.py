"""Tuning SimpleHMC: step size, number of steps (and its jitter), and the mass matrix.

Three experiments on Gaussian targets, all through :class:`pyro.infer.MCMC`, each measured by the
*smallest* effective sample size (arviz bulk ESS) over all coordinates and their squares, per
gradient evaluation:

1. **Step size**: a 50-D Gaussian with a perfect (diagonal) mass matrix, a fixed integration time
   of 1.5, and step sizes from 0.15 to 1.2; no adaptation.
2. **Number of steps**: the same target at step size 0.3, with ``L`` fixed from 1 to 14 steps, and
   with ``L`` drawn uniformly around that value (``num_steps_jitter=0.9``).
3. **Mass matrix**: adapted step size and integration time 1.5 (jittered), with an identity, an
   adapted diagonal and an adapted dense mass matrix, on the 50-D diagonal Gaussian and on the 2-D
   Gaussian with correlation 0.95.

Run ``python examples/tuning.py [--quick] [--out DIR] [--seed S]``; writes ``tuning.png``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pyro
import torch
from pyro.infer import MCMC

from pyro_simplehmc import SimpleHMC
from pyro_simplehmc.checks.targets import correlated_gaussian, diagonal_gaussian


def run(kernel, target, num_samples: int, warmup: int) -> dict[str, float]:
    """Sample; return acceptance, the worst ESS over coordinates and squares, and its cost.

    The chain starts from an exact draw of the (Gaussian) target, so that runs without warmup
    are in equilibrium from the first iteration. Starting at the mode instead is the worst case
    for leapfrog: every coordinate's energy error is then positive, and with a large step the
    chain may never leave.
    """
    start = target.mean + target.var.sqrt() * torch.randn(target.dim, dtype=target.mean.dtype)
    mcmc = MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=warmup,
        initial_params={"x": start},
        disable_progbar=True,
    )
    mcmc.run()
    draws = mcmc.get_samples()["x"].numpy()
    both = np.concatenate([draws, draws**2], axis=1)[None]
    moved = bool(np.ptp(draws, axis=0).min() > 0)
    ess = az.ess(az.convert_to_dataset({"x": both}))["x"].values if moved else np.array([np.nan])
    diagnostics = mcmc.diagnostics()
    gradients = diagnostics["gradient evaluations"]["chain 0"]["sampling"]
    return {
        "acceptance": diagnostics["acceptance rate"]["chain 0"],
        "min_ess": float(np.min(ess)),
        "per_1000_gradients": 1000 * float(np.min(ess)) / gradients,
        "step_size": diagnostics["step size"]["chain 0"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="D=10, fewer settings and draws")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="figure folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    dim = 10 if args.quick else 50
    num_samples, warmup = (100, 60) if args.quick else (1000, 500)
    step_sizes = [0.3, 0.9] if args.quick else [0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05, 1.2]
    steps = [3, 10] if args.quick else list(range(1, 15))

    pyro.set_rng_seed(args.seed)
    target = diagonal_gaussian(dim)  # variances evenly spaced from 0.1 to 1
    correlated = correlated_gaussian(0.95)
    variances, diagonal = target.var, target.potential_fn
    fixed = {"adapt_step_size": False, "adapt_mass_matrix": False}

    # 1. Step size, at a fixed integration time and a perfect mass matrix.
    sweep = []
    for eps in step_sizes:
        kernel = SimpleHMC(
            potential_fn=diagonal,
            step_size=eps,
            trajectory_length=1.5,
            num_steps_jitter=0,  # exactly ceil(T / eps) steps
            inverse_mass_matrix=variances,
            **fixed,
        )
        sweep.append(run(kernel, target, num_samples, 0))
        # The kernel takes ceil(T / eps) steps, so the time actually integrated is
        # eps * ceil(T / eps) >= T; leapfrog turns each whitened coordinate by
        # arccos(1 - eps^2 / 2) per step (not by eps), which is what resonance depends on.
        num_steps = math.ceil(1.5 / eps)
        turn = num_steps * math.acos(1 - eps**2 / 2)
        print(
            f"step size {eps:.2f}: {num_steps} steps, time {eps * num_steps:.2f}, "
            f"leapfrog rotation {turn:.2f} rad, acceptance {sweep[-1]['acceptance']:.2f}, "
            f"min ESS per 1000 gradients {sweep[-1]['per_1000_gradients']:.1f}"
        )

    # 2. Number of steps, fixed or jittered, at step size 0.3.
    by_steps: dict[str, list[float]] = {"fixed L": [], "L jittered by 90%": []}
    for num_steps in steps:
        for label, jitter in (("fixed L", 0.0), ("L jittered by 90%", 0.9)):
            kernel = SimpleHMC(
                potential_fn=diagonal,
                step_size=0.3,
                num_steps=num_steps,
                num_steps_jitter=jitter,
                inverse_mass_matrix=variances,
                **fixed,
            )
            by_steps[label].append(run(kernel, target, num_samples, 0)["per_1000_gradients"])
        print(
            f"L={num_steps:2d} (time {0.3 * num_steps:.1f}): min ESS per 1000 gradients "
            + ", ".join(f"{k} {v[-1]:.1f}" for k, v in by_steps.items())
        )

    # 3. The mass matrix, with the step size adapted. The integration time is the same for all
    # (1.5, jittered by up to 50% against resonance), so a better metric shows up as a larger
    # step size, hence fewer gradients per trajectory, and as better mixing of the wide
    # directions.
    mass = {}
    for name, problem in ((f"{dim}-D diagonal", target), ("2-D, rho=0.95", correlated)):
        for label, options in (
            ("identity", {"adapt_mass_matrix": False}),
            ("diagonal", {}),
            ("dense", {"full_mass": True}),
        ):
            kernel = SimpleHMC(
                potential_fn=problem.potential_fn,
                trajectory_length=1.5,
                step_size_jitter=0.5,
                num_steps_jitter=0,  # the step-size jitter alone, as measured here
                **options,
            )
            result = mass[(name, label)] = run(kernel, problem, num_samples, warmup)
            print(
                f"{name:>14}, {label:>8} mass: step {result['step_size']:.3f}, "
                f"min ESS per 1000 gradients {result['per_1000_gradients']:.1f}"
            )

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    ax.plot(step_sizes, [r["per_1000_gradients"] for r in sweep], "o-", label="min ESS / 1000 grad")
    ax.set(xlabel="step size ε", ylabel="min ESS per 1000 gradients", title=f"step size (D={dim})")
    twin = ax.twinx()
    twin.plot(step_sizes, [r["acceptance"] for r in sweep], "s--", color="tab:red")
    twin.set_ylabel("acceptance rate", color="tab:red")
    twin.set_ylim(0, 1.05)
    times = [0.3 * n for n in steps]
    for label, values in by_steps.items():
        axes[1].plot(times, values, "o-", label=label)
    for k in (1, 2, 3):
        axes[1].axvline(k * math.pi / 2, color="grey", lw=0.6, ls=":")
    axes[1].set(
        xlabel="integration time εL (dotted: multiples of π/2)",
        ylabel="min ESS per 1000 gradients",
        title="number of steps, ε = 0.3",
    )
    axes[1].legend(fontsize=8)
    labels = [f"{name}, {label}" for name, label in mass]
    colors = ["tab:blue" if name == f"{dim}-D diagonal" else "tab:orange" for name, _ in mass]
    axes[2].barh(range(len(mass)), [r["per_1000_gradients"] for r in mass.values()], color=colors)
    axes[2].set_yticks(range(len(mass)), labels, fontsize=8)
    axes[2].invert_yaxis()
    # A linear axis from 0, so that bar lengths compare as the numbers do.
    for row, result in enumerate(mass.values()):
        value = result["per_1000_gradients"]
        axes[2].annotate(
            f"{value:.0f}",
            (value, row),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    axes[2].set(xlabel="min ESS per 1000 gradients", title="mass matrix (adapted)")
    axes[2].set_xlim(0, 1.15 * max(r["per_1000_gradients"] for r in mass.values()))
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "tuning.png", dpi=80)
    plt.close(fig)
    return {"step_size": sweep, "num_steps": by_steps, "mass": mass}


if __name__ == "__main__":
    main()
