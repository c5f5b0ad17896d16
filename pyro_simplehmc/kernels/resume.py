"""Stopping a run and continuing it: :class:`ResumeMixin`, a part of :class:`~.base.MHKernel`.

:meth:`ResumeMixin.resume_state` is what a continuation needs (a :class:`~.state.KernelState`);
setting :attr:`ResumeMixin.initial_state` makes the next setup continue from one instead of
starting from scratch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..core.mh import ChainState
from .state import KernelState, check_compatible

__all__ = ["ResumeMixin", "sites_of"]


def sites_of(state: KernelState, vectorized: bool) -> dict[str, Tensor]:
    """A state's positions by site: with the chain dimension for a batch, without for one chain
    run alone."""
    return {name: v.clone() if vectorized else v[0].clone() for name, v in state.params.items()}


class ResumeMixin:
    """:meth:`resume_state` and :attr:`initial_state` for :class:`~.base.MHKernel`."""

    @property
    def initial_state(self) -> list[KernelState]:
        """States to continue from (:meth:`resume_state` of an earlier run), consumed one per
        setup, in order; empty for a fresh start. Set a :class:`~.state.KernelState` (or a list
        of them, one per chain, for chains run one after the other)."""
        return list(self._resume)

    @initial_state.setter
    def initial_state(self, state: KernelState | list[KernelState] | None) -> None:
        states = [] if state is None else list(state) if isinstance(state, list) else [state]
        for item in states:
            if not isinstance(item, KernelState):
                raise ValueError(
                    "initial_state must be a KernelState (from mcmc.last_state), a list of them, "
                    f"or None; got {type(item).__name__}"
                )
        self._resume = states

    def _continue(self, resume: KernelState, chains) -> None:
        """Start from ``resume`` instead of from scratch: its positions, energies, step sizes,
        mass matrix and what the subclass learned."""
        run = self._run
        sites = {name: tuple(shape) for name, shape in zip(
            chains.layout.names, chains.layout.shapes, strict=True)}  # fmt: skip
        check_compatible(resume, type(self).__name__, sites, run.num_chains, self.chain_adaptation)
        self._adapter.step_size = resume.step_size.clone()
        self._adapter.mass_matrix.load(resume.inverse_mass_matrix)
        if self._adapter.adapt_step_size:
            self._adapter.start_step_size_adaptation(None)  # from the adapted step size
        run.offset = resume.iteration
        params = sites_of(resume, run.vectorized)
        batch_shape = (run.num_chains,) if run.vectorized else ()
        position = run.layout.flatten(params, batch_shape).reshape(run.num_chains, -1)
        grad = None if resume.grad is None else resume.grad.clone()
        self._initial_params = params
        self._remember(ChainState(position, resume.potential_energy.clone(), grad), params)

    def resume_state(self) -> KernelState:
        """What a continuation of this batch of chains needs, now (during a run, or after it
        ended): see :class:`~.state.KernelState`."""
        run = self._run or self._finished
        if run is None or run.last is None:
            raise RuntimeError("no run to continue: call setup(warmup_steps, ...) and sample first")
        params = run.layout.unflatten(run.last.position, (run.num_chains,))
        sites = {name: tuple(shape) for name, shape in zip(
            run.layout.names, run.layout.shapes, strict=True)}  # fmt: skip
        device = run.last.position.device
        return KernelState(
            kernel=type(self).__name__,
            num_chains=run.num_chains,
            sites=sites,
            params={name: value.clone() for name, value in params.items()},
            potential_energy=run.last.potential_energy.clone(),
            grad=None if run.last.grad is None else run.last.grad.clone(),
            chain_adaptation=self.chain_adaptation,
            step_size=self._adapter.step_size.clone(),
            inverse_mass_matrix={k: v.clone() for k, v in self.inverse_mass_matrix.items()},
            trajectory=self._trajectory_state(),
            iteration=run.offset + run.t,
            rng_state=torch.get_rng_state(),
            cuda_rng_state=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        )
