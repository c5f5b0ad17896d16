r"""The inverse mass matrix of a batch of chains, in blocks named by site, as Pyro's ``HMC`` has it.

``full_mass`` chooses the blocks (:func:`mass_matrix_blocks`): one diagonal block, one dense block
over every site, or dense blocks over given sites and a diagonal block for the rest. Each block is
a contiguous slice of the flat position, and :class:`BatchMassMatrix` keeps one matrix per block
(per chain, or shared by the chains), their estimates during warmup (one of the estimators of
:mod:`pyro_simplehmc.core.mass_estimators`, chosen by ``mass_estimator``), and the flat
:class:`~pyro_simplehmc.core.metrics.Metric` that the kernels use.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import Tensor

from ..core.mass_estimators import make_estimator
from ..core.metrics import Metric

__all__ = ["BatchMassMatrix", "FullMass", "as_block_dict", "mass_matrix_blocks"]

FullMass = bool | list[tuple[str, ...]]


class BatchMassMatrix:
    """The inverse mass matrix of a batch of chains, block by block, and its flat metric.

    The flat position lists the sites block by block, in the order of :func:`mass_matrix_blocks`,
    so each block is a contiguous slice of it. Each block's matrix has a leading dimension ``B``:
    the number of chains (one matrix each), or 1 when the chains share it (``pooled``).

    It starts from the identity; with ``adapt=True`` it keeps an estimate of each block, which
    :meth:`update` feeds and :meth:`end_adaptation` turns into the new matrices: Stan's windowed
    covariance (``"stan"``, the default), the gradient-based diagonal (``"fisher"``) or that
    diagonal with a low-rank correction (``"low_rank"``, stored as a dense block); see
    :mod:`pyro_simplehmc.core.mass_estimators`.

    :param blocks: each block's site names and shape, ``(n,)`` (diagonal) or ``(n, n)`` (dense),
        from :func:`mass_matrix_blocks`.
    :param int num_matrices: ``B``.
    :param bool pooled: estimate one matrix from all chains' draws.
    :param bool adapt: keep estimates to adapt the matrices from.
    :param dtype: the matrices' dtype.
    :param device: the matrices' device.
    :param str estimator: ``"stan"``, ``"fisher"`` or ``"low_rank"``.
    :param int low_rank_size: with ``"low_rank"``, at most this many corrected directions per
        block (``None``: as many as the eigenvalue cutoff keeps).
    """

    def __init__(
        self,
        blocks: Mapping[tuple[str, ...], tuple[int, ...]],
        num_matrices: int = 1,
        pooled: bool = False,
        adapt: bool = True,
        dtype: torch.dtype | None = None,
        device: torch.device | None = None,
        estimator: str = "stan",
        low_rank_size: int | None = None,
    ):
        self.num_matrices, self.pooled = num_matrices, pooled
        self.blocks: OrderedDict[tuple[str, ...], tuple[int, ...]] = OrderedDict(blocks)
        self._welford: dict = {}
        self._inverse_mass_matrix: dict[tuple[str, ...], Tensor] = {}
        self._dense: dict[tuple[str, ...], bool] = {}
        self.metric: Metric | None = None
        identity = {}
        for names, shape in self.blocks.items():
            dense = len(shape) == 2
            ones = torch.ones(shape[0], dtype=dtype, device=device)
            identity[names] = torch.diag(ones) if dense else ones
            if adapt:
                self._welford[names] = make_estimator(
                    estimator, shape[0], dense, pooled, low_rank_size
                )
        self.inverse_mass_matrix = identity

    @property
    def inverse_mass_matrix(self) -> dict[tuple[str, ...], Tensor]:
        """A dict keyed by tuples of site names, each block shaped ``(d,)`` or ``(d, d)``, with a
        leading dimension of one matrix per chain when the chains have their own.

        Setting it takes one matrix per block, shared by the chains."""
        return self._inverse_mass_matrix

    @inverse_mass_matrix.setter
    def inverse_mass_matrix(self, value: Mapping[tuple[str, ...], Tensor]) -> None:
        """Set blocks from one matrix each, shared by the chains: ``(d,)`` (diagonal) or
        ``(d, d)`` (dense, whatever ``full_mass`` says: it only decides what adaptation
        estimates)."""
        known = list(self.blocks)
        matrices, dense = {}, {}
        for names, matrix in value.items():
            if names not in self.blocks:
                raise ValueError(
                    f"inverse_mass_matrix has a block for {names!r}; the blocks are {known}"
                )
            size = self.blocks[names][0]
            if tuple(matrix.shape) not in ((size,), (size, size)):
                raise ValueError(
                    f"inverse_mass_matrix block {names!r} must have shape ({size},) or "
                    f"({size}, {size}); got {tuple(matrix.shape)}"
                )
            matrices[names] = matrix.detach()
            dense[names] = matrix.dim() == 2
        self._store(matrices, dense)

    def _store(self, matrices: Mapping[tuple[str, ...], Tensor], dense: Mapping) -> None:
        """Replace blocks: ``(B, d)`` (diagonal) or ``(B, d, d)`` (dense) with one matrix per
        chain, or one matrix for all chains (``B`` = 1), stored without the leading dimension,
        which then broadcasts over any batch of chains (and over none)."""
        shaped = {}
        for names, matrix in matrices.items():
            matrix_ndim = 2 if dense[names] else 1
            if self.num_matrices == 1 and matrix.dim() > matrix_ndim:
                matrix = matrix[0]  # one for all chains: no chain dimension
            elif self.num_matrices > 1 and matrix.dim() == matrix_ndim:
                matrix = matrix.expand(self.num_matrices, *matrix.shape)  # one per chain
            shaped[names] = matrix
        matrices = shaped
        merged = {**self._inverse_mass_matrix, **matrices}
        flags = {**self._dense, **dense}
        known = list(self.blocks)
        # Build (and so validate) the metric before storing anything. A model without latent
        # sites has no blocks, and nothing to move.
        metric = (
            Metric([merged[n] for n in known], dense=[flags[n] for n in known]) if known else None
        )
        self._inverse_mass_matrix, self._dense, self.metric = merged, flags, metric
        for welford in self._welford.values():
            welford.reset()

    def load(self, matrices: Mapping[tuple[str, ...], Tensor]) -> None:
        """Set every block as :attr:`inverse_mass_matrix` gave it (one matrix per chain, or one
        for all), as a continued run does."""
        chain_dim = 0 if self.num_matrices == 1 else 1
        dense = {names: matrix.dim() == 2 + chain_dim for names, matrix in matrices.items()}
        if set(matrices) != set(self.blocks):
            raise ValueError(
                f"the inverse mass matrix has blocks {list(matrices)}; this model's are "
                f"{list(self.blocks)}"
            )
        self._store({names: m.detach().clone() for names, m in matrices.items()}, dense)

    def update(self, position: Tensor, grad: Tensor | None = None) -> None:
        """Add the chains' flat positions, shape ``(C, D)``, and the gradients of the potential
        there (for the gradient-based estimators), to the running estimates."""
        start = 0
        for names, shape in self.blocks.items():
            if names in self._welford:
                end = start + shape[0]
                self._welford[names].update(
                    position[:, start:end], None if grad is None else -grad[:, start:end]
                )
            start += shape[0]

    def end_adaptation(self) -> None:
        """Set each adapted block to its estimated covariance.

        A chain whose estimate is not a valid matrix (draws that overflowed, in a chain that
        diverged to infinity) keeps its previous one: one chain's fault never ends the batch.
        """
        matrices = {}
        for names, welford in self._welford.items():
            estimate, previous = welford.estimate(), self._inverse_mass_matrix[names]
            if welford.dense_result:
                if not self._dense[names]:  # a diagonal block becomes dense
                    previous = torch.diag_embed(previous)
                valid = torch.linalg.cholesky_ex(estimate)[1] == 0
                valid = valid & torch.isfinite(estimate).all(-1).all(-1)
                matrices[names] = torch.where(valid[:, None, None], estimate, previous)
            else:
                valid = (torch.isfinite(estimate) & (estimate > 0)).all(-1, keepdim=True)
                matrices[names] = torch.where(valid, estimate, previous)
        self._store(matrices, {names: w.dense_result for names, w in self._welford.items()})




def mass_matrix_blocks(
    full_mass: FullMass, params: Mapping[str, Tensor], batch_ndim: int = 0
) -> OrderedDict[tuple[str, ...], tuple[int, ...]]:
    """The block structure of the mass matrix, as Pyro's ``HMC`` builds it.

    :param full_mass: ``False`` (one diagonal block), ``True`` (one dense block over all sites) or
        a list of tuples of site names, each a dense block; the other sites share one diagonal
        block.
    :param params: the (unconstrained) parameters, for site names and sizes.
    :param int batch_ndim: leading batch dimensions of ``params`` (not counted in the sizes).
    :returns: an ordered dict mapping each block's site names to its shape: ``(n, n)`` for dense,
        ``(n,)`` for diagonal. Dense blocks come first, then the diagonal block.
    """
    if full_mass is False:
        dense: list[tuple[str, ...]] = []
    elif full_mass is True:
        dense = [tuple(sorted(params))] if params else []
    else:
        dense = full_mass
        allowed = f"False, True, or a list of tuples of site names from {sorted(params)}"
        if not isinstance(dense, list):
            raise ValueError(f"full_mass must be {allowed}; got {full_mass!r}")
        seen: set[str] = set()
        for block in dense:
            if not isinstance(block, tuple) or not block:
                raise ValueError(f"full_mass must be {allowed}; got the block {block!r}")
            for name in block:
                if name not in params:
                    raise ValueError(
                        f"full_mass names the unknown site {name!r}; allowed: {allowed}"
                    )
                if name in seen:
                    raise ValueError(f"full_mass names the site {name!r} twice")
                seen.add(name)
    in_dense = {name for block in dense for name in block}
    diagonal = tuple(sorted(name for name in params if name not in in_dense))

    def size(name: str) -> int:
        return math.prod(params[name].shape[batch_ndim:])

    blocks: OrderedDict[tuple[str, ...], tuple[int, ...]] = OrderedDict()
    for block in dense:
        n = sum(size(name) for name in block)
        blocks[block] = (n, n)
    if diagonal:
        blocks[diagonal] = (sum(size(name) for name in diagonal),)
    return blocks


def as_block_dict(
    inverse_mass_matrix: Tensor | Mapping[tuple[str, ...], Tensor],
    blocks: Mapping[tuple[str, ...], tuple[int, ...]],
    like: Tensor,
) -> dict[tuple[str, ...], Tensor]:
    """Normalise a user's ``inverse_mass_matrix`` to Pyro's dict of blocks.

    A single tensor is accepted when the mass matrix has a single block (``full_mass`` True or
    False): 1-D for a diagonal, 2-D for a dense matrix, over the sites sorted by name.
    """
    if isinstance(inverse_mass_matrix, Mapping):
        items = dict(inverse_mass_matrix)
    elif isinstance(inverse_mass_matrix, Tensor):
        if len(blocks) != 1:
            raise ValueError(
                "inverse_mass_matrix must be a dict keyed by the blocks "
                f"{list(blocks)} when full_mass has several blocks"
            )
        items = {next(iter(blocks)): inverse_mass_matrix}
    else:
        raise ValueError(
            "inverse_mass_matrix must be None, a tensor, or a dict mapping tuples of site names "
            f"to tensors; got {type(inverse_mass_matrix).__name__}"
        )
    return {
        names: torch.as_tensor(m, dtype=like.dtype, device=like.device)
        for names, m in items.items()
    }
