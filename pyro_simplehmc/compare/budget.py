r"""When a comparison stops sampling: is the verdict reliable yet, and what is left of the budget.

A verdict is reliable when the bulk and tail ESS of every coordinate and of its square reach
:data:`~pyro_simplehmc.checks.statistics.MIN_RELIABLE_ESS` and the largest :math:`\hat R` is below
:data:`~pyro_simplehmc.checks.statistics.MAX_RELIABLE_RHAT` (Vehtari et al. 2021); until then a
comparison asks for more draws (:func:`draws_wanted`) within its budget of evaluations
(:func:`cost`), the same for every kernel.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from ..checks.statistics import MAX_RELIABLE_RHAT, MIN_RELIABLE_ESS, draws_needed, ess, max_r_hat
from .summary import ChainRun, judged_draws


def cost(chains: Sequence[ChainRun], uses_gradient: bool, stage: str | None = None) -> int:
    """Evaluations of ``chains`` (gradients, or potentials for a gradient-free kernel), in
    ``stage`` (``"warmup"`` or ``"sampling"``) or in all."""
    counts = [c.gradients if uses_gradient else c.potentials for c in chains]
    stages = ("warmup", "sampling") if stage is None else (stage,)
    return sum(c[s] for c in counts for s in stages)


def unreliable(
    draws: np.ndarray, superchain_ids: Sequence[int] | None = None
) -> tuple[str | None, float, float]:
    """Why a verdict on ``draws`` (``(chains, draws, D)``) would not be reliable yet, if it would
    not (``"TOO FEW DRAWS"`` or ``"NOT MIXED"``), the smallest bulk or tail ESS of the
    coordinates and their squares, and the largest R-hat (nested, given ``superchain_ids``:
    :func:`~pyro_simplehmc.checks.statistics.max_r_hat`), computed from the draws a verdict
    would be computed from (:func:`~pyro_simplehmc.compare.summary.judged_draws`)."""
    draws = judged_draws(draws)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        smallest = min(
            float(np.min(ess(x, method))) for x in (draws, draws**2) for method in ("bulk", "tail")
        )
        r_hat = max_r_hat(draws, superchain_ids)
    if not smallest >= MIN_RELIABLE_ESS:
        return "TOO FEW DRAWS", smallest, r_hat
    if not r_hat < MAX_RELIABLE_RHAT:
        return "NOT MIXED", smallest, r_hat
    return None, smallest, r_hat


def draws_wanted(done: int, why: str, smallest: float, r_hat: float) -> int:
    r"""Draws per chain to aim for next: for too few draws, what the ESS so far says
    (:func:`~pyro_simplehmc.checks.statistics.draws_needed`); for R-hat, as many more as
    :math:`\hat R - 1` is above half the threshold's margin (it shrinks about as :math:`1/n`
    while the chains are only short), between twice and eight times the draws so far."""
    if why == "NOT MIXED" and math.isfinite(r_hat):
        factor = (r_hat - 1.0) / (0.5 * (MAX_RELIABLE_RHAT - 1.0))
        return math.ceil(done * min(8.0, max(2.0, factor)))
    return max(draws_needed(done, smallest, why) or 2 * done, 2 * done)


__all__ = ["cost", "draws_wanted", "unreliable"]
