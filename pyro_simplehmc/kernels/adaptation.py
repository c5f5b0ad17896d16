r"""Warmup adaptation for a batch of chains: a thin layer over Pyro's own machinery.

Pyro's :class:`~pyro.infer.mcmc.adaptation.WarmupAdapter` implements Stan's windowed warmup (a
fast initial buffer, doubling slow windows, a final buffer), dual averaging of the step size
(:class:`~pyro.ops.dual_averaging.DualAveraging`) and a re-search of the step size after each slow
window. Both run unchanged here; what one chain at a time could not give is added:

- :class:`BatchWarmupAdapter` keeps the dual-averaging state as tensors with one entry per chain
  (Pyro's :class:`~pyro.ops.dual_averaging.DualAveraging` is plain arithmetic, so it broadcasts),
  or one entry for all chains (``pooled``: the chains share a step size, adapted on the mean of
  their acceptance probabilities);
- :class:`BatchWelford` and :class:`BatchMassMatrix` estimate the inverse mass matrix per chain or
  from all chains' draws together (Pyro's Welford estimator and block mass matrix hold one chain);
- :func:`mass_matrix_blocks` turns ``full_mass`` into Pyro's block layout, with clear errors.

With one chain, per-chain and pooled adaptation are the same thing, and the same code runs.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Mapping

import pyro
import torch
from pyro.infer.mcmc.adaptation import WarmupAdapter
from pyro.ops.dual_averaging import DualAveraging
from torch import Tensor

from ..core.metrics import Metric

__all__ = [
    "CHAIN_ADAPTATION",
    "BatchMassMatrix",
    "BatchWarmupAdapter",
    "BatchWelford",
    "harmonic_mean",
    "mass_matrix_blocks",
]

FullMass = bool | list[tuple[str, ...]]

#: The allowed values of ``chain_adaptation``.
CHAIN_ADAPTATION = ("per_chain", "pooled")


def harmonic_mean(x: Tensor) -> Tensor:
    """The harmonic mean of non-negative numbers over the last dimension (0 if any is 0)."""
    return x.shape[-1] / x.reciprocal().sum(-1)


class BatchWelford:
    r"""Welford's running mean and (co)variance of the draws of a batch of chains.

    :param int size: the dimension :math:`d` of one draw.
    :param bool dense: estimate the full covariance (else only the variances).
    :param bool pooled: one estimate from all chains' draws (else one per chain).

    Pooled updates merge the batch's own moments into the running ones (Chan et al., 1979), so a
    batch of :math:`C` draws costs a few tensor operations, not :math:`C` updates.
    """

    def __init__(self, size: int, dense: bool, pooled: bool):
        self.size, self.dense, self.pooled = size, dense, pooled
        self.reset()

    def reset(self) -> None:
        self.n_samples = 0
        self._mean: Tensor | float = 0.0
        self._m2: Tensor | float = 0.0

    def _outer(self, a: Tensor, b: Tensor) -> Tensor:
        return a.unsqueeze(-1) * b.unsqueeze(-2) if self.dense else a * b

    def update(self, x: Tensor) -> None:
        """Add one draw per chain, ``x`` of shape ``(C, d)``."""
        x = x.detach()
        if not self.pooled:
            self.n_samples += 1
            delta = x - self._mean
            self._mean = self._mean + delta / self.n_samples
            self._m2 = self._m2 + self._outer(x - self._mean, delta)
            return
        count = x.shape[0]
        batch_mean = x.mean(0)
        centred = x - batch_mean
        batch_m2 = centred.mT @ centred if self.dense else (centred * centred).sum(0)
        total = self.n_samples + count
        delta = batch_mean - self._mean
        self._mean = self._mean + delta * (count / total)
        between = self._outer(delta, delta) * (self.n_samples * count / total)
        self._m2 = self._m2 + batch_m2 + between
        self.n_samples = total

    def covariance(self) -> Tensor:
        r"""The regularised estimate: shape ``(B, d)`` or ``(B, d, d)``, ``B`` = 1 when pooled.

        Stan's regularisation shrinks towards :math:`10^{-3} I` with weight :math:`5/(n+5)`. A
        dense estimate from :math:`n` draws in :math:`d` dimensions is also shrunk towards its own
        diagonal, :math:`(1 - \lambda) S + \lambda\, \mathrm{diag}(S)` with
        :math:`\lambda = d/(n + d)`: with fewer draws than dimensions (the first windows) the
        sample covariance is singular and the chain could no longer move along its null
        directions (measured on a 50-D Gaussian: smallest whitened eigenvalue 0.000 after a
        500-step warmup without this shrinkage).
        """
        n = self.n_samples
        if n < 2:
            raise RuntimeError("at least 2 draws are needed to estimate a covariance")
        cov = self._m2 / (n - 1)
        if self.pooled:
            cov = cov.unsqueeze(0)
        cov = cov * (n / (n + 5.0))
        shrinkage = 1e-3 * (5.0 / (n + 5.0))
        if not self.dense:
            return cov + shrinkage
        diagonal = torch.diagonal(cov, dim1=-2, dim2=-1)
        weight = self.size / (n + self.size)
        eye = torch.eye(self.size, dtype=cov.dtype, device=cov.device)
        return (1 - weight) * cov + (weight * diagonal + shrinkage).unsqueeze(-1) * eye


class BatchMassMatrix:
    """The inverse mass matrix of a batch of chains, block by block, and its flat metric.

    The flat position lists the sites block by block, in the order of :func:`mass_matrix_blocks`,
    so each block is a contiguous slice of it. Each block's matrix has a leading dimension ``B``:
    the number of chains (one matrix each), or 1 when the chains share it (``pooled``).

    :param int num_matrices: ``B``.
    :param bool pooled: estimate one matrix from all chains' draws.
    """

    def __init__(self, num_matrices: int = 1, pooled: bool = False):
        self.num_matrices, self.pooled = num_matrices, pooled
        self.blocks: OrderedDict[tuple[str, ...], tuple[int, ...]] = OrderedDict()
        self._welford: dict[tuple[str, ...], BatchWelford] = {}
        self._inverse_mass_matrix: dict[tuple[str, ...], Tensor] = {}
        self._dense: dict[tuple[str, ...], bool] = {}
        self.metric: Metric | None = None

    def configure(self, mass_matrix_shape, adapt_mass_matrix=True, options=None) -> None:
        """Start from the identity (the signature is that of Pyro's ``BlockMassMatrix``)."""
        options = options or {}
        self.blocks = OrderedDict(mass_matrix_shape)
        self._welford, self._inverse_mass_matrix, self._dense = {}, {}, {}
        identity = {}
        for names, shape in self.blocks.items():
            dense = len(shape) == 2
            identity[names] = torch.ones(shape[0], **options)
            if dense:
                identity[names] = torch.diag(identity[names])
            if adapt_mass_matrix:
                self._welford[names] = BatchWelford(shape[0], dense, self.pooled)
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

    def update(self, position: Tensor) -> None:
        """Add the chains' flat positions, shape ``(C, D)``, to the running estimates."""
        start = 0
        for names, shape in self.blocks.items():
            if names in self._welford:
                self._welford[names].update(position[:, start : start + shape[0]])
            start += shape[0]

    def end_adaptation(self) -> None:
        """Set each adapted block to its estimated covariance.

        A chain whose estimate is not a valid matrix (draws that overflowed, in a chain that
        diverged to infinity) keeps its previous one: one chain's fault never ends the batch.
        """
        matrices = {}
        for names, welford in self._welford.items():
            estimate, previous = welford.covariance(), self._inverse_mass_matrix[names]
            if welford.dense:
                valid = torch.linalg.cholesky_ex(estimate)[1] == 0
                valid = valid & torch.isfinite(estimate).all(-1).all(-1)
                matrices[names] = torch.where(valid[:, None, None], estimate, previous)
            else:
                valid = (torch.isfinite(estimate) & (estimate > 0)).all(-1, keepdim=True)
                matrices[names] = torch.where(valid, estimate, previous)
        self._store(matrices, {names: w.dense for names, w in self._welford.items()})


class BatchWarmupAdapter(WarmupAdapter):
    r"""Pyro's :class:`~pyro.infer.mcmc.adaptation.WarmupAdapter` for a batch of chains.

    :attr:`step_size` is a tensor with one entry per chain (``per_chain``) or one shared entry
    (``pooled``), and :meth:`step` takes one acceptance probability per chain.

    Three of Stan's constants are retuned. They were chosen for NUTS, whose acceptance statistic
    averages over a whole trajectory; here it is one proposal's acceptance probability, which is
    much noisier, and dual averaging's iterates then wander widely (a standard deviation of about
    0.9 in log step size, measured for the random walk on the 2-D Gaussian). The final, averaged
    step size then misses the target by Jensen's inequality: 0.13-0.21 realised for a 0.234
    target. So:

    - the shrinkage point is the step size found by the search, not ten times it (the larger
      point makes NUTS try long trajectories first; here it only makes early proposals fail);
    - ``gamma`` is 0.2 instead of 0.05 (``dual_averaging_gamma``; SimpleHMC uses 0.5), which
      damps the iterates around that point;
    - the final buffer (step size only, after the last mass-matrix window) is a fifth of the
      warmup instead of 50 iterations.

    Measured over 8 chains with 1000 warmup steps, for MALA and the random walk on a 2-D
    correlated Gaussian and a 50-D diagonal Gaussian, the realised acceptance then lands within
    0.03 of the target on average over the chains, and each chain within 0.13
    (``tests/test_adaptation.py``).

    :param str chain_adaptation: ``"per_chain"`` or ``"pooled"``.
    :param int num_chains: the number of chains in the batch.
    :param float dual_averaging_gamma: how strongly dual averaging pulls its iterates towards
        the shrinkage point.
    """

    def __init__(
        self,
        *args,
        chain_adaptation: str = "per_chain",
        num_chains: int = 1,
        dual_averaging_gamma: float = 0.2,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.pooled = chain_adaptation == "pooled"
        self.num_chains = num_chains
        self.num_matrices = 1 if self.pooled else num_chains
        if self.adapt_step_size:
            self._step_size_adapt_scheme = DualAveraging(gamma=dual_averaging_gamma)
        self.mass_matrix_adapter = BatchMassMatrix(self.num_matrices, self.pooled)
        self._find_reasonable_step_size: Callable | None = None
        #: How many adaptation windows have ended, and at how many of those ends the mass matrix
        #: was re-estimated: what a kernel that learns more than these compares across a step.
        self.windows_ended = 0
        self.mass_matrix_updates = 0

    def configure(self, warmup_steps, *args, options=None, **kwargs):
        options = options or {}
        self._adapt_end_buffer = max(50, warmup_steps // 5)
        super().configure(warmup_steps, *args, options=options, **kwargs)
        self.step_size = torch.full((self.num_matrices,), float(self.step_size), **options)

    #: How pooled adaptation averages the chains' acceptance probabilities: ``"mean"``, or
    #: ``"harmonic"`` (as ChEES does, so that one stuck chain pulls the shared step size down; for
    #: one proposal per chain it is dominated by the many proposals accepted with probability
    #: near 0, and the step size collapses: measured 7e-5 for the random walk on a 2-D model).
    pooled_statistic = "mean"

    def pool(self, accept_prob: Tensor) -> Tensor:
        """The acceptance statistic the step size adapts on: per chain, or pooled over chains."""
        if not self.pooled:
            return accept_prob
        if self.pooled_statistic == "harmonic":
            return harmonic_mean(accept_prob).reshape(1)
        return accept_prob.mean(-1, keepdim=True)

    def reset_step_size_adaptation(self, state) -> None:
        if self._find_reasonable_step_size is not None:
            # As Pyro does: a trial step may leave the support; that is an answer, not an error.
            with pyro.validation_enabled(False):
                self.step_size = self._find_reasonable_step_size(state)
        self._step_size_adapt_scheme.prox_center = torch.log(self.step_size)
        self._step_size_adapt_scheme.reset()

    def _update_step_size(self, accept_prob: Tensor) -> None:
        self._step_size_adapt_scheme.step(self.target_accept_prob - self.pool(accept_prob))
        log_step_size, _ = self._step_size_adapt_scheme.get_state()
        self.step_size = torch.exp(log_step_size)

    def _end_adaptation(self) -> None:
        if self.adapt_step_size:
            _, log_step_size_avg = self._step_size_adapt_scheme.get_state()
            self.step_size = torch.exp(log_step_size_avg)

    def step(self, t: int, state, accept_prob: Tensor) -> None:
        """Learn from warmup iteration ``t``: the chains' new state and acceptance probabilities.

        Stan's windows as in Pyro's ``WarmupAdapter.step``; ``state`` is the kernel's
        :class:`~pyro_simplehmc.ChainState`.
        """
        if t >= self._warmup_steps or self._adaptation_disabled:
            return
        window = self._adaptation_schedule[self._current_window]
        num_windows = len(self._adaptation_schedule)
        mass_matrix_phase = self.adapt_mass_matrix and 0 < self._current_window < num_windows - 1
        if self.adapt_step_size:
            self._update_step_size(accept_prob)
        if mass_matrix_phase:
            self.mass_matrix_adapter.update(state.position)
        if t != window.end:
            return
        if self._current_window == num_windows - 1:
            self._end_adaptation()
        elif mass_matrix_phase:
            self.mass_matrix_adapter.end_adaptation()
            self.mass_matrix_updates += 1
            if self.adapt_step_size:
                self.reset_step_size_adaptation(state)
        self._current_window += 1
        self.windows_ended += 1


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
