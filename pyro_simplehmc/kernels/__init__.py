"""The kernels: one file per algorithm, all on the shell in :mod:`.base`."""

from ..core.mh import MAX_ENERGY_ERROR, ChainState, StepInfo, metropolis_hastings
from .base import MHKernel
from .hmc import SimpleHMC
from .mala import MALA
from .mams import MAMS
from .random_walk import RandomWalkMH

__all__ = [
    "MALA",
    "MAMS",
    "MAX_ENERGY_ERROR",
    "ChainState",
    "MHKernel",
    "RandomWalkMH",
    "SimpleHMC",
    "StepInfo",
    "metropolis_hastings",
]
