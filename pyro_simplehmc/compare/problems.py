r"""What a comparison runs on: a :class:`Problem`, made from a target with known truth
(:func:`from_target`), from a user's Pyro model (:func:`from_model`), or from a ported posteriordb
posterior with its reference draws as the truth (:func:`from_posterior`).

A problem gives the kernels a potential on the unconstrained sites, a starting point per chain,
and the transforms back to the constrained space; it turns the draws into flat vectors of the
numbers that are validated, each with a name (``"x[0]"``, ``"sigma"``, ``"beta[1]"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyro
import torch
from pyro.infer.autoguide import init_to_uniform, init_to_value
from pyro.infer.mcmc.util import initialize_model
from torch import Tensor

from ..checks.targets import Target
from ..core import validation as check


@dataclass
class Problem:
    """Everything the runner needs to run kernels on one distribution.

    :ivar name: a short name, for reports and file names.
    :ivar description: one line for reports.
    :ivar coords: the name of each validated number.
    :ivar potential_fn: :math:`U` on a dict of unconstrained sites.
    :ivar initial_params: ``seed -> {site: unconstrained tensor}``, the start of chain ``seed``
        (the same for every kernel).
    :ivar flatten: ``{site: constrained draws (N, *shape)} -> (N, D)`` tensor of validated
        numbers.
    :ivar transforms: unconstrained-to-constrained transforms by site, for
        :class:`pyro.infer.MCMC` (empty when the sites are unconstrained).
    :ivar model: the Pyro model, for kernels that take only a model (Pyro's
        :class:`~pyro.infer.RandomWalkKernel`), with its arguments.
    :ivar truth_mean: the known mean of each number, or ``None`` (the reference run is the
        truth).
    :ivar truth_var: the known variances.
    :ivar truth_mean_se: standard errors of :attr:`truth_mean` when it is an estimate.
    :ivar truth_var_se: standard errors of :attr:`truth_var` when it is an estimate.
    :ivar truth_ess: the ESS behind an estimated truth whose :attr:`truth_var_se` is not given;
        the runner then takes :math:`\\sigma^2 \\sqrt{(\\kappa - 1) / \\mathrm{ESS}}`, with the
        kurtosis :math:`\\kappa` from the kernel's draws.
    :ivar deterministic_sites: the model's deterministic sites, reported and not tested.
    :ivar target: the :class:`~pyro_simplehmc.checks.targets.Target` it came from, if any.
    :ivar max_plate_nesting: the model's bound on nested plates, when it was given.
    """

    name: str
    description: str
    coords: list[str]
    potential_fn: Callable[[dict[str, Tensor]], Tensor]
    initial_params: Callable[[int], dict[str, Tensor]]
    flatten: Callable[[Mapping[str, Tensor]], Tensor]
    transforms: dict = field(default_factory=dict)
    model: Callable | None = None
    model_args: tuple = ()
    model_kwargs: dict = field(default_factory=dict)
    truth_mean: np.ndarray | None = None
    truth_var: np.ndarray | None = None
    truth_mean_se: np.ndarray | None = None
    truth_var_se: np.ndarray | None = None
    truth_ess: np.ndarray | None = None
    deterministic_sites: tuple[str, ...] = ()
    target: Target | None = None
    max_plate_nesting: int | None = None

    @property
    def dim(self) -> int:
        return len(self.coords)


def element_names(site: str, shape: tuple[int, ...], base: int = 0) -> list[str]:
    """``["site"]`` for a scalar, else ``"site[i]"``, ``"site[i,j]"``... in row-major order."""
    if len(shape) == 0:
        return [site]
    return [f"{site}[{','.join(str(i + base) for i in index)}]" for index in np.ndindex(*shape)]


def initial_point(target: Target, seed: int) -> dict[str, Tensor]:
    """The starting point of chain ``seed``: the target's, jittered by :math:`\\mathcal{U}(-1, 1)`.

    A private generator keeps it the same for every kernel, whatever the global RNG has done.
    """
    generator = torch.Generator().manual_seed(seed)
    return {
        name: value + 2 * torch.rand(value.shape, generator=generator, dtype=value.dtype) - 1
        for name, value in target.initial_params.items()
    }


def from_target(target: Target) -> Problem:
    """A problem from a :class:`~pyro_simplehmc.checks.targets.Target`: its truth is known."""
    if not isinstance(target, Target):
        raise ValueError(f"target must be a pyro_simplehmc.checks.targets.Target; got {target!r}")
    coords = [
        name
        for site in target.sites
        for name in element_names(site, tuple(target.initial_params[site].shape))
    ]
    return Problem(
        name=target.name,
        description=target.description,
        coords=coords,
        potential_fn=target.potential_fn,
        initial_params=lambda seed: initial_point(target, seed),
        flatten=target.flatten,
        model=target.model,
        truth_mean=target.mean.numpy(),
        truth_var=target.var.numpy(),
        truth_mean_se=None if target.mean_se is None else target.mean_se.numpy(),
        truth_var_se=None if target.var_se is None else target.var_se.numpy(),
        target=target,
    )


def as_problem(target: Target | Problem) -> Problem:
    """``target`` as a :class:`Problem` (a :class:`~pyro_simplehmc.checks.targets.Target` is
    converted with :func:`from_target`)."""
    return target if isinstance(target, Problem) else from_target(target)


def _initialize(model, model_args, model_kwargs, init_strategy, max_plate_nesting):
    try:
        return initialize_model(
            model,
            model_args,
            model_kwargs,
            init_strategy=init_strategy,
            max_plate_nesting=max_plate_nesting,
        )
    except Exception as error:  # the user's model: say which call failed, keep the message
        raise ValueError(
            f"model: running it with model_args and model_kwargs to find its latent sites "
            f"failed with {type(error).__name__}: {error}"
        ) from error


def from_model(
    model: Callable,
    model_args: tuple | list = (),
    model_kwargs: Mapping[str, Any] | None = None,
    *,
    init_strategy: Callable = init_to_uniform,
    max_plate_nesting: int | None = None,
    name: str | None = None,
    description: str | None = None,
) -> Problem:
    """A problem from a Pyro model: every element of every latent site, constrained.

    Chain ``seed`` starts where ``init_strategy`` puts it after ``pyro.set_rng_seed(seed)``; with
    the default :func:`~pyro.infer.autoguide.init_to_uniform` (uniform in :math:`(-2, 2)` on the
    unconstrained space) the chains start apart, so that R-hat can see a stuck chain.

    :param model: the Pyro model.
    :param model_args: its positional arguments.
    :param model_kwargs: its keyword arguments.
    :param init_strategy: a Pyro init strategy.
    :param max_plate_nesting: Pyro's bound on nested plates (guessed if ``None``).
    :param name: the name in reports (default: the model's ``__name__``).
    :param description: one line for reports.
    :raises ValueError: if the model fails when traced, or has no continuous latent site.
    """
    check.callable_or_none("model", model)
    if model is None:
        raise ValueError("model must be a callable Pyro model; got None")
    model_args = check.tuple_or_list("model_args", model_args)
    model_kwargs = dict(check.dict_or_none("model_kwargs", model_kwargs) or {})
    check.callable_or_none("init_strategy", init_strategy)
    check.nonnegative_int_or_none("max_plate_nesting", max_plate_nesting)
    init, potential_fn, transforms, trace = _initialize(
        model, model_args, model_kwargs, init_strategy, max_plate_nesting
    )
    if not init:
        raise ValueError(
            "model has no continuous latent sample site: there is nothing for a kernel to sample"
        )
    sites = [site for site in trace.nodes if site in init]
    shapes = {site: tuple(trace.nodes[site]["value"].shape) for site in sites}
    deterministic = tuple(
        site["name"]
        for site in trace.nodes.values()
        if site["type"] == "sample" and site["infer"].get("_deterministic")
    )
    starts: dict[int, dict[str, Tensor]] = {}

    def initial_params(seed: int) -> dict[str, Tensor]:
        if seed not in starts:
            pyro.set_rng_seed(seed)  # the runner reseeds before the chain runs
            starts[seed] = _initialize(
                model, model_args, model_kwargs, init_strategy, max_plate_nesting
            )[0]
        return {k: v.clone() for k, v in starts[seed].items()}

    def flatten(samples: Mapping[str, Tensor]) -> Tensor:
        parts = [samples[site].reshape(samples[site].shape[0], -1) for site in sites]
        return torch.cat(parts, dim=-1)

    label = name or getattr(model, "__name__", "model")
    return Problem(
        name=label,
        description=description or f"Pyro model {label}",
        coords=[n for site in sites for n in element_names(site, shapes[site])],
        potential_fn=potential_fn,
        initial_params=initial_params,
        flatten=flatten,
        transforms=transforms,
        model=model,
        model_args=model_args,
        model_kwargs=model_kwargs,
        deterministic_sites=deterministic,
        max_plate_nesting=max_plate_nesting,
    )


def from_posterior(name: str) -> Problem:
    """A ported posteriordb posterior, with posteriordb's reference summary as the truth.

    The validated numbers are the quantities of the reference draws (for the non-centred eight
    schools, ``theta`` rather than ``theta_trans``), 1-based as posteriordb names them. The
    truth's standard errors are posteriordb's MCSE of each mean and, for the variances, the
    normal-theory error from posteriordb's bulk ESS with the kurtosis of the kernel's draws.

    :param name: a key of :data:`pyro_simplehmc.checks.posteriordb.POSTERIORS`.
    """
    from ..checks.posteriordb import flatten_draws, load_posterior

    posterior, data, reference = load_posterior(name)
    init_strategy = (
        init_to_uniform
        if posterior.init_values is None
        else init_to_value(values=posterior.init_values(data))
    )
    problem = from_model(
        posterior.model,
        (data,),
        init_strategy=init_strategy,
        max_plate_nesting=posterior.max_plate_nesting,
        name=name,
        description=f"posteriordb {name}, reference: 10,000 Stan NUTS draws",
    )
    quantities = list(reference)

    def flatten(samples: Mapping[str, Tensor]) -> Tensor:
        derived = posterior.reference_quantities(samples, data)
        columns = flatten_draws({k: v.unsqueeze(0) for k, v in derived.items()})
        return torch.as_tensor(np.stack([columns[q][0] for q in quantities], axis=-1))

    problem.flatten = flatten
    problem.coords = quantities
    problem.truth_mean = np.array([reference[q]["mean"] for q in quantities])
    problem.truth_var = np.array([reference[q]["sd"] ** 2 for q in quantities])
    problem.truth_mean_se = np.array(
        [
            reference[q].get(
                "posteriordb_mcse_mean",
                reference[q]["sd"] / np.sqrt(reference[q]["posteriordb_ess_bulk"]),
            )
            for q in quantities
        ]
    )
    problem.truth_ess = np.array([reference[q]["posteriordb_ess_bulk"] for q in quantities])
    return problem
