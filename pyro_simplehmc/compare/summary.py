r"""What a kernel's draws say: the summary of one kernel's chains, and its verdicts.

:func:`summarise` turns the chains of one kernel into a
:class:`~pyro_simplehmc.compare.results.KernelResult`: bulk and tail ESS of every validated number
and of its square, ESS per evaluation with an interval over groups of chains, split
:math:`\hat R`, acceptance, divergences, and the verdict against the truth, with ``PASS``/``FAIL``
only where the Monte-Carlo standard errors can be trusted (:mod:`pyro_simplehmc.checks.statistics`);
:func:`judge_against` adds the verdict against a reference kernel.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..checks.statistics import (
    NOT_TESTED,
    bonferroni_threshold,
    draws_needed,
    ess,
    kurtosis,
    max_r_hat,
    moments,
    reliability,
    t_interval,
    verdict,
    z_scores,
)
from ..checks.targets import Target
from .problems import Problem, from_target
from .results import KernelResult

#: Groups of chains behind the interval of ESS per evaluation (:func:`ess_per_eval_interval`).
INTERVAL_GROUPS = 8
#: Draws of one coordinate (all chains together) that a verdict is computed from at most; longer
#: runs are judged on every :math:`k`-th draw of each chain (:func:`judged_draws`).
MAX_JUDGED_DRAWS = 64_000


def judged_draws(draws: np.ndarray) -> tuple[np.ndarray, int]:
    r"""The draws a verdict is computed from, and the thinning :math:`k` behind them: every
    :math:`k`-th draw of each chain, :math:`k = \lceil C N / ` :data:`MAX_JUDGED_DRAWS`
    :math:`\rceil` (1: all of them).

    The rank normalisation behind ESS and :math:`\hat R` costs :math:`O(CN \log CN)` per
    coordinate, which made the verdict on a long continued run cost more than the run. Thinning
    keeps every estimate valid (the means, MCSEs and ESS are those of the thinned chains) and
    loses almost nothing where it applies: a chain runs that long only when its autocorrelation
    time is far above :math:`k`, and thinning by :math:`k \ll \tau` leaves the ESS nearly
    unchanged (Geyer 1992, *Statistical Science* 7, 473-483; Link & Eaton 2012).
    """
    chains, length = draws.shape[:2]
    k = max(1, math.ceil(chains * length / MAX_JUDGED_DRAWS))
    return (draws[:, k - 1 :: k] if k > 1 else draws), k


@dataclass
class ChainRun:
    """The raw output of one chain of one kernel."""

    draws: np.ndarray  # (num_samples, D)
    potentials: dict[str, int]  # {"warmup": n, "sampling": n}
    gradients: dict[str, int]
    seconds: dict[str, float]
    diagnostics: dict[str, Any]
    deterministic: dict[str, np.ndarray] = field(default_factory=dict)
    #: Which starting point the chain began at: chains of one batch that share one form a
    #: superchain, and their :math:`\hat R` is nested (``None``: a start of its own).
    start: int | None = None


def superchain_ids(chains: Sequence[ChainRun]) -> list[int] | None:
    """The superchain of each chain (chains that began at one point), or ``None`` when every
    chain began at its own point."""
    starts = [c.start for c in chains]
    if any(s is None for s in starts) or len(set(starts)) == len(starts):
        return None
    index = {s: i for i, s in enumerate(dict.fromkeys(starts))}
    return [index[s] for s in starts]


def summarise(
    name: str,
    uses_gradient: bool,
    chains: Sequence[ChainRun],
    target: Target | Problem,
    threshold: float | None = None,
) -> KernelResult:
    """The :class:`KernelResult` of one kernel from its chains, with its verdict against the
    truth when the problem has one (against the reference: :func:`judge_against`)."""
    problem = target if isinstance(target, Problem) else from_target(target)
    if threshold is None:
        threshold = bonferroni_threshold(2 * problem.dim)
    all_draws = np.stack([c.draws for c in chains])  # (chains, draws, D)
    notes = []
    moved = np.any(all_draws[:, 1:] != all_draws[:, :-1], axis=-1)  # (chains, draws - 1)
    moved_per_chain = moved.mean(1) if moved.shape[1] else np.zeros(len(chains))
    stuck = [i for i, m in enumerate(moved_per_chain) if m == 0]
    draws, thin = judged_draws(all_draws)
    if thin > 1:
        notes.append(
            f"judged on every k-th draw of each chain, k = {thin} ({draws.shape[1]} of "
            f"{all_draws.shape[1]}): ESS, MCSE and R-hat are those of the thinned chains"
        )

    ess_values = {
        (what, method): ess(draws if what == "x" else draws**2, method)
        for what in ("x", "x2")
        for method in ("bulk", "tail")
    }
    if stuck:
        notes.append(f"chain(s) {stuck} never moved: ESS set to 0")
        for value in ess_values.values():
            value[:] = 0.0

    rates = [c.diagnostics.get("acceptance rate") for c in chains]
    if all(r is not None for r in rates):
        acceptance = float(np.mean([float(r) for r in rates]))
    else:  # for a Metropolis-Hastings kernel a move is an acceptance
        acceptance = float(moved_per_chain.mean())
    if stuck:
        acceptance = min(acceptance, float(moved_per_chain.mean()))
    divergences = sum(len(c.diagnostics.get("divergences") or []) for c in chains)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, var, mean_se, var_se = moments(draws)
        r_hat = max_r_hat(draws, superchain_ids(chains))
        kappa = kurtosis(draws)

    result = KernelResult(
        name=name,
        uses_gradient=uses_gradient,
        num_chains=all_draws.shape[0],
        num_samples=all_draws.shape[1],
        ess_bulk_x=ess_values["x", "bulk"].tolist(),
        ess_tail_x=ess_values["x", "tail"].tolist(),
        ess_bulk_x2=ess_values["x2", "bulk"].tolist(),
        ess_tail_x2=ess_values["x2", "tail"].tolist(),
        r_hat=r_hat,
        acceptance_rate=acceptance,
        moved_fraction=float(moved_per_chain.mean()),
        divergences=divergences,
        potential_evals=_sum_dicts([c.potentials for c in chains]),
        gradient_evals=_sum_dicts([c.gradients for c in chains]),
        seconds=_sum_dicts([c.seconds for c in chains]),
        mean=mean.tolist(),
        var=var.tolist(),
        mean_mcse=mean_se.tolist(),
        var_mcse=var_se.tolist(),
        deterministic=_summarise_deterministic(chains),
        warnings=notes,
    )
    if problem.truth_mean is not None and draws.shape[1] and result.cost:
        per_draw = result.cost / (draws.shape[0] * draws.shape[1])
        result.evals_to_low_bias = evals_to_low_bias(
            draws, problem.truth_mean, problem.truth_var, per_draw
        )
        result.evals_to_low_bias_low, result.evals_to_low_bias_high = evals_to_low_bias_interval(
            draws, problem.truth_mean, problem.truth_var, per_draw
        )
    if not stuck:
        result.ess_per_eval_low, result.ess_per_eval_high = ess_per_eval_interval(
            draws, result.cost
        )
    result.reliability = reliability(result.min_bulk_ess, r_hat, bool(stuck))
    result.draws_needed = draws_needed(all_draws.shape[1], result.min_bulk_ess, result.reliability)
    if result.reliability is not None:
        needed = f"; about {result.draws_needed} draws per chain" if result.draws_needed else ""
        notes.append(
            f"{result.reliability}: smallest bulk ESS {result.min_bulk_ess:.0f}, R-hat "
            f"{r_hat:.3f}; the Monte-Carlo standard errors, and so the z-scores, are not "
            f"reliable (need bulk ESS >= 100 and R-hat < 1.01{needed})"
        )
    if problem.truth_mean is not None:
        truth_var_se = problem.truth_var_se
        if truth_var_se is None and problem.truth_ess is not None:
            # Normal-theory error of a variance estimated from ESS draws: sigma^2 sqrt((k-1)/ESS)
            truth_var_se = problem.truth_var * np.sqrt(np.maximum(kappa - 1, 0) / problem.truth_ess)
        result.z_mean_truth = z_scores(mean, problem.truth_mean, mean_se, problem.truth_mean_se)
        result.z_var_truth = z_scores(var, problem.truth_var, var_se, truth_var_se)
        result.z_mean_truth, result.z_var_truth = (
            result.z_mean_truth.tolist(),
            result.z_var_truth.tolist(),
        )
        result.status_truth = verdict(result.max_abs_z_truth, threshold, result.reliability)
    return result


def _summarise_deterministic(chains: Sequence[ChainRun]) -> dict[str, dict[str, list[float]]]:
    out = {}
    for site in chains[0].deterministic:
        values = np.concatenate([c.deterministic[site] for c in chains])
        values = values.reshape(values.shape[0], -1)
        out[site] = {"mean": values.mean(0).tolist(), "sd": values.std(0, ddof=1).tolist()}
    return out


def judge_against(result: KernelResult, ref: KernelResult, threshold: float) -> None:
    """Set ``result``'s z-scores and verdict against the reference kernel's result ``ref``.

    Both MCSEs are combined. The verdict is ``result``'s own unreliability if any, else
    ``REF TOO FEW DRAWS`` / ``REF NOT MIXED`` if the reference's draws are not reliable, else
    ``PASS`` or ``FAIL``.
    """
    if result.error is not None or result is ref:
        return
    if ref.error is not None:
        result.status_ref = NOT_TESTED
        return
    result.z_mean_ref = z_scores(result.mean, ref.mean, result.mean_mcse, ref.mean_mcse).tolist()
    result.z_var_ref = z_scores(result.var, ref.var, result.var_mcse, ref.var_mcse).tolist()
    unreliable = result.reliability
    if unreliable is None and ref.reliability is not None:
        unreliable = f"REF {ref.reliability}"
    result.status_ref = verdict(result.max_abs_z_ref, threshold, unreliable)


def _sum_dicts(dicts):
    return {key: sum(d[key] for d in dicts) for key in dicts[0]}


#: The squared-bias level of :func:`evals_to_low_bias` (Robnik et al. 2025, arXiv 2503.01707).
LOW_BIAS = 0.01


def evals_to_low_bias(
    draws: np.ndarray,
    truth_mean: np.ndarray,
    truth_var: np.ndarray,
    evals_per_draw: float,
    per_chain: bool = False,
) -> float:
    r"""Evaluations per chain until the squared bias of the second moments stays below 0.01.

    With :math:`\bar{x^2_i}(n)` the mean of :math:`x_i^2` over the first :math:`n` draws of
    every chain, averaged over the chains, the squared bias is

    .. math:: b^2(n) = \max_i \frac{(\bar{x^2_i}(n) - E[x_i^2])^2}{\mathrm{Var}[x_i^2]},

    with :math:`E[x_i^2] = \sigma_i^2 + \mu_i^2` from the truth and :math:`\mathrm{Var}[x_i^2]`
    estimated from all the draws (the MAMS paper's metric, Robnik, Cohn-Gordon & Seljak 2025).
    The answer is :math:`n` at the last crossing below :data:`LOW_BIAS` (after which it stays
    below), times the evaluations per draw of one chain in the sampling phase; NaN if it is not
    below at the last draw.

    With ``per_chain=True`` the squared bias is computed for each chain from its own running
    means and then averaged over the chains, as the MAMS paper and ``benchmarks/mams.py`` do: it
    does not fall faster with more chains, so contenders run with different numbers of chains
    compare fairly (the default, chains averaged first, falls about as fast as one chain of
    ``chains`` times the length).

    :param draws: ``(chains, draws, D)``.
    """
    x2 = draws**2
    steps = np.arange(1, x2.shape[1] + 1)[:, None]
    target = np.asarray(truth_var) + np.asarray(truth_mean) ** 2
    spread = x2.reshape(-1, x2.shape[-1]).var(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if per_chain:
            running = np.cumsum(x2, axis=1) / steps[None]
            b2 = np.max((running - target) ** 2 / spread, axis=-1).mean(0)
        else:
            running = np.cumsum(x2.mean(0), axis=0) / steps
            b2 = np.max((running - target) ** 2 / spread, axis=-1)
    above = np.flatnonzero(~(b2 < LOW_BIAS))
    if len(above) and above[-1] == len(b2) - 1:  # above at the last draw: not there yet
        return float("nan")
    n = 1 if len(above) == 0 else int(above[-1]) + 2
    return float(n * evals_per_draw)


#: Resamples of the chains behind the interval of :func:`evals_to_low_bias`.
BOOTSTRAP_RESAMPLES = 200


def evals_to_low_bias_interval(
    draws: np.ndarray,
    truth_mean: np.ndarray,
    truth_var: np.ndarray,
    evals_per_draw: float,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    per_chain: bool = False,
) -> tuple[float, float]:
    r"""A 95% bootstrap interval of :func:`evals_to_low_bias`, resampling the chains.

    Each resample draws as many chains as there are, with replacement, and finds the last
    crossing of :math:`b^2(n)` below :data:`LOW_BIAS` on a grid of 256 geometrically spaced
    :math:`n` (so a resample's answer is at most one grid step later than the exact one); the
    interval is the 2.5% and 97.5% percentiles. A resample that never gets below counts as
    infinitely many evaluations, so an upper bound of ``inf`` says that more than 2.5% of the
    resamples did not get there within the run. With fewer than two chains: NaN.
    ``per_chain``: as in :func:`evals_to_low_bias`.

    :param draws: ``(chains, draws, D)``.
    """
    num_chains, n = draws.shape[:2]
    if num_chains < 2 or n < 2:
        return float("nan"), float("nan")
    x2 = draws**2
    grid = np.unique(np.geomspace(1, n, 256).astype(int))
    running = np.cumsum(x2, axis=1)[:, grid - 1] / grid[None, :, None]  # (chains, grid, D)
    target = np.asarray(truth_var) + np.asarray(truth_mean) ** 2
    spread = x2.reshape(-1, x2.shape[-1]).var(0)
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    with np.errstate(divide="ignore", invalid="ignore"):
        for r in range(resamples):
            picked = running[rng.integers(0, num_chains, num_chains)]
            if per_chain:
                b2 = np.max((picked - target) ** 2 / spread, axis=-1).mean(0)
            else:
                b2 = np.max((picked.mean(0) - target) ** 2 / spread, axis=-1)
            above = np.flatnonzero(~(b2 < LOW_BIAS))
            if len(above) == len(b2) or (len(above) and above[-1] == len(grid) - 1):
                values[r] = np.inf
            else:
                values[r] = grid[0 if len(above) == 0 else above[-1] + 1] * evals_per_draw
    # Order statistics, not interpolation, which would turn two infinities into NaN.
    low = np.percentile(values, 2.5, method="lower")
    high = np.percentile(values, 97.5, method="higher")
    return float(low), float(high)


def ess_per_eval_interval(
    draws: np.ndarray, cost: float, groups: int = INTERVAL_GROUPS
) -> tuple[float, float]:
    r"""A 95% interval of the smallest bulk ESS per evaluation, from groups of chains.

    The number whose bulk ESS is the smallest over all the chains (a coordinate or its square)
    is fixed first; the chains are then split into ``groups`` groups (at most one per chain), and
    each group's bulk ESS of that number over its share of the cost estimates the same ratio. The
    interval is Student's :math:`t` over the groups on the log scale (the ratio is positive and
    skewed): the batch-means idea applied across chains rather than along them (Flegal & Jones
    2010). With fewer than two chains there is no interval (NaN).

    :param draws: ``(chains, draws, D)``.
    :param cost: the evaluations behind all of ``draws``.
    """
    num_chains, dim = draws.shape[0], draws.shape[-1]
    groups = min(groups, num_chains)
    if groups < 2 or not cost > 0:
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pooled = np.concatenate([ess(draws, "bulk"), ess(draws**2, "bulk")])
        k = int(np.nanargmin(pooled)) if np.isfinite(pooled).any() else 0
        column = (draws if k < dim else draws**2)[..., k % dim : k % dim + 1]
        logs = []
        for part in np.array_split(np.arange(num_chains), groups):
            value = float(ess(column[part], "bulk")[0])
            share = cost * len(part) / num_chains
            logs.append(math.log(value / share) if value > 0 else float("nan"))
    _, low, high = t_interval(logs)
    return (math.exp(low), math.exp(high)) if math.isfinite(low) else (float("nan"), float("nan"))


__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "INTERVAL_GROUPS",
    "LOW_BIAS",
    "ChainRun",
    "ess_per_eval_interval",
    "evals_to_low_bias",
    "evals_to_low_bias_interval",
    "judge_against",
    "summarise",
]
