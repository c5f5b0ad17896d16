r""":class:`MCMC`: Pyro's MCMC runner, plus many chains advancing together as one batch.

With ``chain_method="vectorized"`` the ``num_chains`` chains of one of this package's kernels are
one batch: positions ``(C, D)``, one batched potential (and gradient) evaluation per leapfrog step
or proposal, one Metropolis-Hastings decision per chain per iteration. What the run leaves behind
is what :class:`pyro.infer.MCMC` leaves: samples grouped by chain, per-chain diagnostics, and so
:meth:`~pyro.infer.MCMC.summary`, :meth:`~pyro.infer.MCMC.diagnostics` and ``arviz.from_pyro``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pyro
import pyro.infer
import torch
from pyro import poutine
from pyro.infer.mcmc.logger import initialize_logger
from pyro.util import optional

from ..core import validation as check
from ..kernels import _pyro_compat as compat
from ..kernels.base import MHKernel
from .state import MCMCState

__all__ = ["CHAIN_METHODS", "MCMC", "MCMCState"]

#: The allowed values of ``chain_method``.
CHAIN_METHODS = ("parallel", "sequential", "vectorized")


class MCMC(pyro.infer.MCMC):
    r"""Drop-in :class:`pyro.infer.MCMC` with a choice of how several chains run.

    All arguments are those of :class:`pyro.infer.MCMC`, plus:

    :param str chain_method: ``"parallel"`` (Pyro's behaviour, the default: one process per
        chain when there are enough CPUs, else one after the other), ``"sequential"`` (one after
        the other in this process), or ``"vectorized"`` (all chains of one of this package's
        kernels at once, as one batch, in this process, on the device of the model's tensors).

    With ``"vectorized"``:

    - ``initial_params`` is one dict whose sites have a leading chain dimension of size
      ``num_chains``; without it each chain draws its own starting point with the kernel's
      ``init_strategy``;
    - ``hook_fn(kernel, params, stage, i)`` is called once per iteration with the batch's
      ``params`` (leading chain dimension);
    - one progress bar shows the mean acceptance probability across chains;
    - :attr:`sample_stats` holds per-draw statistics, each shaped ``(num_chains, num_samples)``:
      ``"accept_prob"``, ``"diverging"``, ``"energy_error"`` and ``"step_size"``;
    - the chains share one random stream: a run is reproducible from :func:`pyro.set_rng_seed`
      for a given ``num_chains``, and each chain's draws are independent of the others'.

    Example::

        >>> mcmc = MCMC(SimpleHMC(model), num_samples=1000, warmup_steps=500, num_chains=64,
        ...             chain_method="vectorized")
        >>> mcmc.run(data)
        >>> mcmc.get_samples(group_by_chain=True)["mu"].shape
        torch.Size([64, 1000])
    """

    def __init__(
        self,
        kernel,
        num_samples: int,
        warmup_steps: int | None = None,
        initial_params: dict | None = None,
        num_chains: int = 1,
        hook_fn: Callable | None = None,
        mp_context=None,
        disable_progbar: bool = False,
        disable_validation: bool | None = True,
        transforms: dict | None = None,
        save_params: list[str] | None = None,
        chain_method: str = "parallel",
    ):
        self.chain_method = check.one_of("chain_method", chain_method, CHAIN_METHODS)
        num_chains = check.positive_int("num_chains", num_chains)
        num_samples = check.positive_int("num_samples", num_samples)
        if warmup_steps is not None:
            warmup_steps = check.nonnegative_int("warmup_steps", warmup_steps)
        self.sample_stats: dict[str, torch.Tensor] = {}
        #: What a continuation of the last run needs (:class:`~.state.MCMCState`); ``None``
        #: before a run, or for kernels that are not this package's.
        self.last_state: MCMCState | None = None
        if isinstance(kernel, MHKernel):
            kernel.keep_resume_state = True
        if chain_method != "vectorized":
            super().__init__(
                kernel,
                num_samples,
                warmup_steps,
                initial_params,
                num_chains,
                hook_fn,
                mp_context,
                disable_progbar,
                disable_validation,
                transforms,
                save_params,
            )
            if chain_method == "sequential" and not compat.is_sequential_sampler(self.sampler):
                self.sampler.terminate(True)
                self.sampler = compat.sequential_sampler(
                    kernel,
                    num_samples,
                    self.warmup_steps,
                    num_chains,
                    disable_progbar,
                    initial_params=initial_params,
                    hook=hook_fn,
                )
            self.disable_progbar, self.hook_fn = disable_progbar, hook_fn
            return
        if not isinstance(kernel, MHKernel):
            raise ValueError(
                f'chain_method="vectorized" needs one of this package\'s kernels (SimpleHMC, MALA, '
                f"RandomWalkMH or another MHKernel); {type(kernel).__name__} cannot run its "
                'chains as a batch: use chain_method="parallel" or "sequential"'
            )
        if initial_params is not None:
            check.chain_dimension("initial_params", initial_params, num_chains)
        # The attributes pyro.infer.MCMC's other methods read; no sampler: run() is ours.
        pyro.infer.mcmc.api.AbstractMCMC.__init__(self, kernel, num_chains, transforms)
        self.warmup_steps = num_samples if warmup_steps is None else warmup_steps
        self.num_samples = num_samples
        self.disable_validation = disable_validation
        self.disable_progbar = disable_progbar
        self.hook_fn = hook_fn
        self.initial_params = initial_params
        compat.store_mcmc_run(self, None, [None] * num_chains, None, None)
        if save_params is not None:
            kernel.save_params = save_params

    @poutine.block
    def run(self, *args: Any, init_state: MCMCState | None = None, **kwargs: Any) -> None:
        """Run the chains and keep their samples (see :meth:`pyro.infer.MCMC.run`).

        :param init_state: continue the chains of an earlier run (its :attr:`last_state`, or a
            state read with :meth:`MCMCState.load <pyro_simplehmc.mcmc.state.MCMCState.load>`)
            instead of starting new ones: their positions, step sizes, mass matrices, trajectory
            lengths and random stream. With ``warmup_steps=0`` the draws are the ones the earlier
            run would have made next. Chains that ran ``"parallel"`` or ``"sequential"``
            continue one after the other in this process.
        """
        resuming = init_state is not None
        if resuming:
            self._check_state(init_state)
            self.kernel.initial_state = list(init_state.kernels)
        self.last_state = None
        if self.chain_method == "vectorized":
            self._run_vectorized(args, kwargs)
        else:
            sampler = self.sampler
            if resuming:  # Pyro's worker processes cannot be handed a chain's state
                self.sampler = compat.sequential_sampler(
                    self.kernel, self.num_samples, self.warmup_steps, self.num_chains,
                    self.disable_progbar, hook=self.hook_fn,
                )  # fmt: skip
            try:
                super().run(*args, **kwargs)
            finally:
                self.sampler = sampler
            self._collect_states()

    @property
    def kernel_diagnostics(self) -> list[dict[str, Any]]:
        """The kernel's :meth:`~pyro_simplehmc.MHKernel.diagnostics` of each chain of the last
        run, as a list (without the ESS and R-hat that :meth:`diagnostics` computes first)."""
        return list(compat.mcmc_chain_diagnostics(self) or [])

    def _check_state(self, state: MCMCState) -> None:
        if not isinstance(state, MCMCState):
            raise ValueError(
                "init_state must be an MCMCState (an earlier run's mcmc.last_state); got "
                f"{type(state).__name__}"
            )
        if not isinstance(self.kernel, MHKernel):
            raise ValueError(
                f"init_state continues this package's kernels; {type(self.kernel).__name__} "
                "keeps no state to continue from"
            )
        if state.num_chains != self.num_chains:
            raise ValueError(
                f"init_state holds {state.num_chains} chain(s); this MCMC has "
                f"num_chains={self.num_chains}"
            )
        vectorized = state.chain_method == "vectorized"
        if vectorized != (self.chain_method == "vectorized"):
            allowed = '"vectorized"' if vectorized else '"parallel" or "sequential"'
            raise ValueError(
                f'init_state comes from a chain_method="{state.chain_method}" run and resumes '
                f'with chain_method={allowed}; this MCMC has "{self.chain_method}"'
            )

    def _collect_states(self) -> None:
        """Take each chain's state out of the kernel diagnostics the run collected."""
        per_chain = compat.mcmc_chain_diagnostics(self) or []
        states = [d.pop("resume state", None) if isinstance(d, dict) else None for d in per_chain]
        if states and all(state is not None for state in states):
            self.last_state = MCMCState(self.chain_method, self.num_chains, states)

    def _run_vectorized(self, args, kwargs) -> None:
        with optional(
            pyro.validation_enabled(not self.disable_validation),
            self.disable_validation is not None,
        ):
            args = [arg.detach() if torch.is_tensor(arg) else arg for arg in args]
            samples, diagnostics = self._run_batch(args, kwargs)
        if self.transforms is None:  # as Pyro's MCMC: the kernel's, found at setup
            self.transforms = self.kernel.transforms or {}
        samples = {
            name: self.transforms[name].inv(z) if name in self.transforms else z
            for name, z in samples.items()
        }
        compat.store_mcmc_run(self, samples, diagnostics, tuple(args), kwargs)

    def _run_batch(self, args, kwargs) -> tuple[dict[str, torch.Tensor], list[dict]]:
        """The vectorized run: setup, warmup, sampling into preallocated ``(C, N, ...)``
        tensors; returns the draws and each chain's diagnostics."""
        kernel, num_chains = self.kernel, self.num_chains
        warmup_steps, num_samples = self.warmup_steps, self.num_samples
        kernel.initial_params = self.initial_params
        kernel.setup_chains(warmup_steps, num_chains, *args, **kwargs)
        params = kernel.initial_params
        names = getattr(kernel, "save_params", None) or sorted(params)
        samples = {
            name: params[name].new_empty((num_chains, num_samples, *params[name].shape[1:]))
            for name in names
        }
        stats = _StatsRecorder(num_chains, num_samples)
        progress_bar = pyro.infer.mcmc.logger.ProgressBar(
            warmup_steps, num_samples, disable=self.disable_progbar
        )
        logger = initialize_logger(logging.getLogger("pyro.infer.mcmc"), "", progress_bar)
        if self.disable_progbar:
            # The logger's one handler feeds the bar, so a hidden bar needs no per-iteration
            # json round trip of kernel.logging(); the user's hook is still called.
            hook = self.hook_fn or _no_hook
        else:
            hook = compat.logging_hook(logger, progress_bar, self.hook_fn)
        try:
            for i in range(warmup_steps):
                params = kernel.sample(params)
                hook(kernel, params, "Warmup", i)
            for i in range(num_samples):
                params = kernel.sample(params)
                hook(kernel, params, "Sample", i)
                for name in names:
                    samples[name][:, i] = params[name]
                stats.record(i, kernel)
            # The state first: nothing may draw from the random stream in between.
            self.last_state = MCMCState("vectorized", num_chains, [kernel.resume_state()])
            kernel.keep_resume_state = False  # one state for the batch, not one per chain
            diagnostics = kernel.chain_diagnostics()
        finally:
            kernel.keep_resume_state = True
            progress_bar.close()
            kernel.cleanup()
        self.sample_stats = stats.stats
        return samples, diagnostics


def _no_hook(kernel, params, stage, i) -> None:
    pass


class _StatsRecorder:
    """Per-draw statistics of a batch of chains, filled in place."""

    def __init__(self, num_chains: int, num_samples: int):
        self.shape = (num_chains, num_samples)
        self.stats: dict[str, torch.Tensor] = {}

    def record(self, i: int, kernel: MHKernel) -> None:
        info = kernel.last_step_info
        step_size = kernel.chain_step_size
        values = {
            "accept_prob": info.accept_prob,
            "diverging": info.diverging,
            "energy_error": info.energy_error,
            "step_size": step_size,
        }
        for key, value in values.items():
            if key not in self.stats:
                self.stats[key] = value.new_empty(self.shape)
            self.stats[key][:, i] = value
