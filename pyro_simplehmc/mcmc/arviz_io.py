"""Pyro MCMC runs to ArviZ, on arviz 0.x and 1.x alike.

:func:`from_pyro` converts a finished :class:`pyro.infer.MCMC` run, with this package's kernels
or Pyro's own (``NUTS``, ``HMC``), to the installed ArviZ's container: ``InferenceData`` under
arviz 0.x, :class:`xarray.DataTree` under arviz 1.x (which has no Pyro converter). The groups and
variable names are the same under both.

Per-draw sampler statistics come from two hooks, so that kernels can report more without a change
here (see :func:`from_pyro`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

from ..core import validation as check
from ..kernels import _pyro_compat as compat_pyro
from . import arviz_compat as compat

#: Reserved dimension names of draws.
SAMPLE_DIMS = ("chain", "draw")

#: Per-draw statistic names of Pyro/NumPyro kernels → ArviZ's names (others are kept as given).
_ARVIZ_NAMES = {"accept_prob": "acceptance_rate", "num_steps": "n_steps"}

#: Kernel diagnostics counted per chain → the ``sample_stats`` variable (dims ``chain``) that
#: holds their sampling-phase count; the warmup count goes to the same name + ``"_warmup"``.
_CHAIN_COUNTERS = {
    "gradient evaluations": "gradient_evaluations",
    "potential evaluations": "potential_evaluations",
}


def from_pyro(
    mcmc: Any,
    coords: Mapping[str, Sequence] | None = None,
    dims: Mapping[str, Sequence[str]] | None = None,
    log_likelihood: bool = False,
) -> Any:
    """Convert a finished Pyro MCMC run to ArviZ's data structure.

    Works with :class:`pyro.infer.MCMC` running any kernel (this package's, Pyro's ``NUTS`` or
    ``HMC``), with one or several chains, and with runs of this package's ``MCMC``. Under arviz
    0.x the result is an ``InferenceData`` that agrees with ``arviz.from_pyro`` on every group and
    variable both produce; under arviz 1.x it is a :class:`xarray.DataTree` with the same groups.

    Groups:

    - ``posterior``: every latent site, constrained, dims ``(chain, draw, *dims[site])``, and
      every ``pyro.deterministic`` site, computed by replaying the model on each draw (one
      vectorised pass, or one model call per draw if the model does not vectorise).
    - ``sample_stats``: ``diverging`` ``(chain, draw)`` from the kernel's divergence indices;
      ``step_size`` ``(chain, draw)`` where the kernel reports the step size it used unchanged
      at every sampling iteration; any per-draw statistics the run exposes (below); and per
      chain (dims ``chain``): ``mean_acceptance_rate`` and, for this package's kernels,
      ``gradient_evaluations`` and ``potential_evaluations`` of the sampling phase (``*_warmup``
      for warmup).
    - ``observed_data``: every observed site (not the deterministic ones).
    - ``log_likelihood``: with ``log_likelihood=True``, the pointwise log-density of each observed
      site at each draw (one more pass over the draws).

    Per-draw statistics hooks (``accept_prob`` becomes ArviZ's ``acceptance_rate`` and
    ``num_steps`` ``n_steps``; other names are kept as given, e.g. ``energy_error``,
    ``step_size``):

    - ``mcmc.sample_stats``: a dict of arrays shaped ``(chain, draw)`` (e.g. from a run that
      batches its chains);
    - the kernel's ``diagnostics()`` (one dict per chain, as Pyro's ``MCMC`` collects them) with a
      key ``"sample stats"``: a dict of arrays shaped ``(draw,)`` for that chain.

    A ``diverging`` given there replaces the one built from divergence indices.

    :param mcmc: a :class:`pyro.infer.MCMC` (or subclass) after ``run``.
    :param coords: dimension name → coordinate values, for the dimensions named in ``dims``.
    :param dims: site name → names of its dimensions after ``chain`` and ``draw`` (one name per
        dimension of the site); also used for the site's ``observed_data`` and
        ``log_likelihood``.
    :param bool log_likelihood: add the ``log_likelihood`` group.
    :returns: ``arviz.InferenceData`` (arviz 0.x) or :class:`xarray.DataTree` (arviz 1.x).
    """
    samples = _kept_samples(mcmc)
    num_chains, num_draws = _sample_shape(mcmc, samples)
    coords = check.dict_or_none("coords", coords)
    dims = check.dict_or_none("dims", dims)
    log_likelihood = check.boolean("log_likelihood", log_likelihood)

    model = getattr(getattr(mcmc, "kernel", None), "model", None)
    args, kwargs = compat_pyro.mcmc_model_args(mcmc) or ((), {})
    sites = _model_sites(model, args, kwargs) if model is not None else None

    posterior = {name: _numpy(value) for name, value in samples.items()}
    observed: dict[str, np.ndarray] = {}
    deterministic: dict[str, tuple[int, ...]] = {}
    missing: list[str] = []
    if sites is not None:
        observed = {name: _numpy(value) for name, value in sites["observed"].items()}
        missing = [name for name in sites["latent"] if name not in samples]
        deterministic = sites["deterministic"]
        if deterministic and missing:
            warnings.warn(
                f"from_pyro: deterministic sites {sorted(deterministic)} left out: the run "
                f"kept no draws of the latent sites {missing}",
                stacklevel=2,
            )
            deterministic = {}
    if log_likelihood and sites is None:
        raise ValueError(
            "log_likelihood=True needs a model: this run's kernel was built from a "
            "potential_fn, which has no observed sites"
        )
    if log_likelihood and missing:
        raise ValueError(
            f"log_likelihood=True needs draws of every latent site; the run kept none of "
            f"{missing} (save_params, or discrete sites enumerated out)"
        )

    # Checked before the replay, which is the costly part.
    shapes = {name: value.shape[2:] for name, value in posterior.items()}
    shapes.update(deterministic)
    shapes.update({name: value.shape for name, value in observed.items()})
    _check_coords_dims(coords, dims, shapes)

    replayed = None
    if deterministic or (log_likelihood and observed):
        replayed = _replay(model, args, kwargs, samples, num_chains, num_draws)
    posterior.update({name: replayed(name, "value") for name in deterministic})
    groups = {
        "posterior": compat.dict_to_dataset(posterior, library=pyro, coords=coords, dims=dims),
        "sample_stats": _sample_stats(mcmc, num_chains, num_draws),
    }
    if log_likelihood and observed:
        pointwise = {name: replayed(name, "log_prob") for name in observed}
        groups["log_likelihood"] = compat.dict_to_dataset(
            pointwise, library=pyro, coords=coords, dims=dims, skip_event_dims=True
        )
    if observed:
        groups["observed_data"] = compat.dict_to_dataset(
            observed, library=pyro, coords=coords, dims=dims, sample_dims=()
        )
    return compat.from_datasets(groups)


# ---------------------------------------------------------------------------- the run


def _kept_samples(mcmc: Any) -> dict[str, torch.Tensor]:
    """The run's draws ``{site: (chain, draw, *shape)}``, or an error saying why there are none."""
    if not hasattr(mcmc, "get_samples") or not hasattr(mcmc, "num_chains"):
        if hasattr(mcmc, "get_statistics"):
            raise ValueError(
                "mcmc: a StreamingMCMC keeps no samples, only statistics; run pyro.infer.MCMC "
                "to convert the draws"
            )
        raise ValueError(
            f"mcmc must be a pyro.infer.MCMC after run(); got {type(mcmc).__name__}"
        )
    if compat_pyro.mcmc_samples(mcmc) is None:
        if compat_pyro.mcmc_model_args(mcmc) is None:
            raise ValueError("mcmc has not run: call mcmc.run(...) before from_pyro(mcmc)")
        raise ValueError("mcmc kept no samples: its run did not finish")
    samples = mcmc.get_samples(group_by_chain=True)
    if not samples:
        raise ValueError("mcmc kept no samples: save_params selected no site")
    return dict(samples)


def _sample_shape(mcmc: Any, samples: Mapping[str, torch.Tensor]) -> tuple[int, int]:
    first = next(iter(samples.values()))
    return int(first.shape[0]), int(first.shape[1])


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _chain_diagnostics(mcmc: Any, num_chains: int) -> list[dict]:
    """The kernel's ``diagnostics()`` of each chain, as the MCMC object keeps them."""
    per_chain = compat_pyro.mcmc_chain_diagnostics(mcmc)
    if per_chain is None or len(per_chain) != num_chains:
        return [{} for _ in range(num_chains)]
    return [dict(d) if isinstance(d, Mapping) else {} for d in per_chain]


def _sample_stats(mcmc: Any, num_chains: int, num_draws: int) -> Any:
    """The ``sample_stats`` dataset: per-draw statistics, then per-chain ones (dims ``chain``)."""
    diagnostics = _chain_diagnostics(mcmc, num_chains)
    per_draw: dict[str, np.ndarray] = {}

    if all("divergences" in d for d in diagnostics):
        diverging = np.zeros((num_chains, num_draws), dtype=bool)
        for chain, d in enumerate(diagnostics):
            diverging[chain, np.asarray(list(d["divergences"]), dtype=int)] = True
        per_draw["diverging"] = diverging

    step_sizes = _fixed_step_sizes(mcmc, diagnostics)
    if step_sizes is not None:
        per_draw["step_size"] = np.repeat(step_sizes[:, None], num_draws, axis=1)

    if all(isinstance(d.get("sample stats"), Mapping) for d in diagnostics):
        names = set.intersection(*(set(d["sample stats"]) for d in diagnostics))
        for name in sorted(names):
            rows = [_numpy(d["sample stats"][name]) for d in diagnostics]
            if any(row.shape != (num_draws,) for row in rows):
                raise ValueError(
                    f"kernel diagnostics 'sample stats'[{name!r}] must have one value per draw, "
                    f"shape ({num_draws},); got {[row.shape for row in rows]}"
                )
            per_draw[_ARVIZ_NAMES.get(name, name)] = np.stack(rows)

    hooked = getattr(mcmc, "sample_stats", None)
    if hooked is not None:
        if not isinstance(hooked, Mapping):
            raise ValueError(
                f"mcmc.sample_stats must be a dict of arrays shaped (chain, draw); got "
                f"{type(hooked).__name__}"
            )
        for name, value in hooked.items():
            value = _numpy(value)
            if value.shape != (num_chains, num_draws):
                raise ValueError(
                    f"mcmc.sample_stats[{name!r}] must have shape (chain, draw) = "
                    f"({num_chains}, {num_draws}); got {value.shape}"
                )
            per_draw[_ARVIZ_NAMES.get(str(name), str(name))] = value

    dataset = compat.dict_to_dataset(per_draw, library=pyro)
    per_chain = _per_chain_stats(diagnostics)
    chain_coord = dataset["chain"].values if "chain" in dataset.coords else np.arange(num_chains)
    for name, values in per_chain.items():
        dataset[name] = ("chain", values)
    if per_chain and "chain" not in dataset.coords:
        dataset = dataset.assign_coords(chain=chain_coord)
    return dataset


def _fixed_step_sizes(mcmc: Any, diagnostics: list[dict]) -> np.ndarray | None:
    """Each chain's step size when the kernel used it unchanged at every sampling iteration.

    This package's kernels report it (``"step size"``) unless their step size is jittered;
    Pyro's ``HMC``/``NUTS`` do not report it, but with one chain the kernel object that ran is
    the one we hold, and their step size is fixed after warmup.
    """
    kernel = getattr(mcmc, "kernel", None)
    if getattr(kernel, "step_size_jitter", 0) > 0:
        return None
    if diagnostics and all(_is_real(d.get("step size")) for d in diagnostics):
        return np.array([float(d["step size"]) for d in diagnostics])
    if (
        len(diagnostics) == 1
        and isinstance(kernel, pyro.infer.HMC)
        and _is_real(getattr(kernel, "step_size", None))
    ):
        return np.array([float(kernel.step_size)])
    return None


def _is_real(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.dim() == 0
    return isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)


def _per_chain_stats(diagnostics: list[dict]) -> dict[str, np.ndarray]:
    stats: dict[str, np.ndarray] = {}
    if diagnostics and all(_is_real(d.get("acceptance rate")) for d in diagnostics):
        stats["mean_acceptance_rate"] = np.array(
            [float(d["acceptance rate"]) for d in diagnostics]
        )
    for key, name in _CHAIN_COUNTERS.items():
        if diagnostics and all(isinstance(d.get(key), Mapping) for d in diagnostics):
            for phase, suffix in (("sampling", ""), ("warmup", "_warmup")):
                if all(phase in d[key] for d in diagnostics):
                    stats[name + suffix] = np.array([int(d[key][phase]) for d in diagnostics])
    return stats


# ---------------------------------------------------------------------------- the model


def _model_sites(model: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """Names of the latent sites, shapes of the deterministic ones, and the observed values, from
    one trace of the model (run under a forked RNG, so the caller's random stream is untouched)."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        trace = prune_subsample_sites(poutine.trace(model).get_trace(*args, **kwargs))
    latent: list[str] = []
    deterministic: dict[str, tuple[int, ...]] = {}
    observed: dict[str, torch.Tensor] = {}
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site["infer"].get("_do_not_trace"):
            continue
        if site["infer"].get("_deterministic"):
            deterministic[name] = tuple(site["value"].shape)
        elif site["is_observed"]:
            observed[name] = site["value"]
        else:
            latent.append(name)
    return {"latent": latent, "deterministic": deterministic, "observed": observed}


def _replay(
    model: Any,
    args: tuple,
    kwargs: dict,
    samples: Mapping[str, torch.Tensor],
    num_chains: int,
    num_draws: int,
) -> Any:
    """Run the model on every draw; returns ``get(site, "value" | "log_prob")`` giving an array
    ``(chain, draw, *per-draw shape)``.

    One vectorised trace (Pyro's ``Predictive``, as ``arviz.from_pyro`` does) when the model
    broadcasts over a batch of draws, else one conditioned trace per draw. The per-draw shape
    comes from a trace at the first draw, so both paths give the same arrays.
    """
    flat = {name: value.reshape((-1, *value.shape[2:])) for name, value in samples.items()}
    total = num_chains * num_draws

    def conditioned_trace(index: int) -> Any:
        draw = {name: value[index] for name, value in flat.items()}
        return poutine.trace(poutine.condition(model, data=draw)).get_trace(*args, **kwargs)

    def quantity(site: dict, what: str) -> torch.Tensor:
        return site["value"] if what == "value" else site["fn"].log_prob(site["value"])

    with torch.random.fork_rng(devices=[]), torch.no_grad():
        reference = conditioned_trace(0)
        try:
            predictive = pyro.infer.Predictive(model, posterior_samples=flat)
            vectorised = predictive.get_vectorized_trace(*args, **kwargs)
        except Exception:  # a model that does not broadcast over draws: one trace per draw
            vectorised = None
    cache: dict[tuple[str, str], np.ndarray] = {}
    traces: list[Any] = []

    def get(name: str, what: str) -> np.ndarray:
        key = (name, what)
        if key in cache:
            return cache[key]
        with torch.no_grad():
            shape = tuple(quantity(reference.nodes[name], what).shape)
            result = None
            if vectorised is not None and name in vectorised.nodes:
                value = quantity(vectorised.nodes[name], what)
                if value.numel() == total * int(np.prod(shape, dtype=int)):
                    result = value.reshape((num_chains, num_draws, *shape))
            if result is None:
                if not traces:
                    with torch.random.fork_rng(devices=[]):
                        traces.extend(conditioned_trace(i) for i in range(total))
                result = torch.stack([quantity(t.nodes[name], what) for t in traces])
                result = result.reshape((num_chains, num_draws, *shape))
        cache[key] = _numpy(result)
        return cache[key]

    return get


def _check_coords_dims(
    coords: Mapping[str, Sequence] | None,
    dims: Mapping[str, Sequence[str]] | None,
    shapes: Mapping[str, tuple[int, ...]],
) -> None:
    """``dims`` names one dimension per axis of known sites; ``coords`` gives as many values as
    each dimension it names has, for dimensions that ``dims`` uses."""
    sizes: dict[str, int] = {}
    for site, names in (dims or {}).items():
        if site not in shapes:
            raise ValueError(
                f"dims names {site!r}, which is not a site of this run; sites: {sorted(shapes)}"
            )
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"dims[{site!r}] must be a list of dimension names; got {names!r}")
        shape = tuple(shapes[site])
        if len(names) != len(shape):
            raise ValueError(
                f"dims[{site!r}] has {len(names)} names {list(names)} but site {site!r} has "
                f"{len(shape)} dimensions after chain and draw (shape {shape})"
            )
        for name, size in zip(names, shape, strict=True):
            if name in SAMPLE_DIMS:
                raise ValueError(f"dims[{site!r}] may not name {name!r}: it is a sample dimension")
            if sizes.setdefault(name, size) != size:
                raise ValueError(
                    f"dims gives dimension {name!r} sizes {sizes[name]} and {size} (site {site!r})"
                )
    for name, values in (coords or {}).items():
        if name not in sizes:
            raise ValueError(
                f"coords names dimension {name!r}, which no entry of dims uses; dims use "
                f"{sorted(sizes)}"
            )
        length = np.shape(np.asarray(values))
        if len(length) != 1 or length[0] != sizes[name]:
            raise ValueError(
                f"coords[{name!r}] must hold {sizes[name]} values (the size of that dimension); "
                f"got shape {length}"
            )
