"""What a comparison reports: one :class:`KernelResult` per kernel, gathered in a
:class:`Comparison`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..checks.statistics import ERROR, FAIL, NOT_TESTED, TOO_FEW_DRAWS, max_abs


@dataclass
class KernelResult:
    """Everything the report says about one kernel; lists are per coordinate.

    ESS fields are for the coordinates (``x``) and their squares (``x2``). ``status_truth`` is
    the verdict against the known truth (``"-"`` when there is none), ``status_ref`` the verdict
    against the reference kernel; each is ``PASS``, ``FAIL``, ``TOO FEW DRAWS``, ``NOT MIXED``,
    ``REF TOO FEW DRAWS`` / ``REF NOT MIXED`` (the reference's draws are not reliable), ``ERROR``
    (the kernel raised; see :attr:`error`) or ``"-"``. :attr:`draws_needed` estimates the draws
    per chain that would make the verdict reliable. :attr:`ess_per_eval_low` and
    :attr:`ess_per_eval_high` bound :attr:`ess_per_eval` (a 95% interval over groups of chains,
    NaN with fewer than two chains). :attr:`evals_to_low_bias` is the evaluations per chain until
    the squared bias of the second moments stays below 0.01 (where the truth is known; see
    :func:`~pyro_simplehmc.compare.summary.evals_to_low_bias`).
    """

    name: str
    uses_gradient: bool
    num_chains: int
    num_samples: int
    ess_bulk_x: list[float]
    ess_tail_x: list[float]
    ess_bulk_x2: list[float]
    ess_tail_x2: list[float]
    r_hat: float
    acceptance_rate: float
    moved_fraction: float
    divergences: int
    potential_evals: dict[str, int]
    gradient_evals: dict[str, int]
    seconds: dict[str, float]
    mean: list[float]
    var: list[float]
    mean_mcse: list[float]
    var_mcse: list[float]
    z_mean_truth: list[float] | None = None
    z_var_truth: list[float] | None = None
    z_mean_ref: list[float] | None = None
    z_var_ref: list[float] | None = None
    status_truth: str = NOT_TESTED
    status_ref: str = NOT_TESTED
    reliability: str | None = None
    draws_needed: int | None = None
    ess_per_eval_low: float = float("nan")
    ess_per_eval_high: float = float("nan")
    evals_to_low_bias: float = float("nan")
    evals_to_low_bias_low: float = float("nan")
    evals_to_low_bias_high: float = float("nan")
    error: str | None = None
    deterministic: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def failed(cls, name: str, uses_gradient: bool, num_chains: int, error: str) -> KernelResult:
        """The result of a kernel that raised: every number NaN, verdicts ``ERROR``."""
        nan = float("nan")
        zeros = {"warmup": 0, "sampling": 0}
        return cls(
            name, uses_gradient, num_chains, 0, [], [], [], [], nan, nan, nan, 0, dict(zeros),
            dict(zeros), {"warmup": 0.0, "sampling": 0.0}, [], [], [], [],
            status_truth=ERROR, status_ref=ERROR, error=error,
        )  # fmt: skip

    @property
    def min_ess(self) -> float:
        """The smallest bulk or tail ESS over all coordinates and squares."""
        values = [v for values in self._ess_lists() for v in values]
        return float(min(values)) if values else float("nan")

    @property
    def min_bulk_ess(self) -> float:
        values = self.ess_bulk_x + self.ess_bulk_x2
        return float(min(values)) if values else float("nan")

    @property
    def median_bulk_ess_x(self) -> float:
        return float(np.median(self.ess_bulk_x)) if self.ess_bulk_x else float("nan")

    @property
    def cost(self) -> int:
        """Sampling-phase cost: gradients, or potentials for a gradient-free kernel."""
        evals = self.gradient_evals if self.uses_gradient else self.potential_evals
        return evals["sampling"]

    @property
    def ess_per_eval(self) -> float:
        """Smallest bulk ESS per sampling-phase evaluation (see :attr:`cost`)."""
        if self.error is not None:
            return float("nan")
        return self.min_bulk_ess / self.cost if self.cost else 0.0

    @property
    def ess_per_second(self) -> float:
        if self.error is not None:
            return float("nan")
        seconds = self.seconds["sampling"]
        return self.min_bulk_ess / seconds if seconds > 0 else 0.0

    @property
    def max_abs_z_truth(self) -> float:
        if self.z_mean_truth is None:
            return float("nan")
        return max_abs(self.z_mean_truth + self.z_var_truth)

    @property
    def max_abs_z_ref(self) -> float:
        if self.z_mean_ref is None:
            return float("nan")
        return max_abs(self.z_mean_ref + self.z_var_ref)

    def _ess_lists(self):
        return (self.ess_bulk_x, self.ess_tail_x, self.ess_bulk_x2, self.ess_tail_x2)

    def summary(self) -> dict[str, Any]:
        """The scalar columns of the report, in order."""

        def smallest(values):
            return float(min(values)) if values else float("nan")

        def median(values):
            return float(np.median(values)) if values else float("nan")

        return {
            "kernel": self.name,
            "num_chains": self.num_chains,
            "num_samples": self.num_samples,
            "status": self.status_truth,
            "vs_ref": self.status_ref,
            "max_abs_z_truth": self.max_abs_z_truth,
            "max_abs_z_ref": self.max_abs_z_ref,
            "draws_needed": self.draws_needed,
            "min_ess_bulk_x": smallest(self.ess_bulk_x),
            "median_ess_bulk_x": median(self.ess_bulk_x),
            "min_ess_tail_x": smallest(self.ess_tail_x),
            "median_ess_tail_x": median(self.ess_tail_x),
            "min_ess_bulk_x2": smallest(self.ess_bulk_x2),
            "median_ess_bulk_x2": median(self.ess_bulk_x2),
            "min_ess_tail_x2": smallest(self.ess_tail_x2),
            "median_ess_tail_x2": median(self.ess_tail_x2),
            "cost_unit": "gradient" if self.uses_gradient else "potential",
            "sampling_evals": self.cost,
            "warmup_gradient_evals": self.gradient_evals["warmup"],
            "sampling_gradient_evals": self.gradient_evals["sampling"],
            "warmup_potential_evals": self.potential_evals["warmup"],
            "sampling_potential_evals": self.potential_evals["sampling"],
            "ess_per_eval": self.ess_per_eval,
            "ess_per_eval_low": self.ess_per_eval_low,
            "ess_per_eval_high": self.ess_per_eval_high,
            "evals_to_low_bias": self.evals_to_low_bias,
            "evals_to_low_bias_low": self.evals_to_low_bias_low,
            "evals_to_low_bias_high": self.evals_to_low_bias_high,
            "ess_per_second": self.ess_per_second,
            "r_hat": self.r_hat,
            "acceptance_rate": self.acceptance_rate,
            "moved_fraction": self.moved_fraction,
            "divergences": self.divergences,
            "warmup_seconds": self.seconds["warmup"],
            "sampling_seconds": self.seconds["sampling"],
            "error": self.error or "",
        }


@dataclass
class Comparison:
    """The result of :func:`~pyro_simplehmc.compare.compare` and its siblings: settings, one
    :class:`KernelResult` per kernel, the threshold.

    :ivar coords: the name of each validated coordinate (``"x[0]"``, ``"sigma"``,
        ``"beta[1]"``...).
    :ivar reference: the kernel the others were compared with, or ``None``.
    :ivar truth_mean: the known truth, or ``None`` (a user's model: the reference is the truth).
    :ivar num_tests: the number of z-scores per kernel (a mean and a variance per coordinate).
    :ivar num_chains: chains of each kernel run one chain at a time (Pyro's kernels).
    :ivar batch_chains: chains of each of this package's kernels, run as one batch (``None``:
        those ran per chain too).
    :ivar max_evals: the budget of evaluations of each batched kernel (``None``: none, fixed
        draws); :attr:`num_samples` is then the draws per chain of its first run.
    """

    target: str
    description: str
    dim: int
    num_samples: int
    warmup_steps: int
    num_chains: int
    seed: int
    threshold: float
    results: list[KernelResult]
    truth_mean: list[float] | None
    truth_var: list[float] | None
    coords: list[str] = field(default_factory=list)
    reference: str | None = None
    reference_num_samples: int | None = None
    draws: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    batch_chains: int | None = None
    max_evals: int | None = None

    def __getitem__(self, name: str) -> KernelResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)

    @property
    def num_tests(self) -> int:
        return 2 * self.dim

    @property
    def passed(self) -> bool:
        """No kernel marked ``FAIL`` (against the truth or the reference) and none raised."""
        return not self.reliable_failures and not self.errors

    @property
    def reliable_failures(self) -> list[str]:
        """Kernels marked ``FAIL``. Every ``FAIL`` is reliable: an unreliable test is marked
        ``TOO FEW DRAWS`` or ``NOT MIXED`` instead."""
        return [r.name for r in self.results if FAIL in (r.status_truth, r.status_ref)]

    @property
    def errors(self) -> list[str]:
        """Kernels that raised (their :attr:`KernelResult.error` says what)."""
        return [r.name for r in self.results if r.error is not None]

    @property
    def unreliable(self) -> list[str]:
        """Kernels whose verdicts are ``TOO FEW DRAWS`` or ``NOT MIXED``."""
        return [r.name for r in self.results if r.reliability is not None]

    def to_dict(self) -> dict[str, Any]:
        """Everything but the draws, JSON-ready."""
        out = {k: v for k, v in asdict(self).items() if k not in ("results", "draws")}
        out["results"] = [{**asdict(r), "summary": r.summary()} for r in self.results]
        return out


def finite(value):
    """JSON has no NaN or infinity: write them as ``null`` and strings."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


__all__ = ["TOO_FEW_DRAWS", "Comparison", "KernelResult", "finite"]
