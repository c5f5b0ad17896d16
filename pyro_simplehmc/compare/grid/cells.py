r"""The cells of a comparison grid: what each one runs, and how a grid is listed.

A cell is one kernel, with its settings, on one target of one size (or one ported posteriordb
posterior), with one seed; a grid is a list of cells (:func:`product_cells`,
:func:`cells_from_spec`), checked before anything runs (:func:`validate_cells`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ...core import validation as check
from ..specs import SCALING_SETTINGS, CountingPotential, kernel_spec

#: Version of the record and manifest layout; a folder of another version is another grid.
GRID_FORMAT = 1
#: Summary fields measured with a clock: they differ between two runs of the same cell.
TIMING_FIELDS = frozenset({"ess_per_second", "warmup_seconds", "sampling_seconds"})
#: What a cell runs on: a target of :mod:`pyro_simplehmc.checks.targets`, or a ported
#: posteriordb posterior (:data:`pyro_simplehmc.checks.posteriordb.POSTERIORS`), validated
#: against its reference.
KINDS = ("target", "posterior")
#: The targets that take their size as ``dim``.
SIZED_TARGETS = frozenset({"diagonal_gaussian", "ill_conditioned_gaussian", "funnel"})
#: What to install for :func:`run_grid` on Dask.
INSTALL_HINT = 'Dask is needed for grids: pip install "pyro-simplehmc[grid]" (or use --serial)'


# ---------------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Cell:
    """One comparison of a grid: one kernel on one target of one size, with one seed.

    :ivar target: a target name (see :data:`~pyro_simplehmc.checks.targets.TARGETS`), or with
        ``kind="posterior"`` a posteriordb name
        (:data:`~pyro_simplehmc.checks.posteriordb.POSTERIORS`).
    :ivar kernel: a kernel name (see :data:`~pyro_simplehmc.compare.KERNELS`).
    :ivar dim: the target's size, for the targets that take one (else ``None``).
    :ivar seed: the seed of the cell's first chain; chain :math:`c` uses ``seed + c``.
    :ivar settings: keyword arguments of the kernel's constructor (e.g. ``trajectory_length``).
    :ivar target_kwargs: other keyword arguments of the target (e.g. ``rho``, ``low``).
    :ivar num_samples: draws per chain after warmup.
    :ivar warmup_steps: warmup iterations per chain.
    :ivar num_chains: chains, run one after the other.
    :ivar keep_draws: return the draws with the record (written beside it as ``.npy``).
    :ivar kind: ``"target"`` or ``"posterior"`` (see :data:`KINDS`).
    :ivar batch_chains: run one of this package's kernels as one batch of this many chains
        (``None``: ``num_chains`` chains one after the other);
        see :func:`~pyro_simplehmc.compare.execution.run_cell`.
    :ivar max_evals: the batched kernel's budget for a reliable verdict (``None``: fixed draws).
    """

    target: str
    kernel: str
    dim: int | None = None
    seed: int = 0
    settings: Mapping[str, Any] = field(default_factory=dict)
    target_kwargs: Mapping[str, Any] = field(default_factory=dict)
    num_samples: int = 1000
    warmup_steps: int = 500
    num_chains: int = 2
    keep_draws: bool = False
    kind: str = "target"
    batch_chains: int | None = None
    max_evals: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The cell as plain JSON data (dict keys sorted, so that equal cells serialise equally)."""
        out = asdict(self)
        for key in ("batch_chains", "max_evals"):  # absent when unset: older cells keep their id
            if out[key] is None:
                del out[key]
        out["settings"] = dict(sorted(dict(self.settings).items()))
        out["target_kwargs"] = dict(sorted(dict(self.target_kwargs).items()))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cell:
        """The inverse of :meth:`to_dict`; unknown keys are an error."""
        names = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown cell field(s) {unknown}; allowed: {sorted(names)}")
        return cls(**data)

    @property
    def id(self) -> str:
        """A stable name: a hash of :meth:`to_dict`, the record's file name."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """The kernel and its settings, e.g. ``SimpleHMC[trajectory_length=2.0]``."""
        if not self.settings:
            return self.kernel
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.settings.items()))
        return f"{self.kernel}[{inner}]"

    def make_problem(self):
        """Build what the cell runs on: a :class:`~pyro_simplehmc.compare.problems.Problem`."""
        from ...checks.targets import TARGETS, get_target
        from ..problems import from_posterior, from_target

        if self.kind == "posterior":
            if self.dim is not None or self.target_kwargs:
                raise ValueError("a posterior takes no dim or target_kwargs")
            return from_posterior(self.target)
        if self.kind != "target":
            raise ValueError(f"kind must be one of {list(KINDS)}; got {self.kind!r}")
        if str(self.target).replace("-", "_") not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; choose one of {sorted(TARGETS)}")
        kwargs = dict(self.target_kwargs)
        if self.dim is not None:
            kwargs["dim"] = self.dim
        return from_target(get_target(self.target, **kwargs))


def scaling_settings() -> dict[str, dict[str, Any]]:
    """Kernel settings of the scaling experiment (a copy of
    :data:`~pyro_simplehmc.compare.specs.SCALING_SETTINGS`)."""
    return {name: dict(settings) for name, settings in SCALING_SETTINGS.items()}


def replicate_seeds(seed: int, replicates: int, num_chains: int) -> list[int]:
    """First-chain seeds of ``replicates`` independent replicates: no chain seed is shared.

    Replicate :math:`r` starts at ``seed + r * num_chains`` (its chains use the next
    ``num_chains`` seeds), so replicate 0 is the single run with ``seed``.
    """
    return [seed + r * num_chains for r in range(replicates)]


def product_cells(
    targets: Sequence[str] = ("diagonal_gaussian",),
    kernels: Sequence[str | tuple[str, Mapping[str, Any]]] = ("MALA", "SimpleHMC"),
    dims: Sequence[int | None] = (None,),
    seeds: int | Sequence[int] = 1,
    seed: int = 0,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    target_kwargs: Mapping[str, Any] | None = None,
    keep_draws: bool = False,
    posteriors: Sequence[str] = (),
    batch_chains: int | None = None,
    max_evals: int | None = None,
) -> list[Cell]:
    """The cells of (targets x dims + posteriors) x kernels x seeds.

    :param targets: target names.
    :param kernels: kernel names, or ``(name, settings)`` pairs.
    :param dims: sizes; a target that takes no size gets ``None`` (one cell, not one per size).
    :param posteriors: posteriordb names, run besides the targets (they have no size).
    :param batch_chains: run this package's kernels as one batch of this many chains, until
        the verdict is reliable within ``max_evals`` (see :class:`Cell`).
    :param seeds: a number of replicates (seeded by :func:`replicate_seeds` from ``seed``) or
        the first-chain seeds themselves.
    """
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        check.positive_int("seeds", seeds)
        seed_list = replicate_seeds(check.nonnegative_int("seed", seed), seeds, num_chains)
    else:
        seed_list = [check.nonnegative_int("seeds", s) for s in seeds]
    cells = []
    problems = [("target", t, d) for t in targets for d in _sizes(t, dims)]
    problems += [("posterior", p, None) for p in posteriors]
    for kind, target, dim in problems:
        for kernel in kernels:
            name, settings = (kernel, {}) if isinstance(kernel, str) else kernel
            for s in seed_list:
                cells.append(
                    Cell(
                        target,
                        name,
                        dim,
                        s,
                        dict(settings),
                        dict(target_kwargs or {}) if kind == "target" else {},
                        num_samples,
                        warmup_steps,
                        num_chains,
                        keep_draws,
                        kind,
                        batch_chains,
                        max_evals,
                    )
                )
    return cells


def _sizes(target: str, dims: Sequence[int | None]) -> list[int | None]:
    return list(dict.fromkeys(dims)) if target in SIZED_TARGETS else [None]


def validate_cells(cells: Iterable[Cell]) -> list[Cell]:
    """Check every cell before anything runs: names, sizes, settings, counts.

    Each distinct target is built once here (cheap), so that a bad name or size fails now
    rather than in a worker an hour later.

    :raises ValueError: naming the cell and what is wrong.
    """
    cells = list(cells)
    if not cells:
        raise ValueError("the grid has no cells")
    problems: dict[str, Any] = {}
    kernels: set[str] = set()
    for i, cell in enumerate(cells):
        if not isinstance(cell, Cell):
            raise ValueError(f"cell {i} must be a Cell; got {type(cell).__name__}")
        where = f"cell {i} ({cell.target}, {cell.label}, dim {cell.dim}, seed {cell.seed})"
        try:
            check.positive_int("num_samples", cell.num_samples)
            check.nonnegative_int("warmup_steps", cell.warmup_steps)
            check.positive_int("num_chains", cell.num_chains)
            for name in ("batch_chains", "max_evals"):
                if getattr(cell, name) is not None:
                    check.positive_int(name, getattr(cell, name))
            check.nonnegative_int("seed", cell.seed)
            check.boolean("keep_draws", cell.keep_draws)
            json.dumps(cell.to_dict())
            spec = kernel_spec(cell.kernel, cell.settings)
            data = cell.to_dict()
            key = json.dumps([cell.kind, cell.target, cell.dim, data["target_kwargs"]])
            if key not in problems:
                problems[key] = cell.make_problem()
            kernel_key = json.dumps([key, cell.kernel, data["settings"]])
            if kernel_key not in kernels:
                # Constructing runs nothing, and checks the settings' values now.
                problem = problems[key]
                spec.build(problem, CountingPotential(problem.potential_fn))
                kernels.add(kernel_key)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{where}: {error}") from error
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):
        raise ValueError("the grid lists the same cell twice")
    return cells


def grid_id(cells: Sequence[Cell]) -> str:
    """A hash of the set of cell ids: the identity of a grid, whatever the order of its cells."""
    text = ",".join(sorted(c.id for c in cells))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: Rough cost of an iteration relative to one gradient, per kernel: for :func:`cost_estimate`.
_KERNEL_COST = {"NUTS": 30.0, "HMC": 10.0, "SimpleHMC": 10.0, "MALA": 1.0, "RandomWalkMH": 1.0}


def cost_estimate(cell: Cell) -> float:
    """A rough relative cost of a cell, so that Dask starts the longest cells first.

    Started last, one long cell would leave the other workers idle at the end of the grid. The
    estimate only orders cells; it is iterations times a per-kernel factor times
    :math:`D^{1/4}` (the growth of an HMC trajectory).
    """
    iterations = (cell.num_samples + cell.warmup_steps) * cell.num_chains
    return iterations * _KERNEL_COST.get(cell.kernel, 1.0) * (cell.dim or 1) ** 0.25


def cells_from_spec(spec: Mapping[str, Any]) -> list[Cell]:
    """Cells from a JSON grid spec: explicit cells, or the axes of a product.

    ``{"cells": [{"target": ..., "kernel": ..., ...}, ...]}`` lists the cells;
    otherwise the keys are those of :func:`product_cells`, kernels given as names or as
    ``{"name": ..., "settings": {...}}``::

        {"targets": ["diagonal_gaussian"], "dims": [2, 10, 100, 1000],
         "kernels": ["MALA", {"name": "SimpleHMC", "settings": {"trajectory_length": 2.0}}],
         "seeds": 5, "num_samples": 1000, "warmup_steps": 500, "num_chains": 2}
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"a grid spec must be a JSON object; got {type(spec).__name__}")
    if "cells" in spec:
        extra = sorted(set(spec) - {"cells"})
        if extra:
            raise ValueError(f"a spec with 'cells' takes no other key; got {extra}")
        return [Cell.from_dict(c) for c in spec["cells"]]
    allowed = {
        "targets",
        "kernels",
        "dims",
        "seeds",
        "seed",
        "num_samples",
        "warmup_steps",
        "num_chains",
        "target_kwargs",
        "keep_draws",
        "posteriors",
        "batch_chains",
        "max_evals",
    }
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"unknown grid spec key(s) {unknown}; allowed: {sorted(allowed)}")
    kwargs = dict(spec)
    if "kernels" in kwargs:
        kernels = []
        for k in kwargs["kernels"]:
            if isinstance(k, Mapping):
                extra = sorted(set(k) - {"name", "settings"})
                if "name" not in k or extra:
                    raise ValueError(
                        f"a kernel of a grid spec is a name or {{'name', 'settings'}}; got {k!r}"
                    )
                kernels.append((k["name"], dict(k.get("settings", {}))))
            else:
                kernels.append(k)
        kwargs["kernels"] = kernels
    return product_cells(**kwargs)


__all__ = [
    "GRID_FORMAT",
    "KINDS",
    "SIZED_TARGETS",
    "TIMING_FIELDS",
    "Cell",
    "cells_from_spec",
    "cost_estimate",
    "grid_id",
    "product_cells",
    "replicate_seeds",
    "scaling_settings",
    "validate_cells",
]
