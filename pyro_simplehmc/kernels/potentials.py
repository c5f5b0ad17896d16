r"""Potential energies of a batch of chains: flat positions ``(C, D)`` in, energies ``(C,)`` out.

The kernels evaluate :math:`U` for every chain at once. Three ways to get there from a Pyro model,
fastest first:

- :func:`plate_potential` runs the model once under an outer :func:`pyro.plate` over chains, at
  the dimension left of every plate of the model (as Pyro's vectorized ELBOs do), and keeps each
  chain's log density apart;
- :func:`vmap_potential` maps the one-chain potential over the chains with
  :func:`torch.func.vmap`;
- :func:`loop_potential` calls the one-chain potential once per chain.

Some models are silently wrong under the plate (a ``pyro.factor`` of a full sum mixes the
chains; a matrix product with an event dimension broadcasts wrongly) and some code cannot be
vmapped (``.item()``, in-place writes, data-dependent branches), so :func:`choose_potential` checks
each candidate against the loop on a few chains and takes the first that agrees, warning when it
has to fall back.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample
from torch import Tensor

from ..core.ravel import DictRavel
from .evaluation import is_numerical_error, value_and_grad

#: ``q (C, D) -> U (C,)``
BatchedPotential = Callable[[Tensor], Tensor]

#: The name of the plate over chains; a model may not use it.
CHAIN_PLATE = "_simplehmc_chains"


def loop_potential(potential_fn: Callable, ravel: DictRavel) -> BatchedPotential:
    """One call of the one-chain ``potential_fn`` (a dict of sites in) per chain.

    A numerical fault in one chain gives that chain a NaN energy (and so a rejection) and leaves
    the others alone; any other error is the model's and is raised.
    """

    def potential(q: Tensor) -> Tensor:
        energies = []
        for x in q:
            try:
                energies.append(potential_fn(ravel.unflatten(x)).reshape(()))
            except Exception as error:
                if not is_numerical_error(error):
                    raise
                energies.append(torch.full((), math.nan, dtype=q.dtype, device=q.device))
        return torch.stack(energies)

    return potential


def single_chain_potential(potential_fn: Callable, ravel: DictRavel) -> Callable:
    """One chain's potential on its flat position, ``(D,) -> ()``: Pyro's own, on the sites
    (for one site, the flat position itself: nothing is added to the autograd graph)."""

    def potential(x: Tensor) -> Tensor:
        return potential_fn(ravel.unflatten(x))

    return potential


def vmap_potential(potential_fn: Callable, ravel: DictRavel) -> BatchedPotential:
    """The one-chain potential mapped over chains with :func:`torch.func.vmap`."""
    mapped = torch.func.vmap(lambda x: potential_fn(ravel.unflatten(x)).reshape(()))
    return mapped


def batched_user_potential(potential_fn: Callable, ravel: DictRavel) -> BatchedPotential:
    """A user's ``potential_fn`` that takes sites with a leading chain dimension itself."""

    def potential(q: Tensor) -> Tensor:
        u = potential_fn(ravel.unflatten(q))
        batch = q.shape[:1]
        if isinstance(u, Tensor) and u.shape == batch:  # the usual case: no reshape node
            return u
        if not isinstance(u, Tensor) or u.shape != (*batch, 1):
            shape = tuple(u.shape) if isinstance(u, Tensor) else type(u).__name__
            raise ValueError(
                "potential_fn was declared batched (batched_potential=True), so it must return "
                f"one energy per chain, shape ({q.shape[0]},); got {shape}"
            )
        return u.reshape(batch)

    return potential


def model_potential(model: Callable, model_args: tuple, model_kwargs: Mapping, transforms: Mapping):
    """The one-chain potential of ``model`` (a dict of unconstrained sites in), as Pyro's own but
    without its enumeration wrapper, which reads ``tensor.data`` and so cannot be vmapped.

    For models without enumerated discrete sites it is the same function.
    """

    def potential(params: Mapping[str, Tensor]) -> Tensor:
        constrained = {name: transforms[name].inv(value) for name, value in params.items()}
        trace = poutine.trace(poutine.condition(model, constrained)).get_trace(
            *model_args, **model_kwargs
        )
        log_joint = trace.log_prob_sum()
        for name, value in params.items():
            jacobian = transforms[name].log_abs_det_jacobian(constrained[name], value)
            log_joint = log_joint - jacobian.sum()
        return -log_joint

    return potential


def _per_chain(term: Tensor, num_chains: int, chain_dim: int) -> Tensor:
    """Sum a log-density term over everything but the chain dimension (at ``chain_dim`` < 0).

    A term without that dimension (or of size 1 there) does not depend on the chain: every chain
    gets all of it.
    """
    if term.dim() < -chain_dim:
        return term.sum().expand(num_chains)
    term = term.reshape(*term.shape[: term.dim() + chain_dim + 1], -1).sum(-1)
    return term.reshape(-1, term.shape[-1]).sum(0).expand(num_chains)


def plate_potential(
    model: Callable,
    model_args: tuple,
    model_kwargs: Mapping,
    transforms: Mapping,
    ravel: DictRavel,
    prototype_trace,
    num_chains: int,
) -> BatchedPotential:
    """The potential of ``num_chains`` chains from one run of ``model`` under a plate over chains.

    Each site gets the chain dimension left of every plate of the model (``chain_dim``), so its
    value has shape ``(C, 1, ..., 1) + site_shape``. The log density is Pyro's (scales and masks
    included) and the Jacobian of each transform is subtracted, as in Pyro's own potential, but
    both are summed per chain.
    """
    sites = [
        s
        for s in prototype_trace.nodes.values()
        if s["type"] == "sample" and not site_is_subsample(s)
    ]
    nesting = [-f.dim for s in sites for f in s["cond_indep_stack"] if f.vectorized]
    nesting += [len(s["fn"].batch_shape) for s in sites]
    chain_dim = -(max(nesting, default=0) + 1)
    shapes = {}
    for name, shape in zip(ravel.names, ravel.shapes, strict=True):
        batch_ndim = len(prototype_trace.nodes[name]["fn"].batch_shape)
        shapes[name] = (num_chains,) + (1,) * (-chain_dim - 1 - batch_ndim) + tuple(shape)

    def potential(q: Tensor) -> Tensor:
        params = ravel.unflatten(q)
        log_joint = q.new_zeros(num_chains)
        constrained = {}
        for name, value in params.items():
            value = value.reshape(shapes[name])
            transform = transforms[name]
            constrained[name] = transform.inv(value)
            jacobian = transform.log_abs_det_jacobian(constrained[name], value)
            log_joint = log_joint - _per_chain(jacobian, num_chains, chain_dim)
        with pyro.plate(CHAIN_PLATE, num_chains, dim=chain_dim):
            trace = poutine.trace(poutine.condition(model, constrained)).get_trace(
                *model_args, **model_kwargs
            )
        trace.compute_log_prob()
        for site in trace.nodes.values():
            if site["type"] == "sample" and not site_is_subsample(site):
                log_joint = log_joint + _per_chain(site["log_prob"], num_chains, chain_dim)
        return -log_joint

    return potential


def jit_compiled(
    potential: BatchedPotential, q: Tensor, jit_options: Mapping | None = None
) -> BatchedPotential:
    """``potential`` traced with :func:`torch.jit.trace` at ``q`` (unchanged, with a warning, if it
    cannot be traced)."""
    options = {"check_trace": False, **(jit_options or {})}
    try:
        with pyro.validation_enabled(False):
            return torch.jit.trace(potential, (q.detach(),), **options)
    except Exception as error:
        warnings.warn(
            f"jit_compile: the batched potential could not be traced ({type(error).__name__}: "
            f"{error}); running it uncompiled",
            RuntimeWarning,
            stacklevel=3,
        )
        return potential


def _agrees(candidate: BatchedPotential, reference: BatchedPotential, q: Tensor) -> str | None:
    """``None`` if ``candidate`` matches ``reference`` (values and gradients) at ``q``, else why."""
    try:
        u, grad = value_and_grad(candidate, q, catch=False)
    except Exception as error:
        return f"it raised {type(error).__name__}: {error}"
    u_ref, grad_ref = value_and_grad(reference, q, catch=False)
    if u.shape != u_ref.shape or grad.shape != grad_ref.shape:
        return "its shapes differ from the per-chain evaluation"
    scale = 1e-4 if q.dtype == torch.float32 else 1e-8
    ok = torch.allclose(u, u_ref, rtol=scale, atol=scale, equal_nan=True) and torch.allclose(
        grad, grad_ref, rtol=scale, atol=scale, equal_nan=True
    )
    return None if ok else "its energies or gradients differ from the per-chain evaluation"


def choose_potential(
    candidates: list[tuple[str, Callable[[], BatchedPotential]]],
    reference: BatchedPotential,
    q: Tensor,
    num_checked: int = 4,
) -> tuple[str, BatchedPotential]:
    """The first candidate that agrees with ``reference`` on the first chains of ``q``.

    :param candidates: ``(name, build)`` pairs in order of preference; ``build(n)`` makes the
        batched potential for ``n`` chains.
    :param reference: the per-chain loop, which is always right, and slow.
    :param q: the chains' initial positions, shape ``(C, D)``. They are moved apart a little
        (with a private random generator, so the chains' own streams are untouched): chains that
        start at one point could not show a potential that mixes them.
    :returns: the chosen path's name and the potential for all ``C`` chains (the reference loop
        with a warning if no candidate agrees).
    """
    reasons = []
    start = q[:num_checked]
    generator = torch.Generator(device=q.device).manual_seed(0)
    noise = torch.randn(start.shape, generator=generator, dtype=q.dtype, device=q.device)
    probe = start + 0.1 * noise
    for name, build in candidates:
        try:
            checked = build(probe.shape[0])
        except Exception as error:
            reasons.append(f"{name}: could not be built ({type(error).__name__}: {error})")
            continue
        why = _agrees(checked, reference, probe)
        if why is None:
            if reasons:
                warnings.warn(
                    f"evaluating the potential of all chains with {name}, not with the faster "
                    "path(s) before it, because " + "; ".join(reasons),
                    RuntimeWarning,
                    stacklevel=3,
                )
            return name, build(q.shape[0])
        reasons.append(f"{name}: {why}")
    warnings.warn(
        "evaluating the potential chain by chain (a Python loop, about C times the cost of one "
        "batched call), because no batched evaluation agreed with it: " + "; ".join(reasons),
        RuntimeWarning,
        stacklevel=3,
    )
    return "loop", reference
