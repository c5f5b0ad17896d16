r"""How long HMC's trajectories are: four policies with one interface.

A policy answers two questions. Before an iteration, :meth:`TrajectoryLength.plan`: how many
leapfrog steps, at which step size, and whether the trajectory runs on past its proposal to find
where it turns. After a warmup iteration, :meth:`TrajectoryLength.learn`: what to take from the
finished trajectory. :class:`~pyro_simplehmc.SimpleHMC` builds one from its arguments:

- :class:`FixedNumSteps` (``num_steps=L``): the cost per iteration is fixed, and the
  integration time :math:`\epsilon L` follows the adapted step size;
- :class:`FixedLength` (``trajectory_length=T``): the integration time is fixed, and the number of
  steps :math:`\lceil T/\epsilon \rceil` follows the step size (as in :class:`pyro.infer.HMC`);
- :class:`LearnedFromTurns` (neither, the default): during warmup every trajectory runs on until
  it turns back, and :math:`T` is learned from the times that took
  (:mod:`pyro_simplehmc.core.turning`);
- :class:`ChEES` (``adapt_trajectory_length=True``): :math:`T` adapted across a batch of chains by
  ChEES (:mod:`pyro_simplehmc.core.chees`).

The first three draw each iteration's number of steps uniformly from the integers in
:math:`L\,(1 - j, 1 + j]`, :math:`j` = ``num_steps_jitter`` (Neal, 2011, section 5.4), once for the
whole batch so that no chain waits for another, and can jitter the step size, per chain, uniformly
in :math:`\epsilon\,[1 - j_\epsilon, 1 + j_\epsilon]`; ChEES jitters the length itself.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ..core import chees, turning
from ..core.integrators import MAX_NUM_STEPS
from ..core.mh import ChainState, StepInfo
from .adaptation import AdaptationEvent

__all__ = [
    "ChEES",
    "FixedLength",
    "FixedNumSteps",
    "LearnedFromTurns",
    "TrajectoryInfo",
    "TrajectoryLength",
    "TrajectoryPlan",
]


class TrajectoryPlan(NamedTuple):
    r"""One iteration's trajectory.

    :ivar num_steps: the number of leapfrog steps: one for the batch, or one per chain ``(C,)``.
    :ivar step_size: the step size, ``(C, 1)`` or ``(1, 1)``.
    :ivar search_steps: if positive, run on past the proposal, up to this many steps in all,
        until the trajectory turns (to learn from the turning time).
    :ivar jitter: ChEES's :math:`u` (the length is :math:`uT`), else ``None``.
    :ivar length: ChEES's :math:`T` for this iteration, else ``None``.
    """

    num_steps: int | Tensor
    step_size: Tensor
    search_steps: int = 0
    jitter: float | None = None
    length: float | None = None


class TrajectoryInfo(NamedTuple):
    """What a finished trajectory tells its policy.

    :ivar plan: the plan it followed.
    :ivar velocity: :math:`M^{-1}p` at the proposal, ``(C, D)``.
    :ivar turn_time: with ``plan.search_steps``, each chain's turning time ``(C,)`` (see
        :func:`~pyro_simplehmc.core.integrators.leapfrog_to_u_turn`), else ``None``.
    """

    plan: TrajectoryPlan
    velocity: Tensor
    turn_time: Tensor | None = None


class TrajectoryLength:
    """The interface, and the jitter shared by the policies that do not learn by ChEES.

    :param float num_steps_jitter: :math:`j` in :math:`[0, 1]`; 0 for a fixed length.
    :param float step_size_jitter: :math:`j_\\epsilon` in :math:`[0, 1)`; 0 (the default) for none.
    """

    def __init__(self, num_steps_jitter: float = 0.5, step_size_jitter: float = 0.0):
        self.num_steps_jitter = num_steps_jitter
        self.step_size_jitter = step_size_jitter

    def start(self, step_size: Tensor) -> None:
        """A new run begins, with these (initial) step sizes, shape ``(B,)``."""

    def mean_num_steps(self, step_size: Tensor) -> int | Tensor:
        """The mean number of steps at ``step_size`` ``(B,)``: an int, or one per chain."""
        raise NotImplementedError

    def plan(self, step_size: Tensor, iteration: int, warmup: bool) -> TrajectoryPlan:
        """This iteration's trajectory, at the adapted ``step_size`` ``(B, 1)``."""
        num_steps = self.mean_num_steps(step_size.reshape(-1))
        if self.num_steps_jitter > 0:
            u = torch.rand(()).item()
            num_steps = num_steps * (1 - self.num_steps_jitter + 2 * self.num_steps_jitter * u)
            num_steps = (
                max(1, math.ceil(num_steps))
                if isinstance(num_steps, float)
                else torch.ceil(num_steps).clamp(min=1).long()
            )
        if self.step_size_jitter > 0:
            noise = 2 * torch.rand_like(step_size) - 1
            step_size = step_size * (1 + self.step_size_jitter * noise)
        return TrajectoryPlan(num_steps, step_size)

    def learn(
        self,
        info: TrajectoryInfo,
        start: ChainState,
        proposal: ChainState,
        step: StepInfo,
        event: AdaptationEvent,
        step_size: Tensor,
    ) -> None:
        """Learn from a warmup iteration that went from ``start`` to ``proposal`` (``step`` says
        what the Metropolis-Hastings correction did, ``event`` what the adapter did; the
        adapted ``step_size`` is ``(B,)``). Nothing, for a fixed length."""

    def diagnostics(self, step_size: Tensor) -> dict[str, Any]:
        """What :meth:`~pyro_simplehmc.MHKernel.diagnostics` reports of the length."""
        num_steps = self.mean_num_steps(step_size)
        return {"num steps": num_steps if isinstance(num_steps, int) else num_steps.tolist()}

    def state_dict(self) -> dict[str, Any]:
        """What a continuation of the run needs (tensors, numbers)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`."""


class FixedNumSteps(TrajectoryLength):
    """``num_steps`` leapfrog steps (on average, with jitter)."""

    def __init__(self, num_steps: int, **jitter):
        super().__init__(**jitter)
        self.num_steps = num_steps

    def mean_num_steps(self, step_size: Tensor) -> int:
        return self.num_steps


def _steps_for(length: Tensor | float, step_size: Tensor) -> int | Tensor:
    r""":math:`\lceil T/\epsilon \rceil`, at least 1: an int for one step size, else per chain."""
    num_steps = torch.ceil(length / step_size.reshape(-1) - 1e-9).clamp(min=1).long()
    return int(num_steps) if num_steps.numel() == 1 else num_steps.flatten()


class FixedLength(TrajectoryLength):
    """The integration time ``trajectory_length`` (on average, with jitter)."""

    def __init__(self, trajectory_length: float, **jitter):
        super().__init__(**jitter)
        self.trajectory_length = trajectory_length

    def mean_num_steps(self, step_size: Tensor) -> int | Tensor:
        return _steps_for(self.trajectory_length, step_size)


class LearnedFromTurns(TrajectoryLength):
    r"""The mean length :math:`T = 0.45\,t_{0.9}` learned in warmup from turning times
    (:func:`pyro_simplehmc.core.turning.learned_length`), fixed when warmup ends.

    :attr:`learned_length` holds :math:`T`, one per step size (per chain, or shared); NaN before
    the first is measured, when the mean is :data:`DEFAULT_NUM_STEPS` steps.
    """

    #: The mean number of steps before a length is learned, or without warmup.
    DEFAULT_NUM_STEPS = 10

    def __init__(self, **jitter):
        super().__init__(**jitter)
        self.learned_length: Tensor | None = None
        self._turn_times: list[Tensor] = []

    def start(self, step_size: Tensor) -> None:
        self.learned_length = torch.full_like(step_size, math.nan)
        self._turn_times = []

    def mean_num_steps(self, step_size: Tensor) -> int | Tensor:
        length = self.learned_length
        if length is None or not bool(torch.isfinite(length).all()):
            return self.DEFAULT_NUM_STEPS
        num_steps = _steps_for(length, step_size)
        return min(num_steps, MAX_NUM_STEPS) if isinstance(num_steps, int) else (
            num_steps.clamp(max=MAX_NUM_STEPS)
        )

    def plan(self, step_size: Tensor, iteration: int, warmup: bool) -> TrajectoryPlan:
        plan = super().plan(step_size, iteration, warmup)
        if not warmup:
            return plan
        # Look for the turn for a multiple of the mean number of steps at this step size.
        search = turning.search_steps(self.mean_num_steps(plan.step_size.reshape(-1)))
        return plan._replace(search_steps=search)

    def learn(self, info, start, proposal, step, event, step_size) -> None:
        self._turn_times.append(info.turn_time)
        times = torch.stack(self._turn_times)  # (iterations, C)
        if step_size.numel() == 1 and times.shape[-1] > 1:
            times = times.reshape(-1, 1)  # one length for chains that share their step size
        self.learned_length = turning.learned_length(times, step_size, self.learned_length)
        if event.window_ended:  # the mass matrix may change: start measuring again
            self._turn_times = []

    def diagnostics(self, step_size: Tensor) -> dict[str, Any]:
        extra = super().diagnostics(step_size)
        length = self.learned_length
        if length is not None:
            extra["trajectory length"] = float(length) if length.numel() == 1 else length.tolist()
        return extra

    def state_dict(self) -> dict[str, Any]:
        return {"learned_length": self.learned_length}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learned_length = state["learned_length"]
        self._turn_times = []


class ChEES(TrajectoryLength):
    r"""ChEES (Hoffman, Radul & Sountsov, 2021): :math:`T` adapted during warmup to maximise the
    change in the chains' squared distance from their centre; each iteration runs
    :math:`\lceil u_t T / \epsilon \rceil` steps, :math:`u_t` from a Halton sequence shared by the
    chains; the iterate during warmup, the average after.

    :param float initial_length: :math:`T` to start from (default: one step).
    """

    def __init__(self, initial_length: float | None = None):
        super().__init__(num_steps_jitter=0.0)
        self.initial_length = initial_length
        #: The adaptation's state (:class:`pyro_simplehmc.core.chees.ChEESState`).
        self.state: chees.ChEESState | None = None

    def start(self, step_size: Tensor) -> None:
        self.state = chees.init(self.initial_length or float(step_size))

    @property
    def length(self) -> float:
        """The adapted :math:`T` (what sampling uses)."""
        return math.exp(self.state.log_length_average)

    def mean_num_steps(self, step_size: Tensor) -> int:
        return max(1, math.ceil(self.length / float(step_size)))

    def plan(self, step_size: Tensor, iteration: int, warmup: bool) -> TrajectoryPlan:
        state = self.state
        length = math.exp(state.log_length if warmup else state.log_length_average)
        jitter = chees.halton(iteration + 1)
        num_steps = max(1, math.ceil(jitter * length / float(step_size)))
        return TrajectoryPlan(num_steps, step_size, jitter=jitter, length=length)

    def learn(self, info, start, proposal, step, event, step_size) -> None:
        plan = info.plan
        gradient = chees.chees_gradient(
            start.position,
            proposal.position,
            info.velocity,
            step.accept_prob,
            step.diverging,
            plan.jitter,
            plan.length,
        )
        chees.update(self.state, gradient, float(step_size))
        # Once, when the mass matrix first replaces the initial one: later windows refine it,
        # and a restart then would leave too few iterations to grow T again.
        if event.mass_matrix_updated and self.state.restarts == 0:
            chees.restart(self.state, float(step_size))

    def diagnostics(self, step_size: Tensor) -> dict[str, Any]:
        return {"trajectory length": self.length}

    def state_dict(self) -> dict[str, Any]:
        return {"chees": self.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = state["chees"]
