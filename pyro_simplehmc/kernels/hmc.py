r"""Hamiltonian Monte Carlo: leapfrog trajectories of a given or learned length.

One iteration, from position :math:`q`:

1. draw a fresh momentum :math:`p \sim \mathcal{N}(0, M)`;
2. follow Hamilton's equations for :math:`L` leapfrog steps of size :math:`\epsilon` to
   :math:`(q^*, p^*)`;
3. flip the momentum, :math:`p^* \to -p^*`, which makes the proposal its own inverse;
4. accept with probability :math:`\min(1, \exp(H(q, p) - H(q^*, -p^*)))`, where
   :math:`H(q, p) = U(q) + \tfrac12 p^\top M^{-1} p`.

Leapfrog preserves volume, so no Jacobian enters the ratio, and the energy error it makes is all
that the Metropolis correction has to undo. How many steps each trajectory takes is a policy of
:mod:`pyro_simplehmc.kernels.trajectory`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..core import validation as check
from ..core.chees import ChEESState
from ..core.integrators import IntegratorState, hamiltonian, leapfrog_flat, leapfrog_to_u_turn
from ..core.mh import MAX_ENERGY_ERROR, ChainState, StepInfo
from .adaptation import AdaptationEvent
from .base import MHKernel
from .trajectory import (
    ChEES,
    FixedLength,
    FixedNumSteps,
    LearnedFromTurns,
    TrajectoryInfo,
    TrajectoryLength,
    TrajectoryPlan,
)

__all__ = ["SimpleHMC", "hamiltonian"]


class SimpleHMC(MHKernel):
    r"""Hamiltonian Monte Carlo with a random (by default) or fixed trajectory length.

    One iteration costs :math:`L` gradient evaluations (the gradient at the start of a
    trajectory is the one at the end of the last accepted one).

    **The trajectory length** (:mod:`pyro_simplehmc.kernels.trajectory`). Give ``num_steps`` or
    ``trajectory_length`` (not both) and it is held while the step size adapts; give neither
    and it is learned during warmup:

    - ``num_steps=L``: the cost per iteration is set, and the trajectory length
      :math:`\epsilon L` follows the adapted step size;
    - ``trajectory_length=T``: the integration time is set, and the number of steps is
      :math:`\lceil T/\epsilon \rceil`, as in :class:`pyro.infer.HMC`;
    - neither (the default): every warmup trajectory goes on past its proposal until it turns
      back, :math:`(q_t - q_0)\cdot p_t < 0` (NUTS's criterion, in the coordinates the mass
      matrix whitens), and the mean length is :math:`T = 0.45\,t_{0.9}`, from the 90% quantile
      of the turning times since the mass matrix last changed (:mod:`pyro_simplehmc.core.turning`;
      in the spirit of Wu, Stoehr & Robert, 2018); before the first is measured, and without
      warmup, the mean is 10 steps. :attr:`learned_trajectory_length` gives :math:`T`: one per
      chain with ``chain_adaptation="per_chain"`` (a batch then costs its longest chain's steps),
      one for all with ``"pooled"``. The proposal is the one a plain trajectory of the drawn
      length would make; looking for the turn costs gradients during warmup only.

    **Random lengths by default.** Each iteration draws its number of steps uniformly from the
    integers in :math:`L\,(1 - j, 1 + j]`, :math:`j` = ``num_steps_jitter``, so that no fixed
    length can resonate with the posterior (Neal, 2011, section 5.4): once the mass matrix has
    whitened a Gaussian-like posterior every direction oscillates with about the same period,
    and a trajectory near a multiple of its half period makes successive draws nearly identical
    or antithetic. ``num_steps_jitter=0`` gives the textbook algorithm with a fixed :math:`L`.

    :attr:`fixed` says which length was given (``"num_steps"``, ``"trajectory_length"``, or
    ``None`` when it is learned) and :attr:`num_steps` gives the current mean number of steps.

    :param int num_steps: the number of leapfrog steps :math:`L \ge 1` (its mean, with jitter).
    :param float trajectory_length: the integration time :math:`T > 0`.
    :param float step_size_jitter: if positive, each iteration (and chain) uses a step size drawn
        uniformly from :math:`\epsilon\,[1 - j, 1 + j]`. In :math:`[0, 1)`; default 0 (off).
    :param float num_steps_jitter: :math:`j` in :math:`[0, 1]`; default 0.5 (lengths from
        :math:`L/2` to :math:`3L/2`); 1 for lengths up to :math:`2L`; 0 for a fixed length.
    :param bool adapt_trajectory_length: with chains run as a batch (at least 2), adapt the
        trajectory length during warmup by ChEES (Hoffman, Radul & Sountsov, 2021;
        :mod:`pyro_simplehmc.core.chees`); the chains then share their step size and mass
        matrix. :attr:`adapted_trajectory_length` and :attr:`chees` (with its ``history``) show
        what it learned.

    The other arguments are those of :class:`~pyro_simplehmc.MHKernel`; ``target_accept_prob``
    defaults to 0.8, as in :class:`pyro.infer.HMC` (0.651 with ``adapt_trajectory_length``, as
    in ChEES).

    Example::

        >>> kernel = SimpleHMC(model, num_steps=20)
        >>> mcmc = MCMC(kernel, num_samples=2000, warmup_steps=500, num_chains=2)
        >>> mcmc.run(data)
    """

    #: As Pyro's HMC (the design notes have the measurements against 0.65).
    default_target_accept_prob = 0.8
    #: ChEES's own target (Hoffman, Radul & Sountsov, 2021), for the harmonic mean over chains.
    chees_target_accept_prob = 0.651
    #: Damped more than the other kernels' dual averaging: near HMC's stability limit the
    #: acceptance falls off a cliff as the step size grows.
    dual_averaging_gamma = 0.5
    #: The mean number of steps before a trajectory length is learned, or without warmup.
    DEFAULT_NUM_STEPS = LearnedFromTurns.DEFAULT_NUM_STEPS
    #: The integrator (a class attribute, so that a test can swap in a broken one).
    integrator = staticmethod(leapfrog_flat)

    def __init__(
        self,
        model=None,
        potential_fn=None,
        step_size: float = 1.0,
        trajectory_length: float | None = None,
        num_steps: int | None = None,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        full_mass=False,
        transforms=None,
        max_plate_nesting=None,
        jit_compile=False,
        jit_options=None,
        ignore_jit_warnings=False,
        target_accept_prob: float | None = None,
        init_strategy=None,
        *,
        inverse_mass_matrix=None,
        chain_adaptation: str | None = None,
        batched_potential: bool = False,
        mass_estimator: str = "stan",
        low_rank_size: int | None = None,
        step_size_jitter: float = 0.0,
        num_steps_jitter: float = 0.5,
        adapt_trajectory_length: bool = False,
    ):
        if num_steps is not None and trajectory_length is not None:
            raise ValueError(
                "give num_steps or trajectory_length, not both; "
                f"got num_steps={num_steps!r} and trajectory_length={trajectory_length!r}"
            )
        jitter = {
            "step_size_jitter": check.unit_interval_right_open(
                "step_size_jitter", step_size_jitter
            ),
            "num_steps_jitter": check.unit_interval("num_steps_jitter", num_steps_jitter),
        }
        self.adapt_trajectory_length = check.boolean(
            "adapt_trajectory_length", adapt_trajectory_length
        )
        self.trajectory_length = None
        if trajectory_length is not None:
            self.fixed = "trajectory_length"
            self.trajectory_length = check.positive_finite("trajectory_length", trajectory_length)
            policy: TrajectoryLength = FixedLength(self.trajectory_length, **jitter)
        elif num_steps is not None:
            self.fixed = "num_steps"
            policy = FixedNumSteps(check.positive_int("num_steps", num_steps), **jitter)
        else:
            self.fixed = None
            policy = LearnedFromTurns(**jitter)
        if adapt_trajectory_length:
            if chain_adaptation not in (None, "pooled"):
                raise ValueError(
                    "adapt_trajectory_length=True adapts one step size and one trajectory "
                    'length shared by the chains: chain_adaptation must be "pooled" (or left '
                    f"out); got {chain_adaptation!r}"
                )
            policy = ChEES(self.trajectory_length)
            chain_adaptation = "pooled"
            # As ChEES prescribes: the harmonic mean, so that a stuck chain pulls the step down
            # (the first step-size search included).
            self.pooled_statistic = "harmonic"
            if target_accept_prob is None:
                target_accept_prob = self.chees_target_accept_prob
        #: The trajectory-length policy (:mod:`pyro_simplehmc.kernels.trajectory`).
        self.trajectory = policy
        super().__init__(
            model,
            potential_fn,
            step_size,
            adapt_step_size,
            adapt_mass_matrix,
            full_mass,
            transforms,
            max_plate_nesting,
            jit_compile,
            jit_options,
            ignore_jit_warnings,
            target_accept_prob,
            init_strategy,
            inverse_mass_matrix=inverse_mass_matrix,
            chain_adaptation=chain_adaptation or "per_chain",
            batched_potential=batched_potential,
            mass_estimator=mass_estimator,
            low_rank_size=low_rank_size,
        )

    # ------------------------------------------------------------------ the algorithm

    def propose(self, state: ChainState, step_size: Tensor | float):
        r"""A trajectory from each chain's state: the proposals, :math:`\log r`, and the
        :class:`~pyro_simplehmc.kernels.trajectory.TrajectoryInfo` that the length policy learns
        from during warmup."""
        if not isinstance(step_size, Tensor):  # a number, as in the tutorial's hand-run lines
            step_size = state.position.new_full((1, 1), step_size)
        run = self._run
        warmup = run.t < run.warmup_steps
        plan = self.trajectory.plan(step_size, self.iteration, warmup)
        return self._trajectory(state, plan, warmup)

    def _trajectory(
        self, state: ChainState, plan: TrajectoryPlan, warmup: bool = False
    ) -> tuple[ChainState, Tensor, TrajectoryInfo]:
        metric = self.metric
        p = metric.momentum_from_normal(torch.randn_like(state.position))
        turn_time = None
        if plan.search_steps and warmup:
            # Go on past the proposal to where the trajectory turns; the proposal is unchanged.
            start = IntegratorState(state.position, p, state.potential_energy, state.grad)
            end, turn_time = leapfrog_to_u_turn(
                start,
                self.value_and_grad,
                metric,
                plan.step_size,
                plan.num_steps,
                plan.search_steps,
                MAX_ENERGY_ERROR,
            )
        else:
            end = self.integrator(
                state.position,
                p,
                self.value_and_grad,
                metric.velocity,
                plan.step_size,
                plan.num_steps,
                grad=state.grad,
            )
        # The flip p -> -p makes the proposal an involution; K(-p) = K(p), so it costs nothing.
        log_accept_ratio = hamiltonian(state.potential_energy, p, metric) - hamiltonian(
            end.potential_energy, -end.momentum, metric
        )
        velocity = metric.velocity(end.momentum) if warmup and isinstance(
            self.trajectory, ChEES) else None  # fmt: skip
        proposal = ChainState(end.position, end.potential_energy, end.grad)
        return proposal, log_accept_ratio, TrajectoryInfo(plan, velocity, turn_time)

    def learn(
        self,
        start: ChainState,
        proposal: ChainState,
        step: StepInfo,
        event: AdaptationEvent,
        extra: TrajectoryInfo = None,
    ) -> None:
        self.trajectory.learn(extra, start, proposal, step, event, self._adapter.step_size)

    def _trial_log_accept_ratio(self, state: ChainState, step_size: Tensor) -> Tensor:
        # As Stan and Pyro do, search the step size with a single leapfrog step.
        return self._trajectory(state, TrajectoryPlan(1, step_size))[1]

    # ------------------------------------------------------------------ setup and state

    def _setup(self, warmup_steps, num_chains, args, kwargs) -> None:
        if self.adapt_trajectory_length and (num_chains is None or num_chains < 2):
            raise ValueError(
                "adapt_trajectory_length=True needs at least 2 chains run as a batch, for the "
                "cross-chain means of ChEES: use pyro_simplehmc.MCMC(..., num_chains=C, "
                f'chain_method="vectorized") with C >= 2; got num_chains={num_chains}'
            )
        super()._setup(warmup_steps, num_chains, args, kwargs)

    def _start_run(self) -> None:
        self.trajectory.start(self._adapter.step_size)

    def _trajectory_state(self) -> dict[str, Any]:
        return self.trajectory.state_dict()

    def _load_trajectory_state(self, state: dict[str, Any]) -> None:
        self.trajectory.load_state_dict(state)

    def _extra_diagnostics(self) -> dict[str, Any]:
        return self.trajectory.diagnostics(self._adapter.step_size)

    # ------------------------------------------------------------------ what it learned

    @property
    def num_steps(self) -> int | Tensor:
        """The mean number of leapfrog steps per iteration at the current step size (one per
        chain when the chains have their own step sizes and the length is a time)."""
        step_size = self._step_size if self._adapter is None else self._adapter.step_size
        return self.trajectory.mean_num_steps(torch.as_tensor(step_size).reshape(-1))

    @property
    def step_size_jitter(self) -> float:
        """The relative jitter of each iteration's step size (0: none)."""
        return self.trajectory.step_size_jitter

    @property
    def num_steps_jitter(self) -> float:
        """The relative jitter of each iteration's number of steps (0: a fixed length)."""
        return self.trajectory.num_steps_jitter

    @property
    def learned_trajectory_length(self) -> Tensor | None:
        """The mean trajectory length learned from the turning times (one per step size), NaN
        before the first is measured; ``None`` when the length is given or adapted by ChEES."""
        policy = self.trajectory
        return policy.learned_length if isinstance(policy, LearnedFromTurns) else None

    @property
    def chees(self) -> ChEESState | None:
        """ChEES's state (``adapt_trajectory_length=True``), with its ``history`` of :math:`T`."""
        return self.trajectory.state if isinstance(self.trajectory, ChEES) else None

    @property
    def adapted_trajectory_length(self) -> float | None:
        """The trajectory length :math:`T` that ChEES adapted (what sampling uses), or ``None``."""
        policy = self.trajectory
        return policy.length if isinstance(policy, ChEES) and policy.state is not None else None
