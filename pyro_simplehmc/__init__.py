"""pyro-simplehmc: random-walk Metropolis, MALA, HMC and MAMS as Pyro MCMC kernels.

Everything a user needs is importable from here; the layers below are described in
``docs/architecture.md``.
"""

from . import _deprecated
from .core.integrators import euler_flat, leapfrog_flat
from .core.metrics import Metric
from .core.mh import ChainState, StepInfo
from .core.version import VERSION
from .kernels import MALA, MAMS, MHKernel, RandomWalkMH, SimpleHMC
from .kernels.evaluation import leapfrog, value_and_grad
from .kernels.state import KernelState
from .mcmc import MCMC, MCMCState, from_pyro

__version__ = VERSION

__all__ = [
    "MALA",
    "MAMS",
    "MCMC",
    "ChainState",
    "KernelState",
    "MCMCState",
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

_deprecated.install()


def __getattr__(name: str):
    # ``pyro_simplehmc.testing`` and the other old paths, used as attributes without an import.
    if f"{__name__}.{name}" in _deprecated.MOVED:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
