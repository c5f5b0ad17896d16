r"""Targets with known truth: the chapter's examples as Pyro models.

Each :class:`Target` bundles a Pyro model without arguments, the same density as a potential
function on the unconstrained dict of sites (so that kernels can be run on either), a valid
starting point, and the truth to validate draws against: the mean and the marginal variance of
every coordinate of the flattened draws, and the covariance where it is known.

All the targets here live on the real line, so the constrained and the unconstrained spaces are
the same and the potential is exactly :math:`U(x) = -\log \pi(x)`.

====================================  ===================================================
name                                   target
====================================  ===================================================
``correlated_gaussian``                2-D Gaussian, unit variances, correlation ``rho``
``diagonal_gaussian``                  :math:`D` independent Gaussians, variances evenly
                                       spaced in ``[low, high]`` (the scaling family)
``ill_conditioned_gaussian``           dense Gaussian with a random rotation and a given
                                       condition number
``funnel``                             Neal's funnel, truth in closed form
``logistic_regression``                simulated data; truth from a stored NUTS run
====================================  ===================================================

Example::

    >>> target = get_target("correlated_gaussian", rho=0.9)
    >>> kernel = SimpleHMC(potential_fn=target.potential_fn)
    >>> mcmc = MCMC(kernel, num_samples=1000, warmup_steps=500,
    ...             initial_params=target.initial_params)
    >>> mcmc.run()
    >>> draws = target.flatten(mcmc.get_samples())  # shape (1000, 2)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from torch import Tensor

from ..core import validation as check

#: The file (in ``pyro_simplehmc/data``) holding the logistic regression's data and reference.
LOGREG_REFERENCE = "logreg_reference.json"


@dataclass(frozen=True)
class Target:
    r"""A target distribution with known truth.

    :ivar name: a short name, as accepted by :func:`get_target`.
    :ivar model: a Pyro model without arguments; its latent sites hold the target.
    :ivar potential_fn: :math:`U = -\log \pi` on a dict of unconstrained sites (the model's
        names), as taken by :class:`pyro.infer.HMC`; it broadcasts over leading dimensions.
    :ivar initial_params: a valid unconstrained starting point.
    :ivar mean: the true mean of the flattened draws, shape ``(D,)``.
    :ivar var: the true marginal variances, shape ``(D,)``.
    :ivar cov: the true covariance, shape ``(D, D)``, where known.
    :ivar dim: :math:`D`.
    :ivar mean_se: the standard error of :attr:`mean` when the truth is itself an estimate (a
        reference run), else ``None`` (exact).
    :ivar var_se: the same for :attr:`var`.
    :ivar description: one line for reports.
    """

    name: str
    model: Callable[[], None]
    potential_fn: Callable[[dict[str, Tensor]], Tensor]
    initial_params: dict[str, Tensor]
    mean: Tensor
    var: Tensor
    cov: Tensor | None
    dim: int
    mean_se: Tensor | None = None
    var_se: Tensor | None = None
    description: str = ""
    sites: tuple[str, ...] = field(default=("x",))

    def flatten(self, samples: Mapping[str, Tensor], sample_dims: int = 1) -> Tensor:
        """Concatenate the sites of ``samples`` into draws of shape ``batch + (D,)``.

        :param samples: draws keyed by site name, each of shape ``batch + site shape`` (as from
            :meth:`pyro.infer.MCMC.get_samples`).
        :param sample_dims: how many leading dimensions are draws (1 for ``get_samples()``, 2
            for ``get_samples(group_by_chain=True)``).
        """
        parts = []
        for name in self.sites:
            value = samples[name]
            batch = value.shape[:sample_dims]
            parts.append(value.reshape(*batch, -1))
        return torch.cat(parts, dim=-1)

    def log_density(self, points: Tensor) -> Tensor:
        r""":math:`\log \pi` (up to a constant) at flat points of shape ``batch + (D,)``."""
        params, start = {}, 0
        for name in self.sites:
            size = self.initial_params[name].numel()
            shape = self.initial_params[name].shape
            params[name] = points[..., start : start + size].reshape(*points.shape[:-1], *shape)
            start += size
        return -self.potential_fn(params)


# ---------------------------------------------------------------------------- helpers


def _from_distribution(
    name: str,
    distribution: dist.Distribution,
    mean: Tensor,
    var: Tensor,
    cov: Tensor | None,
    description: str,
) -> Target:
    """A target whose single site ``"x"`` is ``distribution`` (an event of shape ``(D,)``)."""

    def model() -> None:
        pyro.sample("x", distribution)

    def potential_fn(params: dict[str, Tensor]) -> Tensor:
        return -distribution.log_prob(params["x"])

    dim = mean.shape[0]
    # Away from the mode, so that a chain has to find the mass rather than start inside it.
    initial = {"x": torch.full((dim,), 0.5, dtype=mean.dtype)}
    return Target(name, model, potential_fn, initial, mean, var, cov, dim, None, None, description)


def _check_dim(name: str, dim: int, low: int = 1) -> int:
    return check.int_at_least(name, dim, low)


# ---------------------------------------------------------------------------- the targets


def correlated_gaussian(rho: float = 0.95, dtype: torch.dtype = torch.float64) -> Target:
    r"""The chapter's 2-D Gaussian: zero mean, unit variances, correlation ``rho``.

    :param rho: the correlation, in :math:`(-1, 1)`.
    :param dtype: the floating point type of every tensor.
    """
    rho = check.real_in_open_interval("rho", rho, -1.0, 1.0)
    cov = torch.tensor([[1.0, rho], [rho, 1.0]], dtype=dtype)
    mean = torch.zeros(2, dtype=dtype)
    distribution = dist.MultivariateNormal(mean, covariance_matrix=cov)
    return _from_distribution(
        "correlated_gaussian",
        distribution,
        mean,
        torch.ones(2, dtype=dtype),
        cov,
        f"2-D Gaussian, unit variances, correlation {rho}",
    )


def diagonal_gaussian(
    dim: int, low: float = 0.1, high: float = 1.0, dtype: torch.dtype = torch.float64
) -> Target:
    r"""The scaling family: :math:`D` independent Gaussians, variances ``linspace(low, high, D)``.

    :param dim: :math:`D \ge 1`.
    :param low: the smallest variance (of the first coordinate), positive.
    :param high: the largest variance (of the last coordinate), at least ``low``.
    :param dtype: the floating point type of every tensor.
    """
    _check_dim("dim", dim)
    low = check.positive_finite("low", low)
    high = check.real_at_least("high", high, low)
    var = torch.linspace(low, high, dim, dtype=dtype)
    mean = torch.zeros(dim, dtype=dtype)
    distribution = dist.Normal(mean, var.sqrt()).to_event(1)
    return _from_distribution(
        "diagonal_gaussian",
        distribution,
        mean,
        var,
        torch.diag(var),
        f"{dim}-D diagonal Gaussian, variances from {low} to {high}",
    )


def ill_conditioned_gaussian(
    dim: int = 10,
    condition_number: float = 1000.0,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> Target:
    r"""A dense Gaussian :math:`\mathcal{N}(0, Q \Lambda Q^\top)` with a random rotation :math:`Q`.

    The eigenvalues :math:`\Lambda` are geometrically spaced from 1 down to
    ``1 / condition_number``, so a diagonal mass matrix cannot undo the correlation and a
    dense one can.

    :param dim: :math:`D \ge 2`.
    :param condition_number: ratio of the largest to the smallest eigenvalue, at least 1.
    :param seed: seed of the rotation (a private generator: the global RNG is untouched).
    :param dtype: the floating point type of every tensor.
    """
    _check_dim("dim", dim, low=2)
    condition_number = check.real_at_least("condition_number", condition_number, 1.0)
    seed = check.nonnegative_int("seed", seed)
    generator = torch.Generator().manual_seed(seed)
    # QR of a Gaussian matrix, with the signs fixed, is a uniformly random rotation.
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    eigenvalues = torch.logspace(0.0, -math.log10(condition_number), dim, dtype=torch.float64)
    cov = (q * eigenvalues) @ q.T
    cov = (0.5 * (cov + cov.T)).to(dtype)
    mean = torch.zeros(dim, dtype=dtype)
    distribution = dist.MultivariateNormal(mean, covariance_matrix=cov)
    return _from_distribution(
        "ill_conditioned_gaussian",
        distribution,
        mean,
        torch.diagonal(cov).clone(),
        cov,
        f"{dim}-D dense Gaussian, condition number {condition_number:g}",
    )


class NealFunnel(dist.TorchDistribution):
    r"""Neal's funnel as one vector: :math:`v = x_0 \sim \mathcal{N}(0, 3^2)` and
    :math:`x_i \mid v \sim \mathcal{N}(0, e^{v})` for :math:`i = 1, \dots, D-1`.

    :param dim: :math:`D \ge 2`.
    :param dtype: the floating point type of the draws.
    """

    arg_constraints: dict = {}  # noqa: RUF012 (Pyro's convention: a class attribute)
    support = constraints.real_vector

    def __init__(self, dim: int, dtype: torch.dtype = torch.float64, validate_args=None):
        self.dim = dim
        self.dtype = dtype
        super().__init__(torch.Size(), torch.Size([dim]), validate_args=validate_args)

    def sample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        shape = torch.Size(sample_shape)
        v = 3.0 * torch.randn(*shape, 1, dtype=self.dtype)
        x = torch.randn(*shape, self.dim - 1, dtype=self.dtype) * torch.exp(0.5 * v)
        return torch.cat([v, x], dim=-1)

    def log_prob(self, value: Tensor) -> Tensor:
        v, x = value[..., 0], value[..., 1:]
        log_p_v = -0.5 * (v / 3.0) ** 2 - math.log(3.0) - 0.5 * math.log(2 * math.pi)
        # log N(x_i; 0, e^v) = -x_i^2 e^{-v} / 2 - v / 2 - log(2 pi) / 2, summed over D - 1 of them
        log_p_x = (
            -0.5 * (x**2).sum(-1) * torch.exp(-v)
            - 0.5 * (self.dim - 1) * v
            - 0.5 * (self.dim - 1) * math.log(2 * math.pi)
        )
        return log_p_v + log_p_x


def funnel(dim: int = 10, dtype: torch.dtype = torch.float64) -> Target:
    r"""Neal's funnel in :math:`D` dimensions: one site ``"x"`` whose ``x[0]`` is :math:`v`.

    The truth is in closed form: every coordinate has mean 0, :math:`\operatorname{Var} v = 9`,
    and :math:`\operatorname{Var} x_i = \mathbb{E}[e^{v}] = e^{9/2} \approx 90.0`; the coordinates
    are uncorrelated (though far from independent). The neck, where :math:`v` is very negative,
    needs step sizes that the mouth does not: fixed-step kernels miss it and diverge there.

    :param dim: :math:`D \ge 2` (Neal's original has :math:`D = 10`).
    :param dtype: the floating point type of every tensor.
    """
    _check_dim("dim", dim, low=2)
    var = torch.full((dim,), math.exp(4.5), dtype=dtype)
    var[0] = 9.0
    mean = torch.zeros(dim, dtype=dtype)
    target = _from_distribution(
        "funnel",
        NealFunnel(dim, dtype),
        mean,
        var,
        torch.diag(var),
        f"Neal's funnel, D={dim}",
    )
    return target


def logistic_regression_model(features: Tensor, labels: Tensor, prior_scale: float = 1.0):
    r"""A Bayesian logistic regression: :math:`\beta \sim \mathcal{N}(0, s^2 I)`,
    :math:`y_n \sim \mathrm{Bernoulli}(\sigma(X_n \beta))`.

    The intercept is the coefficient of a column of ones in ``features``.

    :returns: ``(model, potential_fn)``, the model without arguments and its potential on
        ``{"x": beta}``.
    """
    dim = features.shape[-1]
    prior = dist.Normal(torch.zeros(dim, dtype=features.dtype), prior_scale).to_event(1)

    def model() -> None:
        beta = pyro.sample("x", prior)
        with pyro.plate("data", features.shape[0]):
            pyro.sample("y", dist.Bernoulli(logits=features @ beta), obs=labels)

    log_norm = dim * (math.log(prior_scale) + 0.5 * math.log(2 * math.pi))

    def potential_fn(params: dict[str, Tensor]) -> Tensor:
        # Written out rather than through the distributions: this runs once per gradient and
        # the distributions' argument handling would cost more than the arithmetic.
        beta = params["x"]
        logits = (features @ beta.unsqueeze(-1)).squeeze(-1)  # batch + (N,)
        neg_log_lik = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels.expand_as(logits), reduction="none"
        ).sum(-1)
        neg_log_prior = 0.5 * ((beta / prior_scale) ** 2).sum(-1) + log_norm
        return neg_log_lik + neg_log_prior

    return model, potential_fn


def simulate_logistic_data(
    num_data: int = 100, dim: int = 5, seed: int = 0, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor, Tensor]:
    """Simulated data for :func:`logistic_regression`: ``(features, labels, true_beta)``.

    The first column of ``features`` is ones (the intercept). A private generator is used.
    """
    generator = torch.Generator().manual_seed(seed)
    covariates = torch.randn(num_data, dim - 1, generator=generator, dtype=dtype)
    features = torch.cat([torch.ones(num_data, 1, dtype=dtype), covariates], dim=-1)
    true_beta = torch.randn(dim, generator=generator, dtype=dtype)
    probs = torch.sigmoid(features @ true_beta)
    labels = (torch.rand(num_data, generator=generator, dtype=dtype) < probs).to(dtype)
    return features, labels, true_beta


def load_logreg_reference() -> dict:
    """The stored logistic-regression data and NUTS reference (see
    ``scripts/make_logreg_reference.py``)."""
    text = resources.files("pyro_simplehmc").joinpath("data", LOGREG_REFERENCE).read_text()
    return json.loads(text)


def logistic_regression(dtype: torch.dtype = torch.float64) -> Target:
    r"""Logistic regression on simulated data; the truth is a long stored NUTS reference run.

    The data (100 points, an intercept and 4 covariates, seed 0) are stored with the reference so
    that the truth always matches them. Because the truth is itself an estimate, :attr:`Target.
    mean_se` and :attr:`Target.var_se` carry its Monte-Carlo standard errors.
    """
    ref = load_logreg_reference()
    features = torch.tensor(ref["data"]["features"], dtype=dtype)
    labels = torch.tensor(ref["data"]["labels"], dtype=dtype)
    model, potential_fn = logistic_regression_model(features, labels, ref["prior_scale"])
    dim = features.shape[1]
    summary = ref["reference"]
    return Target(
        name="logistic_regression",
        model=model,
        potential_fn=potential_fn,
        initial_params={"x": torch.zeros(dim, dtype=dtype)},
        mean=torch.tensor(summary["mean"], dtype=dtype),
        var=torch.tensor(summary["var"], dtype=dtype),
        cov=torch.tensor(summary["cov"], dtype=dtype),
        dim=dim,
        mean_se=torch.tensor(summary["mean_se"], dtype=dtype),
        var_se=torch.tensor(summary["var_se"], dtype=dtype),
        description=f"logistic regression, {features.shape[0]} simulated points, D={dim}",
    )


#: The targets by name.
TARGETS: dict[str, Callable[..., Target]] = {
    "correlated_gaussian": correlated_gaussian,
    "diagonal_gaussian": diagonal_gaussian,
    "ill_conditioned_gaussian": ill_conditioned_gaussian,
    "funnel": funnel,
    "logistic_regression": logistic_regression,
}


def get_target(name: str, **kwargs) -> Target:
    """The target called ``name`` (``-`` and ``_`` are interchangeable), built with ``kwargs``.

    :raises ValueError: for an unknown name, listing the known ones.
    """
    key = str(name).replace("-", "_")
    if key not in TARGETS:
        raise ValueError(f"target: unknown target {name!r}; choose one of {sorted(TARGETS)}")
    try:
        return TARGETS[key](**kwargs)
    except TypeError as error:  # an option this target does not take, e.g. dim for a 2-D one
        raise ValueError(f"target {key!r}: {error}") from error
