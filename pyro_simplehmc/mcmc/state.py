r"""Save and resume: :class:`MCMCState`, what ``mcmc.last_state`` holds after a run.

A state holds, for every chain of the run, what its continuation needs (positions, adapted step
sizes and mass matrices, the trajectory length, the random stream, the iteration count: one
:class:`~pyro_simplehmc.kernels.state.KernelState` for a vectorized batch, one per chain
otherwise). A continuation draws more without warmup::

    state = mcmc.last_state
    state.save("run.pt")                     # or torch.save(state, "run.pt")
    more = MCMC(kernel, num_samples=500, warmup_steps=0, num_chains=C, chain_method=...)
    more.run(*args, init_state=MCMCState.load("run.pt"))

The continuation's draws are the run's next draws, exactly (on the same device and torch): it
restores the run's random stream, so the global seed at resume does not matter.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..core.version import VERSION
from ..kernels.state import KernelState

__all__ = ["MCMCState"]


@dataclass
class MCMCState:
    """The state of every chain of a finished run.

    :ivar chain_method: how the run's chains ran (``"vectorized"`` resumes as a batch;
        ``"parallel"`` and ``"sequential"`` resume one chain after the other).
    :ivar num_chains: the number of chains.
    :ivar kernels: one :class:`~pyro_simplehmc.kernels.state.KernelState` for a vectorized batch,
        else one per chain.
    :ivar version: the pyro-simplehmc version that wrote it.
    """

    chain_method: str
    num_chains: int
    kernels: list[KernelState] = field(default_factory=list)
    version: str = VERSION

    def save(self, path: str | os.PathLike) -> Path:
        """Write the state to ``path`` with :func:`torch.save`, atomically: a file that was
        there stays whole until the new one is complete."""
        path = Path(path)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(self, file)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, map_location=None) -> MCMCState:
        """Read a state that :meth:`save` (or :func:`torch.save`) wrote.

        :raises ValueError: naming the file, when it is missing, truncated, corrupt, or holds
            something else.
        """
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except FileNotFoundError as error:
            raise ValueError(f"no state file at {str(path)!r}") from error
        except Exception as error:
            raise ValueError(
                f"{str(path)!r} is not a readable pyro-simplehmc state (truncated or corrupt?): "
                f"{type(error).__name__}: {error}"
            ) from error
        if not isinstance(state, cls):
            raise ValueError(
                f"{str(path)!r} holds a {type(state).__name__}, not an MCMCState (mcmc.last_state)"
            )
        return state


torch.serialization.add_safe_globals([MCMCState])
