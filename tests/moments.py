"""Monte-Carlo z-scores of sample moments against known truth (ESS and MCSE from arviz)."""

from __future__ import annotations

import arviz as az
import numpy as np
import torch


def mcse_z(draws: np.ndarray, truth: float) -> float:
    """z-score of the mean of ``draws`` (chains, draws) against ``truth``, MCSE from arviz."""
    estimate = draws.mean()
    se = float(az.mcse(draws, method="mean"))
    return (estimate - truth) / se


def moment_z_scores(
    samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor
) -> dict[str, list[float]]:
    """z-scores of means, variances and correlations of ``samples`` (chains, draws, D).

    Each moment is written as the mean of a function of the draws given the true mean, so that
    its Monte-Carlo standard error comes from that function's ESS: ``(x_i - mu_i)**2`` for
    variances, ``(x_i - mu_i) * (x_j - mu_j) / (sd_i * sd_j)`` for correlations.
    """
    x = samples.detach().cpu().double().numpy()
    mu = mean.double().numpy()
    c = cov.double().numpy()
    sd = np.sqrt(np.diag(c))
    centred = x - mu
    dim = x.shape[-1]
    out: dict[str, list[float]] = {"mean": [], "var": [], "corr": []}
    for i in range(dim):
        out["mean"].append(mcse_z(x[..., i], mu[i]))
        out["var"].append(mcse_z(centred[..., i] ** 2, c[i, i]))
        for j in range(i + 1, dim):
            product = centred[..., i] * centred[..., j] / (sd[i] * sd[j])
            out["corr"].append(mcse_z(product, c[i, j] / (sd[i] * sd[j])))
    return out


def max_abs_z(z: dict[str, list[float]]) -> float:
    """The largest |z|; a NaN (a moment that could not be estimated) counts as infinite."""
    values = np.abs([v for vs in z.values() for v in vs])
    return float("inf") if np.isnan(values).any() else float(values.max())


def chain_diagnostics(mcmc, key: str) -> list:
    """One kernel diagnostic per chain, without calling ``MCMC.diagnostics()``.

    Pyro 1.9.2's ``MCMC.diagnostics()`` first computes ESS with ``pyro.ops.stats``, whose
    ``_cummin`` allocates draws x draws x coordinates numbers: 4 GB for 6000 draws of 50
    coordinates, more than this machine has for 15000.
    """
    return [chain[key] for chain in mcmc._diagnostics]
