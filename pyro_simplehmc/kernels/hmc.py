r"""Hamiltonian Monte Carlo: leapfrog trajectories of a given or learned length.

One iteration, from position :math:`q`:

1. draw a fresh momentum :math:`p \sim \mathcal{N}(0, M)`;
2. follow Hamilton's equations for :math:`L` leapfrog steps of size :math:`\epsilon` to
   :math:`(q^*, p^*)`;
3. flip the momentum, :math:`p^* \to -p^*`, which makes the proposal its own inverse;
4. accept with probability :math:`\min(1, \exp(H(q, p) - H(q^*, -p^*)))`, where
   :math:`H(q, p) = U(q) + \tfrac12 p^\top M^{-1} p`.

Leapfrog preserves volume, so no Jacobian enters the ratio, and the energy error it makes is all
that the Metropolis correction has to undo.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..core import chees, turning
from ..core import validation as check
from ..core.integrators import IntegratorState, leapfrog_flat, leapfrog_to_u_turn
from ..core.mh import MAX_ENERGY_ERROR
from .base import ChainState, MHKernel, StepInfo


def hamiltonian(potential_energy: Tensor, momentum: Tensor, metric) -> Tensor:
    r"""Total energy :math:`H = U(q) + K(p)`."""
    return potential_energy + metric.kinetic_energy(momentum)


class SimpleHMC(MHKernel):
    r"""Hamiltonian Monte Carlo with a random (by default) or fixed trajectory length.

    One iteration costs :math:`L` gradient evaluations (the gradient at the start of a
    trajectory is the one at the end of the last accepted one).

    **The trajectory length.** Give ``num_steps`` or ``trajectory_length`` (not both) and it
    is held while the step size adapts; give neither and it is learned during warmup:

    - ``num_steps=L``: the cost per iteration is set, and the trajectory length
      :math:`\epsilon L` follows the adapted step size;
    - ``trajectory_length=T``: the integration time is set, and the number of steps is
      :math:`\lceil T/\epsilon \rceil`, so the cost follows the adapted step size. This is what
      :class:`pyro.infer.HMC` does;
    - neither (the default): every warmup trajectory goes on past its proposal until it turns
      back, :math:`(q_t - q_0)\cdot p_t < 0` (NUTS's criterion, measured in the coordinates the
      mass matrix whitens), and the time :math:`t` it took is recorded. The mean trajectory
      length is then :math:`T = 0.45\,t_{0.9}`, with :math:`t_{0.9}` the 90% quantile of the
      times recorded since the mass matrix last changed, and it is fixed when warmup ends: one
      chain learns it alone, in the spirit of Wu, Stoehr & Robert (2018). For a Gaussian whose
      widest whitened direction has standard deviation :math:`\sigma`, :math:`T \approx
      1.4\sigma` (:mod:`pyro_simplehmc.core.turning` says why these numbers). Before the first
      measurement, and without warmup, the mean is :data:`DEFAULT_NUM_STEPS` steps.
      :attr:`learned_trajectory_length` gives :math:`T`: one per chain with
      ``chain_adaptation="per_chain"`` (a batch then costs its longest chain's steps), one for
      all with ``"pooled"``. Extending the trajectories costs gradients during warmup only
      (about twice a proposal's), and the proposal itself is the one a plain trajectory of the
      drawn length would make.

    **Random lengths by default.** Each iteration draws its number of steps uniformly from the
    integers in :math:`L\,(1 - j, 1 + j]`, with :math:`j` = ``num_steps_jitter`` (default 0.5)
    and :math:`L` the mean. A fixed length can come back where it started: once the mass matrix
    has whitened a Gaussian-like posterior, every direction oscillates with about the same
    period, and a trajectory near a multiple of its half-period makes successive draws nearly
    identical (or antithetic, so that the squares mix badly). Measured on a 100-D diagonal
    Gaussian with a fixed :math:`L = 10`: a smallest ESS of 2 in 2000 draws. Drawing the length
    at random (Neal, 2011, section 5.4; Hoffman, Radul & Sountsov, 2021) leaves no length to
    resonate, and keeps the acceptance a smooth, decreasing function of the step size, which is
    what step-size adaptation needs. The jitter of 0.5 rather than 1 (lengths from 0 to
    :math:`2T`, as ChEES draws them): for a direction of angular frequency :math:`\omega`, the
    autocorrelation of its square is the mean of :math:`\cos^2 \omega t` over the lengths, and
    lengths near 0 move nothing, so a narrower spread mixes the squares better near the learned
    :math:`T` (0.17 against 0.44 above), while for any :math:`\omega T \ge 2` it stays at most
    0.61 (0.56 with a jitter of 1): no length resonates. Measured on the 2-D correlated Gaussian
    of ``simplehmc validate``, smallest ESS per gradient 0.096-0.10 with 0.5 against
    0.041-0.056 with 1 (seeds 0 and 1). ``num_steps_jitter=0`` gives the textbook algorithm with
    a fixed :math:`L` (what the tutorial's first pages teach, with ``num_steps``). With chains
    run as a batch, one jitter is drawn per iteration for all chains, so that no chain waits
    for another; each chain's moves stay independent of the others'.

    :attr:`fixed` says which length was given (``"num_steps"``, ``"trajectory_length"``, or
    ``None`` when it is learned) and :attr:`num_steps` gives the current (mean) number of steps.

    :param int num_steps: the number of leapfrog steps :math:`L \ge 1` (its mean, with jitter).
    :param float trajectory_length: the integration time :math:`T > 0`.
    :param float step_size_jitter: if positive, each iteration (and chain) uses a step size drawn
        uniformly from :math:`\epsilon\,[1 - j, 1 + j]`. In :math:`[0, 1)`; default 0 (off).
    :param float num_steps_jitter: each iteration uses a number of steps drawn uniformly from the
        integers in :math:`L\,(1 - j, 1 + j]` (at least 1). In :math:`[0, 1]`; default 0.5; 1
        for a uniform length up to :math:`2L`; 0 for a fixed length.

    :param bool adapt_trajectory_length: with chains run as a batch (at least 2), adapt the
        trajectory length during warmup by ChEES (:mod:`pyro_simplehmc.core.chees`); the chains then
        share their step size and mass matrix. :attr:`adapted_trajectory_length` and
        :attr:`chees` (with its ``history``) show what it learned.

    The other arguments are those of :class:`~pyro_simplehmc.MHKernel`; ``target_accept_prob``
    defaults to 0.8, as in :class:`pyro.infer.HMC` (0.651 with ``adapt_trajectory_length``, as
    in ChEES).

    Example::

        >>> kernel = SimpleHMC(model, num_steps=20)
        >>> mcmc = MCMC(kernel, num_samples=2000, warmup_steps=500, num_chains=2)
        >>> mcmc.run(data)
    """

    #: As Pyro's HMC. With random lengths the 0.65 that is optimal for a fixed integration time
    #: in high dimension (Beskos et al., 2013) mixes the squares worse: measured on a 100-D
    #: Gaussian over 8 chains, smallest ESS of 1000 draws 17-32% (coordinates) and 10-18%
    #: (squares) at 0.65, 50-67% and 13-20% at 0.8, for the same number of gradients (with a
    #: mean of 10 steps, before the length was learned).
    default_target_accept_prob = 0.8
    #: ChEES's own target (Hoffman, Radul & Sountsov, 2021), for the harmonic mean over chains.
    chees_target_accept_prob = 0.651
    #: Near HMC's stability limit the acceptance falls off a cliff as the step size grows, so
    #: noisy dual-averaging iterates that straddle it average to a step size below the target's
    #: (Jensen's inequality). Damping them more narrows the gap. Measured over 16 chains with
    #: 500 warmup iterations, mean realised acceptance for a 0.65 target on 1-D, 3-D and 100-D
    #: Gaussians: 0.78, 0.71, 0.68 with 0.2; 0.72, 0.68, 0.67 with 0.5.
    dual_averaging_gamma = 0.5
    #: The mean number of steps before a trajectory length is learned, or without warmup.
    DEFAULT_NUM_STEPS = 10

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
        step_size_jitter: float = 0.0,
        num_steps_jitter: float = 0.5,
        adapt_trajectory_length: bool = False,
    ):
        if num_steps is not None and trajectory_length is not None:
            raise ValueError(
                "give num_steps or trajectory_length, not both; "
                f"got num_steps={num_steps!r} and trajectory_length={trajectory_length!r}"
            )
        self.trajectory_length = None
        self._num_steps = None
        if trajectory_length is not None:
            self.fixed = "trajectory_length"
            self.trajectory_length = check.positive_finite("trajectory_length", trajectory_length)
        elif num_steps is not None:
            self.fixed = "num_steps"
            self._num_steps = check.positive_int("num_steps", num_steps)
        else:
            self.fixed = None
        self.step_size_jitter = check.unit_interval_right_open("step_size_jitter", step_size_jitter)
        self.num_steps_jitter = check.unit_interval("num_steps_jitter", num_steps_jitter)
        self.adapt_trajectory_length = check.boolean(
            "adapt_trajectory_length", adapt_trajectory_length
        )
        if adapt_trajectory_length and chain_adaptation not in (None, "pooled"):
            raise ValueError(
                "adapt_trajectory_length=True adapts one step size and one trajectory length "
                'shared by the chains: chain_adaptation must be "pooled" (or left out); '
                f"got {chain_adaptation!r}"
            )
        if chain_adaptation is None:
            chain_adaptation = "pooled" if adapt_trajectory_length else "per_chain"
        if target_accept_prob is None and adapt_trajectory_length:
            target_accept_prob = self.chees_target_accept_prob
        #: The state of ChEES trajectory-length adaptation (``adapt_trajectory_length=True``).
        self.chees: chees.ChEESState | None = None
        # This iteration's jitter and length, and the velocity at the proposal, for ChEES.
        self._chees_step: tuple[float, float, Tensor | None] | None = None
        #: The mean trajectory length learned from the turning times during warmup (one per
        #: step size: per chain, or shared), NaN before the first is measured; ``None`` when
        #: the length is given or adapted by ChEES.
        self.learned_trajectory_length: Tensor | None = None
        # The turning times measured since the mass matrix last changed, one (C,) per iteration.
        self._turn_times: list[Tensor] = []
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
            chain_adaptation=chain_adaptation,
            batched_potential=batched_potential,
        )

    @property
    def num_steps(self) -> int | Tensor:
        """The mean number of leapfrog steps per iteration at the current step size (one per
        chain when the chains have their own step sizes and the trajectory length is fixed)."""
        return self._num_steps_at(self._adapter_step_size())

    def _adapter_step_size(self) -> Tensor:
        if self._adapter is None:
            return torch.tensor([self._step_size])
        return self._adapter.step_size

    def _num_steps_at(self, step_size: Tensor) -> int | Tensor:
        """:math:`L`, or :math:`\\lceil T/\\epsilon \rceil` per chain with a given or learned
        length (:data:`DEFAULT_NUM_STEPS` before one is learned)."""
        if self.fixed == "num_steps":
            return self._num_steps
        length = self.trajectory_length
        if self.fixed is None:
            length = self.learned_trajectory_length
            if length is None or not bool(torch.isfinite(length).all()):
                return self.DEFAULT_NUM_STEPS
        num_steps = torch.ceil(length / step_size.reshape(-1) - 1e-9).clamp(min=1).long()
        if self.fixed is None:
            num_steps = num_steps.clamp(max=turning.MAX_TURN_STEPS)
        return int(num_steps) if num_steps.numel() == 1 else num_steps.flatten()

    @property
    def adapted_trajectory_length(self) -> float | None:
        """The trajectory length :math:`T` that ChEES adapted (what sampling uses), or ``None``."""
        state = self.chees
        return None if state is None else math.exp(state.log_length_average)

    def _setup(self, warmup_steps, num_chains, args, kwargs) -> None:
        if self.adapt_trajectory_length and (num_chains is None or num_chains < 2):
            raise ValueError(
                "adapt_trajectory_length=True needs at least 2 chains run as a batch, for the "
                "cross-chain means of ChEES: use pyro_simplehmc.MCMC(..., num_chains=C, "
                f'chain_method="vectorized") with C >= 2; got num_chains={num_chains}'
            )
        super()._setup(warmup_steps, num_chains, args, kwargs)
        self._turn_times = []
        if self.fixed is None and not self.adapt_trajectory_length:
            self.learned_trajectory_length = torch.full_like(self._adapter.step_size, math.nan)
        if self.adapt_trajectory_length:
            # As ChEES prescribes: the harmonic mean, so that a stuck chain pulls the step down.
            self._adapter.pooled_statistic = "harmonic"
            start = self.trajectory_length or float(self._adapter.step_size)
            self.chees = chees.init(start)

    def _chees_length(self, step_size: Tensor) -> tuple[int, float, float]:
        r"""ChEES: :math:`L = \lceil u_t T / \epsilon \rceil` with :math:`u_t` from a Halton
        sequence, the same for all chains; the iterate during warmup, the average after."""
        run = self._run
        state = self.chees
        warmup = run.t < run.warmup_steps
        length = math.exp(state.log_length if warmup else state.log_length_average)
        jitter = chees.halton(run.t + 1)
        return max(1, math.ceil(jitter * length / float(step_size))), jitter, length

    def _jittered(self, step_size: Tensor) -> tuple[Tensor, int | Tensor]:
        """This iteration's step size (``(C, 1)`` or ``(1, 1)``) and number of steps.

        The number of steps is drawn once for the whole batch, so no chain waits for another;
        given it, the chains' moves are independent.
        """
        if self.chees is not None:
            num_steps, jitter, length = self._chees_length(step_size)
            self._chees_step = (jitter, length, None)
            return step_size, num_steps
        num_steps = self._num_steps_at(step_size)
        if self.num_steps_jitter > 0:
            u = torch.rand(()).item()
            low = 1 - self.num_steps_jitter
            num_steps = num_steps * (low + 2 * self.num_steps_jitter * u)
            num_steps = (
                max(1, math.ceil(num_steps))
                if isinstance(num_steps, float)
                else torch.ceil(num_steps).clamp(min=1).long()
            )
        if self.step_size_jitter > 0:
            noise = 2 * torch.rand_like(step_size) - 1
            step_size = step_size * (1 + self.step_size_jitter * noise)
        return step_size, num_steps

    def _learning_length(self) -> bool:
        """Whether this iteration measures where its trajectory turns (warmup, no length given)."""
        run = self._run
        return self.learned_trajectory_length is not None and run.t < run.warmup_steps

    def propose(self, state: ChainState, step_size: Tensor) -> tuple[ChainState, Tensor]:
        step_size, num_steps = self._jittered(step_size)
        proposal, log_accept_ratio, end = self._trajectory(
            state, step_size, num_steps, learn=self._learning_length()
        )
        if self._chees_step is not None:  # ChEES learns from where the trajectory went
            jitter, length, _ = self._chees_step
            self._chees_step = (jitter, length, self.metric.velocity(end.momentum))
        return proposal, log_accept_ratio

    def _trajectory(
        self, state: ChainState, step_size: Tensor, num_steps: int | Tensor, learn: bool = False
    ) -> tuple[ChainState, Tensor, IntegratorState]:
        metric = self.metric
        p = metric.momentum_from_normal(torch.randn_like(state.position))
        if learn:
            # Go on past the proposal to where the trajectory turns; the proposal is unchanged.
            search = turning.search_steps(self._num_steps_at(step_size))
            end, turn_time = leapfrog_to_u_turn(
                state.position,
                p,
                self._value_and_grad,
                metric.velocity,
                step_size,
                num_steps,
                state.grad,
                state.potential_energy,
                search,
                metric.kinetic_energy,
                MAX_ENERGY_ERROR,
            )
            self._turn_times.append(turn_time)
        else:
            end = leapfrog_flat(
                state.position,
                p,
                self._value_and_grad,
                metric.velocity,
                step_size,
                num_steps,
                grad=state.grad,
            )
        # The flip p -> -p makes the proposal an involution; K(-p) = K(p), so it costs nothing.
        p_end = -end.momentum
        log_accept_ratio = hamiltonian(state.potential_energy, p, metric) - hamiltonian(
            end.potential_energy, p_end, metric
        )
        return ChainState(end.position, end.potential_energy, end.grad), log_accept_ratio, end

    def _adapt(
        self, t: int, state: ChainState, proposal: ChainState, info: StepInfo, new: ChainState
    ) -> None:
        chees_step, self._chees_step = self._chees_step, None
        adapter = self._adapter
        windows, updates = adapter.windows_ended, adapter.mass_matrix_updates
        super()._adapt(t, state, proposal, info, new)
        if self._turn_times:
            self._learn_length(window_ended=adapter.windows_ended > windows)
        if chees_step is not None:
            jitter, length, velocity = chees_step
            gradient = chees.chees_gradient(
                state.position,
                proposal.position,
                velocity,
                info.accept_prob,
                info.diverging,
                jitter,
                length,
            )
            chees.update(self.chees, gradient, float(self._adapter.step_size))
            # Once, when the mass matrix first replaces the initial one: later windows refine
            # it, and a restart then would leave too few iterations to grow T again (measured on
            # the 2-D correlated Gaussian with restarts at every window: T 1.45 against 3.2).
            if adapter.mass_matrix_updates > updates and self.chees.restarts == 0:
                chees.restart(self.chees, float(self._adapter.step_size))

    def _learn_length(self, window_ended: bool) -> None:
        """The mean trajectory length from the turning times measured in this window."""
        times = torch.stack(self._turn_times)  # (iterations, C)
        if self._adapter.pooled:
            times = times.reshape(-1, 1)
        self.learned_trajectory_length = turning.learned_length(
            times, self._adapter.step_size, self.learned_trajectory_length
        )
        if window_ended:  # the mass matrix may change: start measuring again
            self._turn_times = []

    def _trial_log_accept_ratio(self, state: ChainState, step_size: Tensor) -> Tensor:
        # As Stan and Pyro do, search the step size with a single leapfrog step.
        return self._trajectory(state, step_size, 1)[1]

    def _extra_diagnostics(self) -> dict[str, Any]:
        if self.chees is not None:
            return {"trajectory length": self.adapted_trajectory_length}
        num_steps = self.num_steps
        extra = {"num steps": num_steps if isinstance(num_steps, int) else num_steps.tolist()}
        if self.learned_trajectory_length is not None:
            length = self.learned_trajectory_length
            extra["trajectory length"] = float(length) if length.numel() == 1 else length.tolist()
        return extra
