r"""Step sizes: the search for a reasonable first one, and the statistic adaptation aims at.

Dual averaging (Hoffman & Gelman, 2014, section 3.2) tunes the step size towards a target
acceptance probability, but it has to start somewhere sensible: :func:`find_reasonable_step_size`
doubles or halves the step size until one trial proposal's acceptance crosses the target
(Algorithm 4 of the same paper), for every chain of a batch at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["accept_prob", "find_reasonable_step_size", "harmonic_mean"]

#: The search never goes below or above these step sizes.
SMALLEST, LARGEST = 1e-10, 1e10
#: The most doublings (or halvings) the search makes.
MAX_DOUBLINGS = 100


def accept_prob(log_accept_ratio: Tensor) -> Tensor:
    r""":math:`\min(1, r)` from :math:`\log r`, with NaN (a failed proposal) as 0."""
    return torch.nan_to_num(log_accept_ratio, nan=-math.inf).clamp(max=0.0).exp()


def harmonic_mean(x: Tensor) -> Tensor:
    """The harmonic mean of non-negative numbers over the last dimension (0 if any is 0)."""
    return x.shape[-1] / x.reciprocal().sum(-1)


def find_reasonable_step_size(
    step_size: Tensor, acceptance: Callable[[Tensor], Tensor], target: float
) -> Tensor:
    """Double or halve each step size until the acceptance of one trial proposal crosses
    ``target``.

    :param step_size: the starting step sizes, one per chain or one shared, shape ``(B,)``.
    :param acceptance: ``step_size (B,) -> acceptance statistic (B,)`` of one trial proposal
        (per chain, or pooled over the chains).
    :param float target: the acceptance probability to cross.
    :returns: the step sizes, shape ``(B,)``; each stops where its acceptance crossed the
        target, or at :data:`SMALLEST` / :data:`LARGEST`.
    """
    step_size = step_size.clone()

    def direction(eps: Tensor) -> Tensor:
        return torch.where(acceptance(eps) > target, 1.0, -1.0)

    first = direction(step_size)
    done = torch.zeros_like(step_size, dtype=torch.bool)
    for _ in range(MAX_DOUBLINGS):
        candidate = step_size * 2.0**first
        done = done | (candidate <= SMALLEST) | (candidate >= LARGEST)
        step_size = torch.where(done, step_size, candidate)
        done = done | (direction(step_size) != first)
        if bool(done.all()):
            break
    return step_size
