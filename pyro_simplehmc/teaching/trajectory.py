r"""A recorded path through phase space: :class:`Trajectory`, one row per integrator step, and
the integrators a recording can follow (:data:`INTEGRATORS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..core.ravel import DictRavel

__all__ = ["INTEGRATORS", "Structure", "Trajectory"]

#: The integrators :func:`record_trajectory` can follow.
INTEGRATORS = ("leapfrog", "euler", "symplectic_euler")

Structure = Tensor | Mapping[str, Tensor]


@dataclass(frozen=True)
class Trajectory:
    r"""A recorded path through phase space, one row per integrator step (row 0 is the start).

    Positions and momenta are flat vectors in the unconstrained space (the space the kernels move
    in); :meth:`sites` splits them back into named sites and, for a Pyro model, can map positions
    to the constrained space.

    :ivar positions: :math:`q_0, \dots, q_L`, shape ``(L + 1, D)``.
    :ivar momenta: :math:`p_0, \dots, p_L`, shape ``(L + 1, D)``.
    :ivar potential_energies: :math:`U(q_t)`, shape ``(L + 1,)``.
    :ivar kinetic_energies: :math:`K(p_t) = \tfrac12 p_t^\top M^{-1} p_t`, shape ``(L + 1,)``.
    :ivar step_size: the step size :math:`\epsilon`.
    :ivar integrator: one of :data:`INTEGRATORS`.
    :ivar ravel: the layout of named sites in the flat vector, or ``None`` for a tensor position.
    :ivar transforms: for a Pyro model, the site transforms (constrained to unconstrained).
    """

    positions: Tensor
    momenta: Tensor
    potential_energies: Tensor
    kinetic_energies: Tensor
    step_size: float
    integrator: str
    ravel: DictRavel | None = None
    transforms: Mapping[str, Any] | None = None

    @property
    def num_steps(self) -> int:
        """The number of integrator steps :math:`L`."""
        return self.positions.shape[0] - 1

    @property
    def times(self) -> Tensor:
        r"""The integration times :math:`t \epsilon`, shape ``(L + 1,)``."""
        return self.step_size * torch.arange(self.num_steps + 1, dtype=self.positions.dtype)

    @property
    def energies(self) -> Tensor:
        """The Hamiltonian :math:`H = U + K` at each step."""
        return self.potential_energies + self.kinetic_energies

    @property
    def energy_error(self) -> Tensor:
        r""":math:`H(q_t, p_t) - H(q_0, p_0)`: zero for exact dynamics.

        For HMC, minus the last entry is the log acceptance ratio of the proposal.
        """
        return self.energies - self.energies[0]

    @property
    def max_abs_energy_error(self) -> float:
        r""":math:`\max_t |H_t - H_0|` along the path."""
        return float(self.energy_error.abs().max())

    @property
    def end(self) -> Tensor:
        """The last position, the one HMC would propose."""
        return self.positions[-1]

    def sites(self, space: str = "unconstrained") -> dict[str, Tensor]:
        """The positions split by site, each of shape ``(L + 1,) + site_shape``.

        :param space: ``"unconstrained"`` (where the integrator runs) or ``"constrained"`` (the
            model's own support, for example positive for a scale; needs a model's trajectory).
        :raises ValueError: for another ``space``, or ``"constrained"`` without transforms.
        """
        if space not in ("unconstrained", "constrained"):
            raise ValueError(f"space must be 'unconstrained' or 'constrained'; got {space!r}")
        if self.ravel is None:
            raise ValueError("sites() needs a dict position; this trajectory was a tensor")
        steps = self.positions.shape[0]
        out = {}
        for name, shape, chunk in zip(
            self.ravel.names,
            self.ravel.shapes,
            torch.split(self.positions, self.ravel.sizes, dim=-1),
            strict=True,
        ):
            value = chunk.reshape((steps, *shape))
            if space == "constrained":
                if self.transforms is None:
                    raise ValueError(
                        "space='constrained' needs a Pyro model's trajectory "
                        "(record_model_trajectory or kernel_trajectory with a model)"
                    )
                transform = self.transforms.get(name)
                if transform is not None:
                    value = transform.inv(value)
            out[name] = value
        return out
