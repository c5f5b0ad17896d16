r"""What a batch of chains needs to continue where it stopped: :class:`KernelState`.

A run that ends leaves its chains somewhere, with an adapted step size, an adapted mass matrix, a
learned trajectory length and a random stream part-way through. A :class:`KernelState` holds all
of it, as tensors, numbers and strings, so that ``torch.save`` writes it and ``torch.load`` reads
it back (on another machine of the same torch); a kernel given one as
:attr:`~pyro_simplehmc.MHKernel.initial_state` continues those chains exactly, without warmup.
:class:`~pyro_simplehmc.MCMC` makes and takes them (``mcmc.last_state``,
``run(..., init_state=state)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..core.chees import ChEESState
from ..core.version import VERSION

__all__ = ["KernelState", "check_compatible"]


@dataclass
class KernelState:
    """The state of a batch of ``num_chains`` chains at the end of a run.

    :ivar kernel: the kernel's class name.
    :ivar version: the pyro-simplehmc version that wrote it.
    :ivar num_chains: the chains in the batch (1 for one chain run by Pyro's samplers).
    :ivar sites: each latent site's unconstrained shape, for one chain.
    :ivar params: each site's unconstrained position, with a leading chain dimension.
    :ivar potential_energy: :math:`U` at the positions, ``(C,)``.
    :ivar grad: :math:`\\nabla U` there, ``(C, D)``, or ``None`` for a gradient-free kernel.
    :ivar chain_adaptation: ``"per_chain"`` or ``"pooled"``.
    :ivar step_size: the adapted step sizes, one per chain or one shared.
    :ivar inverse_mass_matrix: the adapted blocks, as
        :attr:`~pyro_simplehmc.MHKernel.inverse_mass_matrix` has them.
    :ivar trajectory: the trajectory-length policy's state (SimpleHMC), else empty.
    :ivar iteration: iterations run so far, warmup included.
    :ivar rng_state: torch's random state when the run ended (CPU).
    :ivar cuda_rng_state: the CUDA random state, for chains on a GPU.
    """

    kernel: str
    num_chains: int
    sites: dict[str, tuple[int, ...]]
    params: dict[str, Tensor]
    potential_energy: Tensor
    grad: Tensor | None
    chain_adaptation: str
    step_size: Tensor
    inverse_mass_matrix: dict[tuple[str, ...], Tensor]
    trajectory: dict[str, Any] = field(default_factory=dict)
    iteration: int = 0
    rng_state: Tensor | None = None
    cuda_rng_state: Tensor | None = None
    version: str = VERSION


def check_compatible(state: Any, kernel_name: str, sites: dict[str, tuple[int, ...]],
                     num_chains: int, chain_adaptation: str) -> None:  # fmt: skip
    """A clear error unless ``state`` can continue this kernel's chains: the same kernel, the
    same package version, the same latent sites, the same number of chains."""
    if not isinstance(state, KernelState):
        raise ValueError(
            "initial_state must be a KernelState (from mcmc.last_state); got "
            f"{type(state).__name__}"
        )
    if state.version != VERSION:
        raise ValueError(
            f"initial_state was written by pyro-simplehmc {state.version}; this is {VERSION}: "
            "a state resumes only with the version that wrote it"
        )
    if state.kernel != kernel_name:
        raise ValueError(
            f"initial_state is a state of {state.kernel}; this kernel is {kernel_name}"
        )
    if state.sites != sites:
        raise ValueError(
            f"initial_state is a state of another model: its latent sites are {state.sites}, "
            f"this model's are {sites}"
        )
    if state.num_chains != num_chains:
        raise ValueError(
            f"initial_state holds {state.num_chains} chain(s); this run has {num_chains}"
        )
    if state.chain_adaptation != chain_adaptation:
        raise ValueError(
            f"initial_state was adapted with chain_adaptation={state.chain_adaptation!r}; this "
            f"kernel has {chain_adaptation!r}"
        )


# torch.load reads these back without weights_only=False.
torch.serialization.add_safe_globals([KernelState, ChEESState])
