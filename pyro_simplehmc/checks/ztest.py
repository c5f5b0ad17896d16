r"""MCSE z-tests: estimates compared with reference values in units of their Monte-Carlo
standard error (MCSE, from the effective sample size computed by :mod:`arviz`).

:func:`mcse_z_test` tests the means, variances and correlations of long chains on a target with
known moments; :func:`chain_independence_test` tests that chains run as a batch accept and reject
independently. Both return a :class:`ZTestResult`, judged against the Bonferroni-corrected
:func:`two_sided_z_threshold`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..core import validation as check
from .statistics import bonferroni_threshold, mcse_of_mean, z_scores

__all__ = ["ZTestResult", "chain_independence_test", "mcse_z_test", "two_sided_z_threshold"]


def two_sided_z_threshold(alpha: float, num_tests: int = 1) -> float:
    r"""The :math:`|z|` above which a two-sided test rejects, Bonferroni-corrected.

    :param float alpha: the family-wise false-alarm probability.
    :param int num_tests: the number of z-scores tested together.
    :returns: :math:`\Phi^{-1}(1 - \alpha / (2 k))`, the threshold the comparison runner uses
        too (:func:`pyro_simplehmc.checks.statistics.bonferroni_threshold`).
    """
    return bonferroni_threshold(num_tests, alpha)


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
