r"""The one-step invariance test: a correct kernel leaves its target invariant.

:func:`one_step_invariance_test` draws exact samples from the target, applies one kernel step to
each, and compares the result with fresh exact samples by a two-sample test per coordinate; no
burn-in and no autocorrelation are involved, so the test is exact at any sample size.
:func:`tempered` makes its negative control, and :func:`step_from` is how every check of the kit
takes one kernel step from a given point. Needs :mod:`scipy`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from torch import Tensor

from ..core import validation as check

__all__ = [
    "InvarianceResult",
    "Params",
    "PotentialFn",
    "one_step_invariance_test",
    "step_from",
    "tempered",
]

Params = dict[str, Tensor]
PotentialFn = Callable[[Mapping[str, Tensor]], Tensor]


def _scipy_stats():
    try:
        from scipy import stats
    except ImportError as error:  # pragma: no cover - scipy is a test dependency
        raise ImportError("pyro_simplehmc.checks.testing needs scipy: pip install scipy") from error
    return stats


def tempered(potential_fn: PotentialFn, inverse_temperature: float) -> PotentialFn:
    r"""The potential of the tempered target :math:`\pi^\beta`: :math:`\beta\, U`.

    A kernel aimed at a tempered target is the negative control of the invariance test: it is a
    perfectly good kernel for the wrong distribution, and the test must notice.

    :param potential_fn: the potential :math:`U` of the target.
    :param float inverse_temperature: :math:`\beta > 0`; below 1 widens the target.
    """
    check.callable_or_none("potential_fn", potential_fn)
    inverse_temperature = check.positive_finite("inverse_temperature", inverse_temperature)
    return lambda params: inverse_temperature * potential_fn(params)


@dataclass
class InvarianceResult:
    """The outcome of :func:`one_step_invariance_test`.

    :ivar names: one label per test, such as ``"KS x[0]"``, ``"paired mean x[0]^2"``.
    :ivar pvalues: the two-sample p-value of each test.
    :ivar alpha: a test fails when its p-value is below ``alpha``.
    :ivar acceptance_rate: the fraction of steps that moved (a step size that never moves would
        make the test vacuous).
    """

    names: list[str]
    pvalues: np.ndarray
    alpha: float
    acceptance_rate: float

    @property
    def min_pvalue(self) -> float:
        return float(self.pvalues.min())

    @property
    def passed(self) -> bool:
        return self.min_pvalue > self.alpha

    def __str__(self) -> str:
        worst = self.names[int(self.pvalues.argmin())]
        return (
            f"one-step invariance: min p = {self.min_pvalue:.2e} ({worst}), alpha = "
            f"{self.alpha:g}, acceptance = {self.acceptance_rate:.2f}, "
            f"{'passed' if self.passed else 'FAILED'}"
        )


def _flat_columns(samples: Mapping[str, Tensor], num: int) -> tuple[list[str], np.ndarray]:
    names, columns = [], []
    for site in sorted(samples):
        value = samples[site].detach().reshape(num, -1).double().cpu().numpy()
        for i in range(value.shape[1]):
            names.append(f"{site}[{i}]")
            columns.append(value[:, i])
    return names, np.stack(columns, axis=1)


def step_from(kernel: MCMCKernel, params: Params) -> Params:
    """One step of ``kernel`` from ``params``, after telling a caching kernel to forget its
    last state (``clear_cache()``)."""
    # A caching kernel would step from its own last state instead of from ``params``.
    clear = getattr(kernel, "clear_cache", None)
    if callable(clear):
        clear()
    return kernel.sample(params)


def one_step_invariance_test(
    kernel: MCMCKernel,
    exact_sampler: Callable[[int], Mapping[str, Tensor]],
    num_samples: int = 2000,
    *,
    num_kernel_steps: int = 1,
    squares: bool = True,
    alpha: float = 1e-3,
) -> InvarianceResult:
    r"""Test that ``kernel`` leaves the distribution of ``exact_sampler`` invariant.

    If :math:`x \sim \pi` and :math:`x' \sim K(x, \cdot)`, then :math:`x' \sim \pi` exactly when
    :math:`K` leaves :math:`\pi` invariant. The test draws ``num_samples`` points from
    ``exact_sampler``, moves each by ``num_kernel_steps`` kernel steps, draws ``num_samples``
    fresh points, and tests each coordinate :math:`x_i` in two ways:

    - the two-sample Kolmogorov-Smirnov test between the moved points and the fresh ones (any
      change of distribution);
    - a paired t-test that :math:`E[f(x') - f(x)] = 0` for :math:`f = x_i` and, with
      ``squares``, :math:`f = x_i^2`. Each pair :math:`(x, x')` is independent of the others, and
      :math:`E f(x') = E f(x)` under invariance, so the test is valid; as :math:`f(x')` and
      :math:`f(x)` are correlated when the kernel moves locally, it is far more powerful than
      comparing with fresh points, especially against a wrong scale, the typical fault.

    The kernel is set up once with ``warmup_steps=0`` (so it does not adapt) at the first exact
    draw; build it with a ``potential_fn`` for the same target and a fixed step size that
    accepts a moderate fraction of proposals: a kernel that never moves passes trivially, which
    is why :attr:`InvarianceResult.acceptance_rate` is reported.

    :param kernel: the kernel under test.
    :param exact_sampler: ``n -> {site: tensor of shape (n, *site_shape)}``, exact i.i.d. draws
        from the target in the kernel's (unconstrained) parameter space.
    :param int num_samples: the size of each sample.
    :param int num_kernel_steps: kernel steps applied to each draw (more steps, more power
        against a kernel that moves slowly towards the wrong target).
    :param bool squares: also test the means of the squared coordinates.
    :param float alpha: the significance level of each test.
    """
    check.int_at_least("num_samples", num_samples, 2)
    check.positive_int("num_kernel_steps", num_kernel_steps)
    check.open_unit_interval("alpha", alpha)
    stats = _scipy_stats()

    start = {k: torch.as_tensor(v) for k, v in exact_sampler(num_samples).items()}
    kernel.initial_params = {k: v[0].clone() for k, v in start.items()}
    kernel.setup(warmup_steps=0)
    moved_rows: dict[str, list[Tensor]] = {k: [] for k in start}
    moved = 0
    try:
        for n in range(num_samples):
            x = {k: v[n].clone() for k, v in start.items()}
            y = x
            for _ in range(num_kernel_steps):
                y = step_from(kernel, y)
            moved += any(not torch.equal(y[k], x[k]) for k in x)
            for k in start:
                moved_rows[k].append(y[k].detach())
    finally:
        kernel.cleanup()
    moved_samples = {k: torch.stack(v) for k, v in moved_rows.items()}
    fresh = {k: torch.as_tensor(v) for k, v in exact_sampler(num_samples).items()}

    names, a = _flat_columns(moved_samples, num_samples)
    _, b = _flat_columns(fresh, num_samples)
    _, x0 = _flat_columns(start, num_samples)
    labels, pvalues = [], []
    for i, name in enumerate(names):
        labels.append(f"KS {name}")
        pvalues.append(stats.ks_2samp(a[:, i], b[:, i]).pvalue)
        labels.append(f"paired mean {name}")
        pvalues.append(stats.ttest_rel(a[:, i], x0[:, i]).pvalue)
        if squares:
            labels.append(f"paired mean {name}^2")
            pvalues.append(stats.ttest_rel(a[:, i] ** 2, x0[:, i] ** 2).pvalue)
    return InvarianceResult(labels, np.asarray(pvalues), alpha, moved / num_samples)
