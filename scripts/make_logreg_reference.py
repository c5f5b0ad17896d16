"""Make the stored truth of the logistic-regression target: data plus a long NUTS reference run.

Run from the repository root (about five minutes on two cores)::

    python scripts/make_logreg_reference.py

It writes ``pyro_simplehmc/data/logreg_reference.json``: the simulated data (so that the truth
always matches them), the posterior mean, marginal variances and covariance from Pyro's NUTS, and
their Monte-Carlo standard errors (arviz), with the settings that produced them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import arviz as az
import numpy as np
import pyro
import torch
from pyro.infer import MCMC, NUTS

from pyro_simplehmc.checks.targets import (
    LOGREG_REFERENCE,
    logistic_regression_model,
    simulate_logistic_data,
)

OUT = Path(__file__).resolve().parent.parent / "pyro_simplehmc" / "data" / LOGREG_REFERENCE


def main() -> None:
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--warmup-steps", type=int, default=1_000)
    parser.add_argument("--num-chains", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    data_seed, num_data, dim, prior_scale = 0, 100, 5, 1.0
    features, labels, true_beta = simulate_logistic_data(num_data, dim, seed=data_seed)
    _, potential_fn = logistic_regression_model(features, labels, prior_scale)

    chains = []
    for chain in range(args.num_chains):
        # One MCMC per chain with its own seed: reproducible, and every chain adapts afresh.
        pyro.set_rng_seed(args.seed + chain)
        kernel = NUTS(potential_fn=potential_fn, target_accept_prob=0.9)
        mcmc = MCMC(
            kernel,
            num_samples=args.num_samples,
            warmup_steps=args.warmup_steps,
            initial_params={"x": 0.1 * torch.randn(dim, dtype=torch.float64)},
            disable_progbar=False,
        )
        mcmc.run()
        chains.append(mcmc.get_samples()["x"].numpy())
    draws = np.stack(chains)  # (chains, draws, D)

    flat = draws.reshape(-1, dim)
    mean = flat.mean(0)
    centred_squares = (draws - mean) ** 2
    dataset = az.convert_to_dataset({"x": draws})
    squares = az.convert_to_dataset({"x": centred_squares})
    reference = {
        "mean": mean.tolist(),
        "var": flat.var(0, ddof=1).tolist(),
        "cov": np.cov(flat, rowvar=False).tolist(),
        "mean_se": az.mcse(dataset)["x"].values.tolist(),
        "var_se": az.mcse(squares)["x"].values.tolist(),
        "ess_bulk": az.ess(dataset, method="bulk")["x"].values.tolist(),
        "ess_tail": az.ess(dataset, method="tail")["x"].values.tolist(),
        "r_hat": az.rhat(dataset)["x"].values.tolist(),
    }
    out = {
        "description": "Logistic regression on simulated data: the data and a NUTS reference",
        "made_by": "scripts/make_logreg_reference.py",
        "settings": {
            "sampler": "pyro.infer.NUTS(target_accept_prob=0.9)",
            "num_chains": args.num_chains,
            "num_samples": args.num_samples,
            "warmup_steps": args.warmup_steps,
            "seed": args.seed,
            "pyro_version": pyro.__version__,
            "torch_version": torch.__version__,
        },
        "prior_scale": prior_scale,
        "data": {
            "seed": data_seed,
            "true_beta": true_beta.tolist(),
            "features": features.tolist(),
            "labels": labels.tolist(),
        },
        "reference": reference,
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    for key in ("mean", "var", "mean_se", "ess_bulk", "r_hat"):
        print(key, np.round(reference[key], 4))


if __name__ == "__main__":
    main()
