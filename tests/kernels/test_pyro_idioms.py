"""Pyro's own idioms work unchanged with our kernels (each a defect that once failed)."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC
from pyro.infer.mcmc.util import initialize_model

from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC

KERNELS = [SimpleHMC, MALA, RandomWalkMH]


def normal_model():
    pyro.sample("x", dist.Normal(0.0, 1.0))


def no_latent_model(data):
    pyro.sample("obs", dist.Normal(0.0, 1.0), obs=data)


@pytest.mark.parametrize("cls", KERNELS, ids=lambda c: c.__name__)
def test_init_strategy_none_means_the_default(cls):
    mcmc = MCMC(cls(normal_model, init_strategy=None), num_samples=5, warmup_steps=5,
                disable_progbar=True)
    mcmc.run()
    assert mcmc.get_samples()["x"].shape == (5,)


@pytest.mark.parametrize("cls", KERNELS, ids=lambda c: c.__name__)
def test_step_size_none_means_the_default(cls):
    kernel = cls(normal_model, step_size=None)
    assert kernel.step_size == 1.0


@pytest.mark.parametrize("cls", KERNELS, ids=lambda c: c.__name__)
def test_potential_fn_of_a_model_without_latent_sites(cls):
    """``initialize_model`` gives ``init == {}`` here; Pyro's HMC runs, and so must we."""
    init, potential_fn, transforms, _ = initialize_model(no_latent_model, (torch.tensor(0.5),))
    assert init == {}
    calls = []
    mcmc = MCMC(
        cls(potential_fn=potential_fn, transforms=transforms),
        num_samples=4,
        warmup_steps=3,
        initial_params=init,
        hook_fn=lambda kernel, params, stage, i: calls.append(stage),
        disable_progbar=True,
    )
    mcmc.run()
    assert len(calls) == 7


@pytest.mark.parametrize("cls", KERNELS, ids=lambda c: c.__name__)
def test_diagnostics_after_cleanup_and_metric_before_setup(cls):
    kernel = cls(normal_model)
    assert kernel.metric is None and kernel.inverse_mass_matrix is None
    mcmc = MCMC(kernel, num_samples=5, warmup_steps=5, disable_progbar=True)
    mcmc.run()  # ends with kernel.cleanup()
    diagnostics = kernel.diagnostics()
    assert diagnostics["gradient evaluations"]["sampling"] >= 0
    assert kernel.metric is not None


def test_a_bug_in_a_potential_fn_at_setup_keeps_its_own_message():
    def buggy(params):
        raise ValueError("operands could not be broadcast together")

    kernel = SimpleHMC(potential_fn=buggy)
    kernel.initial_params = {"x": torch.zeros(2)}
    with pytest.raises(ValueError, match="could not be broadcast"):
        kernel.setup(10)


def test_a_bug_in_the_model_during_sampling_is_raised_not_rejected():
    def model():
        x = pyro.sample("x", dist.Normal(0.0, 1.0))
        if x > 1.5:  # a wrong branch the chain reaches
            raise ValueError("shapes (3,) and (4,) not aligned")

    pyro.set_rng_seed(0)
    kernel = MALA(model, init_strategy=pyro.infer.autoguide.init_to_value(values={"x": 0.0}))
    mcmc = MCMC(kernel, num_samples=500, warmup_steps=100, disable_progbar=True)
    with pytest.raises(ValueError, match="not aligned"):
        mcmc.run()
