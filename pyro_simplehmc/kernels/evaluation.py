r"""Evaluating a potential and its gradient: where numerical faults become NaN.

A potential evaluated at a point the trajectory should never have reached (a Cholesky factor of a
matrix that is no longer positive definite, a distribution parameter out of its support) raises;
that is a failed proposal, not a bug, and :func:`value_and_grad` turns it into a NaN energy, which
the Metropolis-Hastings step rejects and records as a divergence. Any other exception is the
model's, and is raised with its own message. :func:`leapfrog` runs the integrator of
:mod:`pyro_simplehmc.core.integrators` on Pyro-style structures (a dict of tensors keyed by site
name), with this evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ..core.integrators import IntegratorState, leapfrog_flat
from ..core.metrics import Metric
from ..core.ravel import DictRavel
from ._pyro_compat import numerical_error_handlers

__all__ = [
    "NUMERICAL_ERRORS",
    "BatchEvaluator",
    "EvaluationCount",
    "is_numerical_error",
    "leapfrog",
    "value_and_grad",
]

#: Exceptions that mean "this point is numerically invalid", not "the model is wrong": they make
#: a proposal fail (a rejection and a divergence) instead of ending the run. Pyro's own registry
#: (singular matrices) is consulted as well, and so are distribution validation errors (below).
NUMERICAL_ERRORS: tuple[type[Exception], ...] = (
    torch.linalg.LinAlgError,
    ArithmeticError,
)

#: The words of torch's distribution validation when a parameter or value is out of its
#: support or NaN (``Expected parameter loc ... to satisfy the constraint Real(), but found
#: invalid values``): a diverging trajectory, not a bug. Any other ``ValueError`` (a shape error,
#: a wrong argument) is the model's, and is raised with its own message.
VALIDATION_MESSAGE = "but found invalid values"


def is_numerical_error(error: Exception) -> bool:
    """Whether ``error`` raised by a potential marks an invalid point rather than a bug."""
    if isinstance(error, ValueError):
        return VALIDATION_MESSAGE in str(error)
    return isinstance(error, NUMERICAL_ERRORS) or any(
        handler(error) for handler in numerical_error_handlers()
    )


def value_and_grad(
    potential_fn: Callable[[Tensor], Tensor], q: Tensor, catch: bool = True
) -> tuple[Tensor, Tensor]:
    r"""Potential energy :math:`U(q)` and its gradient, by autograd.

    A numerical fault (see :func:`is_numerical_error`) gives a NaN potential and a NaN gradient,
    so the proposal that reached this point is rejected rather than the run crashing; any other
    exception is raised.

    This runs once per leapfrog step, so it adds as little as it can to the autograd graph
    beyond the potential itself (a batch's energies are summed: each chain's gradient is the
    gradient of the sum).

    :param potential_fn: maps a flat position (shape ``batch + (D,)``) to potential energies
        (shape ``batch``, or ``batch + (1,)``).
    :param q: the position.
    :param bool catch: turn numerical faults into NaN (else raise them too).
    :returns: ``(U, grad)``, detached.
    """
    q = q.detach().requires_grad_(True)
    try:
        if torch.is_grad_enabled():
            u = potential_fn(q)
            # Not grad_outputs=ones: checking their shapes costs more than the sum's node.
            total = u if u.dim() == 0 else u.sum()
        else:  # called under torch.no_grad(): autograd must still record the potential
            with torch.enable_grad():
                u = potential_fn(q)
                total = u if u.dim() == 0 else u.sum()
        if not u.requires_grad:  # a potential that does not depend on q
            grad = torch.zeros_like(q)
        else:
            (grad,) = torch.autograd.grad(total, q, allow_unused=True)
    except Exception as error:
        if not catch or not is_numerical_error(error):
            raise
        nan = torch.full_like(q, float("nan")).detach()
        return nan[..., 0], nan
    if grad is None:  # allow_unused: no path from q to the potential
        grad = torch.zeros_like(q)
    u = u.detach()
    batch = q.shape[:-1]
    if u.shape != batch:  # a potential of shape batch + (1,), or an error for a wrong shape
        u = u.reshape(batch)
    return u, grad




Structure = Tensor | Mapping[str, Tensor]


def leapfrog(
    position: Structure,
    momentum: Structure,
    potential_fn: Callable[[Structure], Tensor],
    step_size: float,
    num_steps: int = 1,
    inverse_mass_matrix: Tensor | Metric | None = None,
    *,
    grad: Structure | None = None,
) -> IntegratorState:
    r"""Leapfrog integration on Pyro-style structures.

    :param position: a tensor, or a dict of tensors keyed by site name (like the input of a Pyro
        potential function).
    :param momentum: same structure as ``position``.
    :param potential_fn: the potential energy :math:`U`, taking ``position``'s structure.
    :param step_size: :math:`\epsilon`.
    :param num_steps: number of steps :math:`L`.
    :param inverse_mass_matrix: ``None`` (identity), a 1-D tensor (diagonal) or a 2-D tensor
        (dense) over the flattened position (sites in the dict's order), or a :class:`Metric`.
    :param grad: :math:`\nabla U` at ``position`` if already known, same structure.
    :returns: an :class:`IntegratorState` whose position, momentum and gradient have
        ``position``'s structure.

    Example::

        >>> out = leapfrog({"x": torch.ones(2)}, {"x": torch.zeros(2)},
        ...                lambda z: 0.5 * (z["x"] ** 2).sum(), step_size=0.1, num_steps=10)
        >>> out.position["x"].shape
        torch.Size([2])
    """
    if isinstance(position, Mapping):
        ravel = DictRavel(position)
        flat_q, flat_p = ravel.flatten(position), ravel.flatten(momentum)
        flat_grad = None if grad is None else ravel.flatten(grad)
        out = leapfrog_flat(
            flat_q,
            flat_p,
            lambda q: value_and_grad(lambda x: potential_fn(ravel.unflatten(x)), q),
            Metric.from_inverse_mass_matrix(inverse_mass_matrix, flat_q).velocity,
            step_size,
            num_steps,
            grad=flat_grad,
        )
        return IntegratorState(
            ravel.unflatten(out.position),
            ravel.unflatten(out.momentum),
            out.potential_energy,
            ravel.unflatten(out.grad),
        )
    return leapfrog_flat(
        position,
        momentum,
        lambda q: value_and_grad(potential_fn, q),
        Metric.from_inverse_mass_matrix(inverse_mass_matrix, position).velocity,
        step_size,
        num_steps,
        grad=grad,
    )


@dataclass
class EvaluationCount:
    """Potential evaluations (all of them) and gradient evaluations (those with a gradient).

    A batched evaluation counts once: it is one evaluation for each chain.
    """

    potentials: int = 0
    gradients: int = 0


class BatchEvaluator:
    r""":math:`U` and :math:`\nabla U` of a batch of chains, counted, faults kept to their chains.

    The batch is evaluated at once (``batch_potential``); when that raises a numerical fault
    (:func:`is_numerical_error`), it is evaluated again chain by chain (``loop_potential``), so
    that only the faulty chains get NaN, and so a rejection. With ``strict=True`` (at setup) the
    fault is raised instead. Any other exception is the model's, and is raised.

    :param batch_potential: ``(C, D) -> (C,)``; with ``one_chain``, ``(D,) -> ()``, evaluated on
        the batch's only chain (so that the autograd graph holds no view of the batch).
    :param loop_potential: ``(C, D) -> (C,)``, one chain at a time.
    :param bool one_chain: the batch is one chain.

    :attr:`count` is where evaluations are counted: :attr:`warmup` (the default) or
    :attr:`sampling`; the kernel switches it when warmup ends.
    """

    def __init__(
        self,
        batch_potential: Callable[[Tensor], Tensor],
        loop_potential: Callable,
        one_chain: bool = False,
    ):
        self.batch_potential, self.loop_potential = batch_potential, loop_potential
        self.one_chain = one_chain
        self.warmup, self.sampling = EvaluationCount(), EvaluationCount()
        self.count = self.warmup

    def value_and_grad(self, q: Tensor, strict: bool = False) -> tuple[Tensor, Tensor]:
        """:math:`(U(q), \\nabla U(q))`, shapes ``(C,)`` and ``(C, D)``."""
        self.count.potentials += 1
        self.count.gradients += 1
        try:
            if self.one_chain:
                if q.dim() == 1:  # one chain's position without its batch dimension
                    return value_and_grad(self.batch_potential, q, catch=False)
                u, grad = value_and_grad(self.batch_potential, q[0], catch=False)
                return u.reshape(1), grad.unsqueeze(0)
            return value_and_grad(self.batch_potential, q, catch=False)
        except Exception as error:
            if strict or not is_numerical_error(error):
                raise
        if self.one_chain and q.dim() == 1:
            return value_and_grad(self.batch_potential, q)  # NaN for the fault
        return value_and_grad(self.loop_potential, q)

    def potential(self, q: Tensor, strict: bool = False) -> Tensor:
        """:math:`U(q)` alone, shape ``(C,)``."""
        self.count.potentials += 1
        with torch.no_grad():
            try:
                if self.one_chain:
                    return self.batch_potential(q[0] if q.dim() > 1 else q).reshape(q.shape[:-1])
                return self.batch_potential(q).reshape(q.shape[:-1])
            except Exception as error:
                if strict or not is_numerical_error(error):
                    raise
            return self.loop_potential(q)
