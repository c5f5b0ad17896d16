"""One Pyro model, four kernels: swap NUTS for this package's kernels and compare the summaries.

The model is the non-centred eight-schools model (Rubin, 1981; as in posteriordb's
``eight_schools_noncentered``). The same ``pyro.infer.MCMC`` call runs it with
:class:`~pyro_simplehmc.RandomWalkMH`, :class:`~pyro_simplehmc.MALA`,
:class:`~pyro_simplehmc.SimpleHMC` and Pyro's own :class:`~pyro.infer.NUTS`; only the kernel
changes. :func:`pyro_simplehmc.from_pyro` converts each run for arviz (0.x or 1.x), arviz
summarises it, and the summaries are printed side by side with the cost of each run in
evaluations of the model.

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

from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC, from_pyro
from pyro_simplehmc._arviz_compat import plot_forest  # the same figure on arviz 0.x and 1.x

Y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])

#: Every run of the model is one evaluation of the potential energy (with or without gradient):
#: counting them in the model itself measures all kernels, NUTS included, the same way.
MODEL_CALLS = {"count": 0}


def eight_schools(y: torch.Tensor, sigma: torch.Tensor) -> None:
    MODEL_CALLS["count"] += 1
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
    "NUTS": lambda: NUTS(eight_schools),
}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 chain of 60 + 60 iterations")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"), help="figure folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    num_chains, warmup, num_samples = (1, 60, 60) if args.quick else (2, 1000, 1000)

    rows, posteriors = [], {}
    for name, make_kernel in KERNELS.items():
        pyro.set_rng_seed(args.seed)
        MODEL_CALLS["count"] = 0
        mcmc = MCMC(
            make_kernel(),
            num_samples=num_samples,
            warmup_steps=warmup,
            num_chains=num_chains,
            disable_progbar=True,
        )
        mcmc.run(Y, SIGMA)
        evaluations = MODEL_CALLS["count"]  # before from_pyro, which replays the model once
        posterior = from_pyro(mcmc)
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
        print(f"{name}: {evaluations} model evaluations (warmup and sampling)")

    table = (
        pd.DataFrame(rows).set_index(["param", "kernel"]).sort_index(level=0, sort_remaining=False)
    )
    with pd.option_context("display.width", 120, "display.precision", 2):
        print(table)

    fig = plot_forest(posteriors, var_names=["mu", "tau", "theta"], prob=0.94, figsize=(8, 7))
    fig.suptitle("eight schools: 94% intervals from each kernel", fontsize=11)
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "swap_kernels.png", dpi=80)
    plt.close(fig)
    return table


if __name__ == "__main__":
    main()
