"""Pyro MCMC runs and ``Predictive`` draws to ArviZ, on arviz 0.x and 1.x alike.

:func:`from_pyro` takes the arguments of arviz 0.x's ``az.from_pyro`` and returns the installed
ArviZ's container: ``InferenceData`` under arviz 0.x, :class:`xarray.DataTree` under arviz 1.x
(which has no Pyro converter). The groups and variable names are the same under both. What each
group holds is built in :mod:`~pyro_simplehmc.mcmc.arviz_groups`; this module checks the
arguments against each other (``dims`` against the shapes of the variables they name) and
assembles the groups.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyro

from ..core import validation as check
from ..kernels import _pyro_compat as compat_pyro
from . import arviz_compat as compat
from . import arviz_groups as build

#: Reserved dimension names of draws.
SAMPLE_DIMS = ("chain", "draw")

#: The arguments of :func:`from_pyro`: those of arviz 0.x's ``az.from_pyro``, in its order.
ARGUMENTS = (
    "posterior",
    "prior",
    "posterior_predictive",
    "log_likelihood",
    "predictions",
    "constant_data",
    "predictions_constant_data",
    "coords",
    "dims",
    "pred_dims",
    "num_chains",
)

#: The groups that ``dims`` describes; ``pred_dims`` describes the others (``log_likelihood``
#: takes ``dims`` too, with the event dimensions its densities sum away dropped).
_DIMS_GROUPS = (
    "posterior",
    "posterior_predictive",
    "prior",
    "prior_predictive",
    "observed_data",
    "constant_data",
)
_PRED_DIMS_GROUPS = ("predictions", "predictions_constant_data")

#: Groups without a chain and a draw dimension.
_CONSTANT_GROUPS = ("observed_data", "constant_data", "predictions_constant_data")

#: The order of the groups in the result: arviz 0.x's (``InferenceData`` sorts them so).
_ORDER = (
    "posterior",
    "posterior_predictive",
    "predictions",
    "log_likelihood",
    "sample_stats",
    "prior",
    "prior_predictive",
    "observed_data",
    "constant_data",
    "predictions_constant_data",
)


def from_pyro(
    posterior: Any = None,
    *,
    prior: Mapping[str, Any] | None = None,
    posterior_predictive: Mapping[str, Any] | None = None,
    log_likelihood: bool | None = None,
    predictions: Mapping[str, Any] | None = None,
    constant_data: Mapping[str, Any] | None = None,
    predictions_constant_data: Mapping[str, Any] | None = None,
    coords: Mapping[str, Sequence] | None = None,
    dims: Mapping[str, Sequence[str]] | None = None,
    pred_dims: Mapping[str, Sequence[str]] | None = None,
    num_chains: int = 1,
    **unknown: Any,
) -> Any:
    """Convert a finished Pyro MCMC run and ``Predictive`` draws to ArviZ's data structure.

    The arguments are those of arviz 0.x's ``az.from_pyro``, and under arviz 0.x the result
    agrees with it on every group and variable both produce. ``posterior`` may be a
    :class:`pyro.infer.MCMC` running any kernel (this package's, Pyro's ``NUTS`` or ``HMC``),
    one chain or several, or a run of this package's ``MCMC``; or ``None``, to convert prior or
    predictive draws alone.

    Groups (each only where its input is given):

    - ``posterior``: every latent site, constrained, dims ``(chain, draw, *dims[site])``, and
      every ``pyro.deterministic`` site, computed by replaying the model on each draw (one
      vectorised pass, or one model call per draw if the model does not vectorise).
    - ``sample_stats``: ``diverging`` ``(chain, draw)`` from the kernel's divergence indices;
      ``step_size`` ``(chain, draw)`` where the kernel reports the step size it used unchanged
      at every sampling iteration; any per-draw statistics the run exposes (below); and per
      chain (dims ``chain``): ``mean_acceptance_rate`` and, for this package's kernels,
      ``gradient_evaluations`` and ``potential_evaluations`` of the sampling phase (``*_warmup``
      for warmup).
    - ``log_likelihood``: the pointwise log-density of every observed site at each draw, from
      one vectorised pass over the draws, as arviz 0.x computes it. Where the model does not
      vectorise over draws, the group is left out with arviz 0.x's warning ("Could not get
      vectorized trace, ...").
    - ``observed_data``: every observed site (not the deterministic ones).
    - ``posterior_predictive``, ``predictions``: the draws of each site, as
      ``pyro.infer.Predictive`` returns them: ``(chain * draw, ...)`` draws (Predictive on
      ``mcmc.get_samples()``) are split into the run's chains; an array already shaped
      ``(chain, draw, ...)`` is kept; any other number of draws becomes one chain, with a
      warning.
    - ``prior``: the prior draws of the posterior's variables (all sites when ``posterior`` is
      None), one chain, with axes of size 1 squeezed away (``Predictive`` pads sites outside
      the plates with them); ``prior_predictive``: the prior draws of the other sites.
    - ``constant_data``, ``predictions_constant_data``: the given values.

    Per-draw statistics hooks (``accept_prob`` becomes ArviZ's ``acceptance_rate`` and
    ``num_steps`` ``n_steps``; other names are kept as given):

    - ``mcmc.sample_stats``: a dict of arrays shaped ``(chain, draw)`` (e.g. from a run that
      batches its chains);
    - the kernel's ``diagnostics()`` (one dict per chain, as Pyro's ``MCMC`` collects them) with a
      key ``"sample stats"``: a dict of arrays shaped ``(draw,)`` for that chain.

    A ``diverging`` given there replaces the one built from divergence indices.

    :param posterior: a :class:`pyro.infer.MCMC` (or subclass) after ``run``, or None.
    :param dict prior: site → prior draws ``(draw, ...)``, e.g.
        ``Predictive(model, num_samples=500)(*args)``.
    :param dict posterior_predictive: site → posterior predictive draws, e.g.
        ``Predictive(model, mcmc.get_samples())(*args)``.
    :param log_likelihood: compute the ``log_likelihood`` group; None follows arviz 0.x's
        setting ``rcParams["data.log_likelihood"]`` (``True``), and is ``True`` under arviz 1.x.
    :param dict predictions: site → out-of-sample predictive draws, shaped as
        ``posterior_predictive``.
    :param dict constant_data: name → a value the model was given (no draw dimensions).
    :param dict predictions_constant_data: name → a value the predictions were made with.
    :param coords: dimension name → coordinate values, for dimensions named in ``dims`` or
        ``pred_dims``.
    :param dims: variable name → names of its dimensions after ``chain`` and ``draw`` (one name
        per dimension), for every group but ``predictions`` and ``predictions_constant_data``.
    :param pred_dims: the same for ``predictions`` and ``predictions_constant_data``.
    :param int num_chains: the number of chains that predictive draws without a chain dimension
        are split into when ``posterior`` is None; ignored with a ``posterior`` (its chains).
        The prior is one chain either way, as in arviz 0.x.
    :returns: ``arviz.InferenceData`` (arviz 0.x) or :class:`xarray.DataTree` (arviz 1.x).
    :raises ValueError: for an argument that is not what it should be (the message names it):
        a run that cannot be converted, ``dims`` that do not match the shape of the site they
        name, ``coords`` of the wrong length, draws that ``num_chains`` does not divide.
    :raises TypeError: for an argument ``from_pyro`` does not take.
    """
    check.no_unknown_keywords("from_pyro", unknown, ARGUMENTS)
    coords = check.dict_or_none("coords", coords)
    dims = check.dict_or_none("dims", dims)
    pred_dims = check.dict_or_none("pred_dims", pred_dims)
    num_chains = check.positive_int("num_chains", num_chains)
    explicit_log_likelihood = log_likelihood is not None
    if explicit_log_likelihood:
        log_likelihood = check.boolean("log_likelihood", log_likelihood)
    else:
        log_likelihood = compat.default_log_likelihood()
    draws_given = {
        "prior": _draws_dict("prior", prior),
        "posterior_predictive": _draws_dict("posterior_predictive", posterior_predictive),
        "predictions": _draws_dict("predictions", predictions),
    }
    constants = {
        "constant_data": _constant_dict("constant_data", constant_data),
        "predictions_constant_data": _constant_dict(
            "predictions_constant_data", predictions_constant_data
        ),
    }
    if posterior is None and not any(draws_given.values()) and not any(constants.values()):
        raise ValueError(
            "from_pyro needs at least one of posterior, prior, posterior_predictive, "
            "predictions, constant_data or predictions_constant_data"
        )

    arrays: dict[str, dict[str, np.ndarray]] = {}
    if posterior is None and explicit_log_likelihood and log_likelihood:
        raise ValueError("log_likelihood=True needs posterior, a finished MCMC run; got None")
    run = None if posterior is None else _Run(posterior, explicit_log_likelihood and log_likelihood)
    if run is not None:
        num_chains, num_draws = run.num_chains, run.num_draws
        arrays["posterior"] = run.posterior
        arrays["observed_data"] = run.observed
    else:
        num_draws = _draws_per_chain(draws_given, num_chains)
    for name in ("posterior_predictive", "predictions"):
        if draws_given[name]:
            arrays[name] = build.predictive_draws(name, draws_given[name], num_chains, num_draws)
    if draws_given["prior"]:
        prior_arrays = build.prior_draws("prior", draws_given["prior"])
        latent = run.variables if run is not None else set(prior_arrays)
        arrays["prior"] = {k: v for k, v in prior_arrays.items() if k in latent}
        arrays["prior_predictive"] = {k: v for k, v in prior_arrays.items() if k not in latent}
    arrays.update({name: values for name, values in constants.items() if values})

    # Checked before the replay, which is the costly part; deterministic sites' shapes come
    # from the model's trace.
    shapes = {
        group: {
            var: value.shape if group in _CONSTANT_GROUPS else value.shape[2:]
            for var, value in values.items()
        }
        for group, values in arrays.items()
    }
    if run is not None:
        shapes["posterior"].update(run.deterministic)
    _check_coords_dims(coords, dims, pred_dims, shapes)

    if run is not None:
        run.replay(log_likelihood, explicit_log_likelihood)
        arrays["log_likelihood"] = run.log_likelihood or {}
    groups: dict[str, Any] = {}
    for name in _ORDER:
        if name == "sample_stats" and run is not None:
            groups[name] = build.sample_stats(posterior, num_chains, num_draws)
        elif arrays.get(name):
            groups[name] = compat.dict_to_dataset(
                arrays[name],
                library=pyro,
                coords=coords,
                dims=pred_dims if name in _PRED_DIMS_GROUPS else dims,
                sample_dims=() if name in _CONSTANT_GROUPS else SAMPLE_DIMS,
                skip_event_dims=name == "log_likelihood",
            )
    return compat.from_datasets(groups)


class _Run:
    """A finished MCMC run: its draws, its model's observed and deterministic sites, and, after
    :meth:`replay`, the deterministic sites' values and the log-likelihood.

    :param mcmc: the run.
    :param bool needs_log_likelihood: ``log_likelihood=True`` was asked for explicitly: a run
        without a model is an error now, not a group silently left out.
    """

    def __init__(self, mcmc: Any, needs_log_likelihood: bool):
        self.samples = build.kept_samples(mcmc)
        first = next(iter(self.samples.values()))
        self.num_chains, self.num_draws = int(first.shape[0]), int(first.shape[1])
        self.model = getattr(getattr(mcmc, "kernel", None), "model", None)
        self.args, self.kwargs = compat_pyro.mcmc_model_args(mcmc) or ((), {})
        if self.model is None and needs_log_likelihood:
            raise ValueError(
                "log_likelihood=True needs a model: this run's kernel was built from a "
                "potential_fn, which has no observed sites"
            )
        sites = build.model_sites(self.model, self.args, self.kwargs) if self.model else None
        self.posterior = {name: build.numpy(value) for name, value in self.samples.items()}
        self.observed: dict[str, np.ndarray] = {}
        self.deterministic: dict[str, tuple[int, ...]] = {}
        self.missing: list[str] = []
        if sites is not None:
            self.observed = {name: build.numpy(v) for name, v in sites["observed"].items()}
            self.missing = [name for name in sites["latent"] if name not in self.samples]
            self.deterministic = sites["deterministic"]
            if self.deterministic and self.missing:
                warnings.warn(
                    f"from_pyro: deterministic sites {sorted(self.deterministic)} left out: "
                    f"the run kept no draws of the latent sites {self.missing}",
                    stacklevel=3,
                )
                self.deterministic = {}
        #: The posterior's variables: latent and deterministic sites.
        self.variables = set(self.posterior) | set(self.deterministic)
        self.log_likelihood: dict[str, np.ndarray] | None = None

    def replay(self, log_likelihood: bool, explicit: bool) -> None:
        """Add the deterministic sites to the posterior and, with ``log_likelihood``, compute
        the pointwise log-likelihood of every observed site."""
        if log_likelihood and self.observed and self.missing:
            message = (
                f"log_likelihood needs draws of every latent site; the run kept none of "
                f"{self.missing} (save_params, or discrete sites enumerated out)"
            )
            if explicit:
                raise ValueError(f"log_likelihood=True: {message}")
            warnings.warn(f"from_pyro: log_likelihood group left out: {message}", stacklevel=3)
            log_likelihood = False
        if not self.deterministic and not (log_likelihood and self.observed):
            return
        replay = build.Replay(self.model, self.args, self.kwargs, self.samples)
        self.posterior.update({name: replay.deterministic(name) for name in self.deterministic})
        if log_likelihood and self.observed:
            self.log_likelihood = replay.log_likelihood(list(self.observed))


def _draws_dict(argument: str, value: Any) -> dict[str, Any] | None:
    value = check.dict_or_none(argument, value)
    if value is not None and not value:
        raise ValueError(f"{argument} must hold at least one site's draws, or be None; got {{}}")
    return None if value is None else dict(value)


def _constant_dict(argument: str, value: Any) -> dict[str, np.ndarray] | None:
    value = check.dict_or_none(argument, value)
    if value is None:
        return None
    if not value:
        raise ValueError(f"{argument} must hold at least one value, or be None; got {{}}")
    result = {}
    for name, item in value.items():
        array = build.numpy(item)
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ValueError(
                f"{argument}[{name!r}] must be a number or an array of numbers; got "
                f"{type(item).__name__} of dtype {array.dtype}"
            )
        result[str(name)] = array
    return result


def _draws_per_chain(draws: Mapping[str, dict | None], num_chains: int) -> int:
    """Without a run: the draws per chain of the predictive draws, from the first site of
    ``predictions`` (else ``posterior_predictive``), as arviz 0.x; ``num_chains`` must divide
    them (arviz-base 1.x's ``from_numpyro`` raises the same error)."""
    for argument in ("predictions", "posterior_predictive"):
        if draws[argument]:
            name, value = next(iter(draws[argument].items()))
            shape = np.shape(build.numpy(value))
            if not shape or shape[0] % num_chains:
                raise ValueError(
                    f"num_chains={num_chains} must divide the number of draws of "
                    f"{argument}[{name!r}]; its shape is {shape}"
                )
            return shape[0] // num_chains
    return 1  # only prior draws (always one chain) or constant data


def _check_coords_dims(
    coords: Mapping[str, Sequence] | None,
    dims: Mapping[str, Sequence[str]] | None,
    pred_dims: Mapping[str, Sequence[str]] | None,
    shapes: Mapping[str, Mapping[str, tuple[int, ...]]],
) -> None:
    """``dims`` and ``pred_dims`` give one dimension name per axis after ``chain`` and ``draw``
    of each variable they name in the groups they describe, each dimension of one size;
    ``coords`` give as many values as each dimension they name has.

    Entries for variables or dimensions that this conversion does not have are ignored, as
    both arviz lines do, so that one ``dims`` serves a notebook's several calls.

    :param shapes: group → variable → its shape after the sample dimensions.
    """
    sizes: dict[str, dict[str, int]] = {}
    for argument, mapping, described in (
        ("dims", dims, _DIMS_GROUPS),
        ("pred_dims", pred_dims, _PRED_DIMS_GROUPS),
    ):
        known = sizes.setdefault(argument, {})
        where: dict[str, str] = {}
        for site, names in (mapping or {}).items():
            if isinstance(names, str) or not all(isinstance(n, str) for n in names):
                raise ValueError(
                    f"{argument}[{site!r}] must be a list of dimension names; got {names!r}"
                )
            names = list(names)
            for name in names:
                if name in SAMPLE_DIMS:
                    raise ValueError(
                        f"{argument}[{site!r}] may not name {name!r}: it is a sample dimension"
                    )
            for group in described:
                if site not in shapes.get(group, {}):
                    continue
                shape = tuple(shapes[group][site])
                after = "" if group in _CONSTANT_GROUPS else " after chain and draw"
                if len(names) != len(shape):
                    raise ValueError(
                        f"{argument}[{site!r}] has {len(names)} names {names} but "
                        f"{group}[{site!r}] has {len(shape)} dimensions{after} (shape {shape})"
                    )
                for name, size in zip(names, shape, strict=True):
                    if known.setdefault(name, size) != size:
                        raise ValueError(
                            f"{argument} gives dimension {name!r} size {known[name]} in "
                            f"{where[name]} and {size} in {group}[{site!r}]"
                        )
                    where.setdefault(name, f"{group}[{site!r}]")
    for name, values in (coords or {}).items():
        length = np.shape(np.asarray(values))
        for argument, known in sizes.items():
            if name in known and (len(length) != 1 or length[0] != known[name]):
                raise ValueError(
                    f"coords[{name!r}] must hold {known[name]} values (the size of that "
                    f"dimension in {argument}); got shape {length}"
                )
