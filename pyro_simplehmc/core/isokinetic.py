r"""Isokinetic (ESH) dynamics on the unit sphere, as pure functions on batches of chains.

Microcanonical HMC (Robnik, Cohn-Gordon & Seljak, 2025, arXiv 2503.01707; the energy-sampling
Hamiltonian dynamics of Ver Steeg & Galstyan, 2021) moves a position :math:`x \in \mathbb{R}^d`
with a *velocity* :math:`u` of unit length. In the coordinates that the mass matrix whitens,
:math:`y = C^{-1}x` with :math:`M^{-1} = CC^\top`, and with :math:`g = -C^\top\nabla U(x)` the
gradient of the log density there,

.. math::
    \dot y = u, \qquad \dot u = \frac{1}{d-1}\,(I - uu^\top)\, g,

which keeps :math:`|u| = 1`: the speed never changes, only the direction, which turns towards
higher density. The velocity equation has an exact solution for a constant :math:`g`
(:func:`velocity_update`), so a step is leapfrog-like: half a velocity update, a full position
update :math:`y \to y + \epsilon u` (:func:`position_update`), half a velocity update.

The flow does not preserve the uniform measure on the sphere: each velocity update changes the
*kinetic energy* :math:`K` by the log of its Jacobian, and the Metropolis-Hastings ratio of a
trajectory is :math:`\log r = -\Delta U - \sum \Delta K` (BlackJAX,
``adjusted_mclmc_dynamic.adjusted_mclmc_proposal``). :func:`partial_refresh` adds the optional
Langevin noise of the velocity, and :func:`uniform_velocity` draws a fresh one.

Every function takes tensors with a leading chain dimension, ``(C, d)``, and a step size that
broadcasts against them, ``(C, 1)`` or ``(1, 1)``; a step size of zero is the identity, so chains
with fewer steps than the batch's longest simply stand still.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "LEAPFROG",
    "MCLACHLAN",
    "SCHEMES",
    "isokinetic_leapfrog",
    "mean_steps_scale",
    "partial_refresh",
    "position_update",
    "uniform_velocity",
    "velocity_update",
]

#: Below this norm a gradient is treated as zero (it has no direction to turn towards).
GRADIENT_NORM_TOLERANCE = 1e-13


def _unit(x: Tensor) -> tuple[Tensor, Tensor]:
    """``x / |x|`` along the last dimension (``x`` itself where ``|x|`` is tiny), and ``|x|``."""
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return torch.where(norm > GRADIENT_NORM_TOLERANCE, x / norm, x), norm


def uniform_velocity(noise: Tensor) -> Tensor:
    r"""A velocity uniform on the unit sphere from standard normal ``noise`` ``(C, d)``:
    :math:`\xi / |\xi|`."""
    return _unit(noise)[0]


def velocity_update(u: Tensor, g: Tensor, step_size: Tensor | float) -> tuple[Tensor, Tensor]:
    r"""The exact isokinetic velocity update for a constant gradient, and its kinetic-energy change.

    With :math:`e = g/|g|`, :math:`\delta = \epsilon |g| / (d - 1)` and :math:`\zeta = e^{-\delta}`,

    .. math::
        u' \propto e\,(1 - \zeta)\big(1 + \zeta + (u\cdot e)(1 - \zeta)\big) + 2\zeta u,
        \qquad
        \Delta K = (d - 1)\,\big(\delta - \log 2
            + \log(1 + u\cdot e + (1 - u\cdot e)\,\zeta^2)\big).

    The form has no :math:`e^{\delta}`, so a huge gradient cannot overflow it (Ver Steeg &
    Galstyan, 2021; BlackJAX ``integrators.esh_dynamics_momentum_update_one_step``).

    :param u: velocities on the unit sphere, ``(C, d)``, :math:`d \ge 2`.
    :param g: gradients of the log density in the whitened coordinates, ``(C, d)``.
    :param step_size: the time :math:`\epsilon` of the update (half a step in a leapfrog), a
        number or a tensor broadcasting as ``(C, 1)``.
    :returns: :math:`u'` ``(C, d)`` and :math:`\Delta K` ``(C,)``.
    """
    dim = u.shape[-1]
    norm = torch.linalg.vector_norm(g, dim=-1, keepdim=True)
    # A vanishing gradient has no direction: e is then tiny rather than a unit vector, and so
    # is delta, so u stays where it is.
    e = g / norm.clamp(min=GRADIENT_NORM_TOLERANCE)
    ue = (u * e).sum(-1, keepdim=True)
    delta = norm * (step_size / (dim - 1))
    zeta = torch.exp(-delta)
    one_minus_zeta = -torch.expm1(-delta)  # accurate for small steps, where 1 - zeta is not
    # Everything but the two vector terms is one number per chain.
    raw = (one_minus_zeta * (1 + zeta + ue * one_minus_zeta)) * e + (2 * zeta) * u
    new_u = raw / torch.linalg.vector_norm(raw, dim=-1, keepdim=True)
    kinetic_change = (dim - 1) * (
        delta - math.log(2.0) + torch.log((1 + ue) + (1 - ue) * zeta * zeta)
    )
    return new_u, kinetic_change.squeeze(-1)


def position_update(
    x: Tensor, u: Tensor, step_size: Tensor | float, scale: Callable[[Tensor], Tensor]
) -> Tensor:
    r""":math:`x' = x + \epsilon\, C u`: a step of length :math:`\epsilon` in the whitened
    coordinates (``scale`` is :math:`u \mapsto Cu`, for example
    :meth:`~pyro_simplehmc.core.metrics.Metric.position_from_normal`)."""
    return x + step_size * scale(u)


def partial_refresh(u: Tensor, noise: Tensor, step_size: Tensor | float, length: float) -> Tensor:
    r"""Langevin noise on the velocity: :math:`u' = (u + \nu\xi)/|u + \nu\xi|`, with
    :math:`\nu = \sqrt{(e^{2\epsilon/L} - 1)/d}` (BlackJAX
    ``integrators.partially_refresh_momentum``).

    The density of :math:`u'` given :math:`u` depends on :math:`u\cdot u'` alone, so the update
    is reversible with respect to the uniform distribution on the sphere. :math:`L = \infty`
    leaves :math:`u` unchanged.

    :param u: velocities ``(C, d)``.
    :param noise: standard normal ``(C, d)``.
    :param step_size: the time :math:`\epsilon` over which the noise acts.
    :param float length: the decoherence length :math:`L > 0` of the velocity.
    """
    if math.isinf(length):
        return u
    nu = torch.sqrt(torch.expm1(torch.as_tensor(2.0 * step_size / length)) / u.shape[-1])
    return _unit(u + nu * noise)[0]


#: Velocity Verlet: half velocity, full position, half velocity (one gradient per step).
LEAPFROG = ((0.5, 0.5), (1.0,))
#: McLachlan's two-stage scheme, BlackJAX's default for MAMS (two gradients per step, a smaller
#: energy error; McLachlan, 1995, as in BlackJAX ``integrators.mclachlan_coefficients``).
_B1 = 0.1931833275037836
MCLACHLAN = ((_B1, 1 - 2 * _B1, _B1), (0.5, 0.5))
#: The schemes by name (MAMS's ``integrator`` argument).
SCHEMES = {"leapfrog": LEAPFROG, "mclachlan": MCLACHLAN}


def isokinetic_leapfrog(
    x: Tensor,
    u: Tensor,
    grad: Tensor,
    value_and_grad_fn: Callable[[Tensor], tuple[Tensor, Tensor]],
    scale: Callable[[Tensor], Tensor],
    scale_gradient: Callable[[Tensor], Tensor],
    step_size: Tensor,
    num_steps: int | Tensor,
    refresh: Callable[[Tensor, Tensor], Tensor] | None = None,
    scheme: tuple[tuple[float, ...], tuple[float, ...]] = LEAPFROG,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    r"""``num_steps`` isokinetic steps of a palindromic scheme, by default the leapfrog's: half
    velocity, full position, half velocity.

    A scheme ``(b, a)`` alternates velocity updates of :math:`b_0\epsilon`, position updates of
    :math:`a_0\epsilon`, velocity updates of :math:`b_1\epsilon`, ... and ends with a velocity
    update (:data:`LEAPFROG`, :data:`MCLACHLAN`); each position update costs a gradient.

    :param x: positions ``(C, d)``.
    :param u: velocities on the unit sphere ``(C, d)``.
    :param grad: :math:`\nabla U(x)` ``(C, d)`` (the gradient at the start is always known).
    :param value_and_grad_fn: ``x -> (U(x), grad U(x))``.
    :param scale: :math:`u \mapsto Cu`.
    :param scale_gradient: :math:`\nabla U \mapsto C^\top \nabla U` (the gradient in the
        whitened coordinates).
    :param step_size: :math:`\epsilon`, ``(C, 1)`` or ``(1, 1)``.
    :param num_steps: one number for the batch, or one per chain ``(C,)`` (a chain past its
        steps takes steps of size zero, which leave it where it is).
    :param refresh: ``(u, eps) -> u``, applied for half a step before and after each step
        (the partial refresh), or ``None``.
    :param scheme: the velocity and position coefficients.
    :returns: the final position, velocity, potential energy, gradient, and the summed
        kinetic-energy change ``(C,)``.
    """
    if isinstance(num_steps, Tensor):
        steps = [step_size * (i < num_steps).unsqueeze(-1) for i in range(int(num_steps.max()))]
    else:
        steps = [step_size] * num_steps
    velocity_coefficients, position_coefficients = scheme
    kinetic_change = x.new_zeros(x.shape[:-1])
    potential_energy = None

    def turn(u, grad, eps):
        nonlocal kinetic_change
        u, dk = velocity_update(u, -scale_gradient(grad), eps)
        kinetic_change = kinetic_change + dk
        return u

    def inner(x, u, eps):
        """A step's position updates and the velocity updates between them."""
        nonlocal potential_energy
        for j, a in enumerate(position_coefficients):
            x = position_update(x, u, a * eps, scale)
            potential_energy, grad = value_and_grad_fn(x)
            if j + 1 < len(position_coefficients):
                u = turn(u, grad, velocity_coefficients[j + 1] * eps)
        return x, u, grad

    first, last = velocity_coefficients[0], velocity_coefficients[-1]
    if refresh is None:
        # A step's last velocity update and the next step's first use the same gradient, and
        # two updates with one gradient are one update (the solution is exact for a constant
        # gradient), so consecutive steps share them, as the leapfrog's half kicks do.
        u = turn(u, grad, first * steps[0]) if steps else u
        for k, eps in enumerate(steps):
            x, u, grad = inner(x, u, eps)
            following = steps[k + 1] if k + 1 < len(steps) else 0.0
            u = turn(u, grad, last * eps + first * following)
        return x, u, potential_energy, grad, kinetic_change
    for eps in steps:
        half = 0.5 * eps
        u = turn(refresh(u, half), grad, first * eps)
        x, u, grad = inner(x, u, eps)
        u = refresh(turn(u, grad, last * eps), half)
    return x, u, potential_energy, grad, kinetic_change


def mean_steps_scale(mean: Tensor) -> Tensor:
    r"""The :math:`s` for which :math:`\lceil U s \rceil`, :math:`U \sim \mathcal{U}(0, 1)`, has
    mean ``mean`` (at least 1): random trajectory lengths from 1 step to about twice the mean.

    With :math:`s = k + x`, :math:`k` an integer and :math:`0 \le x < 1`, the number of steps is
    each of :math:`1, \dots, k` with probability :math:`1/s` and :math:`k+1` with probability
    :math:`x/s`; its mean :math:`(k(k+1)/2 + x(k+1))/s` equals :math:`\mu` for
    :math:`k = \lfloor 2\mu - 1 \rfloor` and :math:`x = k(\mu - (k+1)/2)/(k + 1 - \mu)`
    (BlackJAX ``adjusted_mclmc_dynamic.rescale``).
    """
    mu = mean.clamp(min=1.0)
    k = torch.floor(2 * mu - 1)
    return k + k * (mu - 0.5 * (k + 1)) / (k + 1 - mu)
