r"""Geweke's (2004) "getting it right" test of a kernel: :func:`geweke_test`.

The marginal-conditional simulator draws :math:`\theta \sim p(\theta)`,
:math:`y \sim p(y \mid \theta)` independently; the successive-conditional simulator alternates a
kernel step on :math:`p(\theta \mid y)` with an exact draw :math:`y \sim p(y \mid \theta)`. Both
have the joint :math:`p(\theta, y)` as their distribution if and only if the kernel leaves every
posterior invariant (for the data sets visited), so the means of test functions must agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import torch
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from torch import Tensor

from ..core import validation as check
from .invariance import PotentialFn, step_from
from .statistics import mcse_of_mean
from .ztest import ZTestResult, two_sided_z_threshold

__all__ = ["geweke_test"]


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
                    params = step_from(kernel, params)
                theta = params["theta"].detach().to(dtype)
                data["y"] = draw_data(theta)
                g_sc[chain, n] = test_functions(theta, data["y"]).numpy()
        finally:
            kernel.cleanup()

    se_mc = g_mc.std(axis=0, ddof=1) / math.sqrt(num_samples)
    se_sc = np.array([float(mcse_of_mean(g_sc[..., i])) for i in range(len(names))])
    return ZTestResult(
        names,
        g_sc.mean(axis=(0, 1)),
        g_mc.mean(axis=0),
        np.sqrt(se_mc**2 + se_sc**2),
        two_sided_z_threshold(alpha, len(names)),
    )
