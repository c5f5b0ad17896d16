r"""The three ``mass_estimator`` choices side by side: ESS per gradient after the same warmup.

Run from the repository root::

    python benchmarks/mass_estimators.py                 # 16 chains, 500 warmup + 1,000 draws
    python benchmarks/mass_estimators.py --kernels MAMS --chains 64

Targets (all Gaussians, so the truth is known and every run's moments are checked):

- ``diagonal-100``: 100-D, independent, variances log-spaced from 1 to 1/100;
- ``scaled-correlated-20``: 20-D, a random rotation of log-spaced eigenvalues (condition number
  100), then coordinates scaled by standard deviations log-spaced from 0.1 to 10;
- ``pair-0.99``: 10-D, unit variances, one pair with correlation 0.99.

For each kernel (vectorized, ``chain_adaptation="pooled"`` so that each estimator sees every
chain's draws) and estimator it prints the smallest bulk ESS over the coordinates and their
squares per 1000 gradients per chain (sampling only), the ratio to ``"stan"``, and the largest
MCSE z-score of means and variances (a wrong answer would show there, not in the ESS).
"""

from __future__ import annotations

import argparse
import json
import math

import pyro
import torch

from pyro_simplehmc import MALA, MAMS, MCMC, SimpleHMC
from pyro_simplehmc.checks.statistics import ess
from pyro_simplehmc.checks.testing import mcse_z_test

DTYPE = torch.float64


def targets() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = {"diagonal-100": torch.diag(torch.logspace(0, -2, 100, dtype=DTYPE))}
    q, r = torch.linalg.qr(torch.randn(20, 20, generator=g, dtype=DTYPE))
    q = q * torch.sign(torch.diagonal(r))
    sd = torch.logspace(-1, 1, 20, dtype=DTYPE)
    out["scaled-correlated-20"] = sd[:, None] * ((q * torch.logspace(0, -2, 20, dtype=DTYPE))
                                                 @ q.T) * sd[None, :]  # fmt: skip
    pair = torch.eye(10, dtype=DTYPE)
    pair[0, 1] = pair[1, 0] = 0.99
    out["pair-0.99"] = pair
    return out


def kernel_for(name: str, potential, estimator: str):
    common = {"potential_fn": potential, "batched_potential": True, "mass_estimator": estimator,
              "chain_adaptation": "pooled"}  # fmt: skip
    if name == "SimpleHMC":
        return SimpleHMC(adapt_trajectory_length=True, **common)
    return {"MAMS": MAMS, "MALA": MALA}[name](**common)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chains", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--kernels", nargs="+", default=["SimpleHMC", "MAMS"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for target, cov in targets().items():
        prec, dim = torch.linalg.inv(cov), cov.shape[0]

        def potential(z, prec=prec):
            x = z["x"]
            return 0.5 * ((x @ prec) * x).sum(-1)

        generator = torch.Generator().manual_seed(args.seed)
        init = torch.randn(args.chains, dim, generator=generator, dtype=DTYPE)
        init = init @ torch.linalg.cholesky(cov).T
        for name in args.kernels:
            base = None
            for estimator in ("stan", "fisher", "low_rank"):
                pyro.set_rng_seed(args.seed)
                kernel = kernel_for(name, potential, estimator)
                mcmc = MCMC(kernel, num_samples=args.samples, warmup_steps=args.warmup,
                            num_chains=args.chains, chain_method="vectorized",
                            disable_progbar=True, initial_params={"x": init.clone()})  # fmt: skip
                mcmc.run()
                draws = mcmc.get_samples(group_by_chain=True)["x"]
                x = draws.numpy()
                min_ess = float(min(ess(x, "bulk").min(), ess(x**2, "bulk").min()))
                grads = kernel.chain_diagnostics()[0]["gradient evaluations"]["sampling"]
                per_grad = 1000 * min_ess / args.chains / grads
                base = per_grad if estimator == "stan" else base
                z = mcse_z_test(draws, torch.zeros(dim), cov, correlations=False).max_abs_z
                row = {
                    "target": target,
                    "kernel": name,
                    "estimator": estimator,
                    "ESS per 1000 gradients": round(per_grad, 2),
                    "vs stan": round(per_grad / base, 2),
                    "max |z|": round(float(z), 2),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    ratios = [r["vs stan"] for r in rows if r["estimator"] == "fisher"]
    median = sorted(ratios)[len(ratios) // 2] if ratios else math.nan
    print(f"fisher vs stan: median x{median}, range x{min(ratios)} to x{max(ratios)}")


if __name__ == "__main__":
    main()
