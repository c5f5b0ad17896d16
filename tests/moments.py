"""Monte-Carlo z-scores of sample moments against known truth, for the tests.

Thin wrappers: the moments, their MCSEs and the z-scores come from the package's one set of
helpers (:mod:`pyro_simplehmc.checks.statistics`, through :func:`pyro_simplehmc.checks.testing.
mcse_z_test`), the same the comparison runner and the testing kit use.
"""

from __future__ import annotations

import numpy as np
import torch

from pyro_simplehmc.checks.statistics import max_abs, mcse_of_mean, z_scores
from pyro_simplehmc.checks.testing import mcse_z_test


def mcse_z(draws: np.ndarray, truth: float) -> float:
    """z-score of the mean of ``draws`` (chains, draws) against ``truth``, MCSE from arviz."""
    return float(z_scores(np.mean(draws), truth, mcse_of_mean(draws)))


def moment_z_scores(
    samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor
) -> dict[str, list[float]]:
    """z-scores of means, variances and correlations of ``samples`` (chains, draws, D).

    Each moment is written as the mean of a function of the draws given the true mean, so that
    its Monte-Carlo standard error comes from that function's ESS: ``(x_i - mu_i)**2`` for
    variances, ``(x_i - mu_i) * (x_j - mu_j) / (sd_i * sd_j)`` for correlations.
    """
    result = mcse_z_test(samples, mean, cov, correlations=True)
    out: dict[str, list[float]] = {"mean": [], "var": [], "corr": []}
    for name, z in zip(result.names, result.z, strict=True):
        out[name.split("[")[0]].append(float(z))
    return out


def max_abs_z(z: dict[str, list[float]]) -> float:
    """The largest |z|; a NaN (a moment that could not be estimated) counts as infinite."""
    return max_abs([v for vs in z.values() for v in vs])


def chain_diagnostics(mcmc, key: str) -> list:
    """One kernel diagnostic per chain of a ``pyro_simplehmc.MCMC`` run, without calling
    ``MCMC.diagnostics()``, which first computes ESS with ``pyro.ops.stats`` (whose ``_cummin``
    allocates draws x draws x coordinates numbers: 4 GB for 6000 draws of 50 coordinates)."""
    return [chain[key] for chain in mcmc.kernel_diagnostics]
