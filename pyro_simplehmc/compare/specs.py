r"""The kernels of a comparison: how each is built, and how its cost is counted.

Every kernel runs on a *counted* potential (:class:`CountingPotential`): one potential
evaluation per call, and one gradient evaluation per call whose input requires a gradient (that
is how both Pyro's and this package's kernels ask for :math:`\nabla U`), so the cost of every
kernel is counted the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from pyro.infer import HMC, NUTS, RandomWalkKernel
from pyro.infer.mcmc.mcmc_kernel import MCMCKernel
from torch import Tensor

from ..core import validation as check
from ..kernels import MALA, RandomWalkMH, SimpleHMC


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
    """How to build one kernel of the comparison.

    :ivar name: the label in reports.
    :ivar make: ``make(problem, potential_fn) -> kernel`` (``make(problem, potential_fn,
        full_mass=...)`` when :attr:`full_mass` is not ``None``); ``potential_fn`` is the counted
        potential, which the kernel must use (for a model-only kernel, see
        :class:`CountingRandomWalkKernel`). ``problem`` is a
        :class:`~pyro_simplehmc.compare.problems.Problem`.
    :ivar uses_gradient: whether cost is counted in gradients (else in potential evaluations).
    :ivar ours: whether the kernel is one of this package's (its own counters are cross-checked).
    :ivar full_mass: the kernel's ``full_mass`` argument, or ``None`` for a kernel that takes none.
    """

    name: str
    make: Callable[..., MCMCKernel]
    uses_gradient: bool = True
    ours: bool = False
    full_mass: bool | None = None

    def build(self, problem: Any, potential_fn: CountingPotential) -> MCMCKernel:
        """The kernel, on the counted ``potential_fn``."""
        if self.full_mass is None:
            return self.make(problem, potential_fn)
        return self.make(problem, potential_fn, full_mass=self.full_mass)

    def with_full_mass(self, full_mass: bool) -> KernelSpec:
        """This spec with ``full_mass`` set, if the kernel takes one (else unchanged)."""
        return self if self.full_mass is None else replace(self, full_mass=full_mass)


def _pyro_random_walk(problem: Any, potential_fn: CountingPotential) -> MCMCKernel:
    # The runner's counter is handed over: the kernel wraps the potential it builds with it.
    def reuse(built: Callable) -> CountingPotential:
        potential_fn.potential_fn = built
        return potential_fn

    if problem.model is None:
        raise ValueError("Pyro's RandomWalkKernel needs a model; this problem has none")
    return CountingRandomWalkKernel(problem.model, reuse)


def _builder(cls, **fixed) -> Callable[..., MCMCKernel]:
    def make(problem, potential_fn, full_mass=False):
        return cls(potential_fn=potential_fn, full_mass=full_mass, **fixed)

    return make


#: The kernels available by name; :data:`DEFAULT_KERNELS` lists those run by default.
KERNELS: dict[str, KernelSpec] = {
    "RandomWalkMH": KernelSpec("RandomWalkMH", _builder(RandomWalkMH), False, True, False),
    "MALA": KernelSpec("MALA", _builder(MALA), True, True, False),
    "SimpleHMC": KernelSpec("SimpleHMC", _builder(SimpleHMC), True, True, False),
    "NUTS": KernelSpec("NUTS", _builder(NUTS), True, False, False),
    # Pyro's HMC holds the trajectory length fixed while its step size adapts.
    "HMC": KernelSpec("HMC", _builder(HMC, trajectory_length=2.0), True, False, False),
    "RandomWalkKernel": KernelSpec("RandomWalkKernel", _pyro_random_walk, False, False),
}
DEFAULT_KERNELS: tuple[str, ...] = tuple(KERNELS)


def resolve_kernels(
    kernels: Sequence[str | KernelSpec] | None,
    available: dict[str, KernelSpec] | None = None,
    full_mass: bool | None = None,
) -> list[KernelSpec]:
    """Kernel specs from names or specs; ``None`` means all of ``available``.

    :param kernels: names (keys of ``available``) or :class:`KernelSpec` objects.
    :param available: the specs by name (default :data:`KERNELS`).
    :param full_mass: if not ``None``, set on every kernel that takes a ``full_mass``.
    """
    available = KERNELS if available is None else available
    if kernels is None:
        kernels = tuple(available)
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
