"""``kernels/_pyro_compat.py``: each private name of Pyro the package uses, exercised as it is
used, so that a Pyro release that renames or changes one fails here, by name."""

from __future__ import annotations

import logging

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.mcmc.logger import ProgressBar, initialize_logger
from pyro.ops.integrator import register_exception_handler

from pyro_simplehmc import SimpleHMC
from pyro_simplehmc.kernels import _pyro_compat as compat
from pyro_simplehmc.kernels.evaluation import is_numerical_error


def model(data):
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("data", len(data)):
        pyro.sample("obs", dist.Normal(mu, 1.0), obs=data)


DATA = torch.tensor([0.5, -0.2, 1.1])


class Flaky(Exception):
    pass


def test_numerical_error_handlers_are_pyros_registry():
    # Pyro's own handler: a singular matrix is a numerical fault, not a bug.
    assert any(h(RuntimeError("linalg.cholesky: The factorization could not be completed "
                              "because the input is not positive-definite"))
               for h in compat.numerical_error_handlers())  # fmt: skip
    # One registered through Pyro's public API is consulted as well.
    assert not is_numerical_error(Flaky("x"))
    register_exception_handler("test_flaky", lambda e: isinstance(e, Flaky))
    try:
        assert is_numerical_error(Flaky("x"))
    finally:
        register_exception_handler("test_flaky", lambda e: False, warn_on_overwrite=False)


def test_sequential_sampler_runs_chains_one_after_the_other():
    kernel = SimpleHMC(model, num_steps=3)
    sampler = compat.sequential_sampler(kernel, 5, 5, 2, True)
    assert compat.is_sequential_sampler(sampler)
    chains = [chain for _, chain in sampler.run(DATA)]
    # Per chain: the structure, 5 draws, the diagnostics.
    assert chains == [0] * 7 + [1] * 7


def test_logging_hook_calls_the_users_hook():
    calls = []
    progress_bar = ProgressBar(1, 1, disable=True)
    logger = initialize_logger(logging.getLogger("pyro.infer.mcmc"), "", progress_bar)

    class Kernel:
        def logging(self):
            return {"step size": "1"}

    hook = compat.logging_hook(logger, progress_bar, lambda *a: calls.append(a))
    kernel = Kernel()
    hook(kernel, {"x": 1}, "Warmup", 0)
    progress_bar.close()
    assert calls == [(kernel, {"x": 1}, "Warmup", 0)]


def test_a_finished_runs_results_are_where_pyro_keeps_them():
    pyro.set_rng_seed(0)
    run = MCMC(NUTS(model), num_samples=10, warmup_steps=5, disable_progbar=True)
    assert compat.mcmc_samples(run) is None and compat.mcmc_model_args(run) is None
    run.run(DATA)
    assert compat.mcmc_samples(run)["mu"].shape == (1, 10)
    args, kwargs = compat.mcmc_model_args(run)
    assert args[0] is DATA and kwargs == {}
    assert "divergences" in compat.mcmc_chain_diagnostics(run)[0]
    # ... and what is stored there is what Pyro's own methods read.
    other = MCMC(NUTS(model), num_samples=10, warmup_steps=5, disable_progbar=True)
    compat.store_mcmc_run(other, {"mu": torch.zeros(2, 10)}, [{"divergences": []}] * 2,
                          (DATA,), {})  # fmt: skip
    assert other.get_samples()["mu"].shape == (20,)
    assert other.get_samples(group_by_chain=True)["mu"].shape == (2, 10)

