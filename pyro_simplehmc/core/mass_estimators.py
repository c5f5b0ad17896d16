r"""Three estimators of the inverse mass matrix from warmup draws (and their gradients).

Each keeps running statistics of one adaptation window's draws, for a batch of chains (one
estimate per chain, or one pooled over the chains), and turns them into a matrix:

- :class:`StanEstimator` (``"stan"``): Stan's windowed sample covariance, regularised
  (:class:`~pyro_simplehmc.core.welford.BatchWelford`); it assumes nothing but uses the draws
  alone, so it needs many of them, and the warmup's are autocorrelated;
- :class:`FisherEstimator` (``"fisher"``): the diagonal
  :math:`M^{-1}_{ii} = \sqrt{\mathrm{Var}[x_i] / \mathrm{Var}[\partial_i \log\pi]}`
  (nutpie; Seyboldt, Carlson & Carpenter, arXiv 2603.18845). For a Gaussian with covariance
  :math:`\Sigma` the gradient :math:`-\Sigma^{-1}(x-\mu)` has covariance :math:`\Sigma^{-1}`, so
  the draws overestimate and the gradients underestimate what a diagonal should be where the
  coordinates are correlated, and the geometric mean of the two is exact when they are not;
  gradients carry information about curvature that a short window's draws lack;
- :class:`LowRankEstimator` (``"low_rank"``): that diagonal, times the identity corrected in the
  few directions where draws and gradients disagree most with it:
  :math:`M^{-1} = D^{1/2}\,(I + U(\Lambda - I)U^\top)\,D^{1/2}`, where, in coordinates scaled by
  the diagonal :math:`D`, :math:`U\Lambda U^\top` is the eigen-decomposition (restricted to the
  span of the draws and gradients) of the :math:`\Sigma` that solves
  :math:`\Sigma\, \mathrm{Cov}[g]\, \Sigma = \mathrm{Cov}[x]`, keeping the eigenvalues outside
  :math:`[1/c, c]` (:data:`EIGENVALUE_CUTOFF`; nuts-rs ``mass_matrix/low_rank.rs``). It assumes the
  posterior's correlations live in a few directions, and costs a dense matrix's operations.

The first two are running (Welford) statistics; the low-rank one keeps the window's draws and
gradients. Each ``update(x, g)`` takes ``(C, d)`` tensors; ``estimate()`` returns ``(B, d)``
(diagonal) or ``(B, d, d)`` (dense), ``B`` = 1 when pooled, with non-finite entries where a
chain's draws did not allow an estimate (the caller keeps its previous matrix there).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .welford import BatchWelford

__all__ = [
    "EIGENVALUE_CUTOFF",
    "MASS_ESTIMATORS",
    "FisherEstimator",
    "LowRankEstimator",
    "StanEstimator",
    "make_estimator",
    "spd_geometric_mean",
]

#: The names ``mass_estimator`` accepts.
MASS_ESTIMATORS = ("stan", "fisher", "low_rank")
#: Eigenvalues of the low-rank correction between :math:`1/c` and :math:`c` are dropped. nutpie's
#: documented defaults differ (100 in nuts-rs and nutpie's docstring, 2 in nutpieR); with 100 a
#: 2-D Gaussian with correlation 0.999 is left uncorrected (the scaled eigenvalues are
#: :math:`\sqrt{(1 \pm \rho)/(1 \mp \rho)} \approx 45^{\pm 1}`), so 2, as nutpieR.
EIGENVALUE_CUTOFF = 2.0
#: The regularisation of the projected covariances, :math:`S/\gamma + I` (nuts-rs's ``gamma``).
LOW_RANK_GAMMA = 1e-5
#: Bounds on a diagonal estimate (nuts-rs clamps the same way).
DIAGONAL_BOUNDS = (1e-20, 1e20)


class StanEstimator:
    """Stan's windowed covariance of the draws (today's default)."""

    dense_result: bool

    def __init__(self, size: int, dense: bool, pooled: bool):
        self.welford = BatchWelford(size, dense, pooled)
        self.dense_result = dense

    @property
    def count(self) -> int:
        return self.welford.n_samples

    def update(self, x: Tensor, grad: Tensor | None = None) -> None:
        self.welford.update(x)

    def reset(self) -> None:
        self.welford.reset()

    def estimate(self) -> Tensor:
        return self.welford.covariance()


class FisherEstimator:
    r"""The diagonal :math:`\sqrt{\mathrm{Var}[x]/\mathrm{Var}[\nabla\log\pi]}` (nutpie)."""

    dense_result = False

    def __init__(self, size: int, pooled: bool):
        self.draws = BatchWelford(size, dense=False, pooled=pooled)
        self.grads = BatchWelford(size, dense=False, pooled=pooled)

    @property
    def count(self) -> int:
        return self.draws.n_samples

    def update(self, x: Tensor, grad: Tensor | None = None) -> None:
        self.draws.update(x)
        self.grads.update(grad)

    def reset(self) -> None:
        self.draws.reset()
        self.grads.reset()

    def estimate(self) -> Tensor:
        # The unregularised variances: their ratio is what matters, and shrinking each towards
        # a constant of an arbitrary scale would bias it.
        var_x, var_g = self.draws.sample_covariance(), self.grads.sample_covariance()
        return torch.sqrt(var_x / var_g).clamp(*DIAGONAL_BOUNDS)


def spd_geometric_mean(a: Tensor, b: Tensor) -> Tensor:
    r"""The symmetric positive-definite :math:`\Sigma` with :math:`\Sigma B \Sigma = A`:
    :math:`B^{-1/2}(B^{1/2} A B^{1/2})^{1/2} B^{-1/2}` (batched over leading dimensions)."""

    def power(m: Tensor, p: float) -> Tensor:
        values, vectors = torch.linalg.eigh(m)
        return (vectors * values.clamp(min=0).pow(p).unsqueeze(-2)) @ vectors.mT

    b_half, b_inv_half = power(b, 0.5), power(b, -0.5)
    return b_inv_half @ power(b_half @ a @ b_half, 0.5) @ b_inv_half


class LowRankEstimator:
    r"""The gradient-based diagonal with a low-rank correction from draws and gradients.

    :param int size: the dimension :math:`d`.
    :param bool pooled: one estimate from all chains' draws.
    :param int rank: at most this many directions are corrected (those whose eigenvalues are
        furthest from 1, among those outside :math:`[1/c, c]`).
    """

    dense_result = True

    def __init__(self, size: int, pooled: bool, rank: int):
        self.size, self.pooled, self.rank = size, pooled, rank
        self.reset()

    @property
    def count(self) -> int:
        return len(self._draws)

    def reset(self) -> None:
        self._draws: list[Tensor] = []
        self._grads: list[Tensor] = []

    def update(self, x: Tensor, grad: Tensor | None = None) -> None:
        self._draws.append(x.detach())
        self._grads.append(grad.detach())

    def estimate(self) -> Tensor:
        if self.count < 3:
            raise RuntimeError("at least 3 draws are needed for a low-rank estimate")
        draws = torch.stack(self._draws, dim=1)  # (C, n, d)
        grads = torch.stack(self._grads, dim=1)
        if self.pooled:
            draws, grads = draws.reshape(1, -1, self.size), grads.reshape(1, -1, self.size)
        x = draws - draws.mean(1, keepdim=True)
        g = grads - grads.mean(1, keepdim=True)
        # The diagonal, as FisherEstimator has it; scaled, the draws and gradients should both
        # look like a standard normal's where the diagonal is right.
        diagonal = torch.sqrt(x.pow(2).sum(1) / g.pow(2).sum(1)).clamp(*DIAGONAL_BOUNDS)
        std = diagonal.sqrt().unsqueeze(1)  # (B, 1, d)
        n = x.shape[1]
        x, g = (x / std / n).mT, (g * std / n).mT  # (B, d, n)
        # The subspace the draws and gradients span: nothing is learned outside it.
        spans = [torch.linalg.svd(m, full_matrices=False)[0] for m in (x, g)]
        basis = torch.linalg.qr(torch.cat(spans, -1))[0]
        px, pg = basis.mT @ x, basis.mT @ g
        eye = torch.eye(basis.shape[-1], dtype=x.dtype, device=x.device)
        cov_x = px @ px.mT / LOW_RANK_GAMMA + eye
        cov_g = pg @ pg.mT / LOW_RANK_GAMMA + eye
        values, vectors = torch.linalg.eigh(spd_geometric_mean(cov_x, cov_g))
        # Keep the `rank` eigenvalues furthest from 1 (in log), and only those beyond the cutoff.
        distance = values.clamp(min=1e-300).log().abs()
        distance = torch.where(distance > torch.log(torch.tensor(EIGENVALUE_CUTOFF)), distance,
                               torch.zeros_like(distance))  # fmt: skip
        keep = distance.argsort(-1, descending=True)[..., : self.rank]
        chosen = distance.gather(-1, keep) > 0
        values = torch.where(chosen, values.gather(-1, keep), torch.ones_like(distance[..., :1]))
        columns = keep.unsqueeze(-2).expand(*vectors.shape[:-1], keep.shape[-1])
        directions = basis @ vectors.gather(-1, columns)
        inner = torch.eye(self.size, dtype=x.dtype, device=x.device) + (
            directions * (values - 1).unsqueeze(-2)
        ) @ directions.mT
        root = diagonal.sqrt()
        matrix = root.unsqueeze(-1) * inner * root.unsqueeze(-2)
        return 0.5 * (matrix + matrix.mT)


def make_estimator(name: str, size: int, dense: bool, pooled: bool, rank: int | None):
    """The estimator called ``name`` for one block of ``size`` coordinates (``dense``: the block
    is dense, as ``full_mass`` makes it)."""
    if name == "stan":
        return StanEstimator(size, dense, pooled)
    if name == "fisher":
        if dense:
            raise ValueError(
                'mass_estimator="fisher" estimates a diagonal; with full_mass (a dense block) '
                'use "stan" or "low_rank"'
            )
        return FisherEstimator(size, pooled)
    return LowRankEstimator(size, pooled, size if rank is None else min(rank, size))
