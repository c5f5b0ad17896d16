"""Run kernels side by side with Pyro's NUTS, validate them, measure their cost, report.

- :mod:`.runner`: :func:`compare` runs kernels on a target and validates each;
- :mod:`.report`: the terminal table, CSV and JSON files;
- :mod:`.figures`: traces, draws over the target's contours, the scaling plots;
- :mod:`.scaling`: ESS per gradient against the dimension.
"""

from .runner import (
    DEFAULT_KERNELS,
    KERNELS,
    Comparison,
    CountingPotential,
    KernelResult,
    KernelSpec,
    as_kernel_spec,
    bonferroni_threshold,
    compare,
)

__all__ = [
    "DEFAULT_KERNELS",
    "KERNELS",
    "Comparison",
    "CountingPotential",
    "KernelResult",
    "KernelSpec",
    "as_kernel_spec",
    "bonferroni_threshold",
    "compare",
]
