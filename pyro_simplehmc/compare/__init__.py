"""Run kernels side by side with Pyro's NUTS, validate them, measure their cost, report.

- :mod:`.specs`: the kernels by name, and the counted potential every kernel runs on;
- :mod:`.problems`: what a comparison runs on (a target, your model, a posteriordb posterior);
- :mod:`.statistics`: ESS, MCSE, z-scores, the Bonferroni threshold and the verdicts;
- :mod:`.results`: :class:`KernelResult` and :class:`Comparison`;
- :mod:`.runner`: :func:`compare`, :func:`compare_model`, :func:`compare_posterior` and the
  one-cell :func:`run_cell`;
- :mod:`.report`: the terminal table, CSV and JSON files;
- :mod:`.figures`: traces, z-scores, draws over the target's contours, the scaling plots;
- :mod:`.scaling`: ESS per gradient against the dimension;
- :mod:`.leaderboard`: every kernel on every ported posteriordb posterior.
"""

from ..checks.statistics import bonferroni_threshold
from .results import Comparison, KernelResult
from .runner import compare, compare_model, compare_posterior, run_cell
from .specs import DEFAULT_KERNELS, KERNELS, CountingPotential, KernelSpec, as_kernel_spec

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
    "compare_model",
    "compare_posterior",
    "run_cell",
]
