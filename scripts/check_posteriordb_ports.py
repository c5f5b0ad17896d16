"""Check ported posteriordb posteriors with Pyro's NUTS against posteriordb's reference.

Before a port joins the set that the package's kernels are scored on, Pyro's own NUTS must
reproduce the reference means and standard deviations: a failure there is a porting bug (or a
posterior too hard for NUTS), not a kernel's. Each posterior runs NUTS (dense mass matrix, JIT
potential) for ``--chains`` chains of ``--warmup`` + ``--samples`` iterations from the
bundle's data and scores the draws with
:func:`pyro_simplehmc.checks.posteriordb.compare_with_reference` (z-scores from both MCSEs,
Bonferroni over all means and sds at family-wise level 1e-3).

Usage::

    OMP_NUM_THREADS=1 python scripts/check_posteriordb_ports.py [--posterior NAME ...]
        [--chains 2] [--warmup 500] [--samples 1000] [--seed 0] [--markdown]

Without ``--posterior`` it checks every registered port. ``--markdown`` prints the table rows
of ``docs/design-notes.md`` ("posteriordb ports checked with NUTS").
"""

from __future__ import annotations

import argparse
import time

import pyro
import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide import init_to_uniform, init_to_value

from pyro_simplehmc.checks.posteriordb import (
    POSTERIORS,
    compare_with_reference,
    flatten_draws,
    load_posterior,
)


def check(name: str, *, chains: int, warmup: int, samples: int, seed: int) -> dict:
    posterior, data, reference = load_posterior(name)
    init = (
        init_to_uniform
        if posterior.init_values is None
        else init_to_value(values=posterior.init_values(data))
    )
    kernel = NUTS(
        posterior.model,
        full_mass=True,
        max_plate_nesting=posterior.max_plate_nesting,
        init_strategy=init,
        jit_compile=True,
        ignore_jit_warnings=True,
    )
    pyro.set_rng_seed(seed)
    mcmc = MCMC(
        kernel,
        num_samples=samples,
        warmup_steps=warmup,
        num_chains=chains,
        mp_context="spawn" if chains > 1 else None,
        disable_progbar=True,
    )
    start = time.perf_counter()
    mcmc.run(data)
    seconds = time.perf_counter() - start
    draws = mcmc.get_samples(group_by_chain=True)
    latent = {k: v for k, v in draws.items() if k in mcmc.kernel.transforms}
    dimension = sum(v[0, 0].numel() for v in latent.values())
    result = compare_with_reference(
        flatten_draws(posterior.reference_quantities(latent, data)), reference
    )
    divergences = sum(len(d) for d in mcmc.diagnostics()["divergences"].values())
    return {
        "name": name,
        "dimension": dimension,
        "seconds": seconds,
        "result": result,
        "divergences": divergences,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posterior", action="append", choices=sorted(POSTERIORS))
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    for name in args.posterior or list(POSTERIORS):
        out = check(
            name, chains=args.chains, warmup=args.warmup, samples=args.samples, seed=args.seed
        )
        result = out["result"]
        worst = result.names[int(abs(result.z).argmax())]
        verdict = "pass" if result.passed else "FAIL"
        if args.markdown:
            print(
                f"| {name} | {out['dimension']} | {out['seconds']:.0f} | "
                f"{result.max_abs_z:.2f} ({worst}) | {result.threshold:.2f} | "
                f"{out['divergences']} | {verdict} |",
                flush=True,
            )
        else:
            print(
                f"{name}: D={out['dimension']} {out['seconds']:.0f}s max|z|={result.max_abs_z:.2f}"
                f" ({worst}) threshold {result.threshold:.2f} divergences={out['divergences']}"
                f" {verdict}",
                flush=True,
            )
            if not result.passed:
                print(result, flush=True)


if __name__ == "__main__":
    main()
