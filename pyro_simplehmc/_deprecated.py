"""The module paths of version 0.1, which still import, with a :class:`DeprecationWarning`.

Version 0.2 arranged the package in layers (``core``, ``kernels``, ``mcmc``, ``checks``,
``compare``, ``cli``; see the architecture page). Code that imports a module by its old path,
``from pyro_simplehmc.testing import mcse_z_test`` say, gets a stand-in module whose attributes
are looked up in the module (or modules) that now hold them. The old paths go in version 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

#: Old module path -> the modules that now hold its names, searched in order.
MOVED: dict[str, tuple[str, ...]] = {
    "pyro_simplehmc.adaptation": (
        "pyro_simplehmc.kernels.adaptation",
        "pyro_simplehmc.kernels.mass_matrix",
        "pyro_simplehmc.core.welford",
        "pyro_simplehmc.core.step_size",
    ),
    "pyro_simplehmc.arviz_io": ("pyro_simplehmc.mcmc.arviz_io",),
    "pyro_simplehmc.chees": ("pyro_simplehmc.core.chees",),
    "pyro_simplehmc.compare.statistics": ("pyro_simplehmc.checks.statistics",),
    "pyro_simplehmc.integrators": (
        "pyro_simplehmc.core.integrators",
        "pyro_simplehmc.kernels.evaluation",
    ),
    "pyro_simplehmc.kernels.mh": ("pyro_simplehmc.core.mh",),
    "pyro_simplehmc.metrics": ("pyro_simplehmc.core.metrics",),
    "pyro_simplehmc.posteriordb": ("pyro_simplehmc.checks.posteriordb",),
    "pyro_simplehmc.potentials": ("pyro_simplehmc.kernels.potentials",),
    "pyro_simplehmc.ravel": ("pyro_simplehmc.core.ravel",),
    "pyro_simplehmc.targets": ("pyro_simplehmc.checks.targets",),
    "pyro_simplehmc.testing": ("pyro_simplehmc.checks.testing",),
    "pyro_simplehmc.turning": ("pyro_simplehmc.core.turning",),
}


class MovedModule(types.ModuleType):
    """Stands in for a moved module: each attribute comes from where it lives now."""

    def __init__(self, name: str, targets: tuple[str, ...]):
        super().__init__(name, f"Deprecated: moved to {', '.join(targets)}.")
        self.__targets = targets

    def __getattr__(self, attribute: str):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        for target in self.__targets:
            module = importlib.import_module(target)
            if hasattr(module, attribute):
                return getattr(module, attribute)
        raise AttributeError(
            f"module {self.__name__!r} (moved to {', '.join(self.__targets)}) has no attribute "
            f"{attribute!r}"
        )

    def __dir__(self):
        names = set()
        for target in self.__targets:
            names.update(dir(importlib.import_module(target)))
        return sorted(names)


class _Loader(importlib.abc.Loader):
    def create_module(self, spec):
        targets = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} is deprecated since pyro-simplehmc 0.2 and goes in 0.3: import "
            f"{' or '.join(targets)}",
            DeprecationWarning,
            stacklevel=2,
        )
        return MovedModule(spec.name, targets)

    def exec_module(self, module) -> None:
        pass


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _Loader())


def install() -> None:
    """Make the old module paths importable (once per process)."""
    if not any(isinstance(finder, _Finder) for finder in sys.meta_path):
        sys.meta_path.append(_Finder())
