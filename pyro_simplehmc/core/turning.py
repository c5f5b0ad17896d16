r"""A trajectory length learned from where trajectories turn: :class:`~pyro_simplehmc.SimpleHMC`'s
default.

During warmup each trajectory goes on past its proposal until it turns back,
:math:`(q_t - q_0)\cdot p_t < 0` in the coordinates the mass matrix whitens
(:func:`~pyro_simplehmc.core.integrators.leapfrog_to_u_turn`), and records the time :math:`t` it
took. The mean trajectory length is then

.. math::
    T = 0.45\, t_{0.9},

with :math:`t_{0.9}` the 90% quantile of the times recorded since the mass matrix last changed.
On a Gaussian whose widest direction has standard deviation :math:`\sigma` (whitened units) a
trajectory turns after half a period, :math:`\pi\sigma`, so :math:`t_{0.9} \approx \pi\sigma`
and :math:`T \approx 1.4\sigma`: with lengths jittered on :math:`T\,[0.5, 1.5]`, the lag-one
autocorrelations of that direction and of its square are about 0.16 and 0.17, near the best
ESS per gradient over both. This learns the length from one chain, in the spirit of Wu, Stoehr &
Robert (2018); ChEES (:mod:`pyro_simplehmc.core.chees`) learns it across a batch of chains instead.
These are pure functions on tensors; :class:`~pyro_simplehmc.SimpleHMC` calls them during
warmup.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .integrators import MAX_NUM_STEPS

#: The learned mean trajectory length, as a fraction of the turning times' quantile.
U_TURN_FRACTION = 0.45
#: The turning-time quantile that stands for the widest direction's half period.
U_TURN_QUANTILE = 0.9
#: A warmup trajectory looks for its turn for at most this many times the mean number of
#: steps; one that has not turned by then records that time, a lower bound, so a length far
#: too short grows about sevenfold per iteration instead of paying for the longest search at
#: once (in steady state the turn comes after about twice the mean).
TURN_SEARCH_FACTOR = 16


def search_steps(mean_num_steps: int | Tensor) -> int:
    """How many leapfrog steps a warmup trajectory may take looking for its turn, given the
    current mean number of steps (one, or one per chain: the batch searches as its longest)."""
    longest = mean_num_steps if isinstance(mean_num_steps, int) else int(mean_num_steps.max())
    return min(MAX_NUM_STEPS, TURN_SEARCH_FACTOR * longest)


def learned_length(turn_times: Tensor, step_size: Tensor, previous: Tensor) -> Tensor:
    r"""The mean trajectory length :math:`T = 0.45\, t_{0.9}` from recorded turning times.

    :param Tensor turn_times: ``(iterations, K)``, one column per step size (per chain, or one
        for chains that share theirs); NaN where a trajectory diverged before it turned.
    :param Tensor step_size: ``(K,)`` or a scalar; :math:`T` is clamped to between one step and
        :data:`~pyro_simplehmc.core.integrators.MAX_NUM_STEPS` steps.
    :param Tensor previous: ``(K,)``, the length a column keeps when none of its trajectories
        turned.
    :returns: ``(K,)``.
    """
    quantile = torch.nanquantile(turn_times, U_TURN_QUANTILE, dim=0)
    length = (U_TURN_FRACTION * quantile).clamp(min=step_size, max=MAX_NUM_STEPS * step_size)
    return torch.where(torch.isfinite(quantile), length, previous)
