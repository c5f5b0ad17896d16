r"""Statistical checks for any Pyro MCMC kernel.

A kernel that is slightly wrong still produces plausible draws, so a kernel is tested against
things it must get exactly right in distribution. Three checks, each usable on any
:class:`~pyro.infer.mcmc.mcmc_kernel.MCMCKernel` (those of this package, Pyro's own, or yours):

- :func:`one_step_invariance_test`: a correct kernel leaves its target invariant. Draw exact
  samples from the target, apply one kernel step to each, and compare the result with fresh exact
  samples by a two-sample test per coordinate. No burn-in and no autocorrelation are involved, so
  the test is exact at any sample size.
- :func:`mcse_z_test`: long chains on a target with known moments; each estimated mean, variance
  and correlation is compared with the truth in units of its Monte-Carlo standard error (MCSE,
  from the effective sample size computed by :mod:`arviz`).
- :func:`geweke_test`: Geweke's (2004) "getting it right" test of the joint distribution of
  parameters and data in a small conjugate model. The marginal-conditional simulator draws
  :math:`\theta \sim p(\theta)`, :math:`y \sim p(y \mid \theta)` independently; the
  successive-conditional simulator alternates a kernel step on :math:`p(\theta \mid y)` with an
  exact draw :math:`y \sim p(y \mid \theta)`. Both have the joint :math:`p(\theta, y)` as their
  distribution if and only if the kernel leaves every posterior invariant (for the data sets
  visited), so the means of test functions must agree.

Each check returns a result object with the statistics and a ``passed`` flag, and has a
threshold that a wrong kernel fails (see ``tests/broken_kernels.py`` in the repository).

Kernels are driven through the :class:`~pyro.infer.mcmc.mcmc_kernel.MCMCKernel` API only:
``initial_params``, ``setup(warmup_steps=0)`` and ``sample(params)``. The kernel should be built
with a ``potential_fn`` and with adaptation off (it is set up with no warmup, so this package's
kernels do not adapt anyway). A kernel that caches its last state (Pyro's
:class:`~pyro.infer.HMC` does) is told to forget it through ``clear_cache()`` before each step
from a new point.

Example, for a kernel of your own on a 2-D standard normal::

    >>> potential_fn = lambda p: 0.5 * (p["x"] ** 2).sum()
    >>> exact = lambda n: {"x": torch.randn(n, 2)}
    >>> kernel = MyKernel(potential_fn=potential_fn, step_size=1.0, adapt_step_size=False)
    >>> result = one_step_invariance_test(kernel, exact, num_samples=3000)
    >>> assert result.passed, result
    >>> wrong = MyKernel(potential_fn=tempered(potential_fn, 0.7), step_size=1.0,
    ...                  adapt_step_size=False)
    >>> assert one_step_invariance_test(wrong, exact, 3000).min_pvalue < 1e-4  # power

:func:`one_step_invariance_test` needs :mod:`scipy` for its two-sample tests; the z-tests need
only :mod:`arviz`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from torch import Tensor

from ..core import validation as check
from .statistics import bonferroni_threshold, mcse_of_mean, z_scores

__all__ = [
    "InvarianceResult",
    "ZTestResult",
    "geweke_test",
    "mcse_z_test",
    "one_step_invariance_test",
    "tempered",
    "two_sided_z_threshold",
]

Params = dict[str, Tensor]
PotentialFn = Callable[[Mapping[str, Tensor]], Tensor]


def _scipy_stats():
    try:
        from scipy import stats
    except ImportError as error:  # pragma: no cover - scipy is a test dependency
        raise ImportError("pyro_simplehmc.checks.testing needs scipy: pip install scipy") from error
    return stats


def tempered(potential_fn: PotentialFn, inverse_temperature: float) -> PotentialFn:
    r"""The potential of the tempered target :math:`\pi^\beta`: :math:`\beta\, U`.

    A kernel aimed at a tempered target is the negative control of the invariance test: it is a
    perfectly good kernel for the wrong distribution, and the test must notice.

    :param potential_fn: the potential :math:`U` of the target.
    :param float inverse_temperature: :math:`\beta > 0`; below 1 widens the target.
    """
    check.callable_or_none("potential_fn", potential_fn)
    inverse_temperature = check.positive_finite("inverse_temperature", inverse_temperature)
    return lambda params: inverse_temperature * potential_fn(params)


def two_sided_z_threshold(alpha: float, num_tests: int = 1) -> float:
    r"""The :math:`|z|` above which a two-sided test rejects, Bonferroni-corrected.

    :param float alpha: the family-wise false-alarm probability.
    :param int num_tests: the number of z-scores tested together.
    :returns: :math:`\Phi^{-1}(1 - \alpha / (2 k))`, the threshold the comparison runner uses
        too (:func:`pyro_simplehmc.checks.statistics.bonferroni_threshold`).
    """
    return bonferroni_threshold(num_tests, alpha)


# ---------------------------------------------------------------------------------- invariance


@dataclass
class InvarianceResult:
    """The outcome of :func:`one_step_invariance_test`.

    :ivar names: one label per test, such as ``"KS x[0]"``, ``"paired mean x[0]^2"``.
    :ivar pvalues: the two-sample p-value of each test.
    :ivar alpha: a test fails when its p-value is below ``alpha``.
    :ivar acceptance_rate: the fraction of steps that moved (a step size that never moves would
        make the test vacuous).
    """

    names: list[str]
    pvalues: np.ndarray
    alpha: float
    acceptance_rate: float

    @property
    def min_pvalue(self) -> float:
        return float(self.pvalues.min())

    @property
    def passed(self) -> bool:
        return self.min_pvalue > self.alpha

    def __str__(self) -> str:
        worst = self.names[int(self.pvalues.argmin())]
        return (
            f"one-step invariance: min p = {self.min_pvalue:.2e} ({worst}), alpha = "
            f"{self.alpha:g}, acceptance = {self.acceptance_rate:.2f}, "
            f"{'passed' if self.passed else 'FAILED'}"
        )


def _flat_columns(samples: Mapping[str, Tensor], num: int) -> tuple[list[str], np.ndarray]:
    names, columns = [], []
    for site in sorted(samples):
        value = samples[site].detach().reshape(num, -1).double().cpu().numpy()
        for i in range(value.shape[1]):
            names.append(f"{site}[{i}]")
            columns.append(value[:, i])
    return names, np.stack(columns, axis=1)


def _step_from(kernel: MCMCKernel, params: Params) -> Params:
    # A caching kernel would step from its own last state instead of from ``params``.
    clear = getattr(kernel, "clear_cache", None)
    if callable(clear):
        clear()
    return kernel.sample(params)


def one_step_invariance_test(
    kernel: MCMCKernel,
    exact_sampler: Callable[[int], Mapping[str, Tensor]],
    num_samples: int = 2000,
    *,
    num_kernel_steps: int = 1,
    squares: bool = True,
    alpha: float = 1e-3,
) -> InvarianceResult:
    r"""Test that ``kernel`` leaves the distribution of ``exact_sampler`` invariant.

    If :math:`x \sim \pi` and :math:`x' \sim K(x, \cdot)`, then :math:`x' \sim \pi` exactly when
    :math:`K` leaves :math:`\pi` invariant. The test draws ``num_samples`` points from
    ``exact_sampler``, moves each by ``num_kernel_steps`` kernel steps, draws ``num_samples``
    fresh points, and tests each coordinate :math:`x_i` in two ways:

    - the two-sample Kolmogorov-Smirnov test between the moved points and the fresh ones (any
      change of distribution);
    - a paired t-test that :math:`E[f(x') - f(x)] = 0` for :math:`f = x_i` and, with
      ``squares``, :math:`f = x_i^2`. Each pair :math:`(x, x')` is independent of the others, and
      :math:`E f(x') = E f(x)` under invariance, so the test is valid; as :math:`f(x')` and
      :math:`f(x)` are correlated when the kernel moves locally, it is far more powerful than
      comparing with fresh points, especially against a wrong scale, the typical fault.

    The kernel is set up once with ``warmup_steps=0`` (so it does not adapt) at the first exact
    draw; build it with a ``potential_fn`` for the same target and a fixed step size that
    accepts a moderate fraction of proposals: a kernel that never moves passes trivially, which
    is why :attr:`InvarianceResult.acceptance_rate` is reported.

    :param kernel: the kernel under test.
    :param exact_sampler: ``n -> {site: tensor of shape (n, *site_shape)}``, exact i.i.d. draws
        from the target in the kernel's (unconstrained) parameter space.
    :param int num_samples: the size of each sample.
    :param int num_kernel_steps: kernel steps applied to each draw (more steps, more power
        against a kernel that moves slowly towards the wrong target).
    :param bool squares: also test the means of the squared coordinates.
    :param float alpha: the significance level of each test.
    """
    check.int_at_least("num_samples", num_samples, 2)
    check.positive_int("num_kernel_steps", num_kernel_steps)
    check.open_unit_interval("alpha", alpha)
    stats = _scipy_stats()

    start = {k: torch.as_tensor(v) for k, v in exact_sampler(num_samples).items()}
    kernel.initial_params = {k: v[0].clone() for k, v in start.items()}
    kernel.setup(warmup_steps=0)
    moved_rows: dict[str, list[Tensor]] = {k: [] for k in start}
    moved = 0
    try:
        for n in range(num_samples):
            x = {k: v[n].clone() for k, v in start.items()}
            y = x
            for _ in range(num_kernel_steps):
                y = _step_from(kernel, y)
            moved += any(not torch.equal(y[k], x[k]) for k in x)
            for k in start:
                moved_rows[k].append(y[k].detach())
    finally:
        kernel.cleanup()
    moved_samples = {k: torch.stack(v) for k, v in moved_rows.items()}
    fresh = {k: torch.as_tensor(v) for k, v in exact_sampler(num_samples).items()}

    names, a = _flat_columns(moved_samples, num_samples)
    _, b = _flat_columns(fresh, num_samples)
    _, x0 = _flat_columns(start, num_samples)
    labels, pvalues = [], []
    for i, name in enumerate(names):
        labels.append(f"KS {name}")
        pvalues.append(stats.ks_2samp(a[:, i], b[:, i]).pvalue)
        labels.append(f"paired mean {name}")
        pvalues.append(stats.ttest_rel(a[:, i], x0[:, i]).pvalue)
        if squares:
            labels.append(f"paired mean {name}^2")
            pvalues.append(stats.ttest_rel(a[:, i] ** 2, x0[:, i] ** 2).pvalue)
    return InvarianceResult(labels, np.asarray(pvalues), alpha, moved / num_samples)


# ---------------------------------------------------------------------------------- z-tests


def _mcse(values: np.ndarray) -> float:
    return float(mcse_of_mean(values))


@dataclass
class ZTestResult:
    """A family of z-tests: estimates against reference values in units of standard error.

    :ivar names: one label per test.
    :ivar estimates: the estimated values.
    :ivar targets: the values they should match.
    :ivar standard_errors: the standard error of each comparison.
    :ivar threshold: a test fails when :math:`|z|` exceeds it.
    """

    names: list[str]
    estimates: np.ndarray
    targets: np.ndarray
    standard_errors: np.ndarray
    threshold: float

    @property
    def z(self) -> np.ndarray:
        return z_scores(self.estimates, self.targets, self.standard_errors)

    @property
    def max_abs_z(self) -> float:
        return float(np.max(np.abs(self.z)))

    @property
    def passed(self) -> bool:
        return bool(np.all(np.isfinite(self.z))) and self.max_abs_z <= self.threshold

    @property
    def failures(self) -> list[str]:
        return [
            f"{n}: {e:.4g} vs {t:.4g} (z = {z:+.2f})"
            for n, e, t, z in zip(self.names, self.estimates, self.targets, self.z, strict=True)
            if not abs(z) <= self.threshold
        ]

    def __str__(self) -> str:
        status = "passed" if self.passed else "FAILED: " + "; ".join(self.failures)
        return f"max |z| = {self.max_abs_z:.2f} (threshold {self.threshold:.2f}), {status}"


def mcse_z_test(
    samples: Tensor | np.ndarray,
    mean: Tensor | np.ndarray | Sequence[float],
    covariance: Tensor | np.ndarray,
    *,
    alpha: float = 1e-3,
    correlations: bool = True,
) -> ZTestResult:
    r"""Compare chains with a target of known mean and covariance, in units of MCSE.

    With :math:`\mu` and :math:`\Sigma` known, each moment is the mean of a function of a draw, so
    its MCSE is :math:`\mathrm{sd}(f) / \sqrt{\mathrm{ESS}(f)}` with the ESS of :math:`f` from
    :func:`arviz.ess` over all chains:

    - mean: :math:`f = x_i`, target :math:`\mu_i`;
    - variance: :math:`f = (x_i - \mu_i)^2`, target :math:`\Sigma_{ii}`;
    - correlation: :math:`f = (x_i - \mu_i)(x_j - \mu_j) / \sqrt{\Sigma_{ii}\Sigma_{jj}}`, target
      :math:`\rho_{ij}`.

    The threshold is Bonferroni-corrected over all the tests, so ``alpha`` is the probability
    that a correct kernel fails at least one of them (asymptotically in the chain length).

    :param samples: draws of shape ``(chains, draws, D)``; several chains make the ESS honest.
    :param mean: the target mean :math:`\mu`, shape ``(D,)``.
    :param covariance: the target covariance :math:`\Sigma`, shape ``(D, D)``.
    :param float alpha: the family-wise false-alarm probability.
    :param bool correlations: also test the :math:`D(D-1)/2` correlations.
    """
    x = np.asarray(torch.as_tensor(samples).detach().double().cpu())
    if x.ndim != 3:
        raise ValueError(f"samples must have shape (chains, draws, D); got {x.shape}")
    dim = x.shape[2]
    mu = np.asarray(torch.as_tensor(mean).double()).reshape(-1)
    cov = np.asarray(torch.as_tensor(covariance).double())
    if mu.shape != (dim,) or cov.shape != (dim, dim):
        raise ValueError(
            f"mean must have shape ({dim},) and covariance ({dim}, {dim}); "
            f"got {mu.shape} and {cov.shape}"
        )
    check.open_unit_interval("alpha", alpha)
    sd = np.sqrt(np.diag(cov))
    centred = x - mu

    names, functions, targets = [], [], []
    for i in range(dim):
        names.append(f"mean[{i}]")
        functions.append(x[..., i])
        targets.append(mu[i])
    for i in range(dim):
        names.append(f"var[{i}]")
        functions.append(centred[..., i] ** 2)
        targets.append(cov[i, i])
    if correlations:
        for i in range(dim):
            for j in range(i + 1, dim):
                names.append(f"corr[{i},{j}]")
                functions.append(centred[..., i] * centred[..., j] / (sd[i] * sd[j]))
                targets.append(cov[i, j] / (sd[i] * sd[j]))
    estimates = np.array([f.mean() for f in functions])
    errors = np.array([_mcse(f) for f in functions])
    threshold = two_sided_z_threshold(alpha, len(names))
    return ZTestResult(names, estimates, np.asarray(targets), errors, threshold)


# ---------------------------------------------------------------------------------- Geweke


def geweke_test(
    kernel_factory: Callable[[PotentialFn], MCMCKernel],
    num_samples: int = 4000,
    *,
    num_observations: int = 2,
    prior_mean: float = 0.0,
    prior_scale: float = 1.0,
    noise_scale: float = 2.0,
    kernel_steps_per_sweep: int = 1,
    num_chains: int = 4,
    alpha: float = 1e-3,
) -> ZTestResult:
    r"""Geweke's "getting it right" test on a conjugate normal model.

    The model is :math:`\theta \sim \mathcal{N}(m_0, s_0^2)`,
    :math:`y_1, \dots, y_n \mid \theta \sim \mathcal{N}(\theta, \sigma^2)` i.i.d., with the site
    ``"theta"`` (a scalar) as the kernel's parameter. Test functions
    :math:`g(\theta, y) \in \{\theta,\ \theta^2,\ \bar y,\ \theta \bar y,\ \overline{y^2}\}` are
    averaged under

    - the marginal-conditional simulator: ``num_samples`` independent draws of
      :math:`(\theta, y)` from the prior and the likelihood;
    - the successive-conditional simulator: ``num_chains`` Gibbs chains, ``num_samples`` sweeps
      in all, each sweep updating :math:`\theta` by ``kernel_steps_per_sweep`` kernel steps on
      :math:`p(\theta \mid y)`, then drawing :math:`y \sim p(y \mid \theta)` exactly.

    The Gibbs chain is slow when the data pin :math:`\theta` down (its lag-one autocorrelation
    is at best :math:`1 - \mathrm{Var}(\theta \mid y) / s_0^2`), so the defaults take few,
    noisy observations: :math:`n = 2`, :math:`\sigma = 2`, posterior sd 0.82.

    Each difference of means is divided by
    :math:`\sqrt{\mathrm{se}_{mc}^2 + \mathrm{se}_{sc}^2}`, where the successive-conditional
    standard error is an MCSE from :mod:`arviz` (the sweeps are autocorrelated); the threshold is
    Bonferroni-corrected over the five test functions.

    :param kernel_factory: ``potential_fn -> kernel``: builds the kernel under test for a
        potential on ``{"theta": scalar tensor}``. The potential reads the current data, which
        change between sweeps; the kernel is set up once with ``warmup_steps=0``.
    :param int num_samples: draws of each simulator.
    :param int num_observations: :math:`n`.
    :param float prior_mean: :math:`m_0`.
    :param float prior_scale: :math:`s_0 > 0`.
    :param float noise_scale: :math:`\sigma > 0`.
    :param int kernel_steps_per_sweep: kernel steps per Gibbs sweep.
    :param int num_chains: independent successive-conditional chains (their between-chain
        variance makes the MCSE honest).
    :param float alpha: the family-wise false-alarm probability.
    """
    check.int_at_least("num_samples", num_samples, 10)
    check.positive_int("num_observations", num_observations)
    check.positive_int("kernel_steps_per_sweep", kernel_steps_per_sweep)
    check.positive_int("num_chains", num_chains)
    if num_samples // num_chains < 10:
        raise ValueError(
            f"num_samples must be at least 10 * num_chains; got {num_samples} and {num_chains}"
        )
    check.open_unit_interval("alpha", alpha)
    prior_scale = check.positive_finite("prior_scale", prior_scale)
    noise_scale = check.positive_finite("noise_scale", noise_scale)
    dtype = torch.float64

    def draw_data(theta: Tensor) -> Tensor:
        return theta.unsqueeze(-1) + noise_scale * torch.randn(
            (*theta.shape, num_observations), dtype=dtype
        )

    def test_functions(theta: Tensor, y: Tensor) -> Tensor:
        ybar = y.mean(-1)
        return torch.stack([theta, theta**2, ybar, theta * ybar, (y**2).mean(-1)], dim=-1)

    names = ["theta", "theta^2", "ybar", "theta*ybar", "mean(y^2)"]

    # Marginal-conditional simulator: independent draws from the joint.
    theta_mc = prior_mean + prior_scale * torch.randn(num_samples, dtype=dtype)
    g_mc = test_functions(theta_mc, draw_data(theta_mc)).numpy()

    # Successive-conditional simulator: the potential reads the current data set.
    data = {"y": draw_data(torch.tensor(prior_mean, dtype=dtype))}

    def potential_fn(params: Mapping[str, Tensor]) -> Tensor:
        theta = params["theta"]
        prior = 0.5 * ((theta - prior_mean) / prior_scale) ** 2
        return prior + 0.5 * (((data["y"] - theta) / noise_scale) ** 2).sum()

    kernel = kernel_factory(potential_fn)
    sweeps = num_samples // num_chains
    g_sc = np.empty((num_chains, sweeps, len(names)))
    for chain in range(num_chains):
        # Each chain starts from an exact draw of the joint, so no burn-in is needed.
        theta = prior_mean + prior_scale * torch.randn((), dtype=dtype)
        data["y"] = draw_data(theta)
        kernel.initial_params = {"theta": theta.clone()}
        kernel.setup(warmup_steps=0)
        try:
            for n in range(sweeps):
                # A fresh dict: the data changed, so no state cached at the old data may be
                # reused.
                params = {"theta": theta.clone()}
                for _ in range(kernel_steps_per_sweep):
                    params = _step_from(kernel, params)
                theta = params["theta"].detach().to(dtype)
                data["y"] = draw_data(theta)
                g_sc[chain, n] = test_functions(theta, data["y"]).numpy()
        finally:
            kernel.cleanup()

    se_mc = g_mc.std(axis=0, ddof=1) / math.sqrt(num_samples)
    se_sc = np.array([_mcse(g_sc[..., i]) for i in range(len(names))])
    return ZTestResult(
        names,
        g_sc.mean(axis=(0, 1)),
        g_mc.mean(axis=0),
        np.sqrt(se_mc**2 + se_sc**2),
        two_sided_z_threshold(alpha, len(names)),
    )


# ---------------------------------------------------------------------------------- many chains


def chain_independence_test(samples: Tensor | np.ndarray, *, alpha: float = 1e-3) -> ZTestResult:
    r"""Check that chains run as a batch move independently of each other.

    Each chain of a batch must make its own Metropolis-Hastings decisions: a batched step that
    shares one uniform between chains, or accepts every chain when one accepts, still leaves each
    chain's draws looking right on their own, but makes the chains accept and reject together.
    For disjoint pairs of chains :math:`(a, b)`, with :math:`m_{c,t} = 1` when chain :math:`c`
    moved at draw :math:`t`, the standardised product
    :math:`f_t = (m_{a,t} - \bar m_a)(m_{b,t} - \bar m_b) / (s_a s_b)` has mean 0 when the chains
    are independent; its MCSE comes from its ESS (:func:`arviz.ess`), as in
    :func:`mcse_z_test`, and the threshold is Bonferroni-corrected over the pairs.

    :param samples: draws of shape ``(chains, draws, ...)`` from one batched run, at least 2
        chains.
    :param float alpha: the family-wise false-alarm probability.
    """
    x = np.asarray(torch.as_tensor(samples).detach().double().cpu())
    if x.ndim < 2 or x.shape[0] < 2 or x.shape[1] < 3:
        raise ValueError(
            f"samples must have shape (chains, draws, ...) with at least 2 chains and 3 draws; "
            f"got {x.shape}"
        )
    check.open_unit_interval("alpha", alpha)
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    moved = (flat[:, 1:] != flat[:, :-1]).any(-1).astype(float)
    names, estimates, errors = [], [], []
    for a in range(0, moved.shape[0] - 1, 2):
        pair = moved[a : a + 2]
        centred = pair - pair.mean(1, keepdims=True)
        product = centred[0] * centred[1] / (centred.std(1).prod() + 1e-300)
        names.append(f"chains ({a}, {a + 1})")
        estimates.append(product.mean())
        errors.append(_mcse(product[None]))
    threshold = two_sided_z_threshold(alpha, len(names))
    zeros = np.zeros(len(names))
    return ZTestResult(names, np.asarray(estimates), zeros, np.asarray(errors), threshold)
