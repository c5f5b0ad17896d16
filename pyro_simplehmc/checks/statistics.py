r"""The statistics of a comparison, shared by the runner, the testing kit and the tests.

**The tolerance.** Each :math:`z` is an estimate minus its reference, divided by its Monte-Carlo
standard error (arviz's MCSE, which accounts for autocorrelation, combined in quadrature with the
reference's own standard error when the reference is itself an estimate). For a correct kernel
each :math:`z` is approximately standard normal. A kernel tested on :math:`m` numbers fails when
any :math:`|z|` exceeds the Bonferroni bound :math:`z^* = \Phi^{-1}(1 - \alpha / 2m)` with
family-wise :math:`\alpha = 10^{-3}` (:func:`bonferroni_threshold`): a correct kernel is marked
``FAIL`` at most once in a thousand runs (3.66 for :math:`m = 4`, 4.06 for :math:`m = 20`).

**The verdicts.** The MCSE is itself estimated, from the effective sample size, and it is only
trustworthy when the ESS is large and the chains agree. So a kernel gets ``PASS`` or ``FAIL``
only when its smallest bulk ESS is at least :data:`MIN_RELIABLE_ESS` and its largest split
:math:`\hat R` is below :data:`MAX_RELIABLE_RHAT` (:func:`verdict`); otherwise ``TOO FEW DRAWS``
or ``NOT MIXED``, with an estimate of the number of draws per chain that would give a reliable
verdict (:func:`draws_needed`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import arviz as az
import numpy as np

from ..core import validation as check

#: Family-wise false-alarm rate of the validation of one kernel.
FAMILY_ALPHA = 1e-3
#: Below this smallest bulk ESS, Monte-Carlo standard errors are too uncertain for a verdict.
MIN_RELIABLE_ESS = 100
#: At or above this largest split R-hat, the chains disagree: no verdict.
MAX_RELIABLE_RHAT = 1.01
#: The bulk ESS that :func:`draws_needed` aims at for ``TOO FEW DRAWS`` (a margin over
#: :data:`MIN_RELIABLE_ESS`, as the ESS of a run is itself noisy) and for ``NOT MIXED`` (Vehtari
#: et al. 2021 advise an ESS of 400 before trusting R-hat below 1.01).
TARGET_ESS = {"TOO FEW DRAWS": 150, "NOT MIXED": 400}

PASS, FAIL = "PASS", "FAIL"
TOO_FEW_DRAWS, NOT_MIXED = "TOO FEW DRAWS", "NOT MIXED"
ERROR, NOT_TESTED = "ERROR", "-"
#: Every verdict, in the order the figures list them.
VERDICTS = (PASS, FAIL, TOO_FEW_DRAWS, NOT_MIXED, ERROR, NOT_TESTED)


def bonferroni_threshold(num_tests: int, alpha: float = FAMILY_ALPHA) -> float:
    r"""The two-sided :math:`z^* = \Phi^{-1}(1 - \alpha / 2m)` over :math:`m` = ``num_tests``.

    :param int num_tests: the number of z-scores tested together.
    :param float alpha: the family-wise false-alarm probability.
    """
    num_tests = check.positive_int("num_tests", num_tests)
    alpha = check.open_unit_interval("alpha", alpha)
    return NormalDist().inv_cdf(1.0 - alpha / (2 * num_tests))


def _dataset(values: np.ndarray):
    return az.convert_to_dataset({"x": values})


def mcse_of_mean(values: np.ndarray) -> np.ndarray:
    """arviz's Monte-Carlo standard error of the mean of ``values``.

    :param values: shape ``(chains, draws)`` (returns a 0-dim array) or ``(chains, draws, D)``
        (returns shape ``(D,)``).
    """
    return np.asarray(az.mcse(_dataset(np.asarray(values, dtype=float)))["x"].values, dtype=float)


def z_scores(estimate, reference, se_a, se_b=None) -> np.ndarray:
    r""":math:`(\hat\theta - \theta_0) / \sqrt{se_a^2 + se_b^2}`, elementwise.

    A zero standard error with a nonzero difference is infinitely far off, and 0/0 (nothing
    could be checked) is infinite too: neither may pass silently.
    """
    se = np.asarray(se_a, dtype=float) ** 2
    if se_b is not None:
        se = se + np.asarray(se_b, dtype=float) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.asarray(estimate, dtype=float) - np.asarray(reference, dtype=float)) / np.sqrt(se)
    return np.where(np.isnan(z), np.inf, z)


def max_abs(values: Sequence[float]) -> float:
    """The largest :math:`|z|`; a NaN (a moment that could not be estimated) counts as infinite."""
    array = np.abs(np.asarray(values, dtype=float))
    if array.size == 0:
        return float("nan")
    return float("inf") if np.isnan(array).any() else float(array.max())


def ess(draws: np.ndarray, method: str) -> np.ndarray:
    """arviz's ESS of each coordinate of ``draws`` (``(chains, draws, D)``); 0 where it is
    undefined or where nothing moved (arviz reports the number of draws for a constant chain)."""
    values = np.asarray(az.ess(_dataset(draws), method=method)["x"].values, dtype=float)
    constant = np.all(draws == draws[:, :1, :], axis=(0, 1))
    values[constant | ~np.isfinite(values)] = 0.0
    return values


def moments(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Mean and variance of each coordinate of ``draws`` (``(chains, draws, D)``), with MCSEs.

    The variance is the mean of the centred squares :math:`(x - \bar x)^2`, and its MCSE is the
    MCSE of that mean: the same estimator as for the mean, applied to another function of the
    draws.
    """
    flat = draws.reshape(-1, draws.shape[-1])
    mean = flat.mean(0)
    squares = (draws - mean) ** 2
    return (
        mean,
        squares.reshape(-1, draws.shape[-1]).mean(0),
        mcse_of_mean(draws),
        mcse_of_mean(squares),
    )


def kurtosis(draws: np.ndarray) -> np.ndarray:
    r"""The kurtosis :math:`\mu_4 / \sigma^4` of each coordinate of ``draws`` (``(..., D)``)."""
    flat = draws.reshape(-1, draws.shape[-1])
    centred = flat - flat.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (centred**4).mean(0) / (centred**2).mean(0) ** 2


def max_r_hat(draws: np.ndarray, superchain_ids: Sequence[int] | None = None) -> float:
    r"""The largest :math:`\hat R` over the coordinates and their squares.

    Without ``superchain_ids`` (or with every chain its own superchain), arviz's rank-normalised
    split :math:`\hat R` (Vehtari et al. 2021; one chain is split in two halves, as arviz does);
    with them, :func:`nested_r_hat`.

    :param draws: ``(chains, draws, D)``.
    :param superchain_ids: the superchain of each chain (chains started at the same point).
    """
    if superchain_ids is not None and len(set(superchain_ids)) < len(superchain_ids):
        values = np.concatenate([nested_r_hat(d, superchain_ids) for d in (draws, draws**2)])
    else:
        values = np.concatenate(
            [np.asarray(az.rhat(_dataset(d))["x"].values, dtype=float) for d in (draws, draws**2)]
        )
    return float(np.nanmax(values)) if np.isfinite(values).any() else float("nan")


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalised values (Blom's offset 3/8), over all chains and draws together."""
    from scipy.stats import norm, rankdata

    ranks = rankdata(x, method="average").reshape(x.shape)
    return norm.ppf((ranks - 3 / 8) / (x.size - 2 * 3 / 8 + 1))


def _nested(x: np.ndarray, ids: np.ndarray) -> float:
    r"""Nested :math:`\hat R` of ``x`` (``(chains, draws)``), Margossian et al. (2024), eq. 4-8."""
    superchains = np.unique(ids)
    chain_mean, chain_var = x.mean(1), x.var(1, ddof=1)
    members = [ids == k for k in superchains]
    superchain_mean = np.array([chain_mean[m].mean() for m in members])
    between_chains = np.array([chain_mean[m].var(ddof=1) if m.sum() > 1 else 0.0 for m in members])
    within_chains = np.array([chain_var[m].mean() for m in members])
    between = superchain_mean.var(ddof=1)
    within = np.mean(within_chains + between_chains)
    return float(np.sqrt(1.0 + between / within))


def nested_r_hat(draws: np.ndarray, superchain_ids: Sequence[int]) -> np.ndarray:
    r"""Rank-normalised nested :math:`\hat R` of each coordinate (Margossian, Hoffman, Sountsov,
    Riou-Durand, Vehtari & Gelman 2024, *Bayesian Analysis*, doi:10.1214/24-BA1453).

    For many short chains. Chains that start at the same point form a superchain; with
    :math:`\hat B_\nu` the variance of the superchain means, :math:`\hat B_k` the variance of the
    chain means in superchain :math:`k` and :math:`\hat W_k` its mean within-chain variance,

    .. math::
        \hat R_\nu = \sqrt{1 + \hat B_\nu / \operatorname{mean}_k(\hat W_k + \hat B_k)}.

    As for split :math:`\hat R` (Vehtari et al. 2021), each chain is split in two halves, the
    draws are rank-normalised, and the larger of the bulk value and the value of the folded
    draws is returned: arviz-stats' ``rhat_nested`` (arviz 1.x) computes the same, and the
    tests compare the two where it is installed (it needs Python 3.12).

    :param draws: ``(chains, draws, D)``.
    :param superchain_ids: the superchain of each chain; every superchain the same size.
    :returns: one value per coordinate (NaN where all its draws are equal, or not finite).
    """
    draws = np.asarray(draws, dtype=float)
    ids = np.asarray(superchain_ids)
    if draws.ndim != 3 or len(ids) != draws.shape[0]:
        raise ValueError(
            f"draws must be (chains, draws, D) with one superchain id per chain; got draws of "
            f"shape {draws.shape} and {len(ids)} ids"
        )
    if len(set(np.bincount(ids)[np.unique(ids)])) != 1:
        raise ValueError("superchain_ids: every superchain must hold the same number of chains")
    half = draws.shape[1] // 2
    if half < 2 or len(np.unique(ids)) < 2:
        return np.full(draws.shape[2], np.nan)
    split = np.concatenate([draws[:, :half], draws[:, -half:]])  # first halves, then second
    ids = np.concatenate([ids, ids])
    out = np.empty(draws.shape[2])
    for i in range(draws.shape[2]):
        x = split[..., i]
        if x.var() == 0 or not np.all(np.isfinite(x)):
            out[i] = np.nan
            continue
        bulk = _nested(_z_scale(x), ids)
        tail = _nested(_z_scale(np.abs(x - np.median(x))), ids)
        out[i] = max(bulk, tail)
    return out


def reliability(min_bulk_ess: float, r_hat: float, stuck: bool = False) -> str | None:
    """``None`` when a z-test on these draws can be trusted, else why not.

    :returns: :data:`NOT_MIXED` if a chain never moved or R-hat is at least
        :data:`MAX_RELIABLE_RHAT`, :data:`TOO_FEW_DRAWS` if the smallest bulk ESS is below
        :data:`MIN_RELIABLE_ESS`, else ``None``.
    """
    if stuck:
        return NOT_MIXED
    if not min_bulk_ess >= MIN_RELIABLE_ESS:
        return TOO_FEW_DRAWS
    if not r_hat < MAX_RELIABLE_RHAT:  # NaN (no R-hat) is not reliable either
        return NOT_MIXED
    return None


def verdict(max_abs_z: float, threshold: float, unreliable: str | None) -> str:
    """``PASS`` or ``FAIL`` for a reliable test; the reason (see :func:`reliability`) otherwise."""
    if unreliable is not None:
        return unreliable
    return FAIL if not max_abs_z <= threshold else PASS


def draws_needed(num_samples: int, min_bulk_ess: float, why: str | None) -> int | None:
    """Draws per chain for a reliable verdict, assuming the ESS grows in proportion.

    :returns: ``None`` when the run is reliable, or when no estimate is possible (no ESS at all:
        a chain that never moved needs other settings, not more draws).
    """
    if why is None or not min_bulk_ess > 0 or not math.isfinite(min_bulk_ess):
        return None
    needed = math.ceil(num_samples * TARGET_ESS[why] / min_bulk_ess)
    # R-hat can stay high at a large ESS (a stuck mode): ask for at least twice as many draws.
    return max(needed, 2 * num_samples) if why == NOT_MIXED else max(needed, num_samples + 1)


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-:math:`t` interval of ``values`` (NaN bounds for fewer than 2)."""
    from scipy.stats import t

    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    half = float(t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half
