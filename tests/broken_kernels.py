r"""Deliberately broken kernels: each check in :mod:`pyro_simplehmc.checks.testing` must catch them.

Each is a correct kernel with one classic mistake, small enough that the draws still look
plausible:

- :class:`HMCWithoutMetropolis`: HMC that accepts every trajectory, so the integrator's energy
  error is never corrected (the chain samples the leapfrog's shadow density, not the target);
- :class:`MALAWithoutProposalDensity`: MALA whose acceptance ratio omits the proposal densities,
  as if the Langevin step were symmetric;
- :class:`HMCWithoutFinalHalfStep`: HMC whose leapfrog drops the last half step in momentum, so
  the proposal is no longer an involution and the energy is computed with the wrong momentum;
- :class:`MAMSWithWrongKineticSign`: MAMS whose acceptance ratio has the kinetic-energy change
  with the wrong sign.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pyro_simplehmc import MALA, MAMS, ChainState, SimpleHMC
from pyro_simplehmc.core.integrators import IntegratorState


class HMCWithoutMetropolis(SimpleHMC):
    """SimpleHMC with the Metropolis correction removed: every finite proposal is accepted."""

    def propose(self, state: ChainState, step_size: Tensor):
        proposal, _, *extra = super().propose(state, step_size)
        return proposal, torch.zeros((), dtype=state.position.dtype), *extra


class MALAWithoutProposalDensity(MALA):
    r"""MALA with :math:`\log r = U(q) - U(q')`: the proposal-density terms are missing."""

    def propose(self, state: ChainState, step_size: Tensor):
        proposal, _ = super().propose(state, step_size)
        return proposal, state.potential_energy - proposal.potential_energy


def leapfrog_without_final_half_step(q, p, value_and_grad_fn, velocity_fn, step_size, num_steps,
                                     grad=None, potential_energy=None) -> IntegratorState:
    """Leapfrog that forgets the closing half step in momentum."""
    p = p - (0.5 * step_size) * grad
    for i in range(num_steps):
        q = q + step_size * velocity_fn(p)
        potential_energy, grad = value_and_grad_fn(q)
        if i < num_steps - 1:
            p = p - step_size * grad
    # The bug: the closing half step p - (step_size / 2) * grad is missing.
    return IntegratorState(q, p, potential_energy, grad)


class HMCWithoutFinalHalfStep(SimpleHMC):
    """SimpleHMC whose leapfrog omits the final half step in momentum."""

    integrator = staticmethod(leapfrog_without_final_half_step)

    def __init__(self, *args, **kwargs):
        # The fixed length the tests were sized for (given, so no length is learned).
        kwargs.setdefault("num_steps", 10)
        kwargs.setdefault("num_steps_jitter", 0.0)
        super().__init__(*args, **kwargs)


class MAMSWithWrongKineticSign(MAMS):
    r"""MAMS whose ratio adds the kinetic-energy change instead of subtracting it:
    :math:`\log r = U(x) - U(x^*) + \Delta K`. The energy is conserved to first order, so this is
    about :math:`2(U(x) - U(x^*))`: the chain samples :math:`\pi^2`, whose variances are halved."""

    def propose(self, state: ChainState, step_size: Tensor):
        proposal, log_accept_ratio = super().propose(state, step_size)
        potential_change = proposal.potential_energy - state.potential_energy
        kinetic_change = -potential_change - log_accept_ratio
        return proposal, -potential_change + kinetic_change
