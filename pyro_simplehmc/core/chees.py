r"""ChEES: adapting HMC's trajectory length across a batch of chains.

Hoffman, Radul & Sountsov (AISTATS 2021) choose the trajectory length :math:`T` that maximises
the *change in the estimator of the expected square*,

.. math::
    \mathrm{ChEES}(T) = \tfrac14\, \mathbb{E}\big[(\lVert q' - \bar q\rVert^2
        - \lVert q - \bar q\rVert^2)^2\big],

how far a trajectory moves the squared distance from the centre of the target: short
trajectories barely change it, and trajectories that come back where they started do not either.
With many chains, :math:`\bar q` is the cross-chain mean. A trajectory of length :math:`uT` ends
at :math:`q'` with velocity :math:`v' = M^{-1}p'`, so :math:`\partial q' / \partial \log T =
u T v'`, and the gradient of one chain's term with respect to :math:`\log T` is, up to a
constant factor,

.. math::
    g_c = u\,T\,\big(\lVert q'_c - \bar q'\rVert^2 - \lVert q_c - \bar q\rVert^2\big)\,
          (q'_c - \bar q')\cdot v'_c .

The chains' gradients are averaged with their acceptance probabilities as weights (a rejected
proposal moves nothing), divergent chains left out, and :math:`\log T` takes a normalised,
clipped gradient step; the final :math:`T` is an average of the iterates. Each iteration's length is
jittered, :math:`u T` with :math:`u` from a Halton sequence shared by the chains, so that no
length resonates. When the first mass-matrix window closes the search starts again from one
step (:func:`restart`), as the step size's does. These are pure functions on tensors;
:class:`~pyro_simplehmc.SimpleHMC` calls them during warmup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .integrators import MAX_NUM_STEPS

#: The learning rate of the normalised gradient step on :math:`\log T` (TFP's default).
LEARNING_RATE = 0.025
#: How fast the running mean of squared gradients forgets (TFP's default).
SQUARED_GRADIENT_DECAY = 0.5
#: The largest change of :math:`\log T` in one iteration (TFP clips the same way).
MAX_LOG_UPDATE = 0.35
#: The weight of iteration :math:`t` in the average of :math:`\log T` is :math:`t^{-0.5}`.
AVERAGING_DECAY = 0.5


def halton(index: int, base: int = 2) -> float:
    """The ``index``-th (from 1) element of the van der Corput (1-D Halton) sequence, in (0, 1).

    Quasi-random: consecutive values fill (0, 1) evenly, which makes the jittered lengths less
    noisy than independent uniforms.
    """
    result, scale = 0.0, 1.0
    while index > 0:
        scale /= base
        index, digit = divmod(index, base)
        result += digit * scale
    return result


@dataclass
class ChEESState:
    """The trajectory-length adaptation of one batch of chains.

    :ivar log_length: the current iterate, :math:`\\log T`.
    :ivar log_length_average: the running average of the iterates (what sampling uses).
    :ivar squared_gradient: the running mean of squared gradients.
    :ivar iteration: the number of updates so far.
    :ivar history: :math:`T` after each update, for figures.
    :ivar restarts: how many times the search started again (:func:`restart`).
    """

    log_length: float
    log_length_average: float
    squared_gradient: float = 0.0
    iteration: int = 0
    history: list[float] = field(default_factory=list)
    restarts: int = 0


def init(step_size: float) -> ChEESState:
    """Start from one leapfrog step, as BlackJAX does: :math:`T = \\epsilon`."""
    return ChEESState(math.log(step_size), math.log(step_size))


def restart(state: ChEESState, step_size: float) -> None:
    """Start the search again from one step, keeping the history: for when the mass matrix first
    replaces the initial one (SimpleHMC restarts once), as the step size's dual averaging starts
    again then.

    In the units of the new metric the old :math:`T` means something else, and the criterion is
    nearly flat at lengths of a period or more, where the jittered lengths average it out: an
    iterate that grew long under the first, unwhitened metric stays there.
    """
    state.log_length = state.log_length_average = math.log(step_size)
    state.squared_gradient = 0.0
    state.iteration = 0
    state.restarts += 1


def chees_gradient(
    position: Tensor,
    proposal: Tensor,
    velocity: Tensor,
    accept_prob: Tensor,
    diverging: Tensor,
    jitter: float,
    length: float,
) -> float:
    r"""The acceptance-weighted cross-chain gradient of ChEES with respect to :math:`\log T`.

    :param position: the chains' positions before the iteration, ``(C, D)``.
    :param proposal: their proposals, ``(C, D)``.
    :param velocity: :math:`M^{-1}p'` at the proposals, ``(C, D)``.
    :param accept_prob: the proposals' acceptance probabilities, ``(C,)``.
    :param diverging: which proposals diverged, ``(C,)``.
    :param float jitter: this iteration's :math:`u`.
    :param float length: this iteration's :math:`T`.
    :returns: the gradient, 0 when no chain can contribute.
    """
    usable = ~diverging & torch.isfinite(proposal).all(-1) & torch.isfinite(velocity).all(-1)
    weight = torch.where(usable, accept_prob, 0.0)
    total = weight.sum()
    if not bool(total > 1e-12):
        return 0.0
    proposal = torch.where(usable.unsqueeze(-1), proposal, 0.0)
    velocity = torch.where(usable.unsqueeze(-1), velocity, 0.0)
    proposal_centred = proposal - (weight.unsqueeze(-1) * proposal).sum(0) / total
    position_centred = position - position.mean(0)
    change = (proposal_centred**2).sum(-1) - (position_centred**2).sum(-1)
    per_chain = jitter * length * change * (proposal_centred * velocity).sum(-1)
    gradient = float((weight * per_chain).sum() / total)
    return gradient if math.isfinite(gradient) else 0.0


def update(state: ChEESState, gradient: float, step_size: float) -> None:
    """One normalised, clipped gradient-ascent step on :math:`\\log T`, then the average.

    :math:`T` is kept between one and :data:`~pyro_simplehmc.core.integrators.MAX_NUM_STEPS`
    steps of ``step_size``; a non-finite gradient counts as 0, so :math:`T` is never NaN or zero.
    """
    state.iteration += 1
    if not math.isfinite(gradient):  # nothing to learn, and nothing to poison the running mean
        gradient = 0.0
    state.squared_gradient = (
        SQUARED_GRADIENT_DECAY * state.squared_gradient
        + (1 - SQUARED_GRADIENT_DECAY) * gradient**2
    )
    step = LEARNING_RATE * gradient / math.sqrt(state.squared_gradient + 1e-20)
    step = max(-MAX_LOG_UPDATE, min(MAX_LOG_UPDATE, step))
    low, high = math.log(step_size), math.log(step_size * MAX_NUM_STEPS)
    state.log_length = max(low, min(high, state.log_length + step))
    weight = state.iteration**-AVERAGING_DECAY
    state.log_length_average = (1 - weight) * state.log_length_average + weight * state.log_length
    state.history.append(math.exp(state.log_length))
