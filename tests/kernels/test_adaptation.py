"""Step-size and mass-matrix adaptation: where it lands, per chain and pooled.

Eight chains adapting their own step sizes in one batch are eight independent adaptations (the
same code as one chain at a time), which makes the eight-seed measurements of
``BatchWarmupAdapter``'s docstring cheap to repeat.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pyro
import pytest
import torch

from pyro_simplehmc import MALA, MCMC, RandomWalkMH, SimpleHMC
from pyro_simplehmc.core.welford import BatchWelford

RHO = 0.95
COV_2D = torch.tensor([[1.0, RHO], [RHO, 1.0]], dtype=torch.float64)
PRECISION_2D = torch.linalg.inv(COV_2D)
SD_50 = torch.logspace(-1, 0, 50, dtype=torch.float64)


def correlated(params):
    x = params["x"]
    return 0.5 * (x @ PRECISION_2D * x).sum(-1)


def diagonal_50(params):
    return 0.5 * ((params["x"] / SD_50) ** 2).sum(-1)


def run(kernel, dim, num_chains=8, warmup_steps=1000, num_samples=500, seed=0, **kw):
    pyro.set_rng_seed(seed)
    torch.manual_seed(seed)
    init = {"x": torch.randn(num_chains, dim, dtype=torch.float64)}
    mcmc = MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        initial_params=init,
        chain_method="vectorized",
        disable_progbar=True,
        **kw,
    )
    mcmc.run()
    return mcmc


@pytest.mark.parametrize("kernel_class", [MALA, RandomWalkMH], ids=lambda k: k.__name__)
@pytest.mark.parametrize("target, dim", [(correlated, 2), (diagonal_50, 50)], ids=["2-D", "50-D"])
def test_single_proposal_acceptance_lands_near_the_target(kernel_class, target, dim):
    """Measured over 8 chains: mean deviations 0.005-0.027, largest single deviation 0.124."""
    kernel = kernel_class(potential_fn=target, batched_potential=True)
    mcmc = run(kernel, dim)
    rates = np.array([chain["acceptance rate"] for chain in mcmc.kernel_diagnostics])
    deviation = rates - kernel.target_accept_prob
    assert abs(deviation.mean()) < 0.05, rates  # no bias
    assert np.abs(deviation).max() < 0.15, rates  # and no chain far off


def test_per_chain_adaptation_is_the_one_chain_adaptation():
    """A batch of one chain and Pyro's one-chain path adapt to the same step size."""
    kernel = MALA(potential_fn=correlated, batched_potential=True)
    batch = run(kernel, 2, num_chains=1, warmup_steps=200, num_samples=10, seed=4)
    plain_kernel = MALA(potential_fn=correlated)
    pyro.set_rng_seed(4)
    torch.manual_seed(4)
    init = {"x": torch.randn(2, dtype=torch.float64)}
    plain = pyro.infer.MCMC(
        plain_kernel, num_samples=10, warmup_steps=200, initial_params=init, disable_progbar=True
    )
    plain.run()
    step_size = batch.kernel_diagnostics[0]["step size"]
    assert step_size == pytest.approx(plain_kernel.step_size, rel=1e-6)


def test_batched_welford_matches_the_sample_covariance():
    torch.manual_seed(0)
    draws = torch.randn(40, 6, 3, dtype=torch.float64) @ torch.tensor(
        [[1.0, 0.0, 0.0], [0.5, 2.0, 0.0], [0.0, -1.0, 0.3]], dtype=torch.float64
    )
    for dense in (False, True):
        per_chain, pooled = BatchWelford(3, dense, False), BatchWelford(3, dense, True)
        for x in draws:  # 40 iterations of 6 chains
            per_chain.update(x)
            pooled.update(x)
        flat = draws.reshape(-1, 3)
        expected = torch.cov(flat.T) if dense else flat.var(0)
        raw = pooled._m2 / (pooled.n_samples - 1)
        assert torch.allclose(raw, expected)
        chains = draws.transpose(0, 1)
        expected = (
            torch.stack([torch.cov(c.T) for c in chains]) if dense else chains.var(1)
        )
        assert torch.allclose(per_chain._m2 / (per_chain.n_samples - 1), expected)


# ---------------------------------------------------------------------------- pooled vs per chain

# A regression with an uncentred predictor: intercept and slope are correlated beyond -0.999 and
# their scales differ by more than 10^3 from the noise scale's.
X_REG = torch.linspace(100.0, 110.0, 50, dtype=torch.float64)
Y_REG = 1.0 + 0.3 * X_REG + 0.1 * torch.randn(50, generator=torch.Generator().manual_seed(0))
DESIGN = torch.stack([torch.ones(50, dtype=torch.float64), X_REG], -1)
POSTERIOR_COV = torch.linalg.inv(DESIGN.T @ DESIGN / 0.1**2 + torch.eye(2) / 100**2)
POSTERIOR_MEAN = POSTERIOR_COV @ (DESIGN.T @ Y_REG / 0.1**2)


def regression(params):
    beta = params["beta"]
    residual = Y_REG - beta @ DESIGN.T
    return 0.5 * (residual**2).sum(-1) / 0.1**2 + 0.5 * (beta**2).sum(-1) / 100**2


def test_the_regression_is_as_badly_conditioned_as_claimed():
    sd = POSTERIOR_COV.diag().sqrt()
    assert POSTERIOR_COV[0, 1] / (sd[0] * sd[1]) < -0.999
    assert sd.max() / sd.min() > 1e2
    assert sd.max() / 0.1 > 1e0 and torch.linalg.cond(POSTERIOR_COV) > 1e6


def test_pooled_dense_adaptation_succeeds_where_per_chain_fails():
    """64 chains' warmup draws estimate the dense covariance; one chain's cannot.

    Measured: smallest ESS about 6,700 pooled against 67 per chain (12,800 draws each).
    """
    min_ess = {}
    for mode in ("per_chain", "pooled"):
        kernel = SimpleHMC(
            potential_fn=regression,
            batched_potential=True,
            full_mass=True,
            chain_adaptation=mode,
            # The length these were measured with. Learned per chain, a chain whose dense matrix
            # is still poor needs hundreds of steps, and a batch waits for its longest chain.
            num_steps=10,
        )
        pyro.set_rng_seed(0)
        # Dispersed starts, three posterior standard deviations out.
        spread = torch.linalg.cholesky(POSTERIOR_COV).T * 3
        init = {"beta": POSTERIOR_MEAN + torch.randn(64, 2, dtype=torch.float64) @ spread}
        mcmc = MCMC(
            kernel,
            num_samples=200,
            warmup_steps=150,
            num_chains=64,
            initial_params=init,
            chain_method="vectorized",
            disable_progbar=True,
        )
        mcmc.run()
        beta = mcmc.get_samples(group_by_chain=True)["beta"].numpy()
        min_ess[mode] = float(az.ess(az.convert_to_dataset({"b": beta}))["b"].min())
    assert min_ess["pooled"] > 5 * min_ess["per_chain"], min_ess
    assert min_ess["pooled"] > 2000, min_ess
    assert np.isfinite(list(min_ess.values())).all()
