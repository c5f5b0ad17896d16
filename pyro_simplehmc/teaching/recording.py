r"""Recording what an integrator does, step by step.

The functions here step the package's own integrators
(:func:`~pyro_simplehmc.core.integrators.leapfrog_flat`,
:func:`~pyro_simplehmc.core.integrators.euler_flat`, and :func:`symplectic_euler_flat`) one step
at a time and keep each state in a :class:`~.trajectory.Trajectory`, so a recorded leapfrog path
ends exactly where a kernel's proposal would (same arithmetic, same order):
:func:`record_trajectory` for a potential energy, :func:`record_model_trajectory` for a Pyro
model, :func:`kernel_trajectory` for a set-up kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from pyro.infer.autoguide.initialization import init_to_median, init_to_value
from pyro.infer.mcmc.util import initialize_model
from torch import Tensor

from ..core import validation as check
from ..core.integrators import IntegratorState, euler_flat, leapfrog_flat
from ..core.metrics import Metric
from ..core.ravel import DictRavel
from ..kernels.evaluation import value_and_grad
from .trajectory import INTEGRATORS, Structure, Trajectory

__all__ = [
    "kernel_trajectory",
    "record_model_trajectory",
    "record_trajectory",
    "symplectic_euler_flat",
]


def symplectic_euler_flat(
    q: Tensor,
    p: Tensor,
    value_and_grad_fn: Callable[[Tensor], tuple[Tensor, Tensor]],
    velocity_fn: Callable[[Tensor], Tensor],
    step_size: float,
    num_steps: int,
) -> IntegratorState:
    r"""Symplectic (semi-implicit) Euler: a full momentum step, then a position step with it.

    .. math:: p' = p - \epsilon \nabla U(q), \qquad q' = q + \epsilon M^{-1} p'.

    Each update is a shear, so volume is preserved and the energy error stays bounded, but the
    map is not its own inverse under a momentum flip, so HMC cannot use it as it is. Leapfrog is
    this map split symmetrically in two half steps.
    """
    potential_energy, grad = value_and_grad_fn(q)
    for _ in range(num_steps):
        p = p - step_size * grad
        q = q + step_size * velocity_fn(p)
        potential_energy, grad = value_and_grad_fn(q)
    return IntegratorState(q, p, potential_energy, grad)


def _integrate(
    q: Tensor,
    p: Tensor,
    flat_potential: Callable[[Tensor], Tensor],
    metric: Metric,
    step_size: float,
    num_steps: int,
    integrator: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Step one at a time and stack every state."""

    def value_and_grad_fn(x: Tensor) -> tuple[Tensor, Tensor]:
        return value_and_grad(flat_potential, x)

    potential_energy, grad = value_and_grad_fn(q)
    positions, momenta, potentials = [q], [p], [potential_energy]
    for _ in range(num_steps):
        if integrator == "leapfrog":
            # Passing the last gradient makes L single steps the same arithmetic as one call
            # with num_steps=L, which is what the kernel does.
            end = leapfrog_flat(q, p, value_and_grad_fn, metric.velocity, step_size, 1, grad=grad)
        elif integrator == "euler":
            end = euler_flat(q, p, value_and_grad_fn, metric.velocity, step_size, 1)
        else:
            end = symplectic_euler_flat(q, p, value_and_grad_fn, metric.velocity, step_size, 1)
        q, p, grad = end.position, end.momentum, end.grad
        positions.append(q)
        momenta.append(p)
        potentials.append(end.potential_energy)
    positions_t, momenta_t = torch.stack(positions), torch.stack(momenta)
    kinetic = metric.kinetic_energy(momenta_t)
    return positions_t, momenta_t, torch.stack(potentials).reshape(-1), kinetic


def _check_common(step_size: Any, num_steps: Any, integrator: Any) -> tuple[float, int]:
    if integrator not in INTEGRATORS:
        raise ValueError(f"integrator must be one of {INTEGRATORS}; got {integrator!r}")
    return (
        check.positive_finite("step_size", step_size),
        check.nonnegative_int("num_steps", num_steps),
    )


def _one_chain(metric: Metric) -> Metric:
    """A kernel's metric has one matrix per chain (a leading chain dimension, maybe of size 1);
    a recorded trajectory follows one chain, so that dimension must be 1 and is dropped."""
    blocks = []
    for block, dense in zip(metric.blocks, metric.dense, strict=True):
        extra = block.dim() - (2 if dense else 1)
        if extra > 0 and block.shape[:extra].numel() != 1:
            raise ValueError(
                "inverse_mass_matrix must be one chain's metric; got blocks of shape "
                f"{tuple(block.shape)} (one per chain): pass the metric of the chain to follow"
            )
        blocks.append(block.reshape(block.shape[extra:]))
    return Metric(blocks, dense=list(metric.dense))


def _draw_momentum(metric: Metric, like: Tensor) -> Tensor:
    return metric.momentum_from_normal(torch.randn_like(like))


def record_trajectory(
    potential_fn: Callable[[Any], Tensor],
    position: Structure,
    momentum: Structure | None = None,
    *,
    step_size: float,
    num_steps: int,
    inverse_mass_matrix: Tensor | Metric | None = None,
    integrator: str = "leapfrog",
) -> Trajectory:
    r"""Follow Hamilton's equations from ``(position, momentum)`` and keep every step.

    :param potential_fn: the potential energy :math:`U`, taking ``position``'s structure (a flat
        tensor of shape ``(D,)``, or a dict of tensors as a Pyro potential does).
    :param position: the start :math:`q_0`.
    :param momentum: the start :math:`p_0`, same structure; drawn from :math:`\mathcal{N}(0, M)`
        with torch's generator if ``None``.
    :param step_size: :math:`\epsilon > 0`.
    :param num_steps: number of steps :math:`L \ge 0`.
    :param inverse_mass_matrix: ``None`` (identity), a 1-D (diagonal) or 2-D (dense) tensor over
        the flat position (a dict's sites in its order), or a :class:`~pyro_simplehmc.Metric`.
    :param integrator: ``"leapfrog"`` (what HMC uses), ``"euler"`` (explicit Euler, for
        comparison) or ``"symplectic_euler"``.
    :returns: a :class:`Trajectory` of ``num_steps + 1`` states.
    :raises ValueError: for a non-positive step size, a negative number of steps or an unknown
        integrator.

    Example::

        >>> path = record_trajectory(lambda q: 0.5 * (q**2).sum(), torch.tensor([1.0]),
        ...                          torch.tensor([0.0]), step_size=0.3, num_steps=30)
        >>> path.positions.shape
        torch.Size([31, 1])
    """
    step_size, num_steps = _check_common(step_size, num_steps, integrator)
    if isinstance(position, Mapping):
        ravel = DictRavel(position)
        q = ravel.flatten(position).detach()

        def flat_potential(x: Tensor) -> Tensor:
            return potential_fn(ravel.unflatten(x))

    else:
        ravel = None
        q = torch.as_tensor(position).detach()
        flat_potential = potential_fn
    if isinstance(inverse_mass_matrix, Metric):
        inverse_mass_matrix = _one_chain(inverse_mass_matrix)
    metric = Metric.from_inverse_mass_matrix(inverse_mass_matrix, q)
    if momentum is None:
        p = _draw_momentum(metric, q)
    elif isinstance(momentum, Mapping):
        if ravel is None:
            raise ValueError("momentum must be a tensor when position is a tensor")
        p = ravel.flatten(momentum).detach()
    else:
        p = torch.as_tensor(momentum, dtype=q.dtype).reshape(q.shape).detach()
    positions, momenta, potentials, kinetic = _integrate(
        q, p, flat_potential, metric, step_size, num_steps, integrator
    )
    return Trajectory(positions, momenta, potentials, kinetic, step_size, integrator, ravel)


def record_model_trajectory(
    model: Callable,
    model_args: Sequence = (),
    model_kwargs: Mapping[str, Any] | None = None,
    *,
    step_size: float,
    num_steps: int,
    position: Mapping[str, Tensor] | None = None,
    momentum: Structure | None = None,
    inverse_mass_matrix: Tensor | Metric | None = None,
    integrator: str = "leapfrog",
) -> Trajectory:
    r"""Record a trajectory of a Pyro model's posterior, in the unconstrained space.

    The model is prepared with Pyro's :func:`~pyro.infer.mcmc.util.initialize_model`, exactly as
    the kernels prepare it: constrained sites (a scale, a probability) are mapped to the whole real
    line, and the potential includes the log-Jacobian of that map. The trajectory keeps the
    transforms, so ``trajectory.sites("constrained")`` gives the same path in the model's own
    coordinates.

    Sites are laid out in the flat vector sorted by name, as the kernels do with
    ``full_mass=False`` or ``True``, so a kernel's :attr:`~pyro_simplehmc.SimpleHMC.metric` can be
    passed as ``inverse_mass_matrix``.

    :param model: a Pyro model with continuous latent sites.
    :param model_args: positional arguments of the model.
    :param model_kwargs: keyword arguments of the model.
    :param step_size: :math:`\epsilon > 0`.
    :param num_steps: number of steps :math:`L \ge 0`.
    :param position: the start, as **constrained** values keyed by site name (for example
        ``{"sigma": torch.tensor(2.0)}``); sites left out start at their prior median.
    :param momentum: the start momentum (flat tensor or dict), drawn if ``None``.
    :param inverse_mass_matrix: as in :func:`record_trajectory`.
    :param integrator: as in :func:`record_trajectory`.
    """
    step_size, num_steps = _check_common(step_size, num_steps, integrator)
    init_strategy = init_to_median if position is None else init_to_value(values=dict(position))
    init, potential_fn, transforms, _ = initialize_model(
        model, tuple(model_args), dict(model_kwargs or {}), init_strategy=init_strategy
    )
    ordered = {name: init[name] for name in sorted(init)}
    trajectory = record_trajectory(
        potential_fn,
        ordered,
        momentum,
        step_size=step_size,
        num_steps=num_steps,
        inverse_mass_matrix=inverse_mass_matrix,
        integrator=integrator,
    )
    return _with_transforms(trajectory, transforms)


def kernel_trajectory(
    kernel: Any,
    params: Mapping[str, Tensor],
    momentum: Tensor | None = None,
    *,
    num_steps: int | None = None,
) -> Trajectory:
    r"""Replay, step by step, the leapfrog trajectory that ``kernel`` would follow from ``params``.

    Uses the kernel's current potential, metric, step size and number of steps, and lays the sites
    out as the kernel does, so the end of the trajectory is the kernel's proposal for the same
    momentum. Call it after :meth:`~pyro_simplehmc.MHKernel.setup` (or after a run).

    :param kernel: a set-up :class:`~pyro_simplehmc.SimpleHMC` (or any kernel with
        ``potential_fn``, ``metric``, ``inverse_mass_matrix`` and ``step_size``).
    :param params: unconstrained parameters keyed by site name.
    :param momentum: the flat momentum in the kernel's layout; drawn from :math:`\mathcal{N}(0,M)`
        with the kernel's metric if ``None``.
    :param num_steps: defaults to ``kernel.num_steps`` (for a kernel that draws its number of
        steps at random, the mean; build it with ``num_steps_jitter=0`` to replay its exact
        trajectories).
    """
    if kernel.potential_fn is None or kernel.inverse_mass_matrix is None:
        raise ValueError("kernel must be set up first: call kernel.setup(warmup_steps, ...)")
    if num_steps is None:
        num_steps = kernel.num_steps
    order = [name for block in kernel.inverse_mass_matrix for name in block]
    ordered = {name: params[name] for name in order}
    # The kernel's step size and number of steps are tensors when each chain has its own; a
    # recorded trajectory follows one chain.
    step_size, num_steps = kernel.step_size, num_steps
    if torch.is_tensor(step_size):
        step_size = float(step_size.reshape(-1)[0])
    if torch.is_tensor(num_steps):
        num_steps = int(num_steps.reshape(-1)[0])
    trajectory = record_trajectory(
        kernel.potential_fn,
        ordered,
        momentum,
        step_size=step_size,
        num_steps=num_steps,
        inverse_mass_matrix=kernel.metric,
    )
    return _with_transforms(trajectory, kernel.transforms if kernel.model is not None else None)


def _with_transforms(trajectory: Trajectory, transforms: Mapping[str, Any] | None) -> Trajectory:
    return Trajectory(
        trajectory.positions,
        trajectory.momenta,
        trajectory.potential_energies,
        trajectory.kinetic_energies,
        trajectory.step_size,
        trajectory.integrator,
        trajectory.ravel,
        transforms,
    )
