r"""Setting up a batch of chains: the model's initialisation, the flat layout, the potentials.

Pyro's :func:`~pyro.infer.mcmc.util.initialize_model` does the model's part (transforms to the
unconstrained space, their Jacobians, enumeration of discrete sites, the init strategy, the
one-chain potential); :func:`initialize_chains` adds what a batch needs: the starting point of
every chain, the layout of the sites in one flat vector (block by block, as the mass matrix is
laid out) and the batched potential (:mod:`.potentials`: a plate over chains, ``vmap`` or a
loop, each checked against the loop).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from pyro.infer.mcmc.util import initialize_model
from torch import Tensor

from ..core import validation as check
from ..core.mh import ChainState
from ..core.ravel import DictRavel
from . import potentials
from .mass_matrix import FullMass, mass_matrix_blocks

__all__ = ["Chains", "check_initial_state", "initialize_chains"]


@dataclass
class Chains:
    """What setup found for a batch of ``C`` chains.

    :ivar initial_params: unconstrained starting points, each site ``(C, ...)`` (no chain
        dimension for one chain outside a batch).
    :ivar position: the same, flat, ``(C, D)``.
    :ivar layout: the sites' places in the flat vector.
    :ivar blocks: the mass matrix's blocks (site names and shapes).
    :ivar potential_fn: the one-chain potential, on a dict of unconstrained sites.
    :ivar transforms: the model's transforms (``None`` with ``potential_fn``).
    :ivar batch_potential: :math:`U` of the batch, ``(C, D) -> (C,)``.
    :ivar loop_potential: the same, one chain at a time (the fallback for faults).
    :ivar potential_path: how :attr:`batch_potential` evaluates (see
        :attr:`~pyro_simplehmc.MHKernel.potential_path`).
    """

    initial_params: dict[str, Tensor]
    position: Tensor
    layout: DictRavel
    blocks: OrderedDict
    potential_fn: Callable
    transforms: dict | None
    batch_potential: potentials.BatchedPotential | None
    loop_potential: potentials.BatchedPotential
    potential_path: str


def initialize_chains(
    *,
    model: Callable | None,
    potential_fn: Callable | None,
    initial_params: Mapping[str, Tensor] | None,
    num_chains: int,
    vectorized: bool,
    args: tuple,
    kwargs: Mapping[str, Any],
    full_mass: FullMass,
    transforms: dict | None = None,
    max_plate_nesting: int | None = None,
    jit_compile: bool = False,
    jit_options: dict | None = None,
    ignore_jit_warnings: bool = False,
    init_strategy: Callable | None = None,
    batched_potential: bool = False,
) -> Chains:
    """Initialise ``num_chains`` chains of ``model`` (or of ``potential_fn``).

    :param initial_params: the user's starting points (a leading chain dimension when
        ``vectorized``), or ``None``: each chain draws its own with ``init_strategy``.
    :param bool vectorized: the chains run as a batch (sites get a leading chain dimension).
    The other parameters are the kernel's (see :class:`~pyro_simplehmc.MHKernel`).
    """
    batch_shape = (num_chains,) if vectorized else ()
    chain_fn, trace = potential_fn, None
    if model is not None:
        init, chain_fn, transforms, trace = initialize_model(
            model,
            args,
            kwargs,
            transforms=transforms,
            max_plate_nesting=max_plate_nesting,
            # With several chains, the batched potential is what gets compiled.
            jit_compile=jit_compile and num_chains == 1,
            jit_options=jit_options,
            skip_jit_warnings=ignore_jit_warnings,
            num_chains=num_chains,
            init_strategy=init_strategy,
            initial_params=initial_params,
        )
        if vectorized and num_chains == 1 and initial_params is None:
            init = {name: value.unsqueeze(0) for name, value in init.items()}
    elif initial_params is None:
        raise ValueError(
            "initial_params are required with potential_fn: pass initial_params to "
            "pyro.infer.MCMC (or set kernel.initial_params) as a dict of unconstrained tensors"
        )
    else:
        init = initial_params
        if vectorized and batched_potential:
            chain_fn = lambda params: potential_fn(  # noqa: E731
                {name: value.unsqueeze(0) for name, value in params.items()}
            )
    init = {name: torch.as_tensor(value).detach() for name, value in init.items()}
    if vectorized:
        check.chain_dimension("initial_params", init, num_chains)

    blocks = mass_matrix_blocks(full_mass, init, batch_ndim=len(batch_shape))
    prototype = {name: value[0] if vectorized else value for name, value in init.items()}
    layout = DictRavel(prototype, order=[n for block in blocks for n in block])
    like = next(iter(init.values())) if init else torch.zeros(())
    position = layout.flatten(init, batch_shape).reshape(num_chains, layout.size).to(like)

    loop = potentials.loop_potential(chain_fn, layout)
    path, batch = "one chain", None
    if num_chains == 1:  # Pyro's own potential, as for one chain outside a batch
        batch = potentials.single_chain_potential(chain_fn, layout)
    elif layout.size > 0:
        if model is None and batched_potential:
            path, batch = "batched", potentials.batched_user_potential(potential_fn, layout)
        else:
            path, batch = _choose(model, chain_fn, trace, transforms, args, kwargs, layout, loop,
                                  position)  # fmt: skip
            if jit_compile:
                compiled = potentials.jit_compiled(batch, position, jit_options)
                path, batch = (path, batch) if compiled is batch else (f"{path}, jit", compiled)
    return Chains(init, position, layout, blocks, chain_fn, transforms, batch, loop, path)


def _choose(model, chain_fn, trace, transforms, args, kwargs, layout, loop, position):
    """The fastest batched potential that agrees with the loop (:mod:`.potentials`)."""
    candidates = []
    enumerated = trace is not None and any(
        site["type"] == "sample" and site["infer"].get("enumerate")
        for site in trace.nodes.values()
    )
    vmappable = chain_fn
    if model is not None and not enumerated:
        candidates.append(
            (
                "plate",
                lambda n: potentials.plate_potential(
                    model, args, kwargs, transforms, layout, trace, n
                ),
            )
        )
        vmappable = potentials.model_potential(model, args, kwargs, transforms)
    candidates.append(("vmap", lambda n: potentials.vmap_potential(vmappable, layout)))
    return potentials.choose_potential(candidates, loop, position)


def check_initial_state(state: ChainState, layout: DictRavel) -> None:
    """A clear error when the chains start where the log density or its gradient is not
    finite."""
    bad = ~torch.isfinite(state.potential_energy)
    if bool(bad.any()):
        values = state.potential_energy[bad].tolist()
        where = "" if bad.numel() == 1 else f" for chains {bad.nonzero().flatten().tolist()}"
        value = values[0] if len(values) == 1 else values
        raise ValueError(
            f"the potential energy at the initial parameters is {value}{where}; "
            "initial_params must be a point of finite log density"
        )
    if state.grad is not None and not bool(torch.isfinite(state.grad).all()):
        mask = layout.unflatten(~torch.isfinite(state.grad).any(0))
        names = [name for name, m in mask.items() if bool(m.any())]
        raise ValueError(
            f"the gradient of the potential energy at the initial parameters is not finite "
            f"for the site(s) {names}"
        )
