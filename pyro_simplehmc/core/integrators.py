r"""Integrators for Hamiltonian dynamics, as pure functions.

With potential energy :math:`U(q) = -\log \pi(q)` and kinetic energy
:math:`K(p) = \tfrac12 p^\top M^{-1} p`, Hamilton's equations are

.. math:: \dot q = M^{-1} p, \qquad \dot p = -\nabla U(q).

The leapfrog integrator takes a half step in momentum, a full step in position and another half
step in momentum. Each of the three updates is a shear, so the map preserves volume exactly and
is reversible; its energy error is :math:`O(\epsilon^2)`. Consecutive steps share their half
steps, so :math:`L` steps cost :math:`L` gradients when the gradient at the start is known.

These are functions of flat tensors with any leading batch dimensions (one per chain), given the
potential's ``value_and_grad`` and the metric's ``velocity``;
:func:`pyro_simplehmc.kernels.evaluation.leapfrog` runs them on Pyro-style structures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple, Protocol

import torch
from torch import Tensor

#: ``value_and_grad(q) -> (U(q), dU/dq(q))`` on flat positions.
ValueAndGrad = Callable[[Tensor], tuple[Tensor, Tensor]]


#: No trajectory, fixed, learned or looking for its turn, is longer than this many steps (as
#: NUTS's largest tree, 2**10 - 1).
MAX_NUM_STEPS = 1023


class IntegratorState(NamedTuple):
    """The end of a trajectory."""

    position: Tensor
    momentum: Tensor
    potential_energy: Tensor
    grad: Tensor


def leapfrog_flat(
    q: Tensor,
    p: Tensor,
    value_and_grad_fn: ValueAndGrad,
    velocity_fn: Callable[[Tensor], Tensor],
    step_size: float | Tensor,
    num_steps: int | Tensor,
    grad: Tensor | None = None,
    potential_energy: Tensor | None = None,
) -> IntegratorState:
    r"""``num_steps`` leapfrog steps of size ``step_size`` on flat tensors.

    :param q: position, shape ``batch + (D,)``.
    :param p: momentum, same shape.
    :param value_and_grad_fn: ``q -> (U(q), grad U(q))``.
    :param velocity_fn: ``p -> M^{-1} p`` (for example :meth:`Metric.velocity`).
    :param step_size: :math:`\epsilon`: a number, or a tensor that broadcasts against ``q``
        (shape ``batch + (1,)`` for one step size per chain).
    :param num_steps: :math:`L \ge 0`: a number, or a tensor of shape ``batch`` (one per chain).
    :param grad: :math:`\nabla U(q)` if already known (saves one gradient evaluation).
    :param potential_energy: :math:`U(q)`, returned unchanged if ``num_steps`` is 0.
    :returns: the final position, momentum, potential energy and gradient.
    """
    if grad is None:
        potential_energy, grad = value_and_grad_fn(q)
    if isinstance(num_steps, Tensor):
        # One number of steps per chain: a chain that has taken its steps takes steps of size
        # zero, which leave it exactly where it is, while the others go on.
        steps = [step_size * (i < num_steps).unsqueeze(-1) for i in range(int(num_steps.max()))]
        steps = [(eps, 0.5 * eps) for eps in steps]
    else:
        steps = [(step_size, 0.5 * step_size)] * num_steps
    for eps, half in steps:
        p = p - half * grad
        q = q + eps * velocity_fn(p)
        potential_energy, grad = value_and_grad_fn(q)
        p = p - half * grad
    return IntegratorState(q, p, potential_energy, grad)


class Kinetic(Protocol):
    """What the integrators need of a metric: :math:`M^{-1}p` and :math:`K(p)` (for example a
    :class:`~pyro_simplehmc.core.metrics.Metric`)."""

    def velocity(self, p: Tensor) -> Tensor: ...

    def kinetic_energy(self, p: Tensor) -> Tensor: ...


def hamiltonian(potential_energy: Tensor, momentum: Tensor, metric: Kinetic) -> Tensor:
    r"""Total energy :math:`H(q, p) = U(q) + K(p)`, one per chain."""
    return potential_energy + metric.kinetic_energy(momentum)


def leapfrog_to_u_turn(
    start: IntegratorState,
    value_and_grad_fn: ValueAndGrad,
    metric: Kinetic,
    step_size: Tensor,
    num_steps: int | Tensor,
    max_steps: int,
    max_energy_error: float,
) -> tuple[IntegratorState, Tensor]:
    r"""``num_steps`` leapfrog steps as :func:`leapfrog_flat`, then on until the trajectory turns.

    The trajectory *turns* at the first time :math:`t = k\epsilon` at which
    :math:`(q_t - q_0)\cdot p_t < 0`: its distance from the start, measured in the coordinates
    that the mass matrix whitens, stops growing (the no-U-turn criterion of Hoffman & Gelman,
    2014). On a Gaussian that the mass matrix has whitened this is half a period of its widest
    direction in many dimensions, and uniform up to it in one.

    :param start: where the trajectory starts: position, momentum, :math:`U` and
        :math:`\nabla U` there, each with the chains' leading dimension.
    :param value_and_grad_fn: ``q -> (U(q), grad U(q))``.
    :param metric: the metric (its ``velocity`` and ``kinetic_energy``).
    :param step_size: :math:`\epsilon`, shape ``batch + (1,)`` or ``(1, 1)``.
    :param num_steps: the steps of the proposal (an int, or one per chain).
    :param int max_steps: no chain goes on past this many steps.
    :param float max_energy_error: a chain whose energy error exceeds this has diverged and
        stops looking for its turn, as NUTS stops a diverging tree (so that a runaway trajectory
        does not cost ``max_steps`` gradients).
    :returns: the state after ``num_steps`` (the proposal), and each chain's turning time: the
        time of ``max_steps`` steps where it had not turned by then (a lower bound), NaN where
        it diverged first.
    """
    q0, p, potential_energy, grad = start
    q = q0
    batch = q.shape[:-1]
    wanted = torch.as_tensor(num_steps, device=q.device).expand(batch)
    step = step_size.expand(*batch, 1)
    turn_time = torch.full(batch, float("nan"), dtype=q.dtype, device=q.device)
    stopped = torch.zeros(batch, dtype=torch.bool, device=q.device)
    proposal = start
    initial_energy = hamiltonian(potential_energy, p, metric)
    for k in range(1, max(max_steps, int(wanted.max())) + 1):
        moving = (k <= wanted) | ~stopped
        if not bool(moving.any()):
            break
        # A chain that has turned and made its proposal takes steps of size zero.
        eps = step * moving.unsqueeze(-1)
        p = p - (0.5 * eps) * grad
        q = q + eps * metric.velocity(p)
        potential_energy, grad = value_and_grad_fn(q)
        p = p - (0.5 * eps) * grad
        if isinstance(num_steps, int):  # one length for the batch: no per-chain selection
            if k == num_steps:
                proposal = IntegratorState(q, p, potential_energy, grad)
        else:
            here = (k == wanted).unsqueeze(-1)
            proposal = IntegratorState(
                torch.where(here, q, proposal.position),
                torch.where(here, p, proposal.momentum),
                torch.where(here[..., 0], potential_energy, proposal.potential_energy),
                torch.where(here, grad, proposal.grad),
            )
        # A NaN energy error compares false, so it counts as diverged.
        energy_error = hamiltonian(potential_energy, p, metric) - initial_energy
        diverged = ~(energy_error.abs() <= max_energy_error)
        turning = ((q - q0) * p).sum(-1) < 0
        # Where a chain stops now: the time if it turned or ran out of steps, NaN if it diverged.
        stops = ~stopped & (diverged | turning | (k >= max_steps))
        turn_time = torch.where(stops, torch.where(diverged, math.nan, k * step[..., 0]), turn_time)
        stopped = stopped | stops
    return proposal, turn_time


def euler_flat(
    q: Tensor,
    p: Tensor,
    value_and_grad_fn: ValueAndGrad,
    velocity_fn: Callable[[Tensor], Tensor],
    step_size: float,
    num_steps: int,
) -> IntegratorState:
    r"""Explicit Euler: position and momentum move together from the old state.

    Not volume preserving, so its energy drifts; it exists to be compared with leapfrog.
    """
    potential_energy, grad = value_and_grad_fn(q)
    for _ in range(num_steps):
        q, p = q + step_size * velocity_fn(p), p - step_size * grad
        potential_energy, grad = value_and_grad_fn(q)
    return IntegratorState(q, p, potential_energy, grad)
