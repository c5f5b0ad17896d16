r"""The shell shared by every kernel: Pyro plumbing, the Metropolis-Hastings step, adaptation.

A kernel in this package is a *proposal*: given the current state it returns a proposed state and
the log of the Metropolis-Hastings acceptance ratio,

.. math::
    \log r = \log \pi(q') - \log \pi(q) + \log k(q \mid q') - \log k(q' \mid q),

where :math:`k` is the proposal density (for HMC, the momentum terms play that role). Everything
else is here, once:

- :meth:`MHKernel.setup` initialises the model with Pyro's
  :func:`~pyro.infer.mcmc.util.initialize_model` (unconstrained space, Jacobians, init strategies,
  enumeration of discrete sites), builds the flat layout and the adapter;
- :meth:`MHKernel.sample` flattens the parameters once, asks the subclass for a proposal, applies
  :func:`metropolis_hastings`, feeds the adapter during warmup and unflattens once;
- :meth:`MHKernel.logging` and :meth:`MHKernel.diagnostics` follow :class:`pyro.infer.HMC`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from pyro.infer.autoguide import init_to_uniform
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from pyro.infer.mcmc.util import initialize_model
from torch import Tensor

from .. import _validation as check
from ..adaptation import (
    FlatBlockMassMatrix,
    SingleProposalWarmupAdapter,
    as_block_dict,
    mass_matrix_blocks,
)
from ..integrators import is_numerical_error, value_and_grad
from ..metrics import Metric
from ..ravel import DictRavel

#: An energy error (minus the log acceptance ratio) above this marks a divergent proposal.
MAX_ENERGY_ERROR = 1000.0


class ChainState(NamedTuple):
    """Where the chain is, in the flat unconstrained space.

    :ivar position: flat position :math:`q`.
    :ivar potential_energy: :math:`U(q) = -\\log \\pi(q)`.
    :ivar grad: :math:`\\nabla U(q)`, or ``None`` for a kernel that uses no gradients.
    """

    position: Tensor
    potential_energy: Tensor
    grad: Tensor | None


@dataclass(frozen=True)
class StepInfo:
    """What one Metropolis-Hastings step did.

    :ivar accepted: whether the proposal was accepted.
    :ivar accept_prob: :math:`\\min(1, r)`; 0 for a proposal that failed numerically.
    :ivar energy_error: :math:`-\\log r` (``inf`` for a failed proposal).
    :ivar diverging: a numerical failure, or ``energy_error`` above :data:`MAX_ENERGY_ERROR`.
    """

    accepted: bool
    accept_prob: float
    energy_error: float
    diverging: bool


def metropolis_hastings(
    current: ChainState,
    proposal: ChainState,
    log_accept_ratio: Tensor,
    log_uniform: float,
    max_energy_error: float = MAX_ENERGY_ERROR,
) -> tuple[ChainState, StepInfo]:
    r"""Accept ``proposal`` with probability :math:`\min(1, r)`, computed in log space.

    A proposal with a non-finite log ratio, potential or gradient is rejected: a NaN anywhere in
    the trajectory ends up in one of them. This is the only place where a value leaves the device
    (one synchronisation per iteration).

    :param current: the current state.
    :param proposal: the proposed state.
    :param log_accept_ratio: :math:`\log r`, a scalar tensor.
    :param log_uniform: :math:`\log u` with :math:`u \sim \mathcal{U}(0, 1)`.
    :param max_energy_error: threshold on :math:`-\log r` above which the step is divergent.
    """
    # 0 * x is NaN for an infinite or NaN x, so a fault in the proposal's potential or gradient
    # turns the ratio into NaN without a separate check (and without another synchronisation).
    guard = proposal.potential_energy
    if proposal.grad is not None:
        guard = guard + proposal.grad.sum()
    log_r = float(log_accept_ratio + 0.0 * guard)
    if not log_r < math.inf:  # NaN (a numerical fault) or +inf (a potential of -inf)
        log_r = -math.inf
    log_alpha = min(0.0, log_r)
    accepted = log_uniform < log_alpha
    info = StepInfo(
        accepted=accepted,
        accept_prob=math.exp(log_alpha),
        energy_error=-log_r,
        diverging=-log_r > max_energy_error,
    )
    return (proposal if accepted else current), info


@dataclass
class EvalCounter:
    """Potential evaluations (all of them) and gradient evaluations (those with a gradient)."""

    potentials: int = 0
    gradients: int = 0


@dataclass
class _RunState:
    """Everything that one chain accumulates; a new one per :meth:`MHKernel.setup`."""

    warmup_steps: int
    t: int = 0
    accepted: int = 0
    mean_accept_prob: float = 0.0
    divergences: list[int] = field(default_factory=list)
    warmup_evals: EvalCounter = field(default_factory=EvalCounter)
    sampling_evals: EvalCounter = field(default_factory=EvalCounter)
    last: ChainState | None = None
    last_params: dict[str, Tensor] | None = None
    setting_up: bool = True


class MHKernel(MCMCKernel):
    r"""Base class: a Metropolis-Hastings kernel for :class:`pyro.infer.MCMC`.

    Subclasses implement :meth:`propose` and set :attr:`uses_gradient`; the arguments below are
    shared by all of them and mean what they mean in :class:`pyro.infer.HMC`.

    :param model: Python callable containing Pyro primitives.
    :param potential_fn: Python callable computing the potential energy from a dict of
        unconstrained parameters. Exactly one of ``model`` and ``potential_fn`` is required; with
        ``potential_fn``, initial parameters must be given (to :class:`~pyro.infer.MCMC` or by
        setting :attr:`initial_params`).
    :param float step_size: initial step size, a positive finite number.
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
    :param callable init_strategy: a per-site initialisation function.
    :param inverse_mass_matrix: an initial (or, with ``adapt_mass_matrix=False``, fixed) inverse
        mass matrix: a tensor (1-D diagonal or 2-D dense, over the sites sorted by name) when the
        mass matrix is one block, else a dict keyed by tuples of site names like
        :attr:`inverse_mass_matrix`.
    """

    #: Whether :meth:`propose` needs :math:`\nabla U` at the current state.
    uses_gradient: bool = True
    #: The acceptance probability the adaptation aims for unless the user says otherwise.
    default_target_accept_prob: float = 0.8

    def __init__(
        self,
        model: Callable | None = None,
        potential_fn: Callable[[dict[str, Tensor]], Tensor] | None = None,
        step_size: float = 1.0,
        adapt_step_size: bool = True,
        adapt_mass_matrix: bool = True,
        full_mass: bool | list[tuple[str, ...]] = False,
        transforms: dict | None = None,
        max_plate_nesting: int | None = None,
        jit_compile: bool = False,
        jit_options: dict | None = None,
        ignore_jit_warnings: bool = False,
        target_accept_prob: float | None = None,
        init_strategy: Callable = init_to_uniform,
        *,
        inverse_mass_matrix: Tensor | Mapping[tuple[str, ...], Tensor] | None = None,
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
        self.transforms = transforms
        self._step_size = check.positive_finite("step_size", step_size)
        self.adapt_step_size = check.boolean("adapt_step_size", adapt_step_size)
        self.adapt_mass_matrix = check.boolean("adapt_mass_matrix", adapt_mass_matrix)
        self.full_mass = check.full_mass(full_mass)
        self._init_inverse_mass_matrix = check.inverse_mass_matrix(inverse_mass_matrix)
        self.target_accept_prob = check.open_unit_interval("target_accept_prob", target_accept_prob)
        check.dict_or_none("transforms", transforms)
        self._max_plate_nesting = check.nonnegative_int_or_none(
            "max_plate_nesting", max_plate_nesting
        )
        self._jit_compile = check.boolean("jit_compile", jit_compile)
        self._jit_options = check.dict_or_none("jit_options", jit_options)
        self._ignore_jit_warnings = check.boolean("ignore_jit_warnings", ignore_jit_warnings)
        self._init_strategy = check.callable_or_none("init_strategy", init_strategy)
        self._user_initial_params: dict[str, Tensor] | None = None
        self._initial_params: dict[str, Tensor] | None = None
        self._adapter: SingleProposalWarmupAdapter | None = None
        self._run: _RunState | None = None
        self._ravel: DictRavel | None = None
        self._flat_potential: Callable[[Tensor], Tensor] | None = None
        super().__init__()

    # ------------------------------------------------------------------ the algorithm's part

    def propose(self, state: ChainState, step_size: float) -> tuple[ChainState, Tensor]:
        """Propose a move from ``state``; return the proposed state and :math:`\\log r`."""
        raise NotImplementedError

    def _trial_log_accept_ratio(self, state: ChainState, step_size: float) -> Tensor:
        """The log acceptance ratio of one proposal at ``step_size`` (step-size search)."""
        return self.propose(state, step_size)[1]

    # ------------------------------------------------------------------ public properties

    @property
    def step_size(self) -> float:
        """The current step size (the adapted one once warmup has begun)."""
        return self._adapter.step_size if self._adapter is not None else self._step_size

    @property
    def initial_params(self) -> dict[str, Tensor] | None:
        """Initial unconstrained parameters: the user's if set, else found by :meth:`setup`."""
        if self._initial_params is not None:
            return self._initial_params
        return self._user_initial_params

    @initial_params.setter
    def initial_params(self, params: dict[str, Tensor] | None) -> None:
        if params is not None and (not isinstance(params, Mapping) or not params):
            raise ValueError(
                "initial_params must be None or a non-empty dict mapping site names to "
                f"unconstrained tensors; got {params!r}"
            )
        self._user_initial_params = params
        self._initial_params = None

    @property
    def inverse_mass_matrix(self) -> dict[tuple[str, ...], Tensor] | None:
        """The current inverse mass matrix, a dict keyed by tuples of site names (as Pyro's).

        After a run it holds the last chain's adapted matrix.
        """
        return None if self._adapter is None else self.mass_matrix_adapter.inverse_mass_matrix

    @property
    def mass_matrix_adapter(self) -> FlatBlockMassMatrix:
        return self._adapter.mass_matrix_adapter

    @property
    def metric(self) -> Metric:
        """The inverse mass matrix as a :class:`~pyro_simplehmc.metrics.Metric` on flat vectors."""
        return self.mass_matrix_adapter.metric

    # ------------------------------------------------------------------ Pyro's MCMCKernel API

    def setup(self, warmup_steps: int, *args: Any, **kwargs: Any) -> None:
        """Prepare a chain: initialise the model, the flat layout, the counters and adaptation."""
        warmup_steps = check.nonnegative_int("warmup_steps", warmup_steps)
        self._run = _RunState(warmup_steps=warmup_steps)
        if self.model is not None:
            init, potential_fn, transforms, _ = initialize_model(
                self.model,
                args,
                kwargs,
                transforms=self.transforms,
                max_plate_nesting=self._max_plate_nesting,
                jit_compile=self._jit_compile,
                jit_options=self._jit_options,
                skip_jit_warnings=self._ignore_jit_warnings,
                init_strategy=self._init_strategy,
                initial_params=self._user_initial_params,
            )
            self.potential_fn = potential_fn
            self.transforms = transforms
        elif self._user_initial_params is None:
            raise ValueError(
                "initial_params are required with potential_fn: pass initial_params to "
                "pyro.infer.MCMC (or set kernel.initial_params) as a dict of unconstrained tensors"
            )
        else:
            init = self._user_initial_params
        init = {name: torch.as_tensor(value).detach() for name, value in init.items()}
        self._initial_params = init

        blocks = mass_matrix_blocks(self.full_mass, init)
        self._ravel = DictRavel(init, order=[name for block in blocks for name in block])
        potential_fn = self.potential_fn
        ravel = self._ravel
        self._flat_potential = lambda q: potential_fn(ravel.unflatten(q))

        self._adapter = self._make_adapter(warmup_steps, blocks, init)
        q0 = self._ravel.flatten(init)
        if q0.numel() > 0:
            state = self._evaluate(q0)
            self._check_initial_state(state)
            self._remember(state, init)
            if self._adapter.adapt_step_size:
                self._adapter.reset_step_size_adaptation(init)
        self._run.setting_up = False

    def _make_adapter(self, warmup_steps, blocks, init) -> SingleProposalWarmupAdapter:
        adapting = warmup_steps > 0
        adapter = SingleProposalWarmupAdapter(
            self._step_size,
            adapt_step_size=self.adapt_step_size and adapting,
            adapt_mass_matrix=self.adapt_mass_matrix and adapting,
            target_accept_prob=self.target_accept_prob,
            dense_mass=self.full_mass,
        )
        adapter.mass_matrix_adapter = FlatBlockMassMatrix()
        like = next(iter(init.values())) if init else torch.zeros(())
        adapter.configure(
            warmup_steps,
            mass_matrix_shape=blocks,
            find_reasonable_step_size_fn=self._find_reasonable_step_size,
            options={"dtype": like.dtype, "device": like.device},
        )
        if self._init_inverse_mass_matrix is not None:
            adapter.mass_matrix_adapter.inverse_mass_matrix = as_block_dict(
                self._init_inverse_mass_matrix, blocks, like
            )
        return adapter

    def cleanup(self) -> None:
        """End a chain: drop its state. The adapted step size and mass matrix stay readable."""
        self._run = None
        self._initial_params = None

    def sample(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """One MCMC iteration from ``params`` (unconstrained): propose, then correct."""
        run = self._run
        if run is None:
            raise RuntimeError("call setup(warmup_steps, ...) before sample(params)")
        if self._ravel.size == 0:  # nothing to sample
            self._record(None)
            return params
        state = self._state_at(params)
        # No validation switch here: MCMC runs with validation off by default, and where a user
        # turns it on, the ValueError a diverging trajectory raises becomes a rejection in
        # value_and_grad.
        proposal, log_accept_ratio = self.propose(state, self.step_size)
        log_u = math.log(torch.rand((), dtype=torch.float64).item())
        state, info = metropolis_hastings(state, proposal, log_accept_ratio, log_u)
        new_params = self._ravel.unflatten(state.position)
        self._remember(state, new_params)
        self._record(info, new_params)
        return new_params

    def logging(self) -> OrderedDict:
        """Step size and running mean acceptance probability, for Pyro's progress bar."""
        mean = self._run.mean_accept_prob if self._run is not None else float("nan")
        return OrderedDict([("step size", f"{self.step_size:.2e}"), ("acc. prob", f"{mean:.3f}")])

    def diagnostics(self) -> dict[str, Any]:
        """Divergences (post-warmup iteration indices), acceptance rate, step size, cost counters.

        ``"potential evaluations"`` counts every evaluation of the potential and
        ``"gradient evaluations"`` those that also computed its gradient, each split into
        ``"warmup"`` (setup and step-size searches included) and ``"sampling"``.
        """
        run = self._run
        num_samples = max(run.t - run.warmup_steps, 0)
        return {
            "divergences": list(run.divergences),
            "acceptance rate": run.accepted / num_samples if num_samples else float("nan"),
            "step size": self.step_size,
            "potential evaluations": {
                "warmup": run.warmup_evals.potentials,
                "sampling": run.sampling_evals.potentials,
            },
            "gradient evaluations": {
                "warmup": run.warmup_evals.gradients,
                "sampling": run.sampling_evals.gradients,
            },
        }

    # ------------------------------------------------------------------ helpers

    @property
    def _counter(self) -> EvalCounter:
        run = self._run
        in_warmup = run.setting_up or run.t < run.warmup_steps
        return run.warmup_evals if in_warmup else run.sampling_evals

    def _value_and_grad(self, q: Tensor) -> tuple[Tensor, Tensor]:
        """:math:`(U(q), \\nabla U(q))`, counted."""
        counter = self._counter
        counter.potentials += 1
        counter.gradients += 1
        return value_and_grad(self._flat_potential, q)

    def _potential(self, q: Tensor) -> Tensor:
        """:math:`U(q)` alone, counted; a numerical fault gives NaN."""
        self._counter.potentials += 1
        with torch.no_grad():
            try:
                return self._flat_potential(q).reshape(q.shape[:-1])
            except Exception as error:
                if not is_numerical_error(error):
                    raise
                return torch.full_like(q[..., 0], float("nan"))

    def _evaluate(self, q: Tensor) -> ChainState:
        if self.uses_gradient:
            return ChainState(q, *self._value_and_grad(q))
        return ChainState(q, self._potential(q), None)

    def _state_at(self, params: Mapping[str, Tensor]) -> ChainState:
        """The state at ``params``: the remembered one if ``params`` is what we returned."""
        run = self._run
        last = run.last_params
        if last is not None and all(params.get(n) is v for n, v in last.items()):
            return run.last
        return self._evaluate(self._ravel.flatten(params).detach())

    def _remember(self, state: ChainState, params: dict[str, Tensor]) -> None:
        self._run.last, self._run.last_params = state, params

    def _check_initial_state(self, state: ChainState) -> None:
        if not bool(torch.isfinite(state.potential_energy)):
            raise ValueError(
                f"the potential energy at the initial parameters is {float(state.potential_energy)}"
                "; initial_params must be a point of finite log density"
            )
        if state.grad is not None and not bool(torch.isfinite(state.grad).all()):
            bad = self._ravel.unflatten(~torch.isfinite(state.grad))
            names = [name for name, mask in bad.items() if bool(mask.any())]
            raise ValueError(
                f"the gradient of the potential energy at the initial parameters is not finite "
                f"for the site(s) {names}"
            )

    def _record(self, info: StepInfo | None, params: dict[str, Tensor] | None = None) -> None:
        """Update counters and, during warmup, the adapter."""
        run = self._run
        accepted, accept_prob = (True, 1.0) if info is None else (info.accepted, info.accept_prob)
        warmup = run.t < run.warmup_steps
        if info is not None and info.diverging and not warmup:
            run.divergences.append(run.t - run.warmup_steps)
        if warmup and info is not None:
            self._adapter.step(
                run.t,
                params,
                torch.tensor(accept_prob),
                None if run.last.grad is None else self._ravel.unflatten(run.last.grad),
            )
        run.t += 1
        n = run.t if run.t <= run.warmup_steps else run.t - run.warmup_steps
        if not warmup:
            run.accepted += accepted
        run.mean_accept_prob += (accept_prob - run.mean_accept_prob) / n

    def _find_reasonable_step_size(self, params: Mapping[str, Tensor]) -> float:
        """Double or halve the step size until one proposal's acceptance crosses the target.

        The heuristic of Hoffman & Gelman (2014, Algorithm 4), with the kernel's own proposal and
        the kernel's target acceptance as the threshold.
        """
        state = self._state_at(params)
        threshold = math.log(self.target_accept_prob)
        step_size = self.step_size

        def direction(eps: float) -> int:
            log_r = float(self._trial_log_accept_ratio(state, eps))
            return 1 if log_r > threshold else -1  # NaN counts as "too far"

        first = direction(step_size)
        for _ in range(100):
            candidate = step_size * 2.0**first
            if not 1e-10 < candidate < 1e10:
                break
            step_size = candidate
            if direction(step_size) != first:
                break
        return step_size

    def __getstate__(self):
        state = self.__dict__.copy()
        # A closure over the potential is rebuilt by setup(); do not ship it to workers.
        state["_flat_potential"] = None
        return state
