r"""The shell shared by every kernel: :class:`MHKernel`.

A kernel in this package is a *proposal* (:meth:`MHKernel.propose`): given the chains' states it
returns proposed states and the log of their Metropolis-Hastings ratios, and
:func:`~pyro_simplehmc.core.mh.metropolis_hastings` accepts or rejects each chain's proposal.
The rest lives once, here and in the modules beside it:

- :meth:`MHKernel.setup` (one chain, as :class:`pyro.infer.MCMC` calls it) and
  :meth:`MHKernel.setup_chains` (a batch, as :class:`pyro_simplehmc.MCMC` calls it with
  ``chain_method="vectorized"``) initialise the model and the batched potential
  (:mod:`.initialization`), the counted evaluation (:class:`~.evaluation.BatchEvaluator`) and the
  warmup adaptation (:class:`~.adaptation.BatchWarmupAdapter`), in :mod:`.setup`;
- :meth:`MHKernel.sample` flattens the parameters once, asks for a proposal, applies the
  Metropolis-Hastings step, feeds the adapter and :meth:`MHKernel.learn` during warmup, and
  unflattens once;
- :meth:`MHKernel.logging` and :meth:`MHKernel.diagnostics` follow :class:`pyro.infer.HMC`
  (:mod:`.reports`);
- :meth:`MHKernel.resume_state` and :attr:`MHKernel.initial_state` stop and continue a run
  (:class:`~.state.KernelState`, :mod:`.resume`).

This module holds the class, its arguments, the hooks a subclass implements, the evaluation of
the target, the properties and :meth:`MHKernel.sample`; the setup, resume and report parts are
mixins (:class:`~.setup.SetupMixin`, :class:`~.resume.ResumeMixin`,
:class:`~.reports.ReportsMixin`) that :class:`MHKernel` inherits.

Positions are always ``(C, D)``: one chain is a batch of one, and runs the same code.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from pyro.infer.autoguide import init_to_uniform
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from torch import Tensor

from ..core import validation as check
from ..core.metrics import Metric
from ..core.mh import ChainState, StepInfo, metropolis_hastings
from ..core.ravel import DictRavel
from .adaptation import DUAL_AVERAGING_GAMMA, AdaptationEvent, BatchWarmupAdapter
from .reports import ReportsMixin
from .resume import ResumeMixin
from .setup import SetupMixin, _Run
from .state import KernelState

__all__ = ["MHKernel"]

#: The allowed values of ``chain_adaptation``.
CHAIN_ADAPTATION = ("per_chain", "pooled")


class MHKernel(SetupMixin, ResumeMixin, ReportsMixin, MCMCKernel):
    r"""Base class: a Metropolis-Hastings kernel for :class:`pyro.infer.MCMC`.

    Subclasses implement :meth:`propose` and set :attr:`uses_gradient`; the arguments below are
    shared by all of them and mean what they mean in :class:`pyro.infer.HMC`.

    :param model: Python callable containing Pyro primitives.
    :param potential_fn: Python callable computing the potential energy from a dict of
        unconstrained parameters. Exactly one of ``model`` and ``potential_fn`` is required; with
        ``potential_fn``, initial parameters must be given (to :class:`~pyro.infer.MCMC` or by
        setting :attr:`initial_params`).
    :param float step_size: initial step size, a positive finite number (``None``: 1).
    :param bool adapt_step_size: adapt the step size during warmup by dual averaging towards
        ``target_accept_prob``, after a search for a reasonable initial value.
    :param bool adapt_mass_matrix: adapt the inverse mass matrix during warmup (Stan's windows).
    :param full_mass: ``False`` for a diagonal mass matrix, ``True`` for a dense one, or a list of
        tuples of site names, each a dense block (the rest diagonal).
    :param float target_accept_prob: the acceptance probability the adaptation aims for.
    :param dict transforms: per-site transforms to unconstrained space (default: automatic).
    :param int max_plate_nesting: bound on nested :func:`pyro.plate` contexts, needed to
        enumerate discrete sites.
    :param bool jit_compile: trace the potential energy with the PyTorch JIT.
    :param dict jit_options: options for :func:`torch.jit.trace`.
    :param bool ignore_jit_warnings: ignore warnings from the JIT tracer.
    :param callable init_strategy: a per-site initialisation function (``None``: Pyro's
        ``init_to_uniform``).
    :param inverse_mass_matrix: an initial (or, with ``adapt_mass_matrix=False``, fixed) inverse
        mass matrix: a tensor (1-D diagonal or 2-D dense, over the sites sorted by name) when the
        mass matrix is one block, else a dict keyed by tuples of site names like
        :attr:`inverse_mass_matrix`.
    :param str chain_adaptation: with chains run as a batch, ``"per_chain"`` (the default: each
        chain adapts its own step size and mass matrix, as NumPyro does) or ``"pooled"`` (one
        step size, adapted on the mean of the chains' acceptance probabilities, and one mass
        matrix estimated from all chains' warmup draws together).
    :param bool batched_potential: with ``potential_fn`` and chains run as a batch, whether
        ``potential_fn`` takes sites with a leading chain dimension and returns one energy per
        chain; otherwise it is mapped over the chains with :func:`torch.func.vmap`.
    :param str mass_estimator: how warmup estimates the inverse mass matrix
        (:mod:`pyro_simplehmc.core.mass_estimators`): ``"stan"`` (the default: Stan's windowed
        covariance of the draws), ``"fisher"`` (the diagonal
        :math:`\sqrt{\mathrm{Var}[x]/\mathrm{Var}[\nabla \log\pi]}` from draws and gradients,
        as nutpie; ``full_mass=False`` only) or ``"low_rank"`` (that diagonal with a low-rank
        correction from draws and gradients, stored as a dense matrix).
    :param int low_rank_size: with ``"low_rank"``, at most this many corrected directions
        (at most the dimension; ``None``: as many as the eigenvalue cutoff keeps).

    **Step sizes.** :attr:`step_size` is a float when the chains share one step size, and a
    tensor with one entry per chain when each chain adapts its own; inside the kernel (for
    :meth:`propose`) it is always a tensor, ``(C, 1)`` or ``(1, 1)``.
    """

    #: Whether :meth:`propose` needs :math:`\nabla U` at the current state.
    uses_gradient: bool = True
    #: The acceptance probability the adaptation aims for unless the user says otherwise.
    default_target_accept_prob: float = 0.8
    #: Dual averaging's ``gamma`` (see :mod:`pyro_simplehmc.kernels.adaptation`).
    dual_averaging_gamma: float = DUAL_AVERAGING_GAMMA
    #: How pooled adaptation pools the chains' acceptance probabilities (``"mean"`` or
    #: ``"harmonic"``).
    pooled_statistic: str = "mean"
    #: The correction (a class attribute, so that a test can swap in a broken one).
    mh_step = staticmethod(metropolis_hastings)

    def __init__(
        self,
        model: Callable | None = None,
        potential_fn: Callable[[dict[str, Tensor]], Tensor] | None = None,
        step_size: float | None = 1.0,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        full_mass: bool | list[tuple[str, ...]] = False,
        transforms: dict | None = None,
        max_plate_nesting: int | None = None,
        jit_compile: bool = False,
        jit_options: dict | None = None,
        ignore_jit_warnings: bool = False,
        target_accept_prob: float | None = None,
        init_strategy: Callable | None = init_to_uniform,
        *,
        inverse_mass_matrix: Tensor | Mapping[tuple[str, ...], Tensor] | None = None,
        chain_adaptation: str = "per_chain",
        batched_potential: bool = False,
        mass_estimator: str = "stan",
        low_rank_size: int | None = None,
    ):
        if (model is None) == (potential_fn is None):
            raise ValueError(
                "exactly one of model and potential_fn must be given; "
                f"got model={'None' if model is None else 'a callable'}, "
                f"potential_fn={'None' if potential_fn is None else 'a callable'}"
            )
        check.callable_or_none("model", model)
        check.callable_or_none("potential_fn", potential_fn)
        if target_accept_prob is None:
            target_accept_prob = self.default_target_accept_prob
        self.model = model
        self.potential_fn = potential_fn
        self.transforms = check.dict_or_none("transforms", transforms)
        # None is "the default", as in Pyro's HMC.
        step_size = 1.0 if step_size is None else step_size
        self._step_size = check.positive_finite("step_size", step_size)
        self.adapt_step_size = check.boolean("adapt_step_size", adapt_step_size)
        self.adapt_mass_matrix = check.boolean("adapt_mass_matrix", adapt_mass_matrix)
        self.full_mass = check.full_mass(full_mass)
        self._init_inverse_mass_matrix = check.inverse_mass_matrix(inverse_mass_matrix)
        self.target_accept_prob = check.open_unit_interval("target_accept_prob", target_accept_prob)
        self._max_plate_nesting = check.nonnegative_int_or_none(
            "max_plate_nesting", max_plate_nesting
        )
        self._jit_compile = check.boolean("jit_compile", jit_compile)
        self._jit_options = check.dict_or_none("jit_options", jit_options)
        self._ignore_jit_warnings = check.boolean("ignore_jit_warnings", ignore_jit_warnings)
        self._init_strategy = check.callable_or_none("init_strategy", init_strategy) or (
            init_to_uniform
        )
        self.chain_adaptation = check.one_of("chain_adaptation", chain_adaptation, CHAIN_ADAPTATION)
        self.batched_potential = check.boolean("batched_potential", batched_potential)
        self.mass_estimator, self.low_rank_size = check.mass_estimator(
            mass_estimator, low_rank_size, self.uses_gradient
        )
        if self.mass_estimator == "fisher" and self.full_mass is not False:
            raise ValueError(
                'mass_estimator="fisher" estimates a diagonal: full_mass must be False (use '
                f'"stan" or "low_rank" for dense blocks); got full_mass={self.full_mass!r}'
            )
        self._user_initial_params: dict[str, Tensor] | None = None
        self._initial_params: dict[str, Tensor] | None = None
        self._resume: list[KernelState] = []
        self._adapter: BatchWarmupAdapter | None = None
        self._run: _Run | None = None
        self._finished: _Run | None = None
        #: What the last Metropolis-Hastings step did, per chain (tensors of shape ``(C,)``).
        self.last_step_info: StepInfo | None = None
        #: Put each chain's :meth:`resume_state` in :meth:`diagnostics` (key ``"resume state"``),
        #: so that chains run in other processes can be continued (``pyro_simplehmc.MCMC``
        #: sets it).
        self.keep_resume_state = False
        super().__init__()

    # ------------------------------------------------------------------ the algorithm's part

    def propose(self, state: ChainState, step_size: Tensor) -> tuple:
        r"""Propose a move for each chain: return the proposed states and :math:`\log r`, and
        optionally a third item, what :meth:`learn` needs from this proposal during warmup.

        Evaluate the target with :meth:`value_and_grad` or :meth:`potential` (they count
        evaluations and turn numerical faults into NaN, which the correction rejects) and use
        :attr:`metric` for anything involving the mass matrix.

        :param state: the chains' current states (positions ``(C, D)``).
        :param step_size: the step size, shape ``(C, 1)`` or ``(1, 1)`` (shared).
        """
        raise NotImplementedError

    def learn(
        self,
        start: ChainState,
        proposal: ChainState,
        step: StepInfo,
        event: AdaptationEvent,
        extra: Any = None,
    ) -> None:
        """Learn more than the step size and mass matrix from a warmup iteration (nothing, by
        default): the chains went from ``start`` to ``proposal``, ``step`` says what the
        correction did, ``event`` what the adapter did, ``extra`` is :meth:`propose`'s third
        item."""

    def _trial_log_accept_ratio(self, state: ChainState, step_size: Tensor) -> Tensor:
        """The log acceptance ratio of one proposal at ``step_size`` (the step-size search)."""
        return self.propose(state, step_size)[1]

    def _extra_diagnostics(self) -> dict[str, Any]:
        """Kernel-specific diagnostics, the same for every chain (subclasses add to it)."""
        return {}

    def _trajectory_state(self) -> dict[str, Any]:
        """What a subclass learned beyond step size and mass matrix, for :meth:`resume_state`."""
        return {}

    def _load_trajectory_state(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`_trajectory_state`."""

    # ------------------------------------------------------------------ evaluating the target

    def value_and_grad(self, q: Tensor) -> tuple[Tensor, Tensor]:
        r""":math:`(U(q), \nabla U(q))` for every chain, ``(C,)`` and ``(C, D)``, counted; a
        numerical fault in a chain gives that chain NaN."""
        return self._run.evaluator.value_and_grad(q)

    def potential(self, q: Tensor) -> Tensor:
        r""":math:`U(q)` alone for every chain, ``(C,)``, counted; a numerical fault gives NaN."""
        return self._run.evaluator.potential(q)

    def _value_and_grad(self, q: Tensor) -> tuple[Tensor, Tensor]:
        warnings.warn(
            "MHKernel._value_and_grad is deprecated: use value_and_grad", DeprecationWarning, 2
        )
        return self.value_and_grad(q)

    def _potential(self, q: Tensor) -> Tensor:
        warnings.warn("MHKernel._potential is deprecated: use potential", DeprecationWarning, 2)
        return self.potential(q)

    def state_at(self, params: Mapping[str, Tensor]) -> ChainState:
        """The chains' state at ``params`` (unconstrained): the remembered one if ``params`` is
        what :meth:`sample` returned last, else evaluated (and counted)."""
        run = self._run
        last = run.last_params
        if last is not None and all(params.get(n) is v for n, v in last.items()):
            return run.last
        batch_shape = (run.num_chains,) if run.vectorized else ()
        q = run.layout.flatten(params, batch_shape).reshape(run.num_chains, -1)
        return self._evaluate(q.detach())

    def _evaluate(self, q: Tensor, strict: bool = False) -> ChainState:
        evaluator = self._run.evaluator
        if self.uses_gradient:
            return ChainState(q, *evaluator.value_and_grad(q, strict))
        return ChainState(q, evaluator.potential(q, strict), None)

    # ------------------------------------------------------------------ public properties

    @property
    def step_size(self) -> float | Tensor:
        """The current step size: a float when the chains share one, else one per chain."""
        if self._adapter is None:
            return self._step_size
        step_size = self._adapter.step_size
        return float(step_size) if step_size.numel() == 1 else step_size

    @property
    def chain_step_size(self) -> Tensor:
        """The current (adapted) step size of each chain, ``(C,)``, on the chains' device."""
        return self._adapter.step_size.expand(self.num_chains)

    @property
    def num_chains(self) -> int:
        """The number of chains in the batch of the current (or last) run; 1 before any."""
        run = self._run or self._finished
        return 1 if run is None else run.num_chains

    @property
    def initial_params(self) -> dict[str, Tensor] | None:
        """Initial unconstrained parameters: the user's if set, else found by setup.

        With chains run as a batch, each site has a leading chain dimension.
        """
        if self._initial_params is not None:
            return self._initial_params
        return self._user_initial_params

    @initial_params.setter
    def initial_params(self, params: dict[str, Tensor] | None) -> None:
        if params is not None and not isinstance(params, Mapping):
            raise ValueError(
                "initial_params must be None or a dict mapping site names to unconstrained "
                f"tensors; got {type(params).__name__}"
            )
        self._user_initial_params = params
        self._initial_params = None

    @property
    def inverse_mass_matrix(self) -> dict[tuple[str, ...], Tensor] | None:
        """The current inverse mass matrix, a dict keyed by tuples of site names (as Pyro's).

        Each block has a leading dimension of one matrix per chain when the chains of a batch
        adapt their own (none for one chain, or when they share one). After a run it holds the
        last run's adapted matrices; ``None`` before any setup.
        """
        if self._adapter is None:
            return None
        return dict(self._adapter.mass_matrix.inverse_mass_matrix)

    @property
    def metric(self) -> Metric | None:
        """The inverse mass matrix as a :class:`~pyro_simplehmc.core.metrics.Metric` on flat
        vectors (``None`` before setup)."""
        return None if self._adapter is None else self._adapter.mass_matrix.metric

    @property
    def layout(self) -> DictRavel | None:
        """Where each site sits in the flat position vector (``None`` before setup)."""
        run = self._run or self._finished
        return None if run is None else run.layout

    @property
    def chain_state(self) -> ChainState | None:
        """The chains' current state (flat positions ``(C, D)``, energies, gradients)."""
        return None if self._run is None else self._run.last

    @property
    def potential_path(self) -> str | None:
        """How the batched potential is evaluated: ``"plate"``, ``"vmap"``, ``"loop"``,
        ``"batched"`` (the user's) or ``"one chain"``; ``", jit"`` when traced."""
        run = self._run or self._finished
        return None if run is None else run.potential_path

    # ------------------------------------------------------------------ Pyro's MCMCKernel API

    def sample(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """One MCMC iteration from ``params`` (unconstrained): propose, then correct."""
        run = self._run
        if run is None:
            raise RuntimeError("call setup(warmup_steps, ...) before sample(params)")
        warmup = run.t < run.warmup_steps
        evaluator = run.evaluator
        evaluator.count = evaluator.warmup if warmup else evaluator.sampling
        if run.layout.size == 0:  # nothing to sample
            self._record(None)
            return params
        state = self.state_at(params)
        proposal, log_accept_ratio, *extra = self.propose(
            state, self._adapter.step_size.unsqueeze(-1)
        )
        # One uniform per chain: chains that shared one would accept and reject together.
        u = torch.rand(run.num_chains, dtype=state.position.dtype, device=state.position.device)
        new_state, info = self.mh_step(state, proposal, log_accept_ratio, u.log())
        if warmup:
            event = self._adapter.step(run.t, new_state, info.accept_prob)
            self.learn(state, proposal, info, event, *extra)
        batch_shape = (run.num_chains,) if run.vectorized else ()
        new_params = run.layout.unflatten(new_state.position, batch_shape)
        self._remember(new_state, new_params)
        self._record(info)
        return new_params

    @property
    def iteration(self) -> int:
        """Iterations run so far by these chains, warmup included (a continued run counts on
        from where its state left off)."""
        run = self._run or self._finished
        return 0 if run is None else run.offset + run.t

    # ------------------------------------------------------------------ helpers

    def _remember(self, state: ChainState, params: dict[str, Tensor]) -> None:
        self._run.last, self._run.last_params = state, params

    def __getstate__(self):
        state = self.__dict__.copy()
        # The run holds closures over the potential, rebuilt by setup(); do not ship them.
        state["_run"] = state["_finished"] = None
        return state
