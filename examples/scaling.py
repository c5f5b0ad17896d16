"""Scaling with dimension: HMC, MALA and random-walk Metropolis on diagonal Gaussians.

The target in dimension ``D`` is a zero-mean Gaussian with independent coordinates whose variances
are evenly spaced from 0.1 to 1. Two experiments, both through :class:`pyro.infer.MCMC`:

1. **The chapter's setup** (no adaptation): HMC with step size :math:`0.8\\sqrt{0.1}` and 20
   leapfrog steps, random-walk Metropolis with proposal standard deviation :math:`\\sqrt{0.1}`,
   2000 iterations of which 500 are burn-in; the effective sample size (ESS) of :math:`q_1`.
2. **Adapted kernels, fair costs**: each kernel adapts its step size and a diagonal mass matrix
   during 500 warmup iterations, then draws 1500 (HMC with integration time 1.5, its step size
   jittered by up to 50% at each iteration); we report the *smallest* ESS over all
   coordinates and their squares, per 1000 evaluations of the potential (a gradient evaluation
   for HMC and MALA, a density evaluation for the random walk).

Run ``python examples/scaling.py [--quick] [--out DIR] [--seed S]``; writes ``scaling.png``.
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

from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC
from pyro_simplehmc.checks.targets import diagonal_gaussian


def run(kernel, dim: int, num_samples: int, warmup: int) -> tuple[np.ndarray, dict]:
    mcmc = MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=warmup,
        initial_params={"x": torch.zeros(dim, dtype=torch.float64)},
        disable_progbar=True,
    )
    mcmc.run()
    diagnostics = {
        key: value["chain 0"]
        for key, value in mcmc.diagnostics().items()
        if isinstance(value, dict) and "chain 0" in value
    }
    return mcmc.get_samples()["x"].numpy(), diagnostics


def ess_per_coordinate(draws: np.ndarray) -> np.ndarray:
    """arviz bulk ESS of each column of a single chain (NaN where the chain never moved)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return az.ess(az.convert_to_dataset({"x": draws[None, :, :]}))["x"].values


def lag1_autocorrelation(values: np.ndarray) -> float:
    centred = values - values.mean()
    return float(centred[1:] @ centred[:-1] / (centred @ centred))


#: Optimal-scaling theory: cost per independent draw grows like D^a, so ESS per evaluation
#: falls like D^-a (Roberts, Gelman & Gilks 1997; Roberts & Rosenthal 1998; Beskos et al. 2013).
THEORY_SLOPES = {"RandomWalkMH": -1.0, "MALA": -1 / 3, "SimpleHMC": -1 / 4}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="D in (2, 10), 300 iterations")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="figure folder")
    parser.add_argument("--seed", type=int, default=305)
    args = parser.parse_args(argv)
    dims = (2, 10) if args.quick else (2, 10, 50, 100)
    iterations, warmup = (300, 100) if args.quick else (2000, 500)
    num_samples = iterations - warmup

    pyro.set_rng_seed(args.seed)
    chapter: dict[str, list[float]] = {"HMC": [], "RW-MH": []}
    adapted: dict[str, list[float]] = {"RandomWalkMH": [], "MALA": [], "SimpleHMC": []}
    fixed = {"adapt_step_size": False, "adapt_mass_matrix": False}
    for dim in dims:
        # The chapter's target from pyro_simplehmc.checks.targets, as a potential on {"x": tensor}.
        potential = diagonal_gaussian(dim).potential_fn
        # 1. The chapter's fixed settings; the ESS of the narrowest coordinate q1.
        kernels = {
            "HMC": SimpleHMC(
                potential_fn=potential,
                step_size=0.8 * math.sqrt(0.1),
                num_steps=20,
                num_steps_jitter=0,  # the chapter's fixed L
                **fixed,
            ),
            "RW-MH": RandomWalkMH(potential_fn=potential, step_size=math.sqrt(0.1), **fixed),
        }
        for name, kernel in kernels.items():
            draws, diagnostics = run(kernel, dim, num_samples, warmup)
            # Pyro's estimator, as in the chapter: arviz caps ESS at N log10(N), which HMC's
            # antithetic q1 exceeds. A chain that never moved has no ESS (NaN), as Pyro says.
            q1 = torch.as_tensor(draws[None, :, 0])
            moved = bool(q1.std() > 0)
            ess = float(pyro.ops.stats.effective_sample_size(q1)) if moved else math.nan
            chapter[name].append(ess)
            # Lag-1 autocorrelations of q1 and q1^2: the antithetic draws of fixed-length HMC.
            lag1 = [lag1_autocorrelation(draws[:, 0] ** k) if moved else math.nan for k in (1, 2)]
            print(
                f"chapter  D={dim:3d} {name:>12}: acceptance {diagnostics['acceptance rate']:.2f}"
                f", ESS(q1) {ess:7.0f} of {num_samples}"
                f", lag-1 autocorrelation of q1 {lag1[0]:+.2f}, of q1^2 {lag1[1]:+.2f}"
            )
        # 2. Adapted kernels; the worst ESS over coordinates and squares, per evaluation.
        kernels = {
            "RandomWalkMH": RandomWalkMH(potential_fn=potential),
            "MALA": MALA(potential_fn=potential),
            # A fixed integration time, so that the number of steps grows as the adapted step
            # size shrinks with D (like D^(1/4) in theory). The adapted mass matrix makes the
            # target look like a unit Gaussian (period 2 pi), for which 1.5 is close to the
            # best time (see examples/tuning.py); the step-size jitter (+-50%) avoids resonance.
            "SimpleHMC": SimpleHMC(
                potential_fn=potential,
                trajectory_length=1.5,
                step_size_jitter=0.5,
                num_steps_jitter=0,  # the step-size jitter alone, as measured here
            ),
        }
        for name, kernel in kernels.items():
            draws, diagnostics = run(kernel, dim, num_samples, warmup)
            min_ess = float(np.nanmin(ess_per_coordinate(np.concatenate([draws, draws**2], 1))))
            evaluations = diagnostics["potential evaluations"]["sampling"]
            adapted[name].append(1000 * min_ess / evaluations)
            print(
                f"adapted  D={dim:3d} {name:>12}: acceptance {diagnostics['acceptance rate']:.2f}"
                f", step {diagnostics['step size']:.3f}, min ESS {min_ess:6.0f}"
                f", per 1000 evaluations {adapted[name][-1]:.2f}"
            )

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    # A chain that never moved has no ESS; it is drawn at ESS = 1 (the floor), marked with an x,
    # so that every run appears on the log axis.
    for name, values in chapter.items():
        axes[0].plot(dims, [1.0 if math.isnan(v) else v for v in values], "o-", label=name)
        stuck = [d for d, v in zip(dims, values, strict=True) if math.isnan(v)]
        if stuck:
            axes[0].plot(
                stuck,
                [1.0] * len(stuck),
                "x",
                color="black",
                markersize=10,
                label=f"{name} never moved (no ESS)",
            )
    axes[0].axhline(num_samples, color="grey", lw=0.8, ls=":", label="number of draws")
    axes[0].set(
        xlabel="dimension $D$",
        ylabel=f"ESS of $q_1$ (of {num_samples} draws)",
        title="the chapter's fixed settings",
        xscale="log",
        yscale="log",
    )
    for name, values in adapted.items():
        (line,) = axes[1].plot(dims, values, "o-", label=name)
        # The theory's slope, drawn through the first point.
        slope = THEORY_SLOPES[name]
        theory = [values[0] * (d / dims[0]) ** slope for d in dims]
        axes[1].plot(
            dims, theory, "--", color=line.get_color(), lw=1, label=f"theory, slope {slope:.2g}"
        )
    axes[1].set(
        xlabel="dimension $D$",
        ylabel="min ESS per 1000 evaluations",
        title="adapted kernels: worst coordinate or square, per cost",
        xscale="log",
        yscale="log",
    )
    for ax in axes:
        ax.set_xticks(dims, [str(d) for d in dims])
        ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "scaling.png", dpi=80)
    plt.close(fig)
    return {"dims": list(dims), "chapter": chapter, "adapted": adapted}


if __name__ == "__main__":
    main()
