"""The package as a whole: every module imports, the layers import downward only, no cycles.

The layers, low to high: ``core`` (pure maths) < ``kernels`` (Pyro glue) < ``mcmc`` < ``checks``
< ``compare`` < ``cli``. A module may import from its own layer and the ones below; the
top-level modules (the package's ``__init__``, ``__main__``, ``teaching`` and its submodules,
``_deprecated``) sit above them all and no layer imports them. The import graph is read from
every import statement, those inside functions included, so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import warnings
from pathlib import Path

import pytest

import pyro_simplehmc

LAYERS = ("core", "kernels", "mcmc", "checks", "compare", "cli")
PACKAGE = Path(pyro_simplehmc.__file__).parent


def import_graph(root: Path) -> dict[str, set[str]]:
    """``module -> modules it imports`` (within the package at ``root``), from every import
    statement of every module."""
    package = root.name
    modules = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = (path, is_package)
    graph = {}
    for name, (path, is_package) in modules.items():
        here = name.split(".") if is_package else name.split(".")[:-1]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - node.level + 1]
                    head = ".".join(base + ([node.module] if node.module else []))
                else:
                    head = node.module or ""
                targets = [head, *(f"{head}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            imported.update(t for t in targets if t in modules and t != name)
        graph[name] = imported
    assert all(n == package or n.startswith(f"{package}.") for n in graph)
    return graph


def layer(module: str) -> int | None:
    """The layer's rank, or ``None`` for a top-level module."""
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def problems(graph: dict[str, set[str]], root: Path = PACKAGE) -> list[str]:
    """Upward imports, imports of top-level modules from a layer, and cycles, in the package
    at ``root``."""
    found = []
    for module, imported in graph.items():
        for target in imported:
            low, high = layer(module), layer(target)
            if low is None:
                continue
            if high is None and target.count(".") > 0:
                found.append(f"{module} imports the top-level module {target}")
            elif high is not None and high > low:
                found.append(f"upward import: {module} -> {target} ({LAYERS[high]})")
    # Cycles among modules, package __init__s excepted (they re-export what is below them).
    packages = {m for m in graph if (root.parent / m.replace(".", "/") / "__init__.py").exists()}
    edges = {m: {t for t in ts if t not in packages} for m, ts in graph.items()
             if m not in packages}  # fmt: skip
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                found.append("cycle: " + " -> ".join(cycle))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    return found


def test_every_module_imports():
    names = [m.name for m in pkgutil.walk_packages(pyro_simplehmc.__path__, "pyro_simplehmc.")]
    assert {f"pyro_simplehmc.{name}" for name in LAYERS} <= set(names)
    for name in names:
        if name == "pyro_simplehmc.__main__":
            continue
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            # Only a module of an optional extra may be missing (pyproject's benchmark extras:
            # compare/benchmark_jax.py needs JAX, NumPyro and BlackJAX, imported when asked for).
            if error.name is None or error.name.split(".")[0] not in OPTIONAL_DEPENDENCIES:
                raise


#: Packages of the optional extras, which the default test environment need not have.
OPTIONAL_DEPENDENCIES = ("jax", "jaxlib", "numpyro", "blackjax")


def test_layers_import_downward_only_and_nothing_is_circular():
    assert problems(import_graph(PACKAGE)) == []


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"core/a.py": "from ..kernels import b\n", "kernels/b.py": ""}, "upward import"),
        ({"compare/a.py": "def f():\n    from . import b\n", "compare/b.py": "from . import a\n"},
         "cycle"),
        ({"kernels/a.py": "from .. import teaching\n", "teaching.py": ""}, "top-level"),
    ],
    ids=["upward", "lazy-cycle", "top-level"],
)
def test_the_check_catches_a_deliberately_broken_package(tmp_path, files, expected):
    root = tmp_path / "pyro_simplehmc"
    for folder in ("", *LAYERS):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "__init__.py").write_text("")
    for name, text in files.items():
        (root / name).write_text(text)
    found = problems(import_graph(root), root)
    assert found and all(expected in problem for problem in found), found


def test_public_names_import_from_the_package():
    for name in pyro_simplehmc.__all__:
        assert getattr(pyro_simplehmc, name) is not None


def test_old_module_paths_still_import_with_a_deprecation_warning():
    from pyro_simplehmc.checks.testing import mcse_z_test
    from pyro_simplehmc.core.integrators import leapfrog_flat
    from pyro_simplehmc.kernels.evaluation import value_and_grad

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old_testing = importlib.import_module("pyro_simplehmc.testing")
        old_integrators = importlib.import_module("pyro_simplehmc.integrators")
    assert old_testing.mcse_z_test is mcse_z_test
    assert old_integrators.leapfrog_flat is leapfrog_flat
    assert old_integrators.value_and_grad is value_and_grad
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any("pyro_simplehmc.checks.testing" in m for m in messages), messages
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        old_testing.nothing  # noqa: B018
