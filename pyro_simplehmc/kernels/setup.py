r"""Setting a kernel up for a run, and ending it: :class:`SetupMixin`, a part of
:class:`~.base.MHKernel`.

:meth:`SetupMixin.setup` (one chain, as :class:`pyro.infer.MCMC` calls it) and
:meth:`SetupMixin.setup_chains` (a batch, as :class:`pyro_simplehmc.MCMC` calls it with
``chain_method="vectorized"``) initialise the model and the batched potential
(:mod:`.initialization`), the counted evaluation (:class:`~.evaluation.BatchEvaluator`) and the
warmup adaptation (:class:`~.adaptation.BatchWarmupAdapter`), and start from scratch or from a
:class:`~.state.KernelState` (:mod:`.resume`). What one run accumulates is a :class:`_Run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..core import validation as check
from ..core.mh import ChainState
from ..core.ravel import DictRavel
from ..core.step_size import accept_prob, find_reasonable_step_size
from .adaptation import BatchWarmupAdapter
from .evaluation import BatchEvaluator
from .initialization import check_initial_state, initialize_chains
from .mass_matrix import as_block_dict
from .resume import sites_of

__all__ = ["SetupMixin"]


@dataclass
class _Run:
    """What one run of a batch of chains accumulates; a new one per setup."""

    warmup_steps: int
    num_chains: int
    vectorized: bool
    layout: DictRavel
    evaluator: BatchEvaluator
    potential_path: str
    #: Iterations run before this run began (a continued run's), for iteration-indexed rules.
    offset: int = 0
    t: int = 0
    accepted: Tensor | int = 0
    mean_accept_prob: Tensor | float = 0.0
    diverging: list[Tensor] = field(default_factory=list)
    last: ChainState | None = None
    last_params: dict[str, Tensor] | None = None


class SetupMixin:
    """Pyro's ``setup`` and ``cleanup`` for :class:`~.base.MHKernel` (which holds the settings
    they read: the model or potential, the adaptation's options, :attr:`initial_params`)."""

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
        resume = self._resume.pop(0) if self._resume else None
        initial_params = self._user_initial_params
        if resume is not None:
            # A model finds its own sites (the state is checked against them after); a
            # potential_fn starts from the state's.
            initial_params = None if self.model is not None else sites_of(resume, vectorized)
        chains = initialize_chains(
            model=self.model,
            potential_fn=self.potential_fn,
            initial_params=initial_params,
            num_chains=num_chains,
            vectorized=vectorized,
            args=args,
            kwargs=kwargs,
            full_mass=self.full_mass,
            transforms=self.transforms,
            max_plate_nesting=self._max_plate_nesting,
            jit_compile=self._jit_compile,
            jit_options=self._jit_options,
            ignore_jit_warnings=self._ignore_jit_warnings,
            init_strategy=self._init_strategy,
            batched_potential=self.batched_potential,
        )
        if self.model is not None:
            self.potential_fn, self.transforms = chains.potential_fn, chains.transforms
        self._initial_params = chains.initial_params
        layout = chains.layout
        if self.low_rank_size is not None and self.low_rank_size > layout.size:
            raise ValueError(
                f"low_rank_size must be at most the number of unconstrained dimensions, "
                f"{layout.size}; got {self.low_rank_size}"
            )
        evaluator = BatchEvaluator(
            chains.batch_potential, chains.loop_potential, one_chain=num_chains == 1
        )
        run = self._run = _Run(
            warmup_steps, num_chains, vectorized, layout, evaluator, chains.potential_path
        )
        like = chains.position
        self._adapter = BatchWarmupAdapter(
            self._step_size,
            warmup_steps,
            chains.blocks,
            num_chains=num_chains,
            chain_adaptation=self.chain_adaptation,
            adapt_step_size=self.adapt_step_size,
            adapt_mass_matrix=self.adapt_mass_matrix,
            target_accept_prob=self.target_accept_prob,
            dual_averaging_gamma=self.dual_averaging_gamma,
            pooled_statistic=self.pooled_statistic,
            find_step_size=self._find_reasonable_step_size,
            dtype=like.dtype,
            device=like.device,
            mass_estimator=self.mass_estimator,
            low_rank_size=self.low_rank_size,
        )
        if self._init_inverse_mass_matrix is not None:
            self._adapter.mass_matrix.inverse_mass_matrix = as_block_dict(
                self._init_inverse_mass_matrix, chains.blocks, like
            )
        if resume is not None:
            self._continue(resume, chains)
        elif layout.size > 0:
            state = self._evaluate(chains.position, strict=True)
            check_initial_state(state, layout)
            self._remember(state, chains.initial_params)
            if self._adapter.adapt_step_size:
                self._adapter.start_step_size_adaptation(state)
        self._start_run()
        if resume is not None:
            self._load_trajectory_state(resume.trajectory)
        run.accepted = torch.zeros(num_chains, dtype=torch.long, device=like.device)
        run.mean_accept_prob = torch.zeros(num_chains, dtype=like.dtype, device=like.device)
        if resume is not None and resume.rng_state is not None:
            # Last: setting up may have drawn random numbers (an init strategy).
            torch.set_rng_state(resume.rng_state)
            if resume.cuda_rng_state is not None and like.is_cuda:
                torch.cuda.set_rng_state(resume.cuda_rng_state, like.device)

    def _start_run(self) -> None:
        """A run's setup is done (subclasses start what they learn; the step size is the
        searched one)."""

    def cleanup(self) -> None:
        """End a run: drop its state. Diagnostics, step size and mass matrix stay readable."""
        if self._run is not None:
            self._finished = self._run
        self._run = None
        self._initial_params = None

    def _find_reasonable_step_size(self, state: ChainState) -> Tensor:
        """The step-size search of :func:`~pyro_simplehmc.core.step_size.find_reasonable_step_size`
        with this kernel's own trial proposal (with ``chain_adaptation="pooled"``, on the chains'
        pooled acceptance)."""
        adapter = self._adapter
        return find_reasonable_step_size(
            adapter.step_size,
            lambda eps: adapter.pool(
                accept_prob(self._trial_log_accept_ratio(state, eps.unsqueeze(-1)))
            ),
            self.target_accept_prob,
        )
