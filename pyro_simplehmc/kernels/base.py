r"""The shell shared by every kernel: Pyro plumbing, batching, counters and adaptation.

A kernel in this package is a *proposal* (:meth:`MHKernel.propose`): given the chains' states it
returns proposed states and the log of their Metropolis-Hastings ratios, and
:func:`~pyro_simplehmc.core.mh.metropolis_hastings` accepts or rejects each chain's proposal.
Everything else is here, once:

- :meth:`MHKernel.setup` (one chain, as :class:`pyro.infer.MCMC` calls it) and
  :meth:`MHKernel.setup_chains` (a batch of chains, as :class:`pyro_simplehmc.MCMC` calls it with
  ``chain_method="vectorized"``) initialise the model with Pyro's
  :func:`~pyro.infer.mcmc.util.initialize_model`, build the flat layout, the batched potential
  (:mod:`pyro_simplehmc.kernels.potentials`) and the adapter;
- :meth:`MHKernel.sample` flattens the parameters once, asks the subclass for a proposal, applies
  the Metropolis-Hastings step, feeds the adapter during warmup and unflattens once;
- :meth:`MHKernel.logging` and :meth:`MHKernel.diagnostics` follow :class:`pyro.infer.HMC`.

Positions are always ``(C, D)``: one chain is a batch of one, and runs the same code.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from pyro.infer.autoguide import init_to_uniform
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from pyro.infer.mcmc.util import initialize_model
from torch import Tensor

from ..core import validation as check
from ..core.metrics import Metric
from ..core.mh import MAX_ENERGY_ERROR, ChainState, StepInfo, metropolis_hastings
from ..core.ravel import DictRavel
from . import potentials
from .adaptation import BatchMassMatrix, BatchWarmupAdapter, as_block_dict, mass_matrix_blocks
from .evaluation import is_numerical_error, value_and_grad

__all__ = ["MAX_ENERGY_ERROR", "ChainState", "MHKernel", "StepInfo", "metropolis_hastings"]


@dataclass
class EvalCounter:
    """Potential evaluations (all of them) and gradient evaluations (those with a gradient).

    A batched evaluation counts once: it is one evaluation for each chain.
    """

    potentials: int = 0
    gradients: int = 0


@dataclass
class _RunState:
    """Everything a batch of chains accumulates; a new one per setup."""

    warmup_steps: int
    num_chains: int
    vectorized: bool
    t: int = 0
    accepted: Tensor | int = 0
    mean_accept_prob: Tensor | float = 0.0
    diverging: list[Tensor] = field(default_factory=list)
    warmup_evals: EvalCounter = field(default_factory=EvalCounter)
    sampling_evals: EvalCounter = field(default_factory=EvalCounter)
    last: ChainState | None = None
    last_params: dict[str, Tensor] | None = None
    setting_up: bool = True
    potential_path: str = "one chain"


class MHKernel(MCMCKernel):
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
    """

    #: Whether :meth:`propose` needs :math:`\nabla U` at the current state.
    uses_gradient: bool = True
    #: The acceptance probability the adaptation aims for unless the user says otherwise.
    default_target_accept_prob: float = 0.8
    #: Dual averaging's ``gamma``
    #: (see :class:`~pyro_simplehmc.kernels.adaptation.BatchWarmupAdapter`).
    dual_averaging_gamma: float = 0.2
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
        # None is "the default", as in Pyro's HMC.
        step_size = 1.0 if step_size is None else step_size
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
        self._init_strategy = check.callable_or_none("init_strategy", init_strategy) or (
            init_to_uniform
        )
        self.chain_adaptation = check.one_of(
            "chain_adaptation", chain_adaptation, ("per_chain", "pooled")
        )
        self.batched_potential = check.boolean("batched_potential", batched_potential)
        self._user_initial_params: dict[str, Tensor] | None = None
        self._initial_params: dict[str, Tensor] | None = None
        self._adapter: BatchWarmupAdapter | None = None
        self._run: _RunState | None = None
        self._finished: _RunState | None = None
        self._ravel: DictRavel | None = None
        self._batch_potential: potentials.BatchedPotential | None = None
        self._loop_potential: potentials.BatchedPotential | None = None
        #: What the last Metropolis-Hastings step did, per chain (tensors of shape ``(C,)``).
        self.last_step_info: StepInfo | None = None
        super().__init__()

    # ------------------------------------------------------------------ the algorithm's part

    def propose(self, state: ChainState, step_size: Tensor) -> tuple[ChainState, Tensor]:
        r"""Propose a move for each chain; return the proposed states and :math:`\log r`.

        :param state: the chains' current states (positions ``(C, D)``).
        :param step_size: the step size, shape ``(C, 1)`` or ``(1, 1)`` (shared).
        """
        raise NotImplementedError

    def _trial_log_accept_ratio(self, state: ChainState, step_size: Tensor) -> Tensor:
        """The log acceptance ratio of one proposal at ``step_size`` (step-size search)."""
        return self.propose(state, step_size)[1]

    # ------------------------------------------------------------------ public properties

    @property
    def step_size(self) -> float | Tensor:
        """The current step size: a number when the chains share one, else one per chain."""
        if self._adapter is None:
            return self._step_size
        step_size = self._adapter.step_size
        return float(step_size) if step_size.numel() == 1 else step_size

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
        return dict(self.mass_matrix_adapter.inverse_mass_matrix)

    @property
    def mass_matrix_adapter(self) -> BatchMassMatrix | None:
        return None if self._adapter is None else self._adapter.mass_matrix_adapter

    @property
    def metric(self) -> Metric | None:
        """The inverse mass matrix as a :class:`~pyro_simplehmc.core.metrics.Metric` on flat vectors
        (``None`` before setup)."""
        return None if self._adapter is None else self.mass_matrix_adapter.metric

    @property
    def potential_path(self) -> str | None:
        """How the batched potential is evaluated: ``"plate"``, ``"vmap"``, ``"loop"``,
        ``"batched"`` (the user's) or ``"one chain"``."""
        run = self._run or self._finished
        return None if run is None else run.potential_path

    # ------------------------------------------------------------------ Pyro's MCMCKernel API

    def setup(self, warmup_steps: int, *args: Any, **kwargs: Any) -> None:
        """Prepare one chain (Pyro's API): the model, the flat layout, counters and adaptation."""
        self._setup(warmup_steps, None, args, kwargs)

    def setup_chains(self, warmup_steps: int, num_chains: int, *args: Any, **kwargs: Any) -> None:
        """Prepare ``num_chains`` chains that advance together as one batch.

        :attr:`initial_params` (if set) and every ``params`` dict that :meth:`sample` takes and
        returns then have a leading chain dimension. Without initial parameters each chain draws
        its own starting point with the kernel's ``init_strategy``.
        """
        self._setup(warmup_steps, check.positive_int("num_chains", num_chains), args, kwargs)

    def _setup(self, warmup_steps, num_chains, args, kwargs) -> None:
        warmup_steps = check.nonnegative_int("warmup_steps", warmup_steps)
        vectorized = num_chains is not None
        num_chains = num_chains or 1
        run = self._run = _RunState(warmup_steps, num_chains, vectorized)
        batch_shape = (num_chains,) if vectorized else ()
        chain_fn = self.potential_fn
        trace = None
        if self.model is not None:
            user_init = self._user_initial_params
            init, chain_fn, transforms, trace = initialize_model(
                self.model,
                args,
                kwargs,
                transforms=self.transforms,
                max_plate_nesting=self._max_plate_nesting,
                # With several chains, the batched potential is what gets compiled.
                jit_compile=self._jit_compile and num_chains == 1,
                jit_options=self._jit_options,
                skip_jit_warnings=self._ignore_jit_warnings,
                num_chains=num_chains,
                init_strategy=self._init_strategy,
                initial_params=user_init,
            )
            if vectorized and num_chains == 1 and user_init is None:
                init = {name: value.unsqueeze(0) for name, value in init.items()}
            self.potential_fn = chain_fn
            self.transforms = transforms
        elif self._user_initial_params is None:
            raise ValueError(
                "initial_params are required with potential_fn: pass initial_params to "
                "pyro.infer.MCMC (or set kernel.initial_params) as a dict of unconstrained tensors"
            )
        else:
            init = self._user_initial_params
            if vectorized and self.batched_potential:
                batched_fn = self.potential_fn
                chain_fn = lambda params: batched_fn(  # noqa: E731
                    {name: value.unsqueeze(0) for name, value in params.items()}
                )
        init = {name: torch.as_tensor(value).detach() for name, value in init.items()}
        if vectorized:
            check.chain_dimension("initial_params", init, num_chains)
        self._initial_params = init

        blocks = mass_matrix_blocks(self.full_mass, init, batch_ndim=len(batch_shape))
        prototype = {name: value[0] if vectorized else value for name, value in init.items()}
        ravel = self._ravel = DictRavel(prototype, order=[n for block in blocks for n in block])
        like = next(iter(init.values())) if init else torch.zeros(())
        q0 = ravel.flatten(init, batch_shape).reshape(num_chains, ravel.size).to(like)

        self._loop_potential = potentials.loop_potential(chain_fn, ravel)
        if num_chains == 1:  # Pyro's own potential, as for one chain outside a batch
            self._batch_potential = potentials.single_chain_potential(chain_fn, ravel)
        elif ravel.size > 0:
            run.potential_path, self._batch_potential = self._choose_potential(
                chain_fn, ravel, trace, args, kwargs, q0
            )
        self._adapter = self._make_adapter(warmup_steps, blocks, num_chains, like)
        if ravel.size > 0:
            state = self._evaluate(q0, strict=True)
            self._check_initial_state(state)
            self._remember(state, init)
            if self._adapter.adapt_step_size:
                self._adapter.reset_step_size_adaptation(state)
        run.accepted = torch.zeros(num_chains, dtype=torch.long, device=like.device)
        run.mean_accept_prob = torch.zeros(num_chains, dtype=like.dtype, device=like.device)
        run.setting_up = False

    def _choose_potential(self, chain_fn, ravel, trace, args, kwargs, q0):
        """The batched potential of a batch of chains (:mod:`pyro_simplehmc.kernels.potentials`)."""
        if self.model is None and self.batched_potential:
            return "batched", potentials.batched_user_potential(self.potential_fn, ravel)
        candidates = []
        enumerated = trace is not None and any(
            site["type"] == "sample" and site["infer"].get("enumerate")
            for site in trace.nodes.values()
        )
        if self.model is not None and not enumerated:
            model, transforms = self.model, self.transforms
            candidates.append(
                (
                    "plate",
                    lambda n: potentials.plate_potential(
                        model, args, kwargs, transforms, ravel, trace, n
                    ),
                )
            )
        if self.model is not None and not enumerated:
            vmappable = potentials.model_potential(self.model, args, kwargs, self.transforms)
        else:
            vmappable = chain_fn
        candidates.append(("vmap", lambda n: potentials.vmap_potential(vmappable, ravel)))
        path, potential = potentials.choose_potential(candidates, self._loop_potential, q0)
        if self._jit_compile:
            potential = potentials.jit_compiled(potential, q0, self._jit_options)
        return path, potential

    def _make_adapter(self, warmup_steps, blocks, num_chains, like) -> BatchWarmupAdapter:
        adapting = warmup_steps > 0
        adapter = BatchWarmupAdapter(
            self._step_size,
            adapt_step_size=self.adapt_step_size and adapting,
            adapt_mass_matrix=self.adapt_mass_matrix and adapting,
            target_accept_prob=self.target_accept_prob,
            dense_mass=self.full_mass,
            chain_adaptation=self.chain_adaptation,
            num_chains=num_chains,
            dual_averaging_gamma=self.dual_averaging_gamma,
        )
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
        """End a run: drop its state. Diagnostics, step size and mass matrix stay readable."""
        if self._run is not None:
            self._finished = self._run
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
        proposal, log_accept_ratio = self.propose(state, self._adapter.step_size.unsqueeze(-1))
        # One uniform per chain: chains that shared one would accept and reject together.
        u = torch.rand(run.num_chains, dtype=state.position.dtype, device=state.position.device)
        new_state, info = self.mh_step(state, proposal, log_accept_ratio, u.log())
        if run.t < run.warmup_steps:
            self._adapt(run.t, state, proposal, info, new_state)
        batch_shape = (run.num_chains,) if run.vectorized else ()
        new_params = self._ravel.unflatten(new_state.position, batch_shape)
        self._remember(new_state, new_params)
        self._record(info)
        return new_params

    def logging(self) -> OrderedDict:
        """Step size and running mean acceptance probability (over chains), for Pyro's bar."""
        run = self._run or self._finished
        mean = float(run.mean_accept_prob.mean()) if run is not None else float("nan")
        step_size = self.step_size
        if isinstance(step_size, Tensor):
            step_size = float(step_size.mean())
        return OrderedDict([("step size", f"{step_size:.2e}"), ("acc. prob", f"{mean:.3f}")])

    def chain_diagnostics(self) -> list[dict[str, Any]]:
        """:meth:`diagnostics` of each chain of the batch, in order."""
        run = self._run or self._finished
        if run is None:
            raise RuntimeError("no run to diagnose: call setup(warmup_steps, ...) first")
        num_samples = max(run.t - run.warmup_steps, 0)
        diverging = (
            torch.stack(run.diverging, dim=1).cpu()
            if run.diverging
            else torch.zeros(run.num_chains, 0, dtype=torch.bool)
        )
        step_sizes = self._adapter.step_size.expand(run.num_chains).tolist()
        accepted = run.accepted.tolist() if isinstance(run.accepted, Tensor) else [run.accepted]
        evals = {
            "potential evaluations": {
                "warmup": run.warmup_evals.potentials,
                "sampling": run.sampling_evals.potentials,
            },
            "gradient evaluations": {
                "warmup": run.warmup_evals.gradients,
                "sampling": run.sampling_evals.gradients,
            },
        }
        return [
            {
                "divergences": diverging[c].nonzero().flatten().tolist(),
                "acceptance rate": accepted[c] / num_samples if num_samples else float("nan"),
                "step size": step_sizes[c],
                **{key: dict(value) for key, value in evals.items()},
                **self._extra_diagnostics(),
            }
            for c in range(run.num_chains)
        ]

    def diagnostics(self) -> dict[str, Any]:
        """Divergences (post-warmup iteration indices), acceptance rate, step size, cost counters.

        ``"potential evaluations"`` counts every evaluation of the potential and
        ``"gradient evaluations"`` those that also computed its gradient, each split into
        ``"warmup"`` (setup and step-size searches included) and ``"sampling"``; a batched
        evaluation counts once, as it is one evaluation for each chain. For a batch of several
        chains, a dict keyed ``"chain 0"``, ``"chain 1"``, ... of these.
        """
        per_chain = self.chain_diagnostics()
        if len(per_chain) == 1:
            return per_chain[0]
        return {f"chain {c}": d for c, d in enumerate(per_chain)}

    def _extra_diagnostics(self) -> dict[str, Any]:
        """Kernel-specific diagnostics, the same for every chain (subclasses add to it)."""
        return {}

    # ------------------------------------------------------------------ helpers

    @property
    def _counter(self) -> EvalCounter:
        run = self._run
        in_warmup = run.setting_up or run.t < run.warmup_steps
        return run.warmup_evals if in_warmup else run.sampling_evals

    def _value_and_grad(self, q: Tensor, strict: bool = False) -> tuple[Tensor, Tensor]:
        """:math:`(U(q), \\nabla U(q))` for every chain, counted.

        A numerical fault in the batched evaluation is retried chain by chain, so that only the
        faulty chains get NaN (and a rejection); ``strict`` raises it instead (at setup).
        """
        counter = self._counter
        counter.potentials += 1
        counter.gradients += 1
        try:
            return value_and_grad(self._batch_potential, q, catch=False)
        except Exception as error:
            if strict or not is_numerical_error(error):
                raise
        return value_and_grad(self._loop_potential, q)

    def _potential(self, q: Tensor, strict: bool = False) -> Tensor:
        """:math:`U(q)` alone for every chain, counted; a numerical fault gives NaN."""
        self._counter.potentials += 1
        with torch.no_grad():
            try:
                return self._batch_potential(q).reshape(q.shape[:-1])
            except Exception as error:
                if strict or not is_numerical_error(error):
                    raise
            return self._loop_potential(q)

    def _evaluate(self, q: Tensor, strict: bool = False) -> ChainState:
        if self.uses_gradient:
            return ChainState(q, *self._value_and_grad(q, strict))
        return ChainState(q, self._potential(q, strict), None)

    def _state_at(self, params: Mapping[str, Tensor]) -> ChainState:
        """The state at ``params``: the remembered one if ``params`` is what we returned."""
        run = self._run
        last = run.last_params
        if last is not None and all(params.get(n) is v for n, v in last.items()):
            return run.last
        batch_shape = (run.num_chains,) if run.vectorized else ()
        q = self._ravel.flatten(params, batch_shape).reshape(run.num_chains, -1)
        return self._evaluate(q.detach())

    def _remember(self, state: ChainState, params: dict[str, Tensor]) -> None:
        self._run.last, self._run.last_params = state, params

    def _check_initial_state(self, state: ChainState) -> None:
        bad = ~torch.isfinite(state.potential_energy)
        if bool(bad.any()):
            values = state.potential_energy[bad].tolist()
            where = "" if bad.numel() == 1 else f" for chains {bad.nonzero().flatten().tolist()}"
            value = values[0] if len(values) == 1 else values
            raise ValueError(
                f"the potential energy at the initial parameters is {value}{where}; "
                "initial_params must be a point of finite log density"
            )
        if state.grad is not None and not bool(torch.isfinite(state.grad).all()):
            mask = self._ravel.unflatten(~torch.isfinite(state.grad).any(0))
            names = [name for name, m in mask.items() if bool(m.any())]
            raise ValueError(
                f"the gradient of the potential energy at the initial parameters is not finite "
                f"for the site(s) {names}"
            )

    def _adapt(
        self, t: int, state: ChainState, proposal: ChainState, info: StepInfo, new: ChainState
    ) -> None:
        """Learn from warmup iteration ``t`` (from ``state``, ``proposal`` was made and ``new``
        is where the chains went): the step size and mass matrix, by Stan's windows."""
        self._adapter.step(t, new, info.accept_prob)

    def _record(self, info: StepInfo | None) -> None:
        """Update the counters."""
        run = self._run
        warmup = run.t < run.warmup_steps
        if info is None:  # a model without latent sites: every step is accepted
            ones = torch.ones(run.num_chains)
            info = StepInfo(ones.bool(), ones, ones * 0, ones.bool() & False)
        if not warmup:
            run.accepted = run.accepted + info.accepted
            run.diverging.append(info.diverging)
        run.t += 1
        n = run.t if run.t <= run.warmup_steps else run.t - run.warmup_steps
        run.mean_accept_prob = run.mean_accept_prob + (info.accept_prob - run.mean_accept_prob) / n
        self.last_step_info = info

    def _find_reasonable_step_size(self, state: ChainState) -> Tensor:
        """Double or halve each step size until one proposal's acceptance crosses the target.

        The heuristic of Hoffman & Gelman (2014, Algorithm 4), with the kernel's own proposal and
        target acceptance, for every chain at once (each chain stops when it crosses; with
        ``chain_adaptation="pooled"`` the chains' harmonic-mean acceptance decides).
        """
        adapter = self._adapter
        step_size = adapter.step_size.clone()

        def direction(eps: Tensor) -> Tensor:
            log_r = self._trial_log_accept_ratio(state, eps.unsqueeze(-1))
            accept_prob = torch.nan_to_num(log_r, nan=-math.inf).clamp(max=0.0).exp()
            return torch.where(adapter.pool(accept_prob) > self.target_accept_prob, 1.0, -1.0)

        first = direction(step_size)
        done = torch.zeros_like(step_size, dtype=torch.bool)
        for _ in range(100):
            candidate = step_size * 2.0**first
            done = done | (candidate <= 1e-10) | (candidate >= 1e10)
            step_size = torch.where(done, step_size, candidate)
            done = done | (direction(step_size) != first)
            if bool(done.all()):
                break
        return step_size

    def __getstate__(self):
        state = self.__dict__.copy()
        # Closures over the potential are rebuilt by setup(); do not ship them to workers.
        state["_batch_potential"] = state["_loop_potential"] = None
        return state
