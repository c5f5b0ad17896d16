r"""Small worked examples with known answers: the harmonic oscillator (a standard normal target)
and its exact solution, and the potential of a Gaussian.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["gaussian_potential", "harmonic_oscillator", "harmonic_oscillator_exact"]


def harmonic_oscillator(q: Tensor) -> Tensor:
    r"""The potential :math:`U(q) = \tfrac12 \lVert q \rVert^2` of a standard normal target.

    With unit mass, Hamilton's equations are :math:`\dot q = p`, :math:`\dot p = -q`: a rotation
    of phase space (see :func:`harmonic_oscillator_exact`).
    """
    return 0.5 * (q**2).sum(-1)


def harmonic_oscillator_exact(q0: float, p0: float, times: Tensor) -> tuple[Tensor, Tensor]:
    r"""The exact unit-mass solution, a rotation of phase space.

    :math:`q(t) = q_0\cos t + p_0\sin t` and :math:`p(t) = p_0\cos t - q_0\sin t`.

    :returns: ``(q(t), p(t))`` at ``times``; every point has energy
        :math:`\tfrac12(q_0^2 + p_0^2)`.
    """
    cos, sin = torch.cos(times), torch.sin(times)
    return q0 * cos + p0 * sin, p0 * cos - q0 * sin


def gaussian_potential(
    covariance: Tensor, mean: Tensor | None = None
) -> Callable[[Tensor], Tensor]:
    r"""The potential :math:`U(q) = \tfrac12 (q-\mu)^\top \Sigma^{-1} (q-\mu)` of
    :math:`\mathcal{N}(\mu, \Sigma)`, on flat tensors with any leading batch dimensions.

    The constant is dropped. :math:`\Sigma^{-1}` is applied by a Cholesky solve, never formed.
    """
    chol = torch.linalg.cholesky(covariance)
    mu = torch.zeros(covariance.shape[-1], dtype=covariance.dtype) if mean is None else mean

    def potential(q: Tensor) -> Tensor:
        z = torch.linalg.solve_triangular(chol, (q - mu).unsqueeze(-1), upper=False)
        return 0.5 * (z.squeeze(-1) ** 2).sum(-1)

    return potential
