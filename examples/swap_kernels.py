"""One Pyro model, four kernels: swap NUTS for this package's kernels and compare the summaries.

The model is the non-centred eight-schools model (Rubin, 1981; as in posteriordb's
``eight_schools_noncentered``). The same ``pyro.infer.MCMC`` call runs it with
:class:`~pyro_simplehmc.RandomWalkMH`, :class:`~pyro_simplehmc.MALA`,
:class:`~pyro_simplehmc.SimpleHMC` and Pyro's own :class:`~pyro.infer.NUTS`; only the kernel
changes. arviz (0.x or 1.x) summarises each run, and the summaries are printed side by side with
the cost of each run: gradient evaluations (potential evaluations for the random walk), warmup
included.

The cost comes from where it is counted, never from a counter in the model: with several chains
Pyro may run each in its own worker process, where a global counter would not be seen. This
package's kernels count their own evaluations and report them per chain in
``mcmc.diagnostics()``; Pyro's NUTS does not, so it runs, as in the comparison runner
(:mod:`pyro_simplehmc.compare.runner`), on the model's potential wrapped in a
:class:`~pyro_simplehmc.compare.runner.CountingPotential`, one chain per ``MCMC`` run.

Run ``python examples/swap_kernels.py [--quick] [--out DIR] [--seed S]``; writes
``swap_kernels.png`` (a forest plot of the four posteriors).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import arviz as az
import matplotlib.pyplot as plt
import pandas as pd
import pyro
import pyro.distributions as dist
import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.mcmc.util import initialize_model

from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC
from pyro_simplehmc.compare.runner import CountingPotential
from pyro_simplehmc.mcmc.arviz_compat import (  # the same results on arviz 0.x and 1.x
    plot_forest,
    posterior_from_dict,
)

Y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


def eight_schools(y: torch.Tensor, sigma: torch.Tensor) -> None:
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("schools", len(y)):
        theta_trans = pyro.sample("theta_trans", dist.Normal(0.0, 1.0))
        theta = pyro.deterministic("theta", mu + tau * theta_trans)
        pyro.sample("y", dist.Normal(theta, sigma), obs=y)


KERNELS = {
    "RandomWalkMH": lambda: RandomWalkMH(eight_schools),
    "MALA": lambda: MALA(eight_schools),
    "SimpleHMC": lambda: SimpleHMC(eight_schools, num_steps=10, num_steps_jitter=0.5),
}


def counted_evaluations(mcmc: MCMC, uses_gradient: bool) -> int:
    """All chains' gradient (or potential) evaluations, warmup included, from the kernels' own
    counters, which ``MCMC.diagnostics()`` collects from every chain, worker processes included."""
    key = "gradient evaluations" if uses_gradient else "potential evaluations"
    per_chain = mcmc.diagnostics()[key]
    return sum(chain["warmup"] + chain["sampling"] for chain in per_chain.values())


def run_ours(name: str, num_chains: int, warmup: int, num_samples: int):
    kernel = KERNELS[name]()
    mcmc = MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=warmup,
        num_chains=num_chains,
        disable_progbar=True,
    )
    mcmc.run(Y, SIGMA)
    samples = mcmc.get_samples(group_by_chain=True)
    return samples, counted_evaluations(mcmc, kernel.uses_gradient)


def run_nuts(num_chains: int, warmup: int, num_samples: int):
    """Pyro's NUTS on the model's potential, counted by a wrapper, one chain per run."""
    chains, gradients = [], 0
    for _ in range(num_chains):
        init, potential_fn, transforms, _ = initialize_model(eight_schools, model_args=(Y, SIGMA))
        counter = CountingPotential(potential_fn)
        mcmc = MCMC(
            NUTS(potential_fn=counter),
            num_samples=num_samples,
            warmup_steps=warmup,
            initial_params=init,
            transforms=transforms,
            disable_progbar=True,
        )
        mcmc.run()
        chains.append(mcmc.get_samples())
        gradients += counter.gradients
    samples = {k: torch.stack([chain[k] for chain in chains]) for k in chains[0]}
    return samples, gradients


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 chain of 60 + 60 iterations")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="figure folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    num_chains, warmup, num_samples = (1, 60, 60) if args.quick else (2, 1000, 1000)

    rows, posteriors = [], {}
    for name in [*KERNELS, "NUTS"]:
        pyro.set_rng_seed(args.seed)
        if name == "NUTS":
            samples, evaluations = run_nuts(num_chains, warmup, num_samples)
        else:
            samples, evaluations = run_ours(name, num_chains, warmup, num_samples)
        draws = {k: v.numpy() for k, v in samples.items()}
        # theta is derived (a deterministic site, which get_samples does not return).
        draws["theta"] = draws["mu"][..., None] + draws["tau"][..., None] * draws["theta_trans"]
        posterior = posterior_from_dict(draws)
        posteriors[name] = posterior
        summary = az.summary(
            posterior, var_names=["mu", "tau", "theta"], kind="all", round_to="none"
        )
        for param in ["mu", "tau", "theta[0]"]:
            row = summary.loc[param]
            rows.append(
                {
                    "kernel": name,
                    "param": param,
                    "mean": row["mean"],
                    "sd": row["sd"],
                    "ess_bulk": row["ess_bulk"],
                    "r_hat": row["r_hat"],
                    "ess/1000 evals": 1000 * row["ess_bulk"] / evaluations,
                }
            )
        unit = "potential" if name == "RandomWalkMH" else "gradient"
        print(f"{name}: {evaluations} {unit} evaluations (warmup and sampling, all chains)")

    table = (
        pd.DataFrame(rows).set_index(["param", "kernel"]).sort_index(level=0, sort_remaining=False)
    )
    with pd.option_context("display.width", 120, "display.precision", 2):
        print(table)

    fig = plot_forest(posteriors, var_names=["mu", "tau", "theta"], prob=0.94, figsize=(8, 7))
    # One title: arviz may title its axes with the interval; the figure's title says it all.
    for ax in fig.axes:
        ax.set_title("")
    fig.suptitle(
        "eight schools, 94% HDI from each kernel; theta = mu + tau * theta_trans (derived)",
        fontsize=10,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "swap_kernels.png", dpi=80)
    plt.close(fig)
    return table


if __name__ == "__main__":
    main()
