"""The ArviZ calls this package makes, working the same on arviz 0.x and arviz 1.x.

ArviZ 1.0 split into ``arviz-base``, ``arviz-stats`` and ``arviz-plots``: the results container
became an :class:`xarray.DataTree` (was ``arviz.InferenceData``), ``from_dict`` takes one dict of
groups (was one keyword per group), ``from_pyro`` is gone, ``summary`` has other interval columns
and ``plot_forest`` returns a ``PlotCollection`` instead of matplotlib axes. ESS, MCSE and R-hat
of arrays and of datasets kept their names and meaning; this module still wraps them so that every
caller converts the same way (a numpy array per variable).

Everything the package, its examples, its docs and its tests need from ArviZ beyond that shared
core goes through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

#: True under arviz 1.x (``DataTree`` results), False under 0.x (``InferenceData``).
ARVIZ_1: bool = int(az.__version__.split(".")[0]) >= 1

#: xarray's DataTree (xarray >= 2024.10, which arviz 1.x requires; older arviz 0.x installs may
#: have an older xarray without it).
_DataTree = getattr(xr, "DataTree", ())

#: The columns of :func:`summary`: those that both arviz 0.x and 1.x compute the same way.
SUMMARY_COLUMNS = ("mean", "sd", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat")


def default_log_likelihood() -> bool:
    """Whether ``from_pyro`` computes the log-likelihood when not told: arviz 0.x's setting
    ``rcParams["data.log_likelihood"]`` (``True`` unless changed), which its ``az.from_pyro``
    follows; ``True`` under arviz 1.x, which has no such setting and no ``from_pyro``."""
    if ARVIZ_1:
        return True
    return bool(az.rcParams["data.log_likelihood"])


def dict_to_dataset(
    data: Mapping[str, np.ndarray],
    *,
    library: Any = None,
    coords: Mapping[str, Sequence] | None = None,
    dims: Mapping[str, Sequence[str]] | None = None,
    sample_dims: Sequence[str] = ("chain", "draw"),
    skip_event_dims: bool = False,
) -> xr.Dataset:
    """ArviZ's ``dict_to_dataset``: arrays whose leading axes are ``sample_dims`` to a dataset.

    :param data: variable name → array of shape ``(*sample_dims, *event_shape)``.
    :param library: the module that produced the draws (recorded in the attributes).
    :param coords: dimension name → coordinate values.
    :param dims: variable name → names of its event dimensions.
    :param sample_dims: ``("chain", "draw")`` for draws, ``()`` for observed data.
    :param skip_event_dims: drop names in ``dims`` beyond the array's dimensions (log-likelihoods
        sum event dimensions away).
    """
    if ARVIZ_1:
        return az.dict_to_dataset(
            dict(data),
            inference_library=library,
            coords=coords,
            dims=dims,
            sample_dims=list(sample_dims),
            skip_event_dims=skip_event_dims,
        )
    return az.dict_to_dataset(
        dict(data),
        library=library,
        coords=coords,
        dims=dims,
        default_dims=None if tuple(sample_dims) == ("chain", "draw") else list(sample_dims),
        skip_event_dims=skip_event_dims or None,
    )


def from_datasets(groups: Mapping[str, xr.Dataset]) -> Any:
    """The installed ArviZ's container: ``InferenceData`` (0.x) or ``DataTree`` (1.x)."""
    if ARVIZ_1:
        return xr.DataTree.from_dict(dict(groups))
    return az.InferenceData(**groups)


def group(data: Any, name: str) -> xr.Dataset:
    """The dataset of group ``name`` of an ``InferenceData`` or a ``DataTree``."""
    if isinstance(data, _DataTree):
        return data[name].to_dataset()
    return getattr(data, name)


def groups(data: Any) -> list[str]:
    """The names of the groups of an ``InferenceData`` or a ``DataTree``."""
    if isinstance(data, _DataTree):
        return list(data.children)
    return list(data.groups())


def posterior_from_dict(draws: Mapping[str, np.ndarray]) -> Any:
    """A container with only a ``posterior`` group, from arrays shaped ``(chain, draw, ...)``."""
    draws = {k: np.asarray(v) for k, v in draws.items()}
    if ARVIZ_1:
        return az.from_dict({"posterior": draws})
    return az.from_dict(posterior=draws)


def _as_dataset(draws: Any) -> xr.Dataset:
    if isinstance(draws, xr.Dataset):
        return draws
    return az.convert_to_dataset({"x": np.asarray(draws)})


def _per_variable(result: Any, draws: Any) -> Any:
    """A float for one 2-D array, an array of event shape for a higher-dimensional one, the
    dataset as it came for a dataset."""
    if isinstance(draws, xr.Dataset):
        return result
    values = np.asarray(result["x"].values, dtype=float)
    return float(values) if values.ndim == 0 else values


def ess(draws: Any, method: str = "bulk") -> Any:
    """Effective sample size (rank-normalised, split chains) of ``draws``.

    :param draws: an array ``(chain, draw, *event_shape)`` or a dataset of such variables.
    :param method: ``"bulk"``, ``"tail"``, ``"mean"``, ``"sd"``, ... as in arviz.
    :returns: a float for a 2-D array, an array of event shape otherwise; a dataset for a dataset.
    """
    return _per_variable(az.ess(_as_dataset(draws), method=method), draws)


def mcse(draws: Any, method: str = "mean") -> Any:
    """Monte-Carlo standard error of the mean (``method="mean"``) or sd (``"sd"``) of ``draws``;
    arguments and result as :func:`ess`."""
    return _per_variable(az.mcse(_as_dataset(draws), method=method), draws)


def rhat(draws: Any) -> Any:
    """Rank-normalised split :math:`\\hat R` of ``draws``; arguments and result as :func:`ess`."""
    return _per_variable(az.rhat(_as_dataset(draws)), draws)


def summary(data: Any, var_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Posterior summary, one row per scalar (``theta[0]``, ...), unrounded, with the columns
    :data:`SUMMARY_COLUMNS` (the intervals differ between versions and are left out).

    :param data: an ``InferenceData``, a ``DataTree`` or anything ``from_dict``-able.
    :param var_names: the variables to summarise; all posterior variables when None.
    """
    names = None if var_names is None else list(var_names)
    table = az.summary(data, var_names=names, kind="all", round_to="none")
    return table[list(SUMMARY_COLUMNS)].astype(float)


def plot_forest(
    posteriors: Mapping[str, Any],
    var_names: Sequence[str] | None = None,
    prob: float = 0.94,
    figsize: tuple[float, float] = (8, 7),
) -> Any:
    """Forest plot of several runs side by side: the central ``prob`` HDI of each variable,
    chains combined, on one matplotlib figure, which is returned.

    :param posteriors: run name → its ``InferenceData``/``DataTree``.
    :param var_names: the variables to plot; all when None.
    :param prob: the probability mass of the outer interval.
    """
    names = None if var_names is None else list(var_names)
    if ARVIZ_1:
        plot = az.plot_forest(
            dict(posteriors),
            var_names=names,
            combined=True,
            ci_kind="hdi",
            ci_probs=(0.5, prob),
            backend="matplotlib",
            figure_kwargs={"figsize": figsize},
        )
        plot.add_legend("model")
        return plot.viz["figure"].item()
    axes = az.plot_forest(
        list(posteriors.values()),
        model_names=list(posteriors),
        var_names=names,
        combined=True,
        hdi_prob=prob,
        figsize=figsize,
    )
    return np.asarray(axes).ravel()[0].figure
