"""Numerical faults: a potential that raises, or returns NaN or inf, in part of the space.

A proposal that lands on such a point must be rejected, counted as a divergence (at its
post-warmup index) and the chain must go on; the draws stay finite and inside the support.
Rejecting is also the right thing statistically: the chain then samples the target restricted
to where the potential is valid, which is checked against the truncated normal's mean. A
non-finite potential at the initial point is an error that says what was not finite.
"""

from __future__ import annotations

import math

import arviz as az
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer.autoguide import init_to_value

from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC
from pyro_simplehmc.checks.testing import two_sided_z_threshold
from tests.conftest import run_chains

KERNELS = {
    "SimpleHMC": lambda **kw: SimpleHMC(step_size=0.5, num_steps=4, **kw),
    "MALA": lambda **kw: MALA(step_size=0.8, **kw),
    "RandomWalkMH": lambda **kw: RandomWalkMH(step_size=1.0, **kw),
}

#: The fault region: the first coordinate above this bound.
BOUND = 1.0


def _faulty(kind: str):
    """A standard normal potential on ``{"x": (2,)}`` that fails where ``x[0] > BOUND``."""

    def potential_fn(params):
        x = params["x"]
        u = 0.5 * (x**2).sum()
        if bool(x[0] > BOUND):
            if kind == "raise LinAlgError":
                raise torch.linalg.LinAlgError("not positive definite")
            if kind == "raise ValueError":
                # Distribution validation's words: a numerical fault, not a bug.
                raise ValueError("Expected value within the support, but found invalid values")
            return u + (math.nan if kind == "nan" else math.inf)
        return u

    return potential_fn


@pytest.mark.parametrize("kind", ["raise LinAlgError", "raise ValueError", "nan", "inf"])
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_fault_region_is_rejected_and_counted(kernel, kind, float64):
    num_samples = 600
    mcmc = run_chains(
        KERNELS[kernel](potential_fn=_faulty(kind)),
        {"x": torch.zeros(2)},
        num_samples=num_samples,
        warmup_steps=150,
        seed=0,
    )
    x = mcmc.get_samples()["x"]
    assert torch.isfinite(x).all()
    assert (x[:, 0] <= BOUND).all()

    divergences = mcmc.diagnostics()["divergences"]["chain 0"]
    assert len(divergences) > 0
    assert all(0 <= i < num_samples for i in divergences)
    assert divergences == sorted(set(divergences))

    # What remains is the normal truncated to x0 <= 1, whose mean is -phi(1) / Phi(1).
    phi = math.exp(-0.5 * BOUND**2) / math.sqrt(2 * math.pi)
    truncated_mean = -phi / (0.5 * (1 + math.erf(BOUND / math.sqrt(2))))
    x0 = x[:, 0].numpy()[None]
    z = (x0.mean() - truncated_mean) / float(az.mcse(x0, method="mean"))
    assert abs(z) < two_sided_z_threshold(1e-3), z


def _model_with_fault():
    # A positive scale and a location; the likelihood's scale matrix fails where loc > 1.
    scale = pyro.sample("scale", dist.LogNormal(torch.tensor(0.0), torch.tensor(0.5)))
    loc = pyro.sample("loc", dist.Normal(torch.tensor(0.0), torch.tensor(1.0)))
    if bool(loc > BOUND):
        torch.linalg.cholesky(-torch.eye(2))  # raises LinAlgError
    pyro.sample("obs", dist.Normal(loc, scale), obs=torch.tensor([0.3, -0.2]))


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_model_with_fault_region_keeps_constrained_draws_in_support(kernel, float64):
    mcmc = run_chains(
        KERNELS[kernel](
            model=_model_with_fault,
            init_strategy=init_to_value(
                values={"scale": torch.tensor(1.0), "loc": torch.tensor(0.0)}
            ),
        ),
        None,
        num_samples=150,
        warmup_steps=100,
        seed=1,
    )
    samples = mcmc.get_samples()
    assert torch.isfinite(samples["scale"]).all() and (samples["scale"] > 0).all()
    assert (samples["loc"] <= BOUND).all()


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_potential_at_initial_point_is_a_clear_error(kernel, value, float64):
    def potential_fn(params):
        return 0.5 * (params["x"] ** 2).sum() + value

    with pytest.raises(
        ValueError, match=r"potential energy at the initial parameters is (nan|inf)"
    ):
        run_chains(KERNELS[kernel](potential_fn=potential_fn), {"x": torch.zeros(2)}, num_samples=5)


@pytest.mark.parametrize("kernel", ["SimpleHMC", "MALA"])
def test_non_finite_gradient_at_initial_point_names_the_site(kernel, float64):
    # sqrt(|y|) is finite at 0 but its gradient there is not.
    def potential_fn(params):
        return 0.5 * (params["x"] ** 2).sum() + params["y"].abs().sqrt().sum()

    init = {"x": torch.zeros(2), "y": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"gradient .* not finite .*\['y'\]"):
        run_chains(KERNELS[kernel](potential_fn=potential_fn), init, num_samples=5)
