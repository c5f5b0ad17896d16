r"""The kernels of a comparison: how each is built, and how its cost is counted.

Every kernel runs on a *counted* potential (:class:`CountingPotential`): one potential
evaluation per call, and one gradient evaluation per call whose input requires a gradient (that
is how both Pyro's and this package's kernels ask for :math:`\nabla U`), so the cost of every
kernel is counted the same way.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from pyro.infer import HMC, NUTS, RandomWalkKernel
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from torch import Tensor

from ..core import validation as check
from ..kernels import MALA, MAMS, MHKernel, RandomWalkMH, SimpleHMC


class CountingPotential:
    """A potential function that counts its calls.

    A call counts as a gradient evaluation when one of its inputs requires a gradient: Pyro's
    :func:`~pyro.ops.integrator.potential_grad` and this package's
    :func:`~pyro_simplehmc.kernels.evaluation.value_and_grad` both mark the position that way before
    differentiating.

    :param potential_fn: the potential to wrap.
    """

    def __init__(self, potential_fn: Callable[[dict[str, Tensor]], Tensor]):
        self.potential_fn = potential_fn
        self.potentials = 0
        self.gradients = 0

    def __call__(self, params: dict[str, Tensor]) -> Tensor:
        self.potentials += 1
        if any(torch.is_tensor(v) and v.requires_grad for v in params.values()):
            self.gradients += 1
        return self.potential_fn(params)


class CountingRandomWalkKernel(RandomWalkKernel):
    """Pyro's :class:`~pyro.infer.RandomWalkKernel` with its potential counted.

    That kernel takes only a model and builds its potential in ``setup``; this subclass wraps the
    built potential in ``counter``. It also starts from the given initial parameters and resets
    its adaptation state at every ``setup`` (Pyro's keeps the step counter of the previous
    chain, so a second chain in the same process would not adapt).
    """

    def __init__(self, model, counter_factory: Callable[[Callable], CountingPotential], **kwargs):
        super().__init__(model, **kwargs)
        self._counter_factory = counter_factory
        self._given_params: dict[str, Tensor] | None = None
        self.counter: CountingPotential | None = None

    @property
    def initial_params(self):
        return self._initial_params

    @initial_params.setter
    def initial_params(self, params):
        self._given_params = params
        self._initial_params = params

    def setup(self, warmup_steps, *args, **kwargs):
        self._t, self._accept_cnt, self._mean_accept_prob = 0, 0, 0.0
        self._log_step_size = math.log(self.init_step_size)
        super().setup(warmup_steps, *args, **kwargs)
        self.counter = self._counter_factory(self.potential_fn)
        self.potential_fn = self.counter
        if self._given_params is not None:
            self._initial_params = self._given_params
        self._energy_last = self.potential_fn(self._initial_params)


@dataclass(frozen=True)
class KernelSpec:
    """How to build one kernel of a comparison, a grid or the scaling run: the one registry.

    :ivar name: the label in reports.
    :ivar make: ``make(problem, potential_fn, **settings) -> kernel`` (``None`` when
        :attr:`kernel_class` is given); ``potential_fn`` is the
        counted potential, which the kernel must use (for a model-only kernel, see
        :class:`CountingRandomWalkKernel`). ``problem`` is a
        :class:`~pyro_simplehmc.compare.problems.Problem`.
    :ivar uses_gradient: whether cost is counted in gradients (else in potential evaluations).
    :ivar ours: whether the kernel is one of this package's: its own counters are cross-checked,
        and the runner can run its chains as one batch (:class:`~pyro_simplehmc.MCMC` with
        ``chain_method="vectorized"``).
    :ivar settings: keyword arguments of the kernel's constructor (on top of ``potential_fn``).
    :ivar allowed: the settings the constructor takes (``None``: not known, none accepted).
    :ivar kernel_class: the kernel's class, when the spec builds one by its constructor.
    """

    name: str
    make: Callable[..., MCMCKernel] | None = None
    uses_gradient: bool = True
    ours: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)
    allowed: frozenset[str] | None = None
    kernel_class: type | None = None

    @classmethod
    def of(
        cls, kernel_class: type, name: str | None = None, uses_gradient: bool = True, **settings
    ) -> KernelSpec:
        """The spec of a kernel class built as ``kernel_class(potential_fn=..., **settings)``."""
        allowed = frozenset(inspect.signature(kernel_class.__init__).parameters) - {
            "self",
            "model",
            "potential_fn",
        }
        ours = isinstance(kernel_class, type) and issubclass(kernel_class, MHKernel)
        return cls(
            name or kernel_class.__name__,
            None,
            uses_gradient,
            ours,
            dict(settings),
            allowed,
            kernel_class,
        )

    @property
    def full_mass(self) -> bool | None:
        """The kernel's ``full_mass``, or ``None`` for a kernel that takes none."""
        if self.allowed is None or "full_mass" not in self.allowed:
            return None
        return self.settings.get("full_mass", False)

    def build(self, problem: Any, potential_fn: Callable, **extra: Any) -> MCMCKernel:
        """The kernel, on the counted ``potential_fn`` (``extra``: settings for this build)."""
        if self.kernel_class is not None:
            return self.kernel_class(potential_fn=potential_fn, **{**self.settings, **extra})
        return self.make(problem, potential_fn, **{**self.settings, **extra})

    def with_settings(self, **settings: Any) -> KernelSpec:
        """This spec with more constructor arguments (a variant, e.g. a fixed trajectory length).

        :raises ValueError: naming any setting the kernel's constructor does not take.
        """
        if not settings:
            return self
        allowed = self.allowed or frozenset()
        unknown = sorted(set(settings) - allowed)
        if unknown:
            raise ValueError(
                f"kernel {self.name!r} takes no setting(s) {unknown}; allowed: {sorted(allowed)}"
            )
        return replace(self, settings={**self.settings, **settings})

    def with_full_mass(self, full_mass: bool) -> KernelSpec:
        """This spec with ``full_mass`` set, if the kernel takes one (else unchanged)."""
        return self if self.full_mass is None else self.with_settings(full_mass=full_mass)


def _pyro_random_walk(problem: Any, potential_fn: CountingPotential, **settings) -> MCMCKernel:
    # The runner's counter is handed over: the kernel wraps the potential it builds with it.
    def reuse(built: Callable) -> CountingPotential:
        potential_fn.potential_fn = built
        return potential_fn

    if problem is None or problem.model is None:
        raise ValueError("Pyro's RandomWalkKernel needs a model; this problem has none")
    return CountingRandomWalkKernel(problem.model, reuse, **settings)


#: The kernels available by name; :data:`DEFAULT_KERNELS` lists those run by default.
KERNELS: dict[str, KernelSpec] = {
    "RandomWalkMH": KernelSpec.of(RandomWalkMH, uses_gradient=False),
    "MALA": KernelSpec.of(MALA),
    "SimpleHMC": KernelSpec.of(SimpleHMC),
    "MAMS": KernelSpec.of(MAMS),
    "NUTS": KernelSpec.of(NUTS),
    # Pyro's HMC holds the trajectory length fixed while its step size adapts.
    "HMC": KernelSpec.of(HMC, trajectory_length=2.0),
    "RandomWalkKernel": KernelSpec(
        "RandomWalkKernel",
        _pyro_random_walk,
        uses_gradient=False,
        allowed=frozenset(inspect.signature(RandomWalkKernel.__init__).parameters)
        - {"self", "model"},
    ),
}
#: MAMS is run on request (``kernels=[..., "MAMS"]``): it needs at least two dimensions.
DEFAULT_KERNELS: tuple[str, ...] = tuple(k for k in KERNELS if k != "MAMS")

#: Integration time of SimpleHMC in the scaling run, in units of the adapted (whitened) scale:
#: fixed, so that the number of leapfrog steps grows as the step size shrinks with D.
SCALING_TRAJECTORY_LENGTH = 2.0

#: The kernels' settings in the dimension experiment (:mod:`.scaling`, ``simplehmc validate``,
#: scaling grids). SimpleHMC fixes its mean trajectory length (not its number of steps) and
#: jitters its step size as well as its length, which breaks the resonance of a fixed trajectory
#: on a Gaussian (see the design notes).
SCALING_SETTINGS: dict[str, dict[str, Any]] = {
    "SimpleHMC": {"trajectory_length": SCALING_TRAJECTORY_LENGTH, "step_size_jitter": 0.2},
}

#: The kernels of the scaling experiment: :data:`KERNELS` with :data:`SCALING_SETTINGS`.
SCALING_KERNELS: dict[str, KernelSpec] = {
    name: KERNELS[name].with_settings(**SCALING_SETTINGS.get(name, {}))
    for name in ("RandomWalkMH", "MALA", "SimpleHMC", "NUTS")
}


def kernel_spec(name: str, settings: Mapping[str, Any] | None = None) -> KernelSpec:
    """The spec of kernel ``name`` of :data:`KERNELS` with ``settings`` on top.

    :raises ValueError: for an unknown kernel or a setting its constructor does not take.
    """
    if name not in KERNELS:
        raise ValueError(f"unknown kernel {name!r}; choose from {sorted(KERNELS)}")
    return KERNELS[name].with_settings(**dict(settings or {}))


def resolve_kernels(
    kernels: Sequence[str | KernelSpec] | None,
    available: dict[str, KernelSpec] | None = None,
    full_mass: bool | None = None,
) -> list[KernelSpec]:
    """Kernel specs from names or specs; ``None`` means all of ``available``.

    :param kernels: names (keys of ``available``) or :class:`KernelSpec` objects (``None``:
        :data:`DEFAULT_KERNELS`, or all of ``available`` when it is given).
    :param available: the specs by name (default :data:`KERNELS`).
    :param full_mass: if not ``None``, set on every kernel that takes a ``full_mass``.
    """
    if kernels is None:
        kernels = DEFAULT_KERNELS if available is None else tuple(available)
    available = KERNELS if available is None else available
    if isinstance(kernels, str | KernelSpec):
        kernels = [kernels]
    if not hasattr(kernels, "__iter__"):
        raise ValueError(f"kernels must be a list of kernel names or KernelSpec; got {kernels!r}")
    specs = []
    for kernel in kernels:
        if isinstance(kernel, KernelSpec):
            specs.append(kernel)
        elif isinstance(kernel, str) and kernel in available:
            specs.append(available[kernel])
        else:
            raise ValueError(f"kernels: unknown kernel {kernel!r}; choose from {sorted(available)}")
    if not specs:
        raise ValueError("kernels must name at least one kernel")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"kernels must have distinct names; got {names}")
    if full_mass is not None:
        check.boolean("full_mass", full_mass)
        specs = [s.with_full_mass(full_mass) for s in specs]
    return specs


def as_kernel_spec(
    name: str,
    make: Callable[[Callable], MCMCKernel],
    uses_gradient: bool = True,
) -> KernelSpec:
    """A :class:`KernelSpec` from ``make(potential_fn) -> kernel``, for a kernel of your own."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; got {name!r}")
    check.callable_or_none("make", make)
    return KernelSpec(name, lambda problem, potential_fn: make(potential_fn), uses_gradient)


__all__ = [
    "DEFAULT_KERNELS",
    "KERNELS",
    "SCALING_KERNELS",
    "SCALING_SETTINGS",
    "SCALING_TRAJECTORY_LENGTH",
    "CountingPotential",
    "CountingRandomWalkKernel",
    "KernelSpec",
    "as_kernel_spec",
    "kernel_spec",
    "resolve_kernels",
]
