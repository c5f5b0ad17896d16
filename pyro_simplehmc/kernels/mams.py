r"""MAMS: Metropolis-adjusted microcanonical HMC (Robnik, Cohn-Gordon & Seljak, 2025).

One iteration, from position :math:`x` (in the coordinates the mass matrix whitens):

1. draw a fresh velocity :math:`u` uniformly on the unit sphere;
2. follow the isokinetic dynamics (:mod:`pyro_simplehmc.core.isokinetic`) for :math:`n` steps of
   size :math:`\epsilon`, each alternating velocity updates and position updates
   :math:`x \to x + a\epsilon u` (the leapfrog: half, full, half; by default McLachlan's
   two-stage scheme), to :math:`(x^*, u^*)`, adding up the kinetic-energy changes
   :math:`\Delta K` of the velocity updates;
3. accept with probability :math:`\min(1, \exp(-(U(x^*) - U(x)) - \Delta K))`.

The velocity is discarded after every proposal and drawn afresh, and the uniform distribution on
the sphere is symmetric, so no flip :math:`u^* \to -u^*` needs to be written down. The number of
steps is drawn each iteration, uniformly with mean :math:`L/\epsilon` (BlackJAX
``adjusted_mclmc_dynamic``), once for the whole batch: every chain takes the same number of
gradient evaluations, which is what makes a fixed-length kernel batch well.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..core import validation as check
from ..core.integrators import MAX_NUM_STEPS
from ..core.isokinetic import (
    SCHEMES,
    isokinetic_leapfrog,
    mean_steps_scale,
    partial_refresh,
    uniform_velocity,
)
from ..core.mh import ChainState, StepInfo
from ..core.welford import BatchWelford
from .adaptation import AdaptationEvent
from .base import MHKernel

__all__ = ["MAMS"]


class MAMS(MHKernel):
    r"""Metropolis-adjusted microcanonical HMC as a Pyro MCMC kernel.

    One iteration costs :math:`2n` gradient evaluations (:math:`n` with
    ``integrator="leapfrog"``), :math:`n` drawn uniformly (from 1 to about :math:`2L/\epsilon`)
    with mean :math:`L/\epsilon`; ``random_length=False`` takes :math:`\lceil L/\epsilon
    \rceil` every time. The step size :math:`\epsilon` is a distance in
    the whitened coordinates: the velocity has unit length, so it is about :math:`\sqrt d` times
    an HMC step size.

    **Tuning** follows BlackJAX's ``adjusted_mclmc_find_L_and_step_size`` on the package's
    Stan-style windows (:class:`~pyro_simplehmc.kernels.adaptation.BatchWarmupAdapter`):

    - the step size adapts in every warmup iteration by dual averaging towards
      ``target_accept_prob`` (default 0.9, as the paper recommends), and the mass matrix in the
      slow windows;
    - until the first slow window ends the number of steps is held at
      :data:`INITIAL_NUM_STEPS` (BlackJAX starts at :math:`L = \sqrt d`,
      :math:`\epsilon = 0.2\sqrt d`), so :math:`L` follows the step size;
    - at the end of each slow window :math:`L = \sqrt{\sum_i \mathrm{Var}[y_i]}` from that
      window's draws in the whitened coordinates :math:`y`, which is :math:`\sqrt d` when the
      window has just set the mass matrix;
    - in the first half of the final window the draws are kept, and at its end
      :math:`L \leftarrow \min(0.5\,L/\hat n, 2L)`, :math:`\hat n` the mean (over coordinates)
      effective sample size per draw of all chains together (:func:`arviz.ess`; BlackJAX
      ``adjusted_mclmc_make_adaptation_L``, ``l_factor=0.5``); the rest of warmup adapts the step
      size to it.

    ``trajectory_length=L`` holds :math:`L` instead: with ``adapt_step_size=False`` and
    ``adapt_mass_matrix=False`` as well, this is the textbook algorithm with fixed parameters.

    :param float trajectory_length: hold the trajectory length :math:`L > 0` (default: learned).
    :param bool random_length: draw each iteration's number of steps (default) or take
        :math:`\lceil L/\epsilon \rceil`.
    :param float partial_refresh_factor: if given, add Langevin noise to the velocity within
        each trajectory, with decoherence length ``partial_refresh_factor`` :math:`\times L`
        (:func:`~pyro_simplehmc.core.isokinetic.partial_refresh`); default ``None``: none, the
        velocity is only refreshed between trajectories (BlackJAX's default,
        ``L_proposal_factor=inf``).
    :param str integrator: ``"mclachlan"`` (the default, as in BlackJAX and the paper:
        McLachlan's two-stage scheme, :data:`~pyro_simplehmc.core.isokinetic.MCLACHLAN`, two
        gradients per step and a smaller energy error, so longer steps: on the 100-D
        ill-conditioned Gaussian 1.6-1.9x the ESS per gradient of the leapfrog, see the design
        notes) or ``"leapfrog"`` (velocity Verlet, one gradient per step).

    The other arguments are those of :class:`~pyro_simplehmc.MHKernel`. The unconstrained
    parameters must have at least 2 dimensions: the velocity lives on a sphere of
    dimension :math:`d - 1`.

    Example::

        >>> kernel = MAMS(model)
        >>> mcmc = pyro_simplehmc.MCMC(kernel, num_samples=1000, warmup_steps=1000,
        ...                            num_chains=16, chain_method="vectorized")
        >>> mcmc.run(data)
    """

    #: The paper's (and BlackJAX's) acceptance target for MAMS.
    default_target_accept_prob = 0.9
    #: Steps per trajectory before :math:`L` is first estimated: BlackJAX's initial
    #: :math:`L/\epsilon = \sqrt d / (0.2\sqrt d)`.
    INITIAL_NUM_STEPS = 5
    #: :math:`L = 0.5\,\times` (autocorrelation time in units of trajectory time), BlackJAX's
    #: ``l_factor``.
    ESS_LENGTH_FACTOR = 0.5
    #: The ESS rule never more than doubles :math:`L` (BlackJAX's ``Lratio_upperbound``).
    MAX_LENGTH_GROWTH = 2.0
    #: Fewer draws per chain than this give no ESS estimate worth acting on.
    MIN_ESS_DRAWS = 20

    def __init__(
        self,
        model=None,
        potential_fn=None,
        step_size: float = 1.0,
        trajectory_length: float | None = None,
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
        chain_adaptation: str = "per_chain",
        batched_potential: bool = False,
        mass_estimator: str = "stan",
        low_rank_size: int | None = None,
        random_length: bool = True,
        partial_refresh_factor: float | None = None,
        integrator: str = "mclachlan",
    ):
        self.trajectory_length = (
            None if trajectory_length is None
            else check.positive_finite("trajectory_length", trajectory_length)
        )  # fmt: skip
        self.random_length = check.boolean("random_length", random_length)
        self.partial_refresh_factor = (
            None if partial_refresh_factor is None
            else check.positive_finite("partial_refresh_factor", partial_refresh_factor)
        )  # fmt: skip
        self.integrator = check.one_of("integrator", integrator, tuple(SCHEMES))
        #: The trajectory length :math:`L` in use (``None``: :data:`INITIAL_NUM_STEPS` steps).
        self.length: float | None = self.trajectory_length
        self._welford: BatchWelford | None = None
        self._kept: list[Tensor] = []
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
            mass_estimator=mass_estimator,
            low_rank_size=low_rank_size,
        )

    # ------------------------------------------------------------------ the algorithm

    def propose(self, state: ChainState, step_size: Tensor) -> tuple[ChainState, Tensor]:
        r"""A trajectory from each chain's state: the proposals and
        :math:`\log r = U(x) - U(x^*) - \Delta K`."""
        if not isinstance(step_size, Tensor):  # a number, as in hand-run lines
            step_size = state.position.new_full((1, 1), step_size)
        return self._trajectory(state, step_size, self._num_steps(step_size))

    def _trajectory(
        self, state: ChainState, step_size: Tensor, num_steps: int | Tensor
    ) -> tuple[ChainState, Tensor]:
        metric = self.metric
        u = uniform_velocity(torch.randn_like(state.position))
        x, _, potential_energy, grad, kinetic_change = isokinetic_leapfrog(
            state.position,
            u,
            state.grad,
            self.value_and_grad,
            metric.position_from_normal,  # u -> C u
            self._whitened_gradient,
            step_size,
            num_steps,
            self._refresh(),
            SCHEMES[self.integrator],
        )
        log_accept_ratio = state.potential_energy - potential_energy - kinetic_change
        return ChainState(x, potential_energy, grad), log_accept_ratio

    def _whitened_gradient(self, grad: Tensor) -> Tensor:
        r""":math:`C^\top \nabla U`, the gradient in the whitened coordinates, written as
        :math:`C^{-1}(CC^\top \nabla U)` with the metric's two public maps."""
        metric = self.metric
        return metric.whiten(metric.velocity(grad))

    def _refresh(self):
        if self.partial_refresh_factor is None:
            return None
        length = self.partial_refresh_factor * self._length_or_initial()

        def refresh(u: Tensor, eps: Tensor) -> Tensor:
            return partial_refresh(u, torch.randn_like(u), eps, length)

        return refresh

    def _num_steps(self, step_size: Tensor) -> int | Tensor:
        """This iteration's number of steps: one per chain ``(C,)`` when the chains have their
        own step sizes, else an int; one uniform draw for the whole batch."""
        mean = self._mean_num_steps(step_size.reshape(-1))
        if self.random_length:
            num_steps = torch.ceil(torch.rand(()).item() * mean_steps_scale(mean))
        else:
            num_steps = torch.ceil(mean - 1e-9)
        num_steps = num_steps.clamp(1, MAX_NUM_STEPS).long()
        return int(num_steps) if num_steps.numel() == 1 else num_steps

    def _mean_num_steps(self, step_size: Tensor) -> Tensor:
        if self.length is None:
            return torch.full_like(step_size, float(self.INITIAL_NUM_STEPS))
        return (self.length / step_size).clamp(max=MAX_NUM_STEPS / 2)

    def _length_or_initial(self) -> float:
        if self.length is not None:
            return self.length
        return self.INITIAL_NUM_STEPS * float(self._adapter.step_size.mean())

    def _trial_log_accept_ratio(self, state: ChainState, step_size: Tensor) -> Tensor:
        # As for HMC, the step-size search makes single steps.
        return self._trajectory(state, step_size, 1)[1]

    # ------------------------------------------------------------------ learning L

    def learn(
        self,
        start: ChainState,
        proposal: ChainState,
        step: StepInfo,
        event: AdaptationEvent,
        extra: Any = None,
    ) -> None:
        if self.trajectory_length is not None:
            return
        windows = self._adapter.windows
        t = self._run.t
        index = next((i for i, w in enumerate(windows) if w.start <= t <= w.end), None)
        if index is None:
            return
        position = torch.where(step.accepted.unsqueeze(-1), proposal.position, start.position)
        window, last = windows[index], len(windows) - 1
        if 0 < index < last:  # a slow window: L from the whitened variances
            if self._welford is None:
                self._welford = BatchWelford(position.shape[-1], dense=False, pooled=True)
            self._welford.update(self.metric.whiten(position))
            if t == window.end:
                if event.mass_matrix_updated:
                    # The window's draws have just set the metric: their whitened variances are
                    # 1 (up to Stan's regularisation), and L = sqrt(d), as BlackJAX sets it.
                    self.length = math.sqrt(position.shape[-1])
                elif self._welford.n_samples >= 2:
                    variances = self._welford.sample_covariance()
                    self.length = float(variances.sum().sqrt())
                self._welford = None
        elif index == last and last >= 2:  # the final window: L from the ESS
            middle = window.start + (window.end - window.start + 1) // 2 - 1
            if t <= middle:
                self._kept.append(position.detach().cpu())
            if t == middle:
                self._length_from_ess()

    def _length_from_ess(self) -> None:
        draws, self._kept = self._kept, []
        if len(draws) < self.MIN_ESS_DRAWS:
            return
        import arviz as az

        samples = torch.stack(draws, dim=1).double().numpy()  # (C, N, D)
        with warnings.catch_warnings():
            # arviz warns when there are more chains than draws, guessing at a transposed
            # array; this one is (chains, draws, D) by construction.
            warnings.filterwarnings("ignore", message="More chains")
            ess = az.ess(az.convert_to_dataset(samples), method="mean")["x"].values
        per_draw = float(np.nanmean(ess)) / (samples.shape[0] * samples.shape[1])
        if not math.isfinite(per_draw) or per_draw <= 0:
            return
        length = self._length_or_initial()
        self.length = min(self.ESS_LENGTH_FACTOR * length / per_draw,
                          self.MAX_LENGTH_GROWTH * length)  # fmt: skip

    # ------------------------------------------------------------------ setup and state

    def _setup(self, warmup_steps, num_chains, args, kwargs) -> None:
        super()._setup(warmup_steps, num_chains, args, kwargs)
        size = self._run.layout.size
        if size == 1:
            self.cleanup()
            raise ValueError(
                "MAMS needs at least 2 unconstrained dimensions (its velocity lives on the unit "
                "sphere of dimension d - 1); this model has 1: use SimpleHMC or MALA"
            )

    def _start_run(self) -> None:
        self.length = self.trajectory_length
        self._welford, self._kept = None, []

    def _trajectory_state(self) -> dict[str, Any]:
        return {"length": self.length}

    def _load_trajectory_state(self, state: dict[str, Any]) -> None:
        self.length = state.get("length", self.length)

    def _extra_diagnostics(self) -> dict[str, Any]:
        if self._adapter is None:
            return {}
        mean = self._mean_num_steps(self._adapter.step_size)
        return {
            "trajectory length": self._length_or_initial(),
            "num steps": float(mean) if mean.numel() == 1 else mean.tolist(),
        }
