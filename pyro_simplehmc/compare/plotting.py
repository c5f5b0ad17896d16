"""Figure plumbing shared by :mod:`.figures` and :mod:`.grid_report`.

The figures are :class:`matplotlib.figure.Figure` objects saved directly, without
:mod:`matplotlib.pyplot`: no display is needed, and importing this module leaves matplotlib's
backend (and the user's own figures) alone.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure


def subplots(rows: int = 1, cols: int = 1, figsize=(6.4, 4.8), squeeze: bool = True):
    """A new figure and its axes, as :func:`matplotlib.pyplot.subplots` returns them."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=squeeze)


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (PNG at 110 dpi) and return the path."""
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


__all__ = ["save_figure", "subplots"]
