r"""The JAX contenders of the benchmark suite: NumPyro's NUTS, BlackJAX's NUTS and adjusted MCLMC.

Imported by :mod:`pyro_simplehmc.compare.benchmark_suite` only when one of them is asked for;
importing it raises :class:`ImportError` where JAX, NumPyro or BlackJAX is missing. Each gym
target's log density is written again in ``jax.numpy`` (:func:`log_density`) on the same flat
unconstrained vector (the target's sites, concatenated in order); the draws come back through
the target's :meth:`~pyro_simplehmc.checks.gym_targets.GymTarget.flatten`, so that every
contender is judged on the same numbers. Chains start where the vectorized kernels' do
(:func:`~pyro_simplehmc.compare.execution.chain_starts`), double precision, on the CPU.

- ``numpyro-NUTS``: :class:`numpyro.infer.NUTS` on the potential, ``chain_method="vectorized"``,
  its default warmup (step size and diagonal mass matrix), target acceptance 0.8;
- ``blackjax-NUTS``: :func:`blackjax.window_adaptation` with :data:`blackjax.nuts` (Stan's
  windows, target acceptance 0.8), vmapped over the chains;
- ``blackjax-MAMS``: ``blackjax.mcmc.adjusted_mclmc_dynamic`` (random number of steps, mean
  :math:`L/\epsilon`, McLachlan's integrator: two gradients per step), tuned as the MAMS paper
  and BlackJAX's published ``adjusted_mclmc_find_L_and_step_size`` do it: step size by dual
  averaging to acceptance 0.9 with :math:`L` from the chain's variance
  (``adjusted_mclmc_make_L_step_size_adaptation``, 10% + 10% of the steps), then :math:`L` from
  the autocorrelation (``adjusted_mclmc_make_adaptation_L``, ``l_factor=0.5``, 10%), then the
  step size again at that :math:`L`. The installed BlackJAX's own
  ``adjusted_mclmc_find_L_and_step_size`` instead pins :math:`L = 2\epsilon`
  (``target_num_integration_steps=2``: about two steps per trajectory, a MALA-like sampler;
  ``blackjax-MAMS-pinned`` runs it so), so the stages are called one by one here;
  vmapped over the chains.

Cost is counted in gradients per chain: for the NUTS contenders each chain's own leapfrog
steps (as NUTS runs one chain); for ``blackjax-MAMS`` two per step, and, under ``vmap``, the
batch's: each iteration costs what its longest chain costs, as for this package's vectorized
MAMS, whose chains all take the same number of steps (each chain's own count is in the row as
``own gradients per chain``).
"""

from __future__ import annotations

import math
import time
from typing import Any

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import torch
from numpyro.infer import MCMC as NumPyroMCMC
from numpyro.infer import NUTS as NumPyroNUTS

from ..checks.gym_targets import load_gym_data
from ..checks.targets import Target, load_logreg_reference
from .execution import chain_starts
from .problems import from_target
from .summary import ChainRun

jax.config.update("jax_enable_x64", True)

#: The contenders this module runs.
NAMES = ("numpyro-NUTS", "blackjax-NUTS", "blackjax-MAMS", "blackjax-MAMS-pinned")


def _normal_lp(x, loc, scale):
    return -0.5 * ((x - loc) / scale) ** 2 - jnp.log(scale)


def log_density(target: Target):
    r"""The target's :math:`\log\pi` (up to a constant) on its flat unconstrained vector, in JAX.

    :raises ValueError: for a target without a JAX version.
    """
    name = target.name
    if name == "banana":
        return lambda x: -0.5 * (x[0] / 10.0) ** 2 - 0.5 * (x[1] - 0.03 * (x[0] ** 2 - 100)) ** 2
    if name == "gaussian":
        var = jnp.asarray(target.var.numpy())
        return lambda x: -0.5 * jnp.sum(x**2 / var)
    if name == "rosenbrock":
        half = target.dim // 2
        return lambda x: (
            -jnp.sum(0.5 * (x[:half] - 1.0) ** 2 + 0.5 * (x[half:] - x[:half] ** 2) ** 2 / 0.1)
        )
    if name == "funnel":

        def funnel(x):
            v, rest = x[0], x[1:]
            return (
                -0.5 * (v / 3.0) ** 2 - 0.5 * jnp.sum(rest**2) * jnp.exp(-v) - 0.5 * len(rest) * v
            )

        return funnel
    if name == "logistic_regression":
        ref = load_logreg_reference()
        features = jnp.asarray(ref["data"]["features"])
        labels = jnp.asarray(ref["data"]["labels"])
        scale = ref["prior_scale"]

        def logreg(x):
            logits = features @ x
            return jnp.sum(labels * logits - jnp.logaddexp(0.0, logits)) - 0.5 * jnp.sum(
                (x / scale) ** 2
            )

        return logreg
    if name == "brownian_motion":
        observed = np.array(
            [
                np.nan if v is None else v
                for v in load_gym_data()["brownian_motion"]["observed_locs"]
            ]
        )
        mask = jnp.asarray(~np.isnan(observed))
        obs = jnp.asarray(np.nan_to_num(observed))

        def brownian(x):
            log_i, log_o, locs = x[0], x[1], x[2:]
            lp = -0.5 * (log_i / 2.0) ** 2 - 0.5 * (log_o / 2.0) ** 2
            previous = jnp.concatenate([jnp.zeros(1), locs[:-1]])
            lp += jnp.sum(_normal_lp(locs, previous, jnp.exp(log_i)))
            return lp + jnp.sum(jnp.where(mask, _normal_lp(obs, locs, jnp.exp(log_o)), 0.0))

        return brownian
    if name == "stochastic_volatility":
        y = jnp.asarray(load_gym_data()["stochastic_volatility"]["centered_returns"])

        def volatility(x):
            z, mu, log_sigma, h = x[0], x[1], x[2], x[3:]
            lp = 20.0 * jax.nn.log_sigmoid(z) + 1.5 * jax.nn.log_sigmoid(-z)
            lp -= jnp.log1p((mu / 5.0) ** 2)
            sigma = jnp.exp(log_sigma)
            lp += -jnp.log1p((sigma / 2.0) ** 2) + log_sigma
            phi = 2.0 * jax.nn.sigmoid(z) - 1.0
            lp += _normal_lp(h[0], mu, sigma / jnp.sqrt(1.0 - phi**2))
            lp += jnp.sum(_normal_lp(h[1:], mu + phi * (h[:-1] - mu), sigma))
            return lp + jnp.sum(_normal_lp(y, 0.0, jnp.exp(h / 2.0)))

        return volatility
    if name == "item_response_theory":
        grid = load_gym_data()["item_response_theory"]["grid"]
        answered = jnp.asarray([[c != "." for c in row] for row in grid])
        correct = jnp.asarray([[float(c == "1") for c in row] for row in grid])
        students = answered.shape[0]

        def irt(x):
            delta, alpha, beta = x[0], x[1 : 1 + students], x[1 + students :]
            logits = delta + alpha[:, None] - beta[None, :]
            ll = jnp.where(answered, correct * logits - jnp.logaddexp(0.0, logits), 0.0)
            return jnp.sum(ll) - 0.5 * ((delta - 0.75) ** 2 + jnp.sum(alpha**2) + jnp.sum(beta**2))

        return irt
    raise ValueError(f"no JAX log density for target {name!r}")


def _starts(target: Target, num_chains: int, seed: int) -> tuple[np.ndarray, list[int]]:
    problem = from_target(target)
    starts = chain_starts(num_chains)
    flat = []
    for s in starts:
        point = problem.initial_params(seed + s)
        flat.append(torch.cat([point[k].reshape(-1) for k in target.sites]).numpy())
    return np.stack(flat), starts


def _validated(target: Target, flat: np.ndarray) -> np.ndarray:
    """Flat unconstrained draws ``(..., D)`` to the target's validated numbers."""
    points = torch.as_tensor(np.asarray(flat))
    params, start = {}, 0
    for name in target.sites:
        shape = target.initial_params[name].shape
        size = target.initial_params[name].numel()
        params[name] = points[..., start : start + size].reshape(*points.shape[:-1], *shape)
        start += size
    return target.flatten(params, sample_dims=points.dim() - 1).double().numpy()


def _chains(target, xs, starts, warmup_grads, sampling_grads, seconds, diagnostics) -> list:
    draws = _validated(target, xs)
    num_chains = draws.shape[0]
    return [
        ChainRun(
            draws=draws[c],
            potentials={"warmup": int(warmup_grads[c]), "sampling": int(sampling_grads[c])},
            gradients={"warmup": int(warmup_grads[c]), "sampling": int(sampling_grads[c])},
            seconds={"warmup": 0.0, "sampling": seconds / num_chains},
            diagnostics={k: v[c] for k, v in diagnostics.items()},
            start=starts[c],
        )
        for c in range(num_chains)
    ]


def run_numpyro_nuts(target, num_chains, num_samples, warmup_steps, seed):
    logdensity = log_density(target)
    init, starts = _starts(target, num_chains, seed)
    kernel = NumPyroNUTS(potential_fn=lambda x: -logdensity(x))
    mcmc = NumPyroMCMC(kernel, num_warmup=warmup_steps, num_samples=num_samples,
                       num_chains=num_chains, chain_method="vectorized",
                       progress_bar=False)  # fmt: skip
    start = time.perf_counter()
    key = jax.random.PRNGKey(seed)
    mcmc.warmup(key, init_params=jnp.asarray(init), extra_fields=("num_steps",),
                collect_warmup=True)  # fmt: skip
    warm = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["num_steps"]).sum(1)
    mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=("num_steps", "accept_prob"))
    xs = np.asarray(mcmc.get_samples(group_by_chain=True))
    seconds = time.perf_counter() - start
    fields = mcmc.get_extra_fields(group_by_chain=True)
    steps = np.asarray(fields["num_steps"]).sum(1)
    acc = np.asarray(fields["accept_prob"]).mean(1)
    chains = _chains(target, xs, starts, warm, steps, seconds, {"acceptance rate": acc})
    return chains, {"version": numpyro.__version__}


def run_blackjax_nuts(target, num_chains, num_samples, warmup_steps, seed):
    logdensity = log_density(target)
    init, starts = _starts(target, num_chains, seed)

    def one_chain(key, x0):
        warm_key, run_key = jax.random.split(key)
        adaptation = blackjax.window_adaptation(blackjax.nuts, logdensity)
        (state, params), info = adaptation.run(warm_key, x0, num_steps=warmup_steps)
        kernel = blackjax.nuts(logdensity, **params)

        def step(state, key):
            state, info = kernel.step(key, state)
            return state, (state.position, info.num_integration_steps, info.acceptance_rate)

        _, (xs, steps, acc) = jax.lax.scan(step, state, jax.random.split(run_key, num_samples))
        return xs, steps, acc, info.info.num_integration_steps

    keys = jax.random.split(jax.random.PRNGKey(seed), num_chains)
    start = time.perf_counter()
    xs, steps, acc, warm = jax.jit(jax.vmap(one_chain))(keys, jnp.asarray(init))
    xs = np.asarray(xs)
    seconds = time.perf_counter() - start
    chains = _chains(target, xs, starts, np.asarray(warm).sum(1), np.asarray(steps).sum(1),
                     seconds, {"acceptance rate": np.asarray(acc).mean(1)})  # fmt: skip
    return chains, {"version": blackjax.__version__}


def _paper_tuning(kernel, logdensity, num_steps, state, key, target_accept=0.9):
    """BlackJAX's published adjusted-MCLMC tuning, stage by stage (see the module)."""
    from blackjax.adaptation.adjusted_mclmc_adaptation import (
        adjusted_mclmc_make_adaptation_L,
        adjusted_mclmc_make_L_step_size_adaptation,
    )
    from blackjax.adaptation.mclmc_adaptation import MCLMCAdaptationState

    dim = state.position.shape[0]
    params = MCLMCAdaptationState(jnp.sqrt(dim), jnp.sqrt(dim) * 0.2,
                                  inverse_mass_matrix=jnp.ones((dim,)))  # fmt: skip
    key1, key2, key3 = jax.random.split(key, 3)
    state, params, _, n1 = adjusted_mclmc_make_L_step_size_adaptation(
        kernel=kernel, logdensity_fn=logdensity, dim=dim, frac_tune1=0.1, frac_tune2=0.1,
        target=target_accept, diagonal_preconditioning=True, max="avg", tuning_factor=1.3,
        target_num_integration_steps=None,
    )(state, params, num_steps, key1)  # fmt: skip
    state, params, n2 = adjusted_mclmc_make_adaptation_L(
        kernel, logdensity_fn=logdensity, frac=0.1, l_factor=0.5, max="avg"
    )(state, params, num_steps, key2)
    state, params, _, n3 = adjusted_mclmc_make_L_step_size_adaptation(
        kernel=kernel, logdensity_fn=logdensity, dim=dim, frac_tune1=0.1, frac_tune2=0.0,
        target=target_accept, fix_L_first_da=True, diagonal_preconditioning=True, max="avg",
        tuning_factor=1.3,
    )(state, params, num_steps, key3)  # fmt: skip
    return state, params, n1 + n2 + n3


def run_blackjax_mams(target, num_chains, num_samples, warmup_steps, seed, pinned=False):
    from blackjax.mcmc.adjusted_mclmc_dynamic import make_random_trajectory_length_fn

    logdensity = log_density(target)
    init, starts = _starts(target, num_chains, seed)
    steps_fn = make_random_trajectory_length_fn(True)
    kernel = blackjax.mcmc.adjusted_mclmc_dynamic.build_kernel(integration_steps_fn=steps_fn)

    def tuning_kernel(rng_key, state, logdensity_fn, step_size, inverse_mass_matrix,
                      integration_steps_params):  # fmt: skip
        return kernel(rng_key, state, logdensity_fn, step_size,
                      inverse_mass_matrix=inverse_mass_matrix,
                      integration_steps_params=integration_steps_params)  # fmt: skip

    # The stages' lengths are fractions of this (BlackJAX's num_steps): 40% of it is warmup.
    tuning_steps = max(int(warmup_steps / 0.4), 10)

    def one_chain(key, x0):
        init_key, tune_key, run_key = jax.random.split(key, 3)
        state = blackjax.mcmc.adjusted_mclmc_dynamic.init(x0, logdensity, init_key)
        if pinned:
            state, params, warm = blackjax.adjusted_mclmc_find_L_and_step_size(
                mclmc_kernel=tuning_kernel, logdensity_fn=logdensity, num_steps=tuning_steps,
                state=state, rng_key=tune_key, target=0.9, frac_tune3=0.1)  # fmt: skip
        else:
            state, params, warm = _paper_tuning(tuning_kernel, logdensity, tuning_steps, state,
                                                tune_key)  # fmt: skip
        avg = params.L / params.step_size

        def step(state, key):
            state, info = kernel(key, state, logdensity, params.step_size,
                                 inverse_mass_matrix=params.inverse_mass_matrix,
                                 integration_steps_params=(avg,))  # fmt: skip
            return state, (state.position, info.num_integration_steps, info.acceptance_rate)

        _, (xs, steps, acc) = jax.lax.scan(step, state, jax.random.split(run_key, num_samples))
        return xs, steps, acc, warm, params.L, params.step_size

    keys = jax.random.split(jax.random.PRNGKey(seed), num_chains)
    start = time.perf_counter()
    xs, steps, acc, warm, length, step_size = jax.jit(jax.vmap(one_chain))(keys, jnp.asarray(init))
    xs = np.asarray(xs)
    seconds = time.perf_counter() - start
    steps = np.asarray(steps)  # (chains, draws): integration steps, two gradients each
    lockstep = 2 * steps.max(0).sum()
    own = 2 * steps.sum(1)
    warm = 2 * np.asarray(warm)
    chains = _chains(target, xs, starts, np.full(num_chains, warm.max()),
                     np.full(num_chains, lockstep), seconds,
                     {"acceptance rate": np.asarray(acc).mean(1)})  # fmt: skip
    extra = {
        "version": blackjax.__version__,
        "tuning": "pinned L = 2 step (installed default)" if pinned else "paper's stages",
        "trajectory length": float(np.mean(np.asarray(length))),
        "step size": float(np.mean(np.asarray(step_size))),
        "mean steps per trajectory": float(steps.mean()),
        "own gradients per chain": float(own.mean()),
        "lockstep / own gradients": float(lockstep / own.mean()) if own.mean() else math.nan,
    }
    return chains, extra


def run(
    name: str, target: Target, num_chains: int, num_samples: int, warmup_steps: int, seed: int
) -> tuple[list[ChainRun] | None, dict[str, Any]]:
    """Run contender ``name`` of :data:`NAMES` on ``target``: its chains and extras (``None``
    and a note where the target has no JAX version)."""
    try:
        log_density(target)
    except ValueError as error:
        return None, {"note": f"skipped: {error}"}
    if name == "numpyro-NUTS":
        return run_numpyro_nuts(target, num_chains, num_samples, warmup_steps, seed)
    if name == "blackjax-NUTS":
        return run_blackjax_nuts(target, num_chains, num_samples, warmup_steps, seed)
    if name in ("blackjax-MAMS", "blackjax-MAMS-pinned"):
        return run_blackjax_mams(target, num_chains, num_samples, warmup_steps, seed,
                                 pinned=name.endswith("pinned"))  # fmt: skip
    raise ValueError(f"unknown JAX contender {name!r}; choose from {list(NAMES)}")


__all__ = ["NAMES", "log_density", "run"]
