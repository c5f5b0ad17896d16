"""The kernels: one file per algorithm, all on the shell in :mod:`.base`."""

from .base import ChainState, MHKernel, StepInfo, metropolis_hastings
from .hmc import SimpleHMC
from .mala import MALA
from .random_walk import RandomWalkMH

__all__ = [
    "MALA",
    "ChainState",
    "MHKernel",
    "RandomWalkMH",
    "SimpleHMC",
    "StepInfo",
    "metropolis_hastings",
]
