r"""Optimal-scaling theory for the dimension experiment, and the fit that tests it.

ESS per evaluation falls like :math:`D^{-1}` for the random walk, :math:`D^{-1/3}` for MALA and
:math:`D^{-1/4}` for HMC whose number of steps grows to keep the trajectory length fixed (Roberts &
Rosenthal 2001; Beskos et al. 2013); :func:`fit_slope` fits the slope of
:math:`\log(\mathrm{ESS}/\mathrm{eval})` on :math:`\log D`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: The slope of log(ESS per evaluation) against log(D) that optimal-scaling theory predicts.
THEORY_SLOPES: dict[str, float] = {"RandomWalkMH": -1.0, "MALA": -1.0 / 3.0, "SimpleHMC": -0.25}


def fit_slope(dims: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope and intercept of ``log(values)`` on ``log(dims)``.

    Points with a value of 0 (a chain that never moved) are left out; fewer than two points
    give NaN.
    """
    dims, values = np.asarray(dims, dtype=float), np.asarray(values, dtype=float)
    keep = (values > 0) & np.isfinite(values)
    if keep.sum() < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(np.log(dims[keep]), np.log(values[keep]), 1)
    return float(slope), float(intercept)


__all__ = ["THEORY_SLOPES", "fit_slope"]
