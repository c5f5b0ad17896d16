"""The targets: model and potential agree, and the stated truth is the truth."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer.mcmc.util import initialize_model

from pyro_simplehmc.checks import targets
from pyro_simplehmc.checks.targets import get_target

SMALL = {
    "correlated_gaussian": {},
    "diagonal_gaussian": {"dim": 5},
    "ill_conditioned_gaussian": {"dim": 4, "condition_number": 100.0},
    "funnel": {"dim": 4},
    "logistic_regression": {},
}


@pytest.fixture(params=sorted(SMALL))
def target(request):
    return get_target(request.param, **SMALL[request.param])


def test_fields_are_consistent(target):
    d = target.dim
    assert target.mean.shape == (d,) and target.var.shape == (d,)
    assert bool((target.var > 0).all())
    if target.cov is not None:
        assert target.cov.shape == (d, d)
        torch.testing.assert_close(torch.diagonal(target.cov), target.var)
        torch.testing.assert_close(target.cov, target.cov.T)
    assert target.flatten(target.initial_params, sample_dims=0).shape == (d,)
    assert math.isfinite(float(target.potential_fn(target.initial_params)))


def test_potential_is_the_models_potential(target):
    # The potential that Pyro builds from the model is the target's potential, at any point.
    _, model_potential, _, _ = initialize_model(target.model)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(target.dim, generator=generator, dtype=torch.float64)
        params = {"x": x}
        torch.testing.assert_close(target.potential_fn(params), model_potential(params))


def test_potential_broadcasts_and_log_density_matches(target):
    points = torch.randn(3, 2, target.dim, dtype=torch.float64)
    batched = target.log_density(points)
    assert batched.shape == (3, 2)
    one = -target.potential_fn({"x": points[1, 0]})
    torch.testing.assert_close(batched[1, 0], one)


@pytest.mark.parametrize(
    "name", ["correlated_gaussian", "diagonal_gaussian", "ill_conditioned_gaussian"]
)
def test_gaussian_truth_from_exact_draws(name):
    # Independent draws from the model's own distribution: the stated mean and variance must
    # hold within 4 standard errors (exact draws, so the SEs are the i.i.d. ones).
    target = get_target(name, **SMALL[name])
    pyro.set_rng_seed(0)
    n = 20_000
    trace = pyro.poutine.trace(pyro.plate("draws", n, dim=-1)(target.model)).get_trace()
    x = trace.nodes["x"]["value"]
    assert x.shape == (n, target.dim)
    mean_z = (x.mean(0) - target.mean) / (target.var / n).sqrt()
    var_z = (x.var(0) - target.var) / (target.var * math.sqrt(2.0 / n))
    assert float(mean_z.abs().max()) < 4 and float(var_z.abs().max()) < 4
    if target.cov is not None:
        torch.testing.assert_close(torch.cov(x.T), target.cov, atol=0.05, rtol=0.05)


def test_diagonal_gaussian_variances_are_evenly_spaced():
    target = targets.diagonal_gaussian(4, low=0.2, high=0.8)
    torch.testing.assert_close(target.var, torch.tensor([0.2, 0.4, 0.6, 0.8], dtype=torch.float64))


def test_ill_conditioned_has_its_condition_number_and_is_dense():
    target = targets.ill_conditioned_gaussian(6, condition_number=500.0, seed=3)
    eigenvalues = torch.linalg.eigvalsh(target.cov)
    assert float(eigenvalues.max() / eigenvalues.min()) == pytest.approx(500.0, rel=1e-6)
    off_diagonal = target.cov - torch.diag(target.var)
    assert float(off_diagonal.abs().max()) > 0.05
    again = targets.ill_conditioned_gaussian(6, condition_number=500.0, seed=3)
    torch.testing.assert_close(target.cov, again.cov)


def test_funnel_density_is_the_hierarchical_one():
    funnel = targets.funnel(dim=4)
    x = torch.tensor([0.7, -0.3, 1.5, 0.2], dtype=torch.float64)
    v, rest = x[0], x[1:]
    expected = (
        dist.Normal(0.0, 3.0).log_prob(v) + dist.Normal(0.0, torch.exp(v / 2)).log_prob(rest).sum()
    )
    torch.testing.assert_close(-funnel.potential_fn({"x": x}), expected)


def test_funnel_sampler_and_truth():
    # v ~ N(0, 9) and x_i / exp(v / 2) ~ N(0, 1): the closed-form truth Var x_i = E[e^v] = e^{9/2}.
    torch.manual_seed(0)
    n = 20_000
    draws = targets.NealFunnel(4).sample((n,))
    v, x = draws[:, 0], draws[:, 1:]
    assert abs(float(v.var()) - 9.0) < 4 * 9.0 * math.sqrt(2.0 / n)
    standardised = x / torch.exp(v / 2).unsqueeze(-1)
    assert float((standardised.var(0) - 1).abs().max()) < 4 * math.sqrt(2.0 / n)
    assert float(targets.funnel(4).var[1]) == pytest.approx(math.exp(4.5))


def test_logistic_reference_matches_its_data_and_seed():
    ref = targets.load_logreg_reference()
    features, labels, _ = targets.simulate_logistic_data(
        len(ref["data"]["labels"]), len(ref["reference"]["mean"]), seed=ref["data"]["seed"]
    )
    torch.testing.assert_close(features, torch.tensor(ref["data"]["features"], dtype=torch.float64))
    torch.testing.assert_close(labels, torch.tensor(ref["data"]["labels"], dtype=torch.float64))
    target = targets.logistic_regression()
    assert max(ref["reference"]["r_hat"]) < 1.01
    # The reference is precise: its standard errors are small next to the posterior's spread.
    assert bool((target.mean_se < 0.02 * target.var.sqrt()).all())


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: get_target("nope"), "unknown target"),
        (lambda: targets.correlated_gaussian(rho=1.0), "rho"),
        (lambda: targets.diagonal_gaussian(0), "dim"),
        (lambda: targets.diagonal_gaussian(3, low=0.0), "low"),
        (lambda: targets.ill_conditioned_gaussian(3, condition_number=0.5), "condition_number"),
        (lambda: targets.funnel(dim=1), "dim"),
        # Through _validation (issue 12): each names its argument.
        (lambda: targets.correlated_gaussian(rho="a"), "rho must be a number"),
        (lambda: targets.diagonal_gaussian(3, low=1.0, high=0.5), "high must be"),
        (lambda: targets.diagonal_gaussian(2.5), "dim must be an integer"),
        (lambda: targets.ill_conditioned_gaussian(3, seed=-1), "seed"),
        (lambda: get_target("correlated_gaussian", dim=3), "target 'correlated_gaussian'"),
    ],
)
def test_bad_arguments_raise_value_error(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def test_get_target_accepts_hyphens_and_lists_names():
    assert get_target("correlated-gaussian").name == "correlated_gaussian"
    with pytest.raises(ValueError, match="funnel"):
        get_target("banana")
