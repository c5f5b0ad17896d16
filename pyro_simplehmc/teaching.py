r"""Helpers for learning HMC: record what an integrator does, step by step.

The kernels only need the end of a trajectory. To *see* Hamiltonian dynamics we want every
intermediate point, with its momentum and energy. The functions here step the package's own
integrators (:func:`~pyro_simplehmc.core.integrators.leapfrog_flat`,
:func:`~pyro_simplehmc.core.integrators.euler_flat`) one step at a time and keep each state, so a
recorded leapfrog path ends exactly where a kernel's proposal would (same arithmetic, same order).

- :func:`record_trajectory` follows a potential energy :math:`U` (a function of a tensor or of a
  dict of tensors, as Pyro's potentials are);
- :func:`record_model_trajectory` does the same for a Pyro model, in the unconstrained space where
  the kernels move, and keeps the transforms so the path can be drawn in the constrained space;
- :func:`kernel_trajectory` replays the trajectory that a set-up :class:`~pyro_simplehmc.SimpleHMC`
  would follow from a given point;
- :func:`harmonic_oscillator` and friends give the 1-D example with a known exact solution.

Energies are :math:`H(q, p) = U(q) + \tfrac12 p^\top M^{-1} p`; exact dynamics keep :math:`H`
constant, so :attr:`Trajectory.energy_error` shows what the integrator gets wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from pyro.infer.autoguide.initialization import init_to_median, init_to_value
from pyro.infer.mcmc.util import initialize_model
from torch import Tensor

from .core import validation as check
from .core.integrators import IntegratorState, euler_flat, leapfrog_flat
from .core.metrics import Metric
from .core.ravel import DictRavel
from .kernels.evaluation import value_and_grad

__all__ = [
    "INTEGRATORS",
    "Trajectory",
    "density_grid",
    "gaussian_potential",
    "harmonic_oscillator",
    "harmonic_oscillator_exact",
    "kernel_trajectory",
    "mass_levels",
    "quick_runs",
    "record_model_trajectory",
    "record_trajectory",
    "symplectic_euler_flat",
]

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


# ---------------------------------------------------------------------- small worked examples


def harmonic_oscillator(q: Tensor) -> Tensor:
    r"""The potential :math:`U(q) = \tfrac12 \lVert q \rVert^2` of a standard normal target.

    With unit mass, Hamilton's equations are :math:`\dot q = p`, :math:`\dot p = -q`: a rotation
    of phase space (see :func:`harmonic_oscillator_exact`).
    """
    return 0.5 * (q**2).sum(-1)


def harmonic_oscillator_exact(q0: float, p0: float, times: Tensor) -> tuple[Tensor, Tensor]:
    r"""The exact unit-mass solution, a rotation of phase space.

    :math:`q(t) = q_0\cos t + p_0\sin t` and :math:`p(t) = p_0\cos t - q_0\sin t`.

    :returns: ``(q(t), p(t))`` at ``times``; every point has energy
        :math:`\tfrac12(q_0^2 + p_0^2)`.
    """
    cos, sin = torch.cos(times), torch.sin(times)
    return q0 * cos + p0 * sin, p0 * cos - q0 * sin


def gaussian_potential(
    covariance: Tensor, mean: Tensor | None = None
) -> Callable[[Tensor], Tensor]:
    r"""The potential :math:`U(q) = \tfrac12 (q-\mu)^\top \Sigma^{-1} (q-\mu)` of
    :math:`\mathcal{N}(\mu, \Sigma)`, on flat tensors with any leading batch dimensions.

    The constant is dropped. :math:`\Sigma^{-1}` is applied by a Cholesky solve, never formed.
    """
    chol = torch.linalg.cholesky(covariance)
    mu = torch.zeros(covariance.shape[-1], dtype=covariance.dtype) if mean is None else mean

    def potential(q: Tensor) -> Tensor:
        z = torch.linalg.solve_triangular(chol, (q - mu).unsqueeze(-1), upper=False)
        return 0.5 * (z.squeeze(-1) ** 2).sum(-1)

    return potential


def density_grid(
    potential_fn: Callable[[Tensor], Tensor],
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    num: int = 150,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""The unnormalised density :math:`e^{-U}` on a 2-D grid, for contour plots.

    :param potential_fn: :math:`U` on flat tensors of shape ``batch + (2,)``.
    :returns: ``(X, Y, density)``, each of shape ``(num, num)``, ready for
        ``matplotlib.pyplot.contour(X, Y, density)``.
    """
    check.positive_int("num", num)
    xs = torch.linspace(xlim[0], xlim[1], num)
    ys = torch.linspace(ylim[0], ylim[1], num)
    x, y = torch.meshgrid(xs, ys, indexing="xy")
    with torch.no_grad():
        u = potential_fn(torch.stack([x, y], dim=-1))
    return x, y, torch.exp(-(u - u.min()))


def mass_levels(
    density: Tensor,
    masses: Sequence[float] = (0.5, 0.9, 0.99),
    weights: Tensor | None = None,
) -> dict[float, float]:
    r"""Contour levels that enclose given probability masses, for labelled contour plots.

    The highest-density region with mass :math:`m` is :math:`\{x : \pi(x) \ge c_m\}`; on a
    grid, :math:`c_m` is the density at which the cells sorted by density first accumulate a
    fraction :math:`m` of the total. For a 2-D Gaussian, :math:`c_m = (1 - m)` times the peak.
    The grid must hold nearly all the mass (the fractions are of what it holds).

    :param density: a density (unnormalised) on a grid, as from :func:`density_grid`.
    :param masses: probability masses in :math:`(0, 1)`.
    :param weights: the area of each grid cell, of the shape of ``density``, for grids that are
        not uniform in the plotted coordinates (for instance :math:`\sigma` on a grid uniform in
        :math:`\log\sigma`: weights :math:`\sigma`); uniform if omitted.
    :returns: ``{level: mass}`` sorted by increasing level, ready for
        ``ax.contour(X, Y, density, levels=list(levels))`` and
        ``ax.clabel(contours, fmt={level: f"{mass:.0%}" ...})``.
    """
    masses = [check.open_unit_interval("masses", mass) for mass in masses]
    values = density.detach().reshape(-1).double()
    cell = torch.ones_like(values) if weights is None else weights.reshape(-1).double()
    if cell.shape != values.shape:
        raise ValueError(
            f"weights must have the shape of density {tuple(density.shape)}; "
            f"got {tuple(weights.shape)}"
        )
    order = torch.argsort(values, descending=True)
    cumulative = torch.cumsum(values[order] * cell[order], 0)
    cumulative = cumulative / cumulative[-1]
    levels = {}
    for mass in masses:
        index = int(torch.searchsorted(cumulative, torch.tensor(float(mass), dtype=torch.float64)))
        levels[float(values[order][min(index, len(values) - 1)])] = float(mass)
    return dict(sorted(levels.items()))


@contextmanager
def quick_runs(
    num_samples: int = 50, warmup_steps: int = 50, num_chains: int = 1
) -> Iterator[None]:
    """Shorten every :class:`pyro.infer.MCMC` run made inside the block, to try code in seconds.

    While the block runs, ``pyro.infer.MCMC`` (as imported from :mod:`pyro.infer` or
    :mod:`pyro.infer.mcmc`) is a subclass that caps ``num_samples``, ``warmup_steps`` and
    ``num_chains``, and ``pyro_simplehmc.MCMC`` one that caps the first two (a vectorized run's
    chains stay); code that imports ``MCMC`` inside the block gets them, and so do the
    comparisons of :mod:`pyro_simplehmc.compare`. The
    documentation's tests run every page's code, and every generated notebook, this way;
    results are then noisy, not wrong.

    :param int num_samples: the most draws a run keeps.
    :param int warmup_steps: the most warmup iterations a run takes.
    :param int num_chains: the most chains a run draws.
    """
    import pyro.infer
    import pyro.infer.mcmc
    import pyro.infer.mcmc.api

    max_samples = check.positive_int("num_samples", num_samples)
    max_warmup = check.nonnegative_int("warmup_steps", warmup_steps)
    max_chains = check.positive_int("num_chains", num_chains)
    original = pyro.infer.mcmc.api.MCMC

    class QuickMCMC(original):
        def __init__(self, kernel, num_samples, warmup_steps=None, *args, **kwargs):
            warmup = num_samples if warmup_steps is None else warmup_steps
            if "num_chains" in kwargs:
                kwargs["num_chains"] = min(kwargs["num_chains"], max_chains)
            super().__init__(
                kernel, min(num_samples, max_samples), min(warmup, max_warmup), *args, **kwargs
            )

    import pyro_simplehmc
    import pyro_simplehmc.mcmc

    ours = pyro_simplehmc.mcmc.MCMC

    class QuickBatchMCMC(ours):
        # The chains stay: a vectorized run's initial_params have one row per chain.
        def __init__(self, kernel, num_samples, warmup_steps=None, *args, **kwargs):
            warmup = num_samples if warmup_steps is None else warmup_steps
            super().__init__(
                kernel, min(num_samples, max_samples), min(warmup, max_warmup), *args, **kwargs
            )

    patches = [(m, QuickMCMC) for m in (pyro.infer, pyro.infer.mcmc, pyro.infer.mcmc.api)]
    patches += [(m, QuickBatchMCMC) for m in (pyro_simplehmc, pyro_simplehmc.mcmc)]
    saved = [module.MCMC for module, _ in patches]
    for module, quick in patches:
        module.MCMC = quick
    # Comparisons do not continue their chains past the shortened runs.
    from .compare import execution

    continuations, execution.MAX_CONTINUATIONS = execution.MAX_CONTINUATIONS, 0
    try:
        yield
    finally:
        execution.MAX_CONTINUATIONS = continuations
        for (module, _), value in zip(patches, saved, strict=True):
            module.MCMC = value
