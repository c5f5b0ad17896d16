r"""The Langevin proposal's mean and density, as pure functions.

One Euler step of the Langevin diffusion that leaves :math:`\pi \propto e^{-U}` invariant,
preconditioned by :math:`M^{-1} = C C^\top`:

.. math::
    q' = q - \tfrac{\epsilon^2}{2} M^{-1} \nabla U(q) + \epsilon C \xi,
    \qquad \xi \sim \mathcal{N}(0, I),

so :math:`k(q' \mid q) = \mathcal{N}(q';\, q - \tfrac{\epsilon^2}{2} M^{-1}\nabla U(q),\,
\epsilon^2 M^{-1})` (Roberts & Tweedie, 1996). MALA (:mod:`pyro_simplehmc.kernels.mala`)
corrects it with the densities in both directions.
"""

from __future__ import annotations

from torch import Tensor

from .metrics import Metric

__all__ = ["langevin_log_density", "langevin_mean"]


def langevin_mean(q: Tensor, grad: Tensor, step_size: float | Tensor, metric: Metric) -> Tensor:
    r"""The mean of the Langevin proposal, :math:`q - \tfrac{\epsilon^2}{2} M^{-1}\nabla U(q)`."""
    return q - (0.5 * step_size**2) * metric.velocity(grad)


def langevin_log_density(
    q_to: Tensor, q_from: Tensor, grad_from: Tensor, step_size: float | Tensor, metric: Metric
) -> Tensor:
    r""":math:`\log k(q_{to} \mid q_{from})` up to a constant that cancels in the ratio."""
    z = metric.whiten(q_to - langevin_mean(q_from, grad_from, step_size, metric)) / step_size
    return -0.5 * (z * z).sum(-1)
