r"""Random-walk Metropolis: a Gaussian step around the current point.

Propose

.. math:: q' = q + \epsilon\, C \xi, \qquad \xi \sim \mathcal{N}(0, I), \quad C C^\top = M^{-1},

a symmetric proposal, so the Metropolis-Hastings ratio is the ratio of target densities:
:math:`\log r = U(q) - U(q')`. With an adapted :math:`M^{-1}` (about the posterior covariance) the
step is shaped like the posterior; the optimal scale on a :math:`D`-dimensional Gaussian is about
:math:`\epsilon = 2.38/\sqrt{D}`, accepting 23.4% of proposals (Roberts, Gelman & Gilks, 1997).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.mh import ChainState
from .base import MHKernel


class RandomWalkMH(MHKernel):
    r"""Gaussian random-walk Metropolis-Hastings as a Pyro MCMC kernel.

    ``step_size`` is the standard deviation of the proposal in the unconstrained space, in units
    of the mass matrix's scale (:math:`\epsilon` above). One iteration costs one evaluation of the
    potential and no gradient. All arguments are those of :class:`~pyro_simplehmc.MHKernel`;
    ``target_accept_prob`` defaults to 0.234.

    Example::

        >>> kernel = RandomWalkMH(model, step_size=0.5)
        >>> mcmc = MCMC(kernel, num_samples=2000, warmup_steps=1000)
    """

    uses_gradient = False
    default_target_accept_prob = 0.234

    def propose(self, state: ChainState, step_size: Tensor) -> tuple[ChainState, Tensor]:
        noise = torch.randn_like(state.position)
        q_new = state.position + step_size * self.metric.position_from_normal(noise)
        proposal = ChainState(q_new, self.potential(q_new), None)
        # A symmetric proposal: k(q | q') = k(q' | q), so only the target densities remain.
        log_accept_ratio = state.potential_energy - proposal.potential_energy
        return proposal, log_accept_ratio
