r"""The Metropolis-Hastings correction, for a batch of chains at once.

A proposal reports the proposed state and the log of its acceptance ratio,

.. math::
    \log r = \log \pi(q') - \log \pi(q) + \log k(q \mid q') - \log k(q' \mid q),

where :math:`k` is the proposal density (for HMC, the momentum terms play that role), and
:func:`metropolis_hastings` accepts or rejects it, chain by chain. Everything is a tensor with a
leading chain dimension ``C``; one chain is ``C = 1``, and runs the same code.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

#: An energy error (minus the log acceptance ratio) above this marks a divergent proposal.
MAX_ENERGY_ERROR = 1000.0


class ChainState(NamedTuple):
    r"""Where the chains are, in the flat unconstrained space.

    :ivar position: flat positions :math:`q`, shape ``(C, D)``.
    :ivar potential_energy: :math:`U(q) = -\log \pi(q)`, shape ``(C,)``.
    :ivar grad: :math:`\nabla U(q)`, shape ``(C, D)``, or ``None`` for a kernel that uses no
        gradients.
    """

    position: Tensor
    potential_energy: Tensor
    grad: Tensor | None


class StepInfo(NamedTuple):
    r"""What one Metropolis-Hastings step did, per chain (each a tensor of shape ``(C,)``).

    :ivar accepted: whether the proposal was accepted.
    :ivar accept_prob: :math:`\min(1, r)`; 0 for a proposal that failed numerically.
    :ivar energy_error: :math:`-\log r` (``inf`` for a failed proposal).
    :ivar diverging: a numerical failure, or ``energy_error`` above :data:`MAX_ENERGY_ERROR`.
    """

    accepted: Tensor
    accept_prob: Tensor
    energy_error: Tensor
    diverging: Tensor


def select(accept: Tensor, proposal: ChainState, current: ChainState) -> ChainState:
    """``proposal`` where ``accept`` (shape ``(C,)``) is true, ``current`` elsewhere."""
    column = accept.unsqueeze(-1)
    return ChainState(
        torch.where(column, proposal.position, current.position),
        torch.where(accept, proposal.potential_energy, current.potential_energy),
        None if current.grad is None else torch.where(column, proposal.grad, current.grad),
    )


def metropolis_hastings(
    current: ChainState,
    proposal: ChainState,
    log_accept_ratio: Tensor,
    log_uniform: Tensor,
    max_energy_error: float = MAX_ENERGY_ERROR,
) -> tuple[ChainState, StepInfo]:
    r"""Accept each chain's proposal with probability :math:`\min(1, r)`, in log space.

    A proposal with a non-finite log ratio, potential or gradient is rejected: a NaN anywhere in
    a chain's trajectory ends up in one of them. Chains never mix: each has its own uniform and
    its own decision, and nothing leaves the device.

    :param current: the current states.
    :param proposal: the proposed states.
    :param log_accept_ratio: :math:`\log r`, shape ``(C,)``.
    :param log_uniform: :math:`\log u` with :math:`u \sim \mathcal{U}(0, 1)`, one per chain.
    :param max_energy_error: threshold on :math:`-\log r` above which a step is divergent.
    """
    # 0 * x is NaN for an infinite or NaN x, so a fault in the proposal's potential or gradient
    # turns the ratio into NaN without a separate check.
    guard = proposal.potential_energy
    if proposal.grad is not None:
        guard = guard + proposal.grad.sum(-1)
    log_r = log_accept_ratio + 0.0 * guard
    # NaN (a numerical fault) and +inf (a potential of -inf) both become a certain rejection.
    log_r = torch.where(log_r < torch.inf, log_r, -torch.inf)
    log_alpha = log_r.clamp(max=0.0)
    accepted = log_uniform < log_alpha
    info = StepInfo(
        accepted=accepted,
        accept_prob=log_alpha.exp(),
        energy_error=-log_r,
        diverging=-log_r > max_energy_error,
    )
    return select(accepted, proposal, current), info
