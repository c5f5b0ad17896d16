"""Pyro features the kernels get through initialize_model: JIT, enumeration, init strategies."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC
from pyro.infer.autoguide import init_to_median, init_to_value

from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC

KERNELS = [RandomWalkMH, MALA, SimpleHMC]


def regression(x, y):
    w = pyro.sample("w", dist.Normal(torch.zeros(3), 1.0).to_event(1))
    sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(x @ w, sigma), obs=y)


def data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=gen)
    return x, x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3 * torch.randn(40, generator=gen)


@pytest.mark.parametrize("cls", KERNELS, ids=lambda c: c.__name__)
def test_jit_compile_gives_the_same_potential_and_runs(cls):
    x, y = data()
    start = {"w": torch.tensor([0.1, 0.2, 0.3]), "sigma": torch.tensor(-0.5)}
    values = []
    for jit in (False, True):
        kernel = cls(regression, jit_compile=jit, ignore_jit_warnings=True)
        kernel.initial_params = start
        kernel.setup(0, x, y)
        q = kernel.layout.flatten(start)
        values.append(kernel.value_and_grad(q) if kernel.uses_gradient else kernel.potential(q))
    plain, jitted = values
    if isinstance(plain, tuple):
        assert torch.allclose(plain[0], jitted[0]) and torch.allclose(plain[1], jitted[1])
    else:
        assert torch.allclose(plain, jitted)
    pyro.set_rng_seed(0)
    mcmc = MCMC(
        cls(regression, jit_compile=True, ignore_jit_warnings=True),
        num_samples=30,
        warmup_steps=30,
        disable_progbar=True,
    )
    mcmc.run(x, y)
    assert torch.isfinite(mcmc.get_samples()["w"]).all()


@pyro.infer.config_enumerate
def mixture(obs):
    weights = pyro.sample("weights", dist.Dirichlet(torch.ones(2)))
    locs = pyro.sample("locs", dist.Normal(torch.tensor([-1.0, 1.0]), 5.0).to_event(1))
    with pyro.plate("data", len(obs)):
        z = pyro.sample("z", dist.Categorical(weights))
        pyro.sample("obs", dist.Normal(locs[z], 1.0), obs=obs)


@pytest.mark.parametrize("cls", KERNELS, ids=lambda c: c.__name__)
def test_discrete_sites_are_enumerated_out(cls):
    obs = torch.cat([torch.full((20,), -3.0), torch.full((20,), 3.0)])
    pyro.set_rng_seed(0)
    kernel = cls(
        mixture,
        max_plate_nesting=1,
        init_strategy=init_to_value(
            values={"locs": torch.tensor([-3.0, 3.0]), "weights": torch.tensor([0.5, 0.5])}
        ),
    )
    mcmc = MCMC(kernel, num_samples=100, warmup_steps=100, disable_progbar=True)
    mcmc.run(obs)
    samples = mcmc.get_samples()
    assert set(samples) == {"weights", "locs"}  # z was summed out, not sampled
    # Both components sit near the two clusters; weights stay on the simplex.
    locs = samples["locs"].mean(0)
    assert abs(locs[0] + 3) < 0.5 and abs(locs[1] - 3) < 0.5, locs
    assert torch.allclose(samples["weights"].sum(-1), torch.ones(100))


@pytest.mark.parametrize("cls", KERNELS, ids=lambda c: c.__name__)
def test_init_strategy_is_used(cls):
    x, y = data()
    kernel = cls(regression, init_strategy=init_to_median)
    pyro.set_rng_seed(0)
    kernel.setup(0, x, y)
    assert torch.allclose(kernel.initial_params["w"], torch.zeros(3), atol=0.2)


def observed_only():
    pyro.sample("y", dist.Normal(0.0, 1.0), obs=torch.tensor(0.3))


@pytest.mark.parametrize("cls", KERNELS, ids=lambda c: c.__name__)
def test_model_without_latent_sites(cls):
    mcmc = MCMC(cls(observed_only), num_samples=5, warmup_steps=5, disable_progbar=True)
    mcmc.run()
    assert mcmc.get_samples() == {}
    assert mcmc.diagnostics()["acceptance rate"]["chain 0"] == 1.0
