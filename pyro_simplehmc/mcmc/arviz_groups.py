"""What each ArviZ group of :func:`~pyro_simplehmc.mcmc.arviz_io.from_pyro` holds, as numpy
arrays: the run's draws and sampler statistics, the model's sites, the model replayed on the
draws, and the dictionaries of draws that ``pyro.infer.Predictive`` returns.

:mod:`~pyro_simplehmc.mcmc.arviz_io` checks the arguments and assembles the groups from these.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

from ..kernels import _pyro_compat as compat_pyro
from . import arviz_compat as compat

__all__ = [
    "NOT_VECTORIZED",
    "Replay",
    "kept_samples",
    "model_sites",
    "numpy",
    "predictive_draws",
    "prior_draws",
    "sample_stats",
]

#: Per-draw statistic names of Pyro/NumPyro kernels → ArviZ's names (others are kept as given).
_ARVIZ_NAMES = {"accept_prob": "acceptance_rate", "num_steps": "n_steps"}

#: Kernel diagnostics counted per chain → the ``sample_stats`` variable (dims ``chain``) that
#: holds their sampling-phase count; the warmup count goes to the same name + ``"_warmup"``.
_CHAIN_COUNTERS = {
    "gradient evaluations": "gradient_evaluations",
    "potential evaluations": "potential_evaluations",
}

#: The warning of arviz 0.x's ``from_pyro`` when the model does not vectorise over draws, word
#: for word, so that filters written for it catch ours.
NOT_VECTORIZED = (
    "Could not get vectorized trace, log_likelihood group will be omitted. "
    "Check your model vectorization or set log_likelihood=False"
)


def numpy(value: Any) -> np.ndarray:
    """A tensor (detached, on the CPU) or anything array-like as a numpy array."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


# ---------------------------------------------------------------------------- the run


def kept_samples(mcmc: Any) -> dict[str, torch.Tensor]:
    """The run's draws ``{site: (chain, draw, *shape)}``, or an error saying why there are none."""
    if not hasattr(mcmc, "get_samples") or not hasattr(mcmc, "num_chains"):
        if hasattr(mcmc, "get_statistics"):
            raise ValueError(
                "posterior: a StreamingMCMC keeps no samples, only statistics; run "
                "pyro.infer.MCMC to convert the draws"
            )
        raise ValueError(
            f"posterior must be a pyro.infer.MCMC after run(), or None; got {type(mcmc).__name__}"
        )
    if compat_pyro.mcmc_samples(mcmc) is None:
        if compat_pyro.mcmc_model_args(mcmc) is None:
            raise ValueError(
                "posterior: the MCMC has not run; call mcmc.run(...) before from_pyro(mcmc)"
            )
        raise ValueError("posterior: the MCMC kept no samples; its run did not finish")
    samples = mcmc.get_samples(group_by_chain=True)
    if not samples:
        raise ValueError("posterior: the MCMC kept no samples; save_params selected no site")
    return dict(samples)


def _chain_diagnostics(mcmc: Any, num_chains: int) -> list[dict]:
    """The kernel's ``diagnostics()`` of each chain, as the MCMC object keeps them."""
    per_chain = compat_pyro.mcmc_chain_diagnostics(mcmc)
    if per_chain is None or len(per_chain) != num_chains:
        return [{} for _ in range(num_chains)]
    return [dict(d) if isinstance(d, Mapping) else {} for d in per_chain]


def sample_stats(mcmc: Any, num_chains: int, num_draws: int) -> Any:
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
            rows = [numpy(d["sample stats"][name]) for d in diagnostics]
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
            value = numpy(value)
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


def model_sites(model: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
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


class Replay:
    """The model run on every draw of a run: deterministic values and pointwise log-densities.

    The vectorised trace is the one ``arviz.from_pyro`` uses (Pyro's ``Predictive`` over all
    draws at once). It is trusted only where it reproduces, at the first and the last draw, the
    model conditioned on that one draw: a model that does not broadcast over a batch of draws
    may fail in the vectorised pass, or run and silently pair draws with data points (when the
    number of draws equals the length of the data).

    :param model: the Pyro model.
    :param args: its positional arguments, as the run was given them.
    :param kwargs: its keyword arguments.
    :param samples: site → draws ``(chain, draw, *shape)``.
    """

    def __init__(self, model: Any, args: tuple, kwargs: dict, samples: Mapping[str, Any]):
        first = next(iter(samples.values()))
        self._num_chains, self._num_draws = int(first.shape[0]), int(first.shape[1])
        self._total = self._num_chains * self._num_draws
        self._model, self._args, self._kwargs = model, args, kwargs
        self._flat = {name: v.reshape((-1, *v.shape[2:])) for name, v in samples.items()}
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            self._ends = [self._conditioned_trace(0), self._conditioned_trace(self._total - 1)]
            try:
                predictive = pyro.infer.Predictive(model, posterior_samples=self._flat)
                self._vectorised = predictive.get_vectorized_trace(*args, **kwargs)
            except Exception:  # the model does not broadcast over draws
                self._vectorised = None
        self._traces: list[Any] = []

    def _conditioned_trace(self, index: int) -> Any:
        draw = {name: value[index] for name, value in self._flat.items()}
        model = poutine.condition(self._model, data=draw)
        return poutine.trace(model).get_trace(*self._args, **self._kwargs)

    @staticmethod
    def _quantity(site: dict, what: str) -> torch.Tensor:
        return site["value"] if what == "value" else site["fn"].log_prob(site["value"])

    def _from_vectorised(self, name: str, what: str) -> np.ndarray | None:
        """``(chain, draw, *shape)`` from the vectorised trace, or None where it is not the
        model's value at each draw."""
        if self._vectorised is None or name not in self._vectorised.nodes:
            return None
        with torch.no_grad():
            ends = [self._quantity(trace.nodes[name], what) for trace in self._ends]
            try:
                value = self._quantity(self._vectorised.nodes[name], what)
            except Exception:  # a log_prob that does not broadcast
                return None
            if value.numel() != self._total * ends[0].numel():
                return None
            value = value.reshape((self._total, *ends[0].shape))
            for index, end in zip((0, -1), ends, strict=True):
                if not torch.allclose(value[index], end, rtol=1e-4, atol=1e-6, equal_nan=True):
                    return None
        return numpy(value.reshape((self._num_chains, self._num_draws, *ends[0].shape)))

    def deterministic(self, name: str) -> np.ndarray:
        """Site ``name``'s value at each draw: from the vectorised trace where it holds, else
        from one model call per draw."""
        vectorised = self._from_vectorised(name, "value")
        if vectorised is not None:
            return vectorised
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            if not self._traces:
                self._traces = [self._conditioned_trace(i) for i in range(self._total)]
            value = torch.stack([t.nodes[name]["value"] for t in self._traces])
        return numpy(value.reshape((self._num_chains, self._num_draws, *value.shape[1:])))

    def log_likelihood(self, names: list[str]) -> dict[str, np.ndarray] | None:
        """Pointwise log-density of each observed site ``names`` at each draw, from the
        vectorised trace; None (with arviz 0.x's warning) where the model does not vectorise."""
        pointwise = {name: self._from_vectorised(name, "log_prob") for name in names}
        if any(value is None for value in pointwise.values()):
            warnings.warn(NOT_VECTORIZED, UserWarning, stacklevel=4)
            return None
        return pointwise  # type: ignore[return-value]


# ---------------------------------------------------------------------------- Predictive's dicts


def _leading_draws(argument: str, name: str, value: Any) -> np.ndarray:
    array = numpy(value)
    numeric = np.issubdtype(array.dtype, np.number) or array.dtype == bool
    if array.ndim == 0 or not numeric:
        raise ValueError(
            f"{argument}[{name!r}] must be an array of draws with a leading draw dimension "
            f"(as pyro.infer.Predictive returns); got {type(value).__name__} of shape "
            f"{np.shape(array)} and dtype {array.dtype}"
        )
    return array


def predictive_draws(
    argument: str, draws: Mapping[str, Any], num_chains: int, num_draws: int
) -> dict[str, np.ndarray]:
    """Posterior predictive draws or predictions as arrays ``(chain, draw, *shape)``.

    As arviz 0.x's ``from_pyro``: an array already ``(num_chains, num_draws, ...)`` is kept, one
    of ``num_chains * num_draws`` draws (``Predictive`` on ``mcmc.get_samples()``) is split into
    the chains in order, and any other is kept as one chain, with a warning.

    :param argument: the argument's name, for messages.
    :param draws: site → draws.
    """
    result = {}
    for name, value in draws.items():
        array = _leading_draws(argument, name, value)
        shape = array.shape
        if len(shape) >= 2 and shape[:2] == (num_chains, num_draws):
            result[name] = array
        elif shape[0] == num_chains * num_draws:
            result[name] = array.reshape((num_chains, num_draws, *shape[1:]))
        else:
            warnings.warn(
                f"{argument}[{name!r}] has {shape[0]} draws, not chain × draw = {num_chains} × "
                f"{num_draws}: it is kept as one chain of {shape[0]} draws, which may leave "
                "some draws or whole chains out (as arviz.from_pyro does)",
                UserWarning,
                stacklevel=3,
            )
            result[name] = array[None]
    return result


def prior_draws(argument: str, draws: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Prior draws as arrays ``(1, draw, *shape)``: one chain, as arviz 0.x's ``from_pyro``.

    ``Predictive`` pads a site outside the model's plates with one axis of size 1 per plate
    (shape ``(draw, 1, *shape)``); arviz 0.x squeezes every axis of size 1 away, and so do we,
    except the draw axis (one prior draw stays a draw).
    """
    result = {}
    for name, value in draws.items():
        array = _leading_draws(argument, name, value)
        singleton = tuple(axis for axis in range(1, array.ndim) if array.shape[axis] == 1)
        result[name] = np.squeeze(array, axis=singleton)[None]
    return result
