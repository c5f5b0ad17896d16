r"""Densities on a 2-D grid for contour plots, and the contour levels that enclose given
probability masses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..core import validation as check

__all__ = ["density_grid", "mass_levels"]


def density_grid(
    potential_fn: Callable[[Tensor], Tensor],
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    num: int = 150,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""The unnormalised density :math:`e^{-U}` on a 2-D grid, for contour plots.

    :param potential_fn: :math:`U` on flat tensors of shape ``batch + (2,)``.
    :returns: ``(X, Y, density)``, each of shape ``(num, num)``, ready for
        ``matplotlib.pyplot.contour(X, Y, density)``.
    """
    check.positive_int("num", num)
    xs = torch.linspace(xlim[0], xlim[1], num)
    ys = torch.linspace(ylim[0], ylim[1], num)
    x, y = torch.meshgrid(xs, ys, indexing="xy")
    with torch.no_grad():
        u = potential_fn(torch.stack([x, y], dim=-1))
    return x, y, torch.exp(-(u - u.min()))


def mass_levels(
    density: Tensor,
    masses: Sequence[float] = (0.5, 0.9, 0.99),
    weights: Tensor | None = None,
) -> dict[float, float]:
    r"""Contour levels that enclose given probability masses, for labelled contour plots.

    The highest-density region with mass :math:`m` is :math:`\{x : \pi(x) \ge c_m\}`; on a
    grid, :math:`c_m` is the density at which the cells sorted by density first accumulate a
    fraction :math:`m` of the total. For a 2-D Gaussian, :math:`c_m = (1 - m)` times the peak.
    The grid must hold nearly all the mass (the fractions are of what it holds).

    :param density: a density (unnormalised) on a grid, as from :func:`density_grid`.
    :param masses: probability masses in :math:`(0, 1)`.
    :param weights: the area of each grid cell, of the shape of ``density``, for grids that are
        not uniform in the plotted coordinates (for instance :math:`\sigma` on a grid uniform in
        :math:`\log\sigma`: weights :math:`\sigma`); uniform if omitted.
    :returns: ``{level: mass}`` sorted by increasing level, ready for
        ``ax.contour(X, Y, density, levels=list(levels))`` and
        ``ax.clabel(contours, fmt={level: f"{mass:.0%}" ...})``.
    """
    masses = [check.open_unit_interval("masses", mass) for mass in masses]
    values = density.detach().reshape(-1).double()
    cell = torch.ones_like(values) if weights is None else weights.reshape(-1).double()
    if cell.shape != values.shape:
        raise ValueError(
            f"weights must have the shape of density {tuple(density.shape)}; "
            f"got {tuple(weights.shape)}"
        )
    order = torch.argsort(values, descending=True)
    cumulative = torch.cumsum(values[order] * cell[order], 0)
    cumulative = cumulative / cumulative[-1]
    levels = {}
    for mass in masses:
        index = int(torch.searchsorted(cumulative, torch.tensor(float(mass), dtype=torch.float64)))
        levels[float(values[order][min(index, len(values) - 1)])] = float(mass)
    return dict(sorted(levels.items()))
