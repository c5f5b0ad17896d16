r"""The metric: an inverse mass matrix :math:`M^{-1}` and what the kernels need from it.

HMC draws momentum :math:`p \sim \mathcal{N}(0, M)` and moves with velocity :math:`M^{-1} p`;
random-walk and Langevin proposals add noise with covariance :math:`\epsilon^2 M^{-1}`.
Writing :math:`M^{-1} = C C^\top` (Cholesky), every operation is a product or a triangular solve
with :math:`L`, cached once per matrix, so a dense block costs :math:`O(D^2)` per call and a
diagonal block :math:`O(D)`. No matrix is ever inverted.

The inverse mass matrix is block-diagonal over contiguous slices of the flat position vector,
mirroring Pyro's :class:`~pyro.infer.mcmc.adaptation.BlockMassMatrix`: each block is either
diagonal (its entries, shape ``(d,)``) or dense (shape ``(d, d)``). All methods act on the last
dimension, so a position with leading batch dimensions works unchanged; a block may carry the same
leading batch dimensions (shape ``(C, d)`` or ``(C, d, d)``: one matrix per chain), and then says
which it is with ``dense=``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class Metric:
    r"""A block-diagonal inverse mass matrix acting on flat vectors.

    :param blocks: the diagonal blocks of :math:`M^{-1}` in the order of the flat vector; each
        the entries of a diagonal block (all positive) or a symmetric positive-definite dense
        block, optionally with leading batch dimensions (one matrix per chain).
    :param dense: for each block, whether it is dense. By default a 1-D block is diagonal and a
        2-D block dense (no batch dimensions); batched blocks must say.
    :raises ValueError: if a block is not positive (definite).

    The methods return new tensors, except for the unit metric, whose methods return their
    argument unchanged (the same tensor): treat their results as read-only.
    """

    def __init__(self, blocks: Sequence[Tensor], dense: Sequence[bool] | None = None):
        if not blocks:
            raise ValueError("inverse_mass_matrix needs at least one block")
        self.blocks: tuple[Tensor, ...] = tuple(blocks)
        if dense is None:
            dense = [b.dim() == 2 for b in self.blocks]
        self.dense: tuple[bool, ...] = tuple(dense)
        self.sizes: tuple[int, ...] = tuple(b.shape[-1] for b in self.blocks)
        self._chol: tuple[Tensor, ...] = tuple(
            _cholesky(b, d) for b, d in zip(self.blocks, self.dense, strict=True)
        )
        #: Whether :math:`M = I`: then every method returns its argument itself, which saves a
        #: multiplication per leapfrog step when the mass matrix is not adapted.
        first = self.blocks[0]
        self.is_identity: bool = (
            len(self.blocks) == 1 and not self.dense[0] and bool((first == 1).all())
        )

    @classmethod
    def identity(cls, dim: int, dtype=None, device=None) -> Metric:
        """The unit metric :math:`M = I` (stored as a diagonal, never as a matrix)."""
        return cls([torch.ones(dim, dtype=dtype, device=device)])

    @classmethod
    def from_inverse_mass_matrix(
        cls, inverse_mass_matrix: Tensor | Metric | None, like: Tensor
    ) -> Metric:
        """A metric from ``None`` (identity), a 1-D (diagonal) or 2-D (dense) tensor."""
        if isinstance(inverse_mass_matrix, Metric):
            return inverse_mass_matrix
        dim = like.shape[-1]
        if inverse_mass_matrix is None:
            return cls.identity(dim, dtype=like.dtype, device=like.device)
        m = torch.as_tensor(inverse_mass_matrix, dtype=like.dtype, device=like.device)
        if m.dim() not in (1, 2) or m.shape[0] != dim or (m.dim() == 2 and m.shape[1] != dim):
            raise ValueError(
                f"inverse_mass_matrix must have shape ({dim},) or ({dim}, {dim}); "
                f"got {tuple(m.shape)}"
            )
        return cls([m])

    @property
    def dim(self) -> int:
        return sum(self.sizes)

    def _apply(self, fns, x: Tensor) -> Tensor:
        if self.is_identity:
            return x
        # One block is the common case (all-diagonal or all-dense): no split, no cat.
        if len(self.blocks) == 1:
            return fns(0, x)
        parts = torch.split(x, self.sizes, dim=-1)
        return torch.cat([fns(i, part) for i, part in enumerate(parts)], dim=-1)

    def velocity(self, momentum: Tensor) -> Tensor:
        r""":math:`M^{-1} p`, the time derivative of the position."""

        def block(i, p):
            m = self.blocks[i]
            return _matvec(m, p) if self.dense[i] else m * p  # m is symmetric

        return self._apply(block, momentum)

    def kinetic_energy(self, momentum: Tensor) -> Tensor:
        r""":math:`K(p) = \tfrac12 p^\top M^{-1} p`."""
        return 0.5 * (momentum * self.velocity(momentum)).sum(-1)

    def momentum_from_normal(self, noise: Tensor) -> Tensor:
        r"""Map :math:`\xi \sim \mathcal{N}(0, I)` to :math:`C^{-\top}\xi \sim \mathcal{N}(0,M)`."""

        def block(i, z):
            c = self._chol[i]
            if not self.dense[i]:
                return z / c
            return torch.linalg.solve_triangular(c.mT, z.unsqueeze(-1), upper=True).squeeze(-1)

        return self._apply(block, noise)

    def position_from_normal(self, noise: Tensor) -> Tensor:
        r"""Map :math:`\xi \sim \mathcal{N}(0, I)` to :math:`C\xi \sim \mathcal{N}(0, M^{-1})`."""

        def block(i, z):
            c = self._chol[i]
            return _matvec(c, z) if self.dense[i] else c * z

        return self._apply(block, noise)

    def whiten(self, x: Tensor) -> Tensor:
        r""":math:`C^{-1} x`, so that :math:`\lVert C^{-1}x \rVert^2 = x^\top M x`."""

        def block(i, z):
            c = self._chol[i]
            if not self.dense[i]:
                return z / c
            return torch.linalg.solve_triangular(c, z.unsqueeze(-1), upper=False).squeeze(-1)

        return self._apply(block, x)


def _matvec(m: Tensor, x: Tensor) -> Tensor:
    """:math:`m x` for a matrix ``m`` and a vector ``x``, each with any leading batch dims."""
    if m.dim() == 2:
        return x @ m.mT
    return (x.unsqueeze(-2) @ m.mT).squeeze(-2)


def _cholesky(block: Tensor, dense: bool) -> Tensor:
    if not dense:
        if not bool(torch.all(block > 0)) or not bool(torch.isfinite(block).all()):
            raise ValueError("a diagonal inverse_mass_matrix must have finite, positive entries")
        return block.sqrt()
    if block.dim() < 2 or block.shape[-1] != block.shape[-2]:
        raise ValueError(
            f"a dense inverse_mass_matrix block must be square; got {tuple(block.shape)}"
        )
    chol, info = torch.linalg.cholesky_ex(block)
    if bool((info != 0).any()):
        raise ValueError("a dense inverse_mass_matrix block must be symmetric positive definite")
    return chol
