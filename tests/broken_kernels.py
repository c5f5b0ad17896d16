r"""Deliberately broken kernels: each check in :mod:`pyro_simplehmc.checks.testing` must catch them.

Each is a correct kernel with one classic mistake, small enough that the draws still look
plausible:

- :class:`HMCWithoutMetropolis`: HMC that accepts every trajectory, so the integrator's energy
  error is never corrected (the chain samples the leapfrog's shadow density, not the target);
- :class:`MALAWithoutProposalDensity`: MALA whose acceptance ratio omits the proposal densities,
  as if the Langevin step were symmetric;
- :class:`HMCWithoutFinalHalfStep`: HMC whose leapfrog drops the last half step in momentum, so
  the proposal is no longer an involution and the energy is computed with the wrong momentum.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pyro_simplehmc import MALA, SimpleHMC
from pyro_simplehmc.core.integrators import IntegratorState
from pyro_simplehmc.kernels.base import ChainState
from pyro_simplehmc.kernels.hmc import hamiltonian


class HMCWithoutMetropolis(SimpleHMC):
    """SimpleHMC with the Metropolis correction removed: every finite proposal is accepted."""

    def propose(self, state: ChainState, step_size: float) -> tuple[ChainState, Tensor]:
        proposal, _ = super().propose(state, step_size)
        return proposal, torch.zeros((), dtype=state.position.dtype)


class MALAWithoutProposalDensity(MALA):
    r"""MALA with :math:`\log r = U(q) - U(q')`: the proposal-density terms are missing."""

    def propose(self, state: ChainState, step_size: float) -> tuple[ChainState, Tensor]:
        proposal, _ = super().propose(state, step_size)
        return proposal, state.potential_energy - proposal.potential_energy


class HMCWithoutFinalHalfStep(SimpleHMC):
    """SimpleHMC whose leapfrog omits the final half step in momentum."""

    def __init__(self, *args, **kwargs):
        # The fixed length the tests were sized for (given, so no length is learned).
        kwargs.setdefault("num_steps", 10)
        kwargs.setdefault("num_steps_jitter", 0.0)
        super().__init__(*args, **kwargs)

    def _trajectory(
        self, state: ChainState, step_size: float, num_steps: int, learn: bool = False
    ) -> tuple[ChainState, Tensor, IntegratorState]:
        metric = self.metric
        p0 = metric.momentum_from_normal(torch.randn_like(state.position))
        q, p, grad = state.position, p0, state.grad
        potential_energy = state.potential_energy
        p = p - (0.5 * step_size) * grad
        for i in range(num_steps):
            q = q + step_size * metric.velocity(p)
            potential_energy, grad = self._value_and_grad(q)
            if i < num_steps - 1:
                p = p - step_size * grad
        # The bug: the closing half step p - (step_size / 2) * grad is missing.
        log_accept_ratio = hamiltonian(state.potential_energy, p0, metric) - hamiltonian(
            potential_energy, -p, metric
        )
        end = IntegratorState(q, p, potential_energy, grad)
        return ChainState(q, potential_energy, grad), log_accept_ratio, end
