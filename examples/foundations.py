"""The foundations in four pictures: the typical set, ESS, MCSE and R-hat.

1. **Typical set**: the distance from the mode of draws from a D-dimensional standard normal, for
   D = 1, 10, 100: the mass moves away from the mode, to a shell of radius about sqrt(D).
2. **ESS**: the autocorrelation of a slow random-walk chain and of an HMC chain on a standard
   normal, with their effective sample sizes (arviz).
3. **MCSE**: the running estimate of the mean from the random-walk chain, with its band of two
   Monte-Carlo standard errors (arviz), around the true mean 0.
4. **R-hat**: two random-walk chains on a two-mode target, started in different modes (they never
   meet: R-hat far above 1), and two HMC chains on a standard normal (R-hat about 1).

Run ``python examples/foundations.py [--quick] [--out DIR] [--seed S]``; writes
``foundations.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pyro
import torch
from pyro.infer import MCMC

from pyro_simplehmc import RandomWalkMH, SimpleHMC

FIXED = {"adapt_step_size": False, "adapt_mass_matrix": False}


def standard_normal(params):
    return 0.5 * (params["x"] ** 2).sum()


def two_modes(params):
    """An equal mixture of N(-4, 1) and N(4, 1), as a potential."""
    x = params["x"]
    return -torch.logaddexp(-0.5 * (x - 4) ** 2, -0.5 * (x + 4) ** 2).sum()


def chain(kernel, num_samples: int, start: float) -> np.ndarray:
    mcmc = MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=0,
        initial_params={"x": torch.tensor([start], dtype=torch.float64)},
        disable_progbar=True,
    )
    mcmc.run()
    return mcmc.get_samples()["x"][:, 0].numpy()


def autocorrelation(values: np.ndarray, max_lag: int) -> np.ndarray:
    centred = values - values.mean()
    variance = centred @ centred
    return np.array([centred[k:] @ centred[: len(centred) - k] / variance for k in range(max_lag)])


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer draws")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="figure folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    num_samples = 300 if args.quick else 2000
    pyro.set_rng_seed(args.seed)
    numbers = {}

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))

    # 1. The typical set.
    ax = axes[0, 0]
    for dim in (1, 10, 100):
        radius = torch.randn(20_000, dim).norm(dim=1).numpy()
        ax.hist(radius, bins=80, density=True, histtype="step", label=f"D = {dim}")
        numbers[f"median radius, D={dim}"] = float(np.median(radius))
    ax.set(
        xlabel="distance from the mode, |q|",
        ylabel="density",
        title="typical set: where the draws of N(0, I) lie",
    )
    ax.legend(fontsize=8)

    # 2. ESS from the autocorrelation.
    slow = chain(RandomWalkMH(potential_fn=standard_normal, step_size=0.3, **FIXED), num_samples, 0)
    fast = chain(
        SimpleHMC(
            potential_fn=standard_normal, step_size=0.2, num_steps=8, num_steps_jitter=0, **FIXED
        ),
        num_samples,
        0,
    )
    ax = axes[0, 1]
    for name, draws in (("random walk, step 0.3", slow), ("HMC, time 1.6", fast)):
        ess = float(az.ess(draws[None, :]))
        numbers[f"ESS {name}"] = ess
        ax.plot(autocorrelation(draws, 60), label=f"{name}: ESS {ess:.0f} of {num_samples}")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set(xlabel="lag k", ylabel="autocorrelation ρ_k", title="ESS = N / (1 + 2 Σ ρ_k)")
    ax.legend(fontsize=8)

    # 3. MCSE: the running mean of the slow chain with two standard errors.
    ax = axes[1, 0]
    sizes = np.unique(np.linspace(50, num_samples, 40).astype(int))
    means = np.array([slow[:n].mean() for n in sizes])
    errors = np.array([float(az.mcse(slow[None, :n])) for n in sizes])
    ax.fill_between(sizes, means - 2 * errors, means + 2 * errors, alpha=0.3, label="± 2 MCSE")
    ax.plot(sizes, means, label="running mean of the random walk")
    ax.axhline(0, color="black", lw=0.8, ls="--", label="true mean")
    ax.set(xlabel="number of draws", ylabel="estimate of E[q]", title="MCSE = sd / sqrt(ESS)")
    ax.legend(fontsize=8)
    numbers["final mean"], numbers["final MCSE"] = float(means[-1]), float(errors[-1])

    # 4. R-hat: stuck chains against mixed ones.
    ax = axes[1, 1]
    stuck = np.stack(
        [
            chain(RandomWalkMH(potential_fn=two_modes, step_size=0.5, **FIXED), num_samples, s)
            for s in (-4.0, 4.0)
        ]
    )
    mixed = np.stack(
        [
            chain(
                SimpleHMC(
                    potential_fn=standard_normal,
                    step_size=0.2,
                    num_steps=8,
                    num_steps_jitter=0,
                    **FIXED,
                ),
                num_samples,
                s,
            )
            for s in (-2.0, 2.0)
        ]
    )
    numbers["R-hat stuck"] = float(az.rhat(stuck))
    numbers["R-hat mixed"] = float(az.rhat(mixed))
    for i in range(2):
        ax.plot(
            stuck[i],
            lw=0.6,
            color="tab:red",
            alpha=0.8,
            label=f"two-mode target: R-hat {numbers['R-hat stuck']:.2f}" if i == 0 else None,
        )
        ax.plot(
            mixed[i] + 10,
            lw=0.6,
            color="tab:blue",
            alpha=0.8,
            label=f"N(0, 1), shifted by 10: R-hat {numbers['R-hat mixed']:.2f}" if i == 0 else None,
        )
    ax.set(xlabel="iteration", ylabel="q", title="R-hat: do the chains agree?", ylim=(-8, 21))
    ax.legend(fontsize=8, loc="upper right")

    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "foundations.png", dpi=80)
    plt.close(fig)
    for key, value in numbers.items():
        print(f"{key}: {value:.3f}")
    return numbers


if __name__ == "__main__":
    main()
