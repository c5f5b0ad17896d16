"""Pyro's usual tools on runs of this package's kernels, as on a NUTS run: ``get_samples``
(``group_by_chain``), ``pyro.infer.Predictive`` on ``mcmc.get_samples()``, ``MCMC.summary``,
``pyro.infer.mcmc.util.summary`` and ``MCMC.diagnostics``, then ``from_pyro`` with the
predictive draws.

Each kernel runs once through ``pyro.infer.MCMC`` (one chain) and once as a vectorized batch of
three chains (``pyro_simplehmc.MCMC(..., chain_method="vectorized")``). The checks are exact
(the deterministic site is a function of the draw it was computed from), so no Monte-Carlo
tolerance is involved; each is shown to fail on draws put out of order.
"""

from __future__ import annotations

import warnings

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC, NUTS, Predictive
from pyro.infer.mcmc.util import summary

import pyro_simplehmc
from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC, from_pyro
from pyro_simplehmc.mcmc import arviz_compat as compat

Y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
NUM_SAMPLES = 30
LATENT = {"mu", "tau", "theta_trans"}


def eight_schools(y, sigma):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("schools", len(sigma)):
        theta_trans = pyro.sample("theta_trans", dist.Normal(0.0, 1.0))
        theta = pyro.deterministic("theta", mu + tau * theta_trans)
        pyro.sample("y", dist.Normal(theta, sigma), obs=y)


def theta_of(draws):
    """The deterministic site, from draws with any leading shape."""
    return draws["mu"][..., None] + draws["tau"][..., None] * draws["theta_trans"]


KERNELS = {"SimpleHMC": SimpleHMC, "MALA": MALA, "RandomWalkMH": RandomWalkMH}
RUNNERS = ["pyro.infer.MCMC", "vectorized"]
CASES = [(kernel, runner) for kernel in KERNELS for runner in RUNNERS]


def make_run(kernel_name: str, runner: str):
    pyro.set_rng_seed(0)
    kernel = NUTS(eight_schools) if kernel_name == "NUTS" else KERNELS[kernel_name](eight_schools)
    if runner == "vectorized":
        mcmc = pyro_simplehmc.MCMC(
            kernel, num_samples=NUM_SAMPLES, warmup_steps=30, num_chains=3,
            chain_method="vectorized", disable_progbar=True,
        )
    else:
        mcmc = MCMC(kernel, num_samples=NUM_SAMPLES, warmup_steps=30, disable_progbar=True)
    mcmc.run(Y, SIGMA)
    return mcmc


@pytest.fixture(scope="module")
def nuts():
    return make_run("NUTS", "pyro.infer.MCMC")


@pytest.fixture(scope="module", params=CASES, ids=[f"{k}-{r}" for k, r in CASES])
def ours(request):
    kernel, runner = request.param
    return make_run(kernel, runner), (1 if runner == "pyro.infer.MCMC" else 3)


def test_get_samples_as_from_nuts(ours, nuts):
    mcmc, num_chains = ours
    flat, grouped = mcmc.get_samples(), mcmc.get_samples(group_by_chain=True)
    assert set(flat) == set(nuts.get_samples()) == LATENT
    total = num_chains * NUM_SAMPLES
    assert flat["theta_trans"].shape == (total, 8) and flat["mu"].shape == (total,)
    assert grouped["theta_trans"].shape == (num_chains, NUM_SAMPLES, 8)
    assert torch.all(flat["tau"] > 0)  # constrained values, as NUTS gives them
    # The flat draws are the chains one after the other.
    for name in LATENT:
        assert torch.equal(grouped[name].reshape(flat[name].shape), flat[name])
    if num_chains > 1:  # the check sees chains interleaved
        interleaved = grouped["mu"].transpose(0, 1).reshape(-1)
        assert not torch.equal(interleaved, flat["mu"])


def test_predictive_on_our_draws(ours, nuts):
    mcmc, num_chains = ours
    pyro.set_rng_seed(1)
    draws = mcmc.get_samples()
    predicted = Predictive(eight_schools, posterior_samples=draws)(None, SIGMA)
    reference = Predictive(eight_schools, posterior_samples=nuts.get_samples())(None, SIGMA)
    assert set(predicted) == set(reference) == {"y", "theta"}
    assert predicted["y"].shape == (num_chains * NUM_SAMPLES, 8)
    # Predictive conditioned the model on each of our draws: theta is that draw's.
    torch.testing.assert_close(predicted["theta"], theta_of(draws))
    with pytest.raises(AssertionError):
        torch.testing.assert_close(predicted["theta"], theta_of(draws).roll(1, 0))

    # from_pyro files them by chain and draw, next to the posterior draw they came from.
    data = from_pyro(mcmc, posterior_predictive=predicted)
    pp = compat.group(data, "posterior_predictive")
    assert pp["y"].shape == (num_chains, NUM_SAMPLES, 8)
    np.testing.assert_allclose(
        pp["theta"].values, compat.group(data, "posterior")["theta"].values, rtol=1e-6
    )


def test_summary_and_diagnostics(ours, nuts, capsys):
    mcmc, num_chains = ours
    mcmc.summary()
    printed = capsys.readouterr().out
    for row in ("mu", "tau", "theta_trans[0]", "theta_trans[7]", "Number of divergences"):
        assert row in printed

    grouped = mcmc.get_samples(group_by_chain=True)
    table = summary(grouped)
    reference = summary(nuts.get_samples(group_by_chain=True))
    assert set(table) == set(reference) == LATENT
    assert list(table["mu"]) == list(reference["mu"])  # the same statistics
    torch.testing.assert_close(table["theta_trans"]["mean"], grouped["theta_trans"].mean((0, 1)))

    diagnostics = mcmc.diagnostics()
    chains = {f"chain {i}" for i in range(num_chains)}
    assert set(nuts.diagnostics()) <= set(diagnostics)  # n_eff, r_hat, divergences, ...
    for name in ("divergences", "acceptance rate"):
        assert set(diagnostics[name]) == chains
    torch.testing.assert_close(diagnostics["mu"]["n_eff"], table["mu"]["n_eff"])

    # ArviZ's summary of the same draws has the same means.
    arviz_table = compat.summary(from_pyro(mcmc, log_likelihood=False), var_names=["mu"])
    assert arviz_table.loc["mu", "mean"] == pytest.approx(float(grouped["mu"].mean()), rel=1e-5)


def test_prior_predictive_needs_no_run():
    """``Predictive(model, num_samples=...)`` and ``from_pyro(prior=...)``, the first step of a
    workflow, before any kernel has run."""
    pyro.set_rng_seed(2)
    prior = Predictive(eight_schools, num_samples=20)(None, SIGMA)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = from_pyro(prior=prior)
    assert set(compat.group(data, "prior").data_vars) == LATENT | {"y", "theta"}
    # Predictive pads mu and tau with an axis of size 1 (the plate's): (20, 1).
    theta = prior["mu"] + prior["tau"] * prior["theta_trans"]
    np.testing.assert_allclose(compat.group(data, "prior")["theta"].values[0], theta, rtol=1e-6)
