r"""The Metropolis-adjusted Langevin algorithm (MALA).

One Euler step of the Langevin diffusion, drifting uphill along the gradient of the log density:

.. math::
    q' = q - \tfrac{\epsilon^2}{2} M^{-1} \nabla U(q) + \epsilon C \xi,
    \qquad \xi \sim \mathcal{N}(0, I), \quad C C^\top = M^{-1}.

The proposal is not symmetric, so the Metropolis-Hastings ratio carries the proposal densities
:math:`k(q' \mid q)` and :math:`k(q \mid q')` (:mod:`pyro_simplehmc.core.proposals`). This
proposal is exactly one leapfrog step of HMC with fresh momentum :math:`p = C^{-\top}\xi`, and
the two acceptance ratios agree.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.mh import ChainState
from ..core.proposals import langevin_log_density, langevin_mean
from .base import MHKernel

__all__ = ["MALA", "langevin_log_density", "langevin_mean"]


class MALA(MHKernel):
    r"""Metropolis-adjusted Langevin algorithm as a Pyro MCMC kernel.

    One iteration costs one gradient evaluation. With an adapted mass matrix the drift and the
    noise are preconditioned by :math:`M^{-1}`. All arguments are those of
    :class:`~pyro_simplehmc.MHKernel`; ``target_accept_prob`` defaults to 0.574, the optimal
    acceptance of MALA in high dimension (Roberts & Rosenthal, 1998).

    Example::

        >>> kernel = MALA(model, step_size=0.1)
        >>> mcmc = MCMC(kernel, num_samples=2000, warmup_steps=1000)
    """

    default_target_accept_prob = 0.574

    def propose(self, state: ChainState, step_size: Tensor) -> tuple[ChainState, Tensor]:
        q, metric = state.position, self.metric
        noise = torch.randn_like(q)
        q_new = langevin_mean(q, state.grad, step_size, metric) + step_size * (
            metric.position_from_normal(noise)
        )
        proposal = ChainState(q_new, *self.value_and_grad(q_new))
        # The forward move was made from `noise`, so log k(q_new | q) = -|noise|^2 / 2:
        # langevin_log_density(q_new, q, state.grad, step_size, metric) would whiten the step
        # back into the same noise, at the cost of six more vector operations.
        log_forward = -0.5 * (noise * noise).sum(-1)
        log_backward = langevin_log_density(q, q_new, proposal.grad, step_size, metric)
        log_accept_ratio = (
            state.potential_energy - proposal.potential_energy + log_backward - log_forward
        )
        return proposal, log_accept_ratio
