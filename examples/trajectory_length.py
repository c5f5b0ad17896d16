"""How long should a trajectory be? Resonance of fixed lengths, and ChEES.

Two experiments, each with a batch of chains (``pyro_simplehmc.MCMC(chain_method="vectorized")``):

1. **Resonance.** On a whitened 20-D Gaussian (unit variances, identity mass matrix, step size
   0.3, no adaptation), the smallest ESS per draw over the coordinates and their squares, against
   the mean trajectory length :math:`T = \\epsilon L`: a fixed ``L`` (``num_steps_jitter=0``)
   against ``L`` drawn uniformly from 1 to ``2L`` (the default).
2. **ChEES.** ``SimpleHMC(adapt_trajectory_length=True)`` on three targets; the adapted length
   :math:`T` over the warmup iterations.

Run ``python examples/trajectory_length.py [--quick] [--out DIR] [--seed S]``; writes
``trajectory_length.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import arviz as az
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pyro
import torch

from pyro_simplehmc import MCMC, SimpleHMC

torch.set_num_threads(1)


def diagonal(variances):
    def potential(params):
        return 0.5 * (params["x"] ** 2 / variances).sum(-1)

    return potential


def correlated(rho):
    precision = torch.linalg.inv(torch.tensor([[1.0, rho], [rho, 1.0]], dtype=torch.float64))

    def potential(params):
        x = params["x"]
        return 0.5 * (x @ precision * x).sum(-1)

    return potential


def run(kernel, dim, chains, samples, warmup, seed, scale=None):
    pyro.set_rng_seed(seed)
    start = torch.randn(chains, dim, dtype=torch.float64)
    if scale is not None:
        start = start * scale
    mcmc = MCMC(kernel, num_samples=samples, warmup_steps=warmup, num_chains=chains,
                initial_params={"x": start}, chain_method="vectorized", disable_progbar=True)
    mcmc.run()
    return mcmc


def worst_ess(x: torch.Tensor) -> float:
    """The smallest bulk ESS over the coordinates and their squares, draws (chains, draws, D)."""
    values = x.numpy()
    ess = [az.ess(az.convert_to_dataset({"v": v}))["v"].values.min() for v in (values, values**2)]
    return float(min(ess))


def resonance(args) -> dict[str, list]:
    dim, step = 20, 0.3
    steps = [1, 2, 3, 5, 7, 9, 10, 11, 13, 15, 17, 19, 21, 23] if not args.quick else [2, 10, 21]
    curves = {"fixed": [], "random": []}
    for num_steps in steps:
        for name, jitter in (("fixed", 0.0), ("random", 1.0)):
            kernel = SimpleHMC(potential_fn=diagonal(torch.ones(dim, dtype=torch.float64)),
                               batched_potential=True, step_size=step, num_steps=num_steps,
                               num_steps_jitter=jitter, adapt_step_size=False,
                               adapt_mass_matrix=False)
            mcmc = run(kernel, dim, args.chains, args.samples, 0, args.seed)
            per_draw = worst_ess(mcmc.get_samples(group_by_chain=True)["x"])
            per_draw /= args.chains * args.samples
            curves[name].append((step * num_steps, per_draw))
            print(f"T = {step * num_steps:4.1f} {name:6s} smallest ESS per draw {per_draw:.3f}")
    return curves


def chees_histories(args) -> dict[str, list[float]]:
    targets = {
        "100-D, variances 0.1 to 1": (diagonal(torch.linspace(0.1, 1.0, 100,
                                                           dtype=torch.float64)), 100, None),
        "2-D, correlation 0.95": (correlated(0.95), 2, None),
        "20-D, scales 0.1 to 10": (diagonal(torch.logspace(-2, 2, 20, dtype=torch.float64)), 20,
                                   torch.logspace(-1, 1, 20, dtype=torch.float64)),
    }
    histories = {}
    for label, (potential, dim, scale) in targets.items():
        kernel = SimpleHMC(potential_fn=potential, batched_potential=True,
                           adapt_trajectory_length=True)
        mcmc = run(kernel, dim, args.chains * 2, args.samples, args.warmup, args.seed, scale)
        gradients = args.chains * 2 * mcmc.kernel_diagnostics[0]["gradient evaluations"]["sampling"]
        per_gradient = worst_ess(mcmc.get_samples(group_by_chain=True)["x"]) / gradients
        histories[label] = kernel.chees.history
        print(f"ChEES on {label}: T = {kernel.adapted_trajectory_length:.2f}, "
              f"step size {kernel.step_size:.3f}, smallest ESS per gradient {per_gradient:.3f}")
    return histories


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer lengths and draws")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.chains, args.samples, args.warmup = (8, 300, 500) if not args.quick else (4, 60, 100)
    args.out.mkdir(parents=True, exist_ok=True)

    curves = resonance(args)
    histories = chees_histories(args)

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, style in (("fixed", "o-"), ("random", "s-")):
        t, ess = zip(*curves[name], strict=True)
        label = "fixed L" if name == "fixed" else "L uniform on 1..2L (default)"
        left.plot(t, ess, style, label=label, markersize=4)
    for k in (1, 2):
        left.axvline(k * np.pi, color="grey", lw=0.8, ls=":")
    left.set_xlabel(r"mean trajectory length $T = \epsilon L$ (dotted: $\pi$, $2\pi$)")
    left.set_ylabel("smallest ESS per draw\n(coordinates and squares)")
    left.set_yscale("log")
    left.set_title("A fixed length resonates; a random one does not")
    left.legend(fontsize=8)
    for label, history in histories.items():
        right.plot(np.arange(1, len(history) + 1), history, label=label)
    right.set_xlabel("warmup iteration")
    right.set_ylabel("trajectory length T")
    right.set_yscale("log")
    right.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    right.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    right.set_title("ChEES: T learned from the chains")
    right.legend(fontsize=8)
    fig.tight_layout()
    path = args.out / "trajectory_length.png"
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
