"""SimpleHMC's trajectory length: random by default, and ChEES adaptation over a batch of chains.

Each statistical check has a control that shows it can fail: the fixed-length textbook algorithm
(``num_steps_jitter=0``) resonates on the same targets.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import arviz as az
import numpy as np
import pyro
import pytest
import torch

from pyro_simplehmc import MCMC, SimpleHMC, chees
from pyro_simplehmc.testing import mcse_z_test


def diagonal_gaussian(variances):
    def potential(params):
        return 0.5 * (params["x"] ** 2 / variances).sum(-1)

    return potential


def run(kernel, dim, num_samples=1000, warmup_steps=500, num_chains=1, seed=0, init=None, **kw):
    pyro.set_rng_seed(seed)
    torch.manual_seed(seed)
    # Pyro's MCMC adds the chain dimension itself for one chain.
    shape = (num_chains, dim) if num_chains > 1 or kw.get("chain_method") else (dim,)
    if init is None:
        init = {"x": torch.randn(shape, dtype=torch.float64)}
    mcmc = MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        initial_params=init,
        disable_progbar=True,
        **kw,
    )
    mcmc.run()
    return mcmc


def min_ess(draws):
    """The smallest bulk ESS over coordinates of draws shaped (chains, draws, D)."""
    x = np.asarray(draws.detach().cpu())
    return float(az.ess(az.convert_to_dataset({"x": x}))["x"].min())


# ---------------------------------------------------------------------------- random lengths

VARIANCES_100 = torch.linspace(0.1, 1.0, 100, dtype=torch.float64)


@pytest.mark.parametrize("jitter", [1.0, 0.0], ids=["default", "fixed-length control"])
def test_default_mixes_coordinates_and_squares_on_a_100d_gaussian(jitter):
    kernel = SimpleHMC(potential_fn=diagonal_gaussian(VARIANCES_100), num_steps_jitter=jitter)
    x = run(kernel, 100).get_samples(group_by_chain=True)["x"]
    ess, ess_squares = min_ess(x), min_ess(x**2)
    if jitter:  # measured: about 500 and 250 of 1000
        assert ess >= 250 and ess_squares >= 100, (ess, ess_squares)
    else:  # the textbook fixed length resonates: the check above fails on it
        assert ess < 250 or ess_squares < 100, (ess, ess_squares)


def test_default_is_correct_where_a_fixed_length_returns_home():
    """A 1-D Gaussian truncated to x < 1 by a region where the potential is NaN."""

    def potential(params):
        x = params["x"]
        u = 0.5 * (x**2).sum(-1)
        return torch.where(x[..., 0] < 1.0, u, math.nan)

    ratio = math.exp(-0.5) / math.sqrt(2 * math.pi) / NormalDist().cdf(1.0)
    mean, var = -ratio, 1.0 - ratio - ratio**2
    init = {"x": torch.zeros(1, dtype=torch.float64)}
    mcmc = run(SimpleHMC(potential_fn=potential), 1, num_samples=2000, init=init)
    x = mcmc.get_samples(group_by_chain=True)["x"]
    result = mcse_z_test(x, [mean], torch.tensor([[var]]))
    assert result.passed, result


@pytest.mark.parametrize(
    "variances",
    [torch.tensor([9.0]), torch.tensor([0.25, 1.0, 4.0])],
    ids=["1-D wide", "3-D scaled"],
)
@pytest.mark.parametrize("adapt_mass_matrix", [True, False])
def test_realised_acceptance_lands_near_the_target(variances, adapt_mass_matrix):
    """16 chains adapting their own step sizes: 16 independent runs of the one-chain algorithm.

    Before random lengths, measured on other 1-D and 3-D Gaussians: 0.93 and 0.84.
    """
    variances = variances.double()
    kernel = SimpleHMC(
        potential_fn=diagonal_gaussian(variances),
        batched_potential=True,
        adapt_mass_matrix=adapt_mass_matrix,
    )
    mcmc = run(kernel, len(variances), num_samples=500, num_chains=16, chain_method="vectorized")
    rates = np.array([chain["acceptance rate"] for chain in mcmc._diagnostics])
    target = kernel.target_accept_prob
    assert abs(rates.mean() - target) < 0.1, rates
    assert np.all(np.abs(rates - target) < 0.2), rates


def test_the_fixed_length_is_one_argument_away():
    kernel = SimpleHMC(potential_fn=diagonal_gaussian(torch.ones(2)), num_steps=7,
                       num_steps_jitter=0.0)
    mcmc = run(kernel, 2, num_samples=50, warmup_steps=0)
    assert mcmc._diagnostics[0]["gradient evaluations"]["sampling"] == 50 * 7


def test_random_lengths_are_uniform_up_to_twice_the_mean():
    kernel = SimpleHMC(potential_fn=diagonal_gaussian(torch.ones(2)), num_steps=5)
    kernel.initial_params = {"x": torch.zeros(2, dtype=torch.float64)}
    kernel.setup(0)
    torch.manual_seed(0)
    counts = np.bincount([kernel._jittered(torch.ones(1, 1))[1] for _ in range(4000)])
    assert len(counts) == 11 and counts[0] == 0
    assert np.all(np.abs(counts[1:] / 4000 - 0.1) < 0.02), counts


# ---------------------------------------------------------------------------- ChEES

RHO = 0.95
COV_2D = torch.tensor([[1.0, RHO], [RHO, 1.0]], dtype=torch.float64)


def correlated_potential(params):
    x = params["x"]
    return 0.5 * (x @ torch.linalg.inv(COV_2D) * x).sum(-1)


def test_chees_agrees_with_the_truth_and_exposes_its_length():
    kernel = SimpleHMC(
        potential_fn=correlated_potential, batched_potential=True, adapt_trajectory_length=True
    )
    mcmc = run(kernel, 2, num_chains=16, num_samples=500, chain_method="vectorized")
    x = mcmc.get_samples(group_by_chain=True)["x"]
    result = mcse_z_test(x, torch.zeros(2), COV_2D)
    assert result.passed, result
    history = kernel.chees.history
    assert len(history) == 500 and all(math.isfinite(t) and t > 0 for t in history)
    length = kernel.adapted_trajectory_length
    step = kernel.step_size
    assert step <= length <= chees.MAX_STEPS * step
    # It grew from one step to several: the longest direction has sd sqrt(1.95).
    assert length > 3 * step, (length, step)
    assert mcmc.diagnostics()["trajectory length"]["chain 0"] == length


def test_chees_beats_the_default_per_gradient_on_a_100d_gaussian():
    """The reason for ChEES: more effective draws per gradient (measured: about 3x)."""
    per_gradient = {}
    for adapt in (True, False):
        kernel = SimpleHMC(
            potential_fn=diagonal_gaussian(VARIANCES_100),
            batched_potential=True,
            adapt_trajectory_length=adapt,
        )
        mcmc = run(kernel, 100, num_chains=8, num_samples=300, chain_method="vectorized")
        x = mcmc.get_samples(group_by_chain=True)["x"]
        gradients = 8 * mcmc._diagnostics[0]["gradient evaluations"]["sampling"]
        per_gradient[adapt] = min(min_ess(x), min_ess(x**2)) / gradients
    assert per_gradient[True] > 1.5 * per_gradient[False], per_gradient


def test_chees_survives_proposals_that_all_diverge():
    kernel = SimpleHMC(
        potential_fn=correlated_potential,
        batched_potential=True,
        adapt_trajectory_length=True,
        step_size=1e3,  # every early proposal diverges
        adapt_mass_matrix=False,
    )
    mcmc = run(kernel, 2, num_chains=4, num_samples=20, warmup_steps=50, chain_method="vectorized")
    assert all(math.isfinite(t) and t > 0 for t in kernel.chees.history)
    assert math.isfinite(kernel.adapted_trajectory_length)
    assert mcmc.sample_stats["accept_prob"].shape == (4, 20)


def test_chees_gradient_and_update_with_nothing_to_learn_from():
    position = torch.randn(4, 3)
    state = chees.init(0.1)
    gradient = chees.chees_gradient(
        position, position * math.nan, position, torch.zeros(4), torch.ones(4, dtype=bool),
        0.5, 1.0,
    )
    assert gradient == 0.0
    chees.update(state, gradient, 0.1)
    chees.update(state, math.nan, 0.1)
    assert len(state.history) == 2
    assert all(0.1 - 1e-9 <= t <= 0.1 * chees.MAX_STEPS for t in state.history)
    assert math.isfinite(state.log_length_average)


def test_halton_fills_the_unit_interval():
    values = [chees.halton(i) for i in range(1, 9)]
    assert values == [1 / 2, 1 / 4, 3 / 4, 1 / 8, 5 / 8, 3 / 8, 7 / 8, 1 / 16]


def test_chees_needs_a_batch_of_chains():
    kernel = SimpleHMC(potential_fn=correlated_potential, adapt_trajectory_length=True)
    with pytest.raises(ValueError, match="at least 2 chains run as a batch"):
        run(kernel, 2, num_samples=5, warmup_steps=5)
    with pytest.raises(ValueError, match="at least 2 chains run as a batch"):
        run(kernel, 2, num_chains=1, num_samples=5, warmup_steps=5, chain_method="vectorized")
    with pytest.raises(ValueError, match='chain_adaptation must be "pooled"'):
        SimpleHMC(correlated_potential, adapt_trajectory_length=True, chain_adaptation="per_chain")
