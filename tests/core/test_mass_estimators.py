"""The inverse-mass-matrix estimators on exact draws of Gaussians, where the right answer is known:
the gradient-based diagonal recovers the variances of independent coordinates, the low-rank one
the covariance of strongly correlated ones, and Stan's is what it was."""

import pytest
import torch

from pyro_simplehmc.core.mass_estimators import (
    FisherEstimator,
    LowRankEstimator,
    StanEstimator,
    make_estimator,
    spd_geometric_mean,
)
from pyro_simplehmc.core.welford import BatchWelford

DTYPE = torch.float64


def gaussian_draws(cov, n, chains=2, seed=0):
    """Exact draws ``(n, C, d)`` and the gradients of the log density there."""
    torch.manual_seed(seed)
    chol = torch.linalg.cholesky(cov)
    x = torch.randn(n, chains, cov.shape[0], dtype=DTYPE) @ chol.T
    return x, -x @ torch.linalg.inv(cov)


def feed(estimator, x, g):
    for xi, gi in zip(x, g, strict=True):
        estimator.update(xi, gi)
    return estimator.estimate()


@pytest.mark.parametrize("pooled", [False, True])
def test_fisher_diagonal_recovers_independent_variances(pooled):
    var = torch.tensor([0.01, 1.0, 25.0], dtype=DTYPE)
    x, g = gaussian_draws(torch.diag(var), 4000)
    estimate = feed(FisherEstimator(3, pooled), x, g)
    assert estimate.shape == (1 if pooled else 2, 3)
    torch.testing.assert_close(estimate / var, torch.ones_like(estimate), atol=0.06, rtol=0)


def test_fisher_diagonal_needs_few_draws_where_the_draws_alone_do_not():
    # Ten draws of a 50-D Gaussian: the sample variances scatter by a factor of ~2, and the
    # gradient-based estimate far less, as gradients and draws err in opposite directions.
    var = torch.logspace(-2, 2, 50, dtype=DTYPE)
    x, g = gaussian_draws(torch.diag(var), 10, chains=1, seed=1)
    fisher = feed(FisherEstimator(50, pooled=False), x, g)[0]
    stan = feed(StanEstimator(50, dense=False, pooled=False), x, g)[0]
    spread = {name: float((est / var).log().std()) for name, est in
              {"fisher": fisher, "stan": stan}.items()}  # fmt: skip
    assert spread["fisher"] < 0.5 * spread["stan"], spread


def test_stan_estimator_is_the_windowed_covariance():
    x, g = gaussian_draws(torch.eye(4, dtype=DTYPE), 50)
    welford = BatchWelford(4, dense=True, pooled=False)
    for xi in x:
        welford.update(xi)
    torch.testing.assert_close(feed(StanEstimator(4, dense=True, pooled=False), x, g),
                               welford.covariance())  # fmt: skip


def test_geometric_mean_solves_its_equation():
    torch.manual_seed(2)
    a, b = torch.randn(2, 3, 5, 5, dtype=DTYPE)
    a, b = a @ a.mT + torch.eye(5), b @ b.mT + torch.eye(5)
    sigma = spd_geometric_mean(a, b)
    torch.testing.assert_close(sigma @ b @ sigma, a)
    torch.testing.assert_close(sigma, sigma.mT)


@pytest.mark.parametrize("pooled", [False, True])
def test_low_rank_recovers_a_strong_correlation(pooled):
    # Unit variances, one strongly correlated pair among independent coordinates.
    cov = torch.eye(6, dtype=DTYPE)
    cov[0, 1] = cov[1, 0] = 0.99
    x, g = gaussian_draws(cov, 400)
    estimate = feed(LowRankEstimator(6, pooled, rank=2), x, g)
    assert estimate.shape == (1 if pooled else 2, 6, 6)
    # What matters for sampling: the target whitened by the estimate is near the identity.
    chol = torch.linalg.cholesky(estimate)
    whitened = torch.linalg.solve_triangular(chol, cov.expand_as(estimate), upper=False)
    whitened = torch.linalg.solve_triangular(chol, whitened.mT, upper=False)
    condition = torch.linalg.eigvalsh(whitened)
    assert float((condition[..., -1] / condition[..., 0]).max()) < 1.5, condition
    # The diagonal alone leaves the pair's condition number, (1 + 0.99) / (1 - 0.99) ~ 200.
    fisher = feed(FisherEstimator(6, pooled), x, g)
    diag_whitened = cov / torch.sqrt(fisher.unsqueeze(-1) * fisher.unsqueeze(-2))
    values = torch.linalg.eigvalsh(diag_whitened)
    assert float((values[..., -1] / values[..., 0]).min()) > 100


def test_low_rank_leaves_independent_coordinates_diagonal():
    var = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=DTYPE)
    x, g = gaussian_draws(torch.diag(var), 2000)
    estimate = feed(LowRankEstimator(4, pooled=True, rank=4), x, g)[0]
    torch.testing.assert_close(torch.diagonal(estimate) / var, torch.ones(4, dtype=DTYPE),
                               atol=0.1, rtol=0)  # fmt: skip
    off = estimate - torch.diag(torch.diagonal(estimate))
    assert float(off.abs().max()) < 0.1


def test_fisher_refuses_a_dense_block():
    with pytest.raises(ValueError, match='mass_estimator="fisher" estimates a diagonal'):
        make_estimator("fisher", 3, dense=True, pooled=False, rank=None)
