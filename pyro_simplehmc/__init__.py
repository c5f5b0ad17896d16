"""pyro-simplehmc: random-walk Metropolis, MALA and fixed-length HMC as Pyro MCMC kernels."""

from .arviz_io import from_pyro
from .integrators import euler_flat, leapfrog, leapfrog_flat, value_and_grad
from .kernels import MALA, ChainState, MHKernel, RandomWalkMH, SimpleHMC, StepInfo
from .mcmc import MCMC
from .metrics import Metric

__version__ = "0.1.0"

__all__ = [
    "MALA",
    "MCMC",
    "ChainState",
    "MHKernel",
    "Metric",
    "RandomWalkMH",
    "SimpleHMC",
    "StepInfo",
    "euler_flat",
    "from_pyro",
    "leapfrog",
    "leapfrog_flat",
    "value_and_grad",
]
