r"""MAMS against SimpleHMC with ChEES (both vectorized) on the 100-D ill-conditioned Gaussian.

Run from the repository root::

    python benchmarks/mams.py                        # 64 chains, 500 warmup + 2,000 draws
    python benchmarks/mams.py --chains 16 --samples 1000 --contenders mams chees
    python benchmarks/mams.py --out /tmp/mams        # where results.json goes

The target is the MAMS paper's "ill-conditioned Gaussian": :math:`\mathcal{N}(0, \Lambda)`,
:math:`d = 100`, the variances log-spaced from 1 down to 1/100 (condition number 100), diagonal.
Every contender starts its chains from the same points (uniform on ``[-2, 2]``, seeded), one
thread, and is measured in the same process:

- ``mams``: ``MAMS(potential_fn=..., batched_potential=True)`` with its defaults;
- ``mams-leapfrog``: the same with ``integrator="leapfrog"``;
- ``chees``: ``SimpleHMC(..., adapt_trajectory_length=True)`` with its defaults;
- ``blackjax``: BlackJAX's adjusted MCLMC (``adjusted_mclmc_dynamic`` tuned by
  ``adjusted_mclmc_find_L_and_step_size`` with its defaults, target acceptance 0.9, diagonal
  preconditioning), vmapped over the chains; skipped with a note where BlackJAX is missing.

For each it records the wall seconds of the whole run (warmup and sampling; for BlackJAX
compilation included), the gradient evaluations per chain, the smallest bulk ESS (arviz, all
chains) over the coordinates and their squares, and the squared bias of the second moments after
:math:`n` draws, as the MAMS paper defines it,

.. math::
    b^2(n) = \frac1C \sum_c \max_i \frac{(\overline{x_i^2}_{c,n} - \Lambda_i)^2}
        {\mathrm{Var}[x_i^2]}, \qquad \mathrm{Var}[x_i^2] = 2\Lambda_i^2,

with :math:`\overline{x_i^2}_{c,n}` chain :math:`c`'s mean of its first :math:`n` draws. The
"gradients to low bias" are the gradient evaluations per chain from the start of sampling to the
first :math:`n` after which :math:`b^2` stays below 0.01, with a 90% interval from resampling
the chains (bootstrap, 200 resamples); warmup's gradients are reported beside them.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import pyro
import torch

from pyro_simplehmc import MAMS, MCMC, SimpleHMC
from pyro_simplehmc.checks.statistics import ess

THRESHOLD = 0.01


def variances(dim: int, condition: float) -> torch.Tensor:
    return torch.logspace(0.0, -math.log10(condition), dim, dtype=torch.float64)


class Counted:
    """A batched Gaussian potential that counts its (batched) evaluations."""

    def __init__(self, var: torch.Tensor):
        self.var, self.calls = var, 0

    def __call__(self, params):
        self.calls += 1
        return 0.5 * (params["x"] ** 2 / self.var).sum(-1)


def squared_bias(draws: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``b^2(n)`` per chain, ``(C, N)``, from draws ``(C, N, D)``."""
    running = np.cumsum(draws**2, axis=1) / np.arange(1, draws.shape[1] + 1)[None, :, None]
    return ((running - var) ** 2 / (2 * var**2)).max(-1)


def first_time_below(curve: np.ndarray) -> int | None:
    """The first index from which ``curve`` stays below the threshold (``None``: never)."""
    above = np.nonzero(curve >= THRESHOLD)[0]
    if len(above) == 0:
        return 0
    return None if above[-1] == len(curve) - 1 else int(above[-1] + 1)


def gradients_to_low_bias(per_chain: np.ndarray, grads: np.ndarray, seed: int) -> dict:
    """Gradients (per chain, sampling only) until the chain-averaged ``b^2`` stays below the
    threshold, and a bootstrap interval over chains."""

    def at(curve):
        n = first_time_below(curve)
        return None if n is None else float(grads[n])

    point = at(per_chain.mean(0))
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(200):
        pick = rng.integers(0, per_chain.shape[0], per_chain.shape[0])
        value = at(per_chain[pick].mean(0))
        boots.append(math.inf if value is None else value)
    # Order statistics, not np.quantile: a resample that never gets there counts as infinite.
    boots = sorted(boots)
    low, high = boots[int(0.05 * len(boots))], boots[int(0.95 * len(boots)) - 1]
    return {"point": point, "interval": [low, high]}


def run_ours(name: str, args, var: torch.Tensor, init: torch.Tensor) -> dict:
    potential = Counted(var)
    if name == "mams":
        kernel = MAMS(potential_fn=potential, batched_potential=True)
    elif name == "mams-leapfrog":
        kernel = MAMS(potential_fn=potential, batched_potential=True, integrator="leapfrog")
    else:
        kernel = SimpleHMC(potential_fn=potential, batched_potential=True,
                           adapt_trajectory_length=True)  # fmt: skip
    calls = []

    def hook(kernel, params, stage, i):
        calls.append(potential.calls)

    pyro.set_rng_seed(args.seed)
    mcmc = MCMC(kernel, num_samples=args.samples, warmup_steps=args.warmup,
                num_chains=args.chains, chain_method="vectorized", disable_progbar=True,
                initial_params={"x": init.clone()}, hook_fn=hook)  # fmt: skip
    start = time.perf_counter()
    mcmc.run()
    seconds = time.perf_counter() - start
    draws = mcmc.get_samples(group_by_chain=True)["x"].numpy()
    calls = np.asarray(calls)
    warmup_grads = float(calls[args.warmup - 1]) if args.warmup else 0.0
    sampling_grads = calls[args.warmup:] - warmup_grads
    diagnostics = kernel.chain_diagnostics()[0]
    extra = {"step size": float(np.mean(kernel.chain_step_size.tolist()))}
    if name.startswith("mams"):
        extra["trajectory length"] = kernel.length
    else:
        extra["trajectory length"] = kernel.adapted_trajectory_length
    extra["acceptance rate"] = float(np.mean(
        [d["acceptance rate"] for d in kernel.chain_diagnostics()]))  # fmt: skip
    del diagnostics
    return summarise(name, draws, seconds, warmup_grads, sampling_grads, var, args, extra)


def run_blackjax(args, var: torch.Tensor, init: torch.Tensor) -> dict | str:
    try:
        import blackjax
        import jax
        import jax.numpy as jnp
        from blackjax.mcmc.adjusted_mclmc_dynamic import make_random_trajectory_length_fn
    except ImportError as error:
        return f"BlackJAX not importable ({error})"
    jax.config.update("jax_enable_x64", True)
    var_j = jnp.asarray(var.numpy())

    def logdensity(x):
        return -0.5 * jnp.sum(x**2 / var_j)

    steps_fn = make_random_trajectory_length_fn(True)
    kernel = blackjax.mcmc.adjusted_mclmc_dynamic.build_kernel(integration_steps_fn=steps_fn)

    def tuning_kernel(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix,
                      integration_steps_params):  # fmt: skip
        return kernel(rng_key, state, logdensity_fn, step_size,
                      inverse_mass_matrix=inverse_mass_matrix,
                      integration_steps_params=integration_steps_params)  # fmt: skip

    def one_chain(key, x0):
        init_key, tune_key, run_key = jax.random.split(key, 3)
        state = blackjax.mcmc.adjusted_mclmc_dynamic.init(x0, logdensity, init_key)
        state, params, tuning_steps = blackjax.adjusted_mclmc_find_L_and_step_size(
            mclmc_kernel=tuning_kernel, logdensity_fn=logdensity, num_steps=args.warmup,
            state=state, rng_key=tune_key, target=0.9, frac_tune3=0.1)  # fmt: skip
        avg = params.L / params.step_size

        def step(state, key):
            state, info = kernel(key, state, logdensity, params.step_size,
                                 inverse_mass_matrix=params.inverse_mass_matrix,
                                 integration_steps_params=(avg,))  # fmt: skip
            return state, (state.position, info.num_integration_steps, info.acceptance_rate)

        _, (xs, steps, acc) = jax.lax.scan(step, state, jax.random.split(run_key, args.samples))
        return xs, steps, acc, tuning_steps, params.L, params.step_size

    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.chains)
    start = time.perf_counter()
    xs, steps, acc, tuning, length, step_size = jax.jit(jax.vmap(one_chain))(
        keys, jnp.asarray(init.numpy()))  # fmt: skip
    xs.block_until_ready()
    seconds = time.perf_counter() - start
    # McLachlan's integrator: two gradients per step. Chains run in lockstep under vmap, so a
    # chain's cost is the batch's: the longest chain's steps.
    steps = np.asarray(steps).max(0)
    sampling_grads = 2.0 * np.cumsum(steps)
    warmup_grads = 2.0 * float(np.asarray(tuning).max())
    extra = {"step size": float(np.mean(step_size)), "trajectory length": float(np.mean(length)),
             "acceptance rate": float(np.mean(acc))}  # fmt: skip
    return summarise("blackjax", np.asarray(xs), seconds, warmup_grads, sampling_grads, var,
                     args, extra)  # fmt: skip


def summarise(name, draws, seconds, warmup_grads, sampling_grads, var, args, extra) -> dict:
    var_np = var.numpy()
    min_ess = float(min(ess(draws, "bulk").min(), ess(draws**2, "bulk").min()))
    bias = squared_bias(draws, var_np)
    return {
        "contender": name,
        "seconds": seconds,
        "min bulk ESS": min_ess,
        "ESS/s": min_ess / seconds,
        "gradients per chain": {"warmup": warmup_grads, "sampling": float(sampling_grads[-1])},
        "ESS per 1000 gradients": 1000 * min_ess / args.chains / float(sampling_grads[-1]),
        "final b^2": float(bias[:, -1].mean()),
        "gradients to b^2 < 0.01": gradients_to_low_bias(bias, sampling_grads, args.seed),
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--condition", type=float, default=100.0)
    parser.add_argument("--chains", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contenders", nargs="+",
                        default=["mams", "mams-leapfrog", "chees", "blackjax"])  # fmt: skip
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    var = variances(args.dim, args.condition)
    generator = torch.Generator().manual_seed(args.seed)
    init = 4 * torch.rand(args.chains, args.dim, generator=generator, dtype=torch.float64) - 2
    results, notes = [], []
    for name in args.contenders:
        result = run_blackjax(args, var, init) if name == "blackjax" else run_ours(
            name, args, var, init)  # fmt: skip
        if isinstance(result, str):
            notes.append(f"{name}: {result}")
            continue
        results.append(result)
        print(json.dumps(result, indent=1))
    by_name = {r["contender"]: r for r in results}
    if "mams" in by_name:
        for other in by_name:
            if other == "mams":
                continue
            mams, rival = by_name["mams"], by_name[other]
            ratio = mams["ESS/s"] / rival["ESS/s"]
            low_mams = mams["gradients to b^2 < 0.01"]["point"]
            low_rival = rival["gradients to b^2 < 0.01"]["point"]
            grads = "n/a" if not (low_mams and low_rival) else f"{low_rival / low_mams:.2f}"
            print(f"mams vs {other}: ESS/s x{ratio:.2f}; gradients to low bias: "
                  f"{other} needs x{grads} of MAMS's")
    for note in notes:
        print(note)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {"arguments": {k: str(v) for k, v in vars(args).items()}, "results": results,
                   "notes": notes}  # fmt: skip
        (args.out / "results.json").write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
