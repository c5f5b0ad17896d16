r"""Running the kernels: :class:`MCMC` (Pyro's runner plus ``chain_method``) and
:func:`from_pyro` (a finished run to ArviZ)."""

from .api import CHAIN_METHODS, MCMC
from .arviz_io import from_pyro
from .state import MCMCState

__all__ = ["CHAIN_METHODS", "MCMC", "MCMCState", "from_pyro"]
