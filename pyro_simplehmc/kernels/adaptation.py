r"""Warmup adaptation of a batch of chains: Stan's windows, dual averaging, Welford estimates.

:class:`BatchWarmupAdapter` tunes the step size and the inverse mass matrix during warmup, as
Stan does (Stan Reference Manual, "HMC algorithm parameters: automatic parameter tuning"):

- in every warmup iteration, dual averaging (Hoffman & Gelman, 2014, section 3.2; Pyro's
  :class:`~pyro.ops.dual_averaging.DualAveraging`, which is plain arithmetic and so runs on one
  entry per chain) moves the log step size towards the target acceptance probability;
- in the slow windows of :func:`pyro_simplehmc.core.schedule.windows`, Welford estimates of the
  posterior covariance accumulate (:class:`~pyro_simplehmc.kernels.mass_matrix.BatchMassMatrix`);
  when a slow window ends the estimate becomes the inverse mass matrix and the step size is
  searched for again (:func:`~pyro_simplehmc.core.step_size.find_reasonable_step_size`) and its
  dual averaging restarted from there;
- when warmup ends the step size is fixed at the average of the dual-averaging iterates.

Each chain adapts its own step size and mass matrix (``"per_chain"``), or the chains share them
(``"pooled"``: the step size adapts on a statistic of the chains' acceptance probabilities, and
the mass matrix is estimated from every chain's draws). :meth:`BatchWarmupAdapter.step` says what
it did in an :class:`AdaptationEvent`, for the kernels that learn more than these.

Three constants differ from Stan's, which were chosen for NUTS, whose acceptance statistic
averages over a whole trajectory; here it is one proposal's acceptance probability, which is
noisier, and dual averaging's iterates wander more widely, so that their average misses the
target (Jensen's inequality). The shrinkage point is the step size the search found (not ten
times it); ``gamma`` is :data:`DUAL_AVERAGING_GAMMA` (Stan: 0.05), and the final buffer is a fifth
of the warmup (at least Stan's 50 iterations). ``docs/design-notes.md`` has the measurements.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import pyro
import torch
from pyro.ops.dual_averaging import DualAveraging
from torch import Tensor

from ..core import schedule
from ..core.mh import ChainState
from ..core.step_size import harmonic_mean
from .mass_matrix import BatchMassMatrix

__all__ = ["DUAL_AVERAGING_GAMMA", "AdaptationEvent", "BatchWarmupAdapter"]

#: Dual averaging's ``gamma`` for kernels that do not set their own.
DUAL_AVERAGING_GAMMA = 0.2


class AdaptationEvent(NamedTuple):
    """What one warmup iteration's adaptation did.

    :ivar window_ended: an adaptation window ended with this iteration.
    :ivar mass_matrix_updated: the inverse mass matrix was replaced by a new estimate (and the
        step size searched for again).
    :ivar warmup_ended: this was the last warmup iteration: the step size is now fixed.
    """

    window_ended: bool = False
    mass_matrix_updated: bool = False
    warmup_ended: bool = False


#: The event of an iteration in which nothing but the step size's dual averaging moved.
NOTHING = AdaptationEvent()


class BatchWarmupAdapter:
    r"""Step size and inverse mass matrix of a batch of chains, tuned in Stan's windows.

    :param float step_size: the initial step size.
    :param int warmup_steps: the number of warmup iterations.
    :param blocks: the mass matrix's blocks (see
        :func:`~pyro_simplehmc.kernels.mass_matrix.mass_matrix_blocks`).
    :param int num_chains: the number of chains in the batch.
    :param str chain_adaptation: ``"per_chain"`` or ``"pooled"``.
    :param bool adapt_step_size: adapt the step size.
    :param bool adapt_mass_matrix: adapt the inverse mass matrix.
    :param float target_accept_prob: the acceptance probability dual averaging aims at.
    :param float dual_averaging_gamma: how strongly dual averaging pulls its iterates towards
        the shrinkage point.
    :param str pooled_statistic: with pooled adaptation, the statistic of the chains'
        acceptance probabilities that adapts: ``"mean"``, or ``"harmonic"`` (as ChEES
        prescribes, so that one stuck chain pulls the shared step size down).
    :param find_step_size: ``state -> step sizes (B,)``: the search that starts the step size's
        adaptation (at setup and after each mass-matrix update); ``None`` keeps the step size.
    :param dtype: the dtype of the step sizes and matrices.
    :param device: their device.
    :param str mass_estimator: how the slow windows estimate the inverse mass matrix: ``"stan"``
        (the draws' covariance), ``"fisher"`` or ``"low_rank"`` (from draws and gradients; see
        :mod:`pyro_simplehmc.core.mass_estimators`).
    :param int low_rank_size: the largest rank of the ``"low_rank"`` correction.

    :attr:`step_size` has one entry per chain (``"per_chain"``) or one shared entry
    (``"pooled"``); :attr:`mass_matrix` holds the inverse mass matrix.
    """

    def __init__(
        self,
        step_size: float,
        warmup_steps: int,
        blocks: Mapping[tuple[str, ...], tuple[int, ...]],
        *,
        num_chains: int = 1,
        chain_adaptation: str = "per_chain",
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        target_accept_prob: float = 0.8,
        dual_averaging_gamma: float = DUAL_AVERAGING_GAMMA,
        pooled_statistic: str = "mean",
        find_step_size: Callable[[ChainState], Tensor] | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
        mass_estimator: str = "stan",
        low_rank_size: int | None = None,
    ):
        adapting = warmup_steps > 0
        self.pooled = chain_adaptation == "pooled"
        self.num_chains = num_chains
        num_matrices = 1 if self.pooled else num_chains
        self.adapt_step_size = adapt_step_size and adapting
        self.adapt_mass_matrix = adapt_mass_matrix and adapting
        self.target_accept_prob = target_accept_prob
        self.pooled_statistic = pooled_statistic
        self.find_step_size = find_step_size
        self.step_size = torch.full((num_matrices,), float(step_size), dtype=dtype, device=device)
        self.mass_matrix = BatchMassMatrix(
            blocks, num_matrices, self.pooled, self.adapt_mass_matrix, dtype, device,
            mass_estimator, low_rank_size,
        )  # fmt: skip
        self.windows: list[schedule.Window] = []
        if self.adapt_step_size or self.adapt_mass_matrix:
            final_buffer = max(schedule.FINAL_BUFFER, warmup_steps // 5)
            self.windows = schedule.windows(warmup_steps, final_buffer=final_buffer)
        self._window = 0
        self._dual_averaging = DualAveraging(gamma=dual_averaging_gamma)

    def pool(self, accept_prob: Tensor) -> Tensor:
        """The acceptance statistic the step size adapts on: per chain, or pooled over chains."""
        if not self.pooled:
            return accept_prob
        if self.pooled_statistic == "harmonic":
            return harmonic_mean(accept_prob).reshape(1)
        return accept_prob.mean(-1, keepdim=True)

    def start_step_size_adaptation(self, state: ChainState | None) -> None:
        """Search for a step size at ``state`` and start dual averaging from it (from the
        current step size, without a search, when ``state`` is ``None``)."""
        if self.find_step_size is not None and state is not None:
            # As Pyro does: a trial step may leave the support; that is an answer, not an error.
            with pyro.validation_enabled(False):
                self.step_size = self.find_step_size(state)
        self._dual_averaging.prox_center = torch.log(self.step_size)
        self._dual_averaging.reset()

    def step(self, t: int, state: ChainState, accept_prob: Tensor) -> AdaptationEvent:
        """Learn from warmup iteration ``t``: where the chains are now and the acceptance
        probabilities of their proposals, shape ``(C,)``."""
        if self._window >= len(self.windows) or t > self.windows[-1].end:
            return NOTHING
        window = self.windows[self._window]
        last = len(self.windows) - 1
        slow = self.adapt_mass_matrix and 0 < self._window < last
        if self.adapt_step_size:
            self._dual_averaging.step(self.target_accept_prob - self.pool(accept_prob))
            self.step_size = torch.exp(self._dual_averaging.get_state()[0])
        if slow:
            self.mass_matrix.update(state.position, state.grad)
        if t != window.end:
            return NOTHING
        self._window += 1
        if self._window > last:
            if self.adapt_step_size:
                self.step_size = torch.exp(self._dual_averaging.get_state()[1])
            return AdaptationEvent(window_ended=True, warmup_ended=True)
        if not slow:
            return AdaptationEvent(window_ended=True)
        self.mass_matrix.end_adaptation()
        if self.adapt_step_size:
            self.start_step_size_adaptation(state)
        return AdaptationEvent(window_ended=True, mass_matrix_updated=True)
