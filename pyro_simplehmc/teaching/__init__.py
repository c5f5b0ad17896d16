r"""Helpers for learning HMC: record what an integrator does, step by step.

The kernels only need the end of a trajectory. To *see* Hamiltonian dynamics we want every
intermediate point, with its momentum and energy. The functions here step the package's own
integrators (:func:`~pyro_simplehmc.core.integrators.leapfrog_flat`,
:func:`~pyro_simplehmc.core.integrators.euler_flat`) one step at a time and keep each state, so a
recorded leapfrog path ends exactly where a kernel's proposal would (same arithmetic, same order).

- :func:`record_trajectory` follows a potential energy :math:`U` (a function of a tensor or of a
  dict of tensors, as Pyro's potentials are);
- :func:`record_model_trajectory` does the same for a Pyro model, in the unconstrained space where
  the kernels move, and keeps the transforms so the path can be drawn in the constrained space;
- :func:`kernel_trajectory` replays the trajectory that a set-up :class:`~pyro_simplehmc.SimpleHMC`
  would follow from a given point;
- :func:`harmonic_oscillator` and friends give the 1-D example with a known exact solution.

Energies are :math:`H(q, p) = U(q) + \tfrac12 p^\top M^{-1} p`; exact dynamics keep :math:`H`
constant, so :attr:`Trajectory.energy_error` shows what the integrator gets wrong.

The submodules: :mod:`.trajectory` (:class:`Trajectory`), :mod:`.recording` (the recording
functions), :mod:`.examples` (the worked examples), :mod:`.contours` (grids and contour levels for
plots) and :mod:`.quick` (:func:`quick_runs`); every name is importable from here.
"""

from .contours import density_grid, mass_levels
from .examples import gaussian_potential, harmonic_oscillator, harmonic_oscillator_exact
from .quick import quick_runs
from .recording import (
    kernel_trajectory,
    record_model_trajectory,
    record_trajectory,
    symplectic_euler_flat,
)
from .trajectory import INTEGRATORS, Trajectory

__all__ = [
    "INTEGRATORS",
    "Trajectory",
    "density_grid",
    "gaussian_potential",
    "harmonic_oscillator",
    "harmonic_oscillator_exact",
    "kernel_trajectory",
    "mass_levels",
    "quick_runs",
    "record_model_trajectory",
    "record_trajectory",
    "symplectic_euler_flat",
]
