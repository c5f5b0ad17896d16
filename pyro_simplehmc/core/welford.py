r"""Welford's running mean and covariance, for a batch of chains at once.

The estimate behind Stan's mass-matrix adaptation: the draws of a slow warmup window give the
sample covariance of the posterior, regularised towards a small multiple of the identity (Stan
Reference Manual, "HMC algorithm parameters"), and its inverse-mass-matrix estimate is that
covariance. One estimate per chain, or one pooled over the chains.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["BatchWelford"]


class BatchWelford:
    r"""Welford's running mean and (co)variance of the draws of a batch of chains.

    :param int size: the dimension :math:`d` of one draw.
    :param bool dense: estimate the full covariance (else only the variances).
    :param bool pooled: one estimate from all chains' draws (else one per chain).

    Pooled updates merge the batch's own moments into the running ones (Chan et al., 1979), so a
    batch of :math:`C` draws costs a few tensor operations, not :math:`C` updates.
    """

    def __init__(self, size: int, dense: bool, pooled: bool):
        self.size, self.dense, self.pooled = size, dense, pooled
        self.reset()

    def reset(self) -> None:
        self.n_samples = 0
        self._mean: Tensor | float = 0.0
        self._m2: Tensor | float = 0.0

    def _outer(self, a: Tensor, b: Tensor) -> Tensor:
        return a.unsqueeze(-1) * b.unsqueeze(-2) if self.dense else a * b

    def update(self, x: Tensor) -> None:
        """Add one draw per chain, ``x`` of shape ``(C, d)``."""
        x = x.detach()
        if not self.pooled:
            self.n_samples += 1
            delta = x - self._mean
            self._mean = self._mean + delta / self.n_samples
            self._m2 = self._m2 + self._outer(x - self._mean, delta)
            return
        count = x.shape[0]
        batch_mean = x.mean(0)
        centred = x - batch_mean
        batch_m2 = centred.mT @ centred if self.dense else (centred * centred).sum(0)
        total = self.n_samples + count
        delta = batch_mean - self._mean
        self._mean = self._mean + delta * (count / total)
        between = self._outer(delta, delta) * (self.n_samples * count / total)
        self._m2 = self._m2 + batch_m2 + between
        self.n_samples = total

    def sample_covariance(self) -> Tensor:
        """The unregularised sample (co)variance, shape ``(B, d)`` or ``(B, d, d)``."""
        if self.n_samples < 2:
            raise RuntimeError("at least 2 draws are needed to estimate a covariance")
        cov = self._m2 / (self.n_samples - 1)
        return cov.unsqueeze(0) if self.pooled else cov

    def covariance(self) -> Tensor:
        r"""The regularised estimate: shape ``(B, d)`` or ``(B, d, d)``, ``B`` = 1 when pooled.

        Stan's regularisation shrinks towards :math:`10^{-3} I` with weight :math:`5/(n+5)`. A
        dense estimate from :math:`n` draws in :math:`d` dimensions is also shrunk towards its own
        diagonal, :math:`(1 - \lambda) S + \lambda\, \mathrm{diag}(S)` with
        :math:`\lambda = d/(n + d)`: with fewer draws than dimensions (the first windows) the
        sample covariance is singular and the chain could no longer move along its null
        directions.
        """
        n = self.n_samples
        if n < 2:
            raise RuntimeError("at least 2 draws are needed to estimate a covariance")
        cov = self._m2 / (n - 1)
        if self.pooled:
            cov = cov.unsqueeze(0)
        cov = cov * (n / (n + 5.0))
        shrinkage = 1e-3 * (5.0 / (n + 5.0))
        if not self.dense:
            return cov + shrinkage
        diagonal = torch.diagonal(cov, dim1=-2, dim2=-1)
        weight = self.size / (n + self.size)
        eye = torch.eye(self.size, dtype=cov.dtype, device=cov.device)
        return (1 - weight) * cov + (weight * diagonal + shrinkage).unsqueeze(-1) * eye
