r"""The reference run of a comparison, computed once and kept on disk.

A reference (NUTS by default) is the slowest part of a comparison, and the same for every later
comparison on the same problem with the same settings. :class:`ReferenceCache` keeps its
:class:`~pyro_simplehmc.compare.results.KernelResult` and draws in a folder, under a key made of

- the problem: its name, its validated coordinates, and its potential energy at the chains'
  first three starting points (so that other data or another model give another key);
- the kernel: its name and settings;
- the run: draws, warmup, chains, batch chains, budget and seed;
- the versions of this package, Pyro and PyTorch.

An entry is read back only if its file parses, its checksum matches and its stored key is the
key asked for; anything else (a truncated file, an entry of an older version) is recomputed and
overwritten, never trusted. The folder is ``$PYRO_SIMPLEHMC_CACHE`` if set, else
``$XDG_CACHE_HOME/pyro-simplehmc/references`` (``~/.cache/pyro-simplehmc/references``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch

from ..core.version import VERSION
from .problems import Problem
from .results import KernelResult
from .specs import KernelSpec

#: Version of the entry layout; entries of another layout are recomputed.
CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """Where references are kept (see the module's documentation)."""
    if os.environ.get("PYRO_SIMPLEHMC_CACHE"):
        return Path(os.environ["PYRO_SIMPLEHMC_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pyro-simplehmc" / "references"


def problem_fingerprint(problem: Problem) -> list[Any]:
    """What identifies a problem's distribution: name, coordinates, and :math:`U` at the chains'
    first three starting points (rounded to 12 significant digits)."""
    energies = []
    for seed in range(3):
        start = problem.initial_params(seed)
        with torch.no_grad():
            value = float(problem.potential_fn(start))
        energies.append(float(f"{value:.12g}"))
    return [problem.name, list(problem.coords), energies]


def reference_key(problem: Problem, spec: KernelSpec, settings: Mapping[str, Any]) -> str:
    """The key of a reference run: a hash of the problem, the kernel, the settings, versions."""
    data = {
        "format": CACHE_FORMAT,
        "problem": problem_fingerprint(problem),
        "kernel": [spec.name, {k: repr(v) for k, v in sorted(dict(spec.settings).items())}],
        "settings": {k: settings[k] for k in sorted(settings)},
        "versions": [VERSION, pyro.__version__, torch.__version__],
    }
    text = json.dumps(data, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class ReferenceCache:
    """A folder of reference runs, one ``<key>.json`` (and ``<key>.npy`` draws) per entry.

    :param path: the folder (default :func:`default_cache_dir`).
    :param refresh: recompute every entry asked for (``--refresh-reference``), overwriting it.
    """

    def __init__(self, path: str | Path | None = None, refresh: bool = False):
        self.path = Path(path) if path is not None else default_cache_dir()
        self.refresh = bool(refresh)

    def get(self, key: str) -> tuple[KernelResult, np.ndarray | None] | None:
        """The entry of ``key``, or ``None`` if there is none that can be trusted."""
        if self.refresh:
            return None
        meta = self.path / f"{key}.json"
        try:
            text = meta.read_text()
            entry = json.loads(text)
            draws_file = self.path / f"{key}.npy"
            draws = np.load(draws_file, allow_pickle=False) if entry["has_draws"] else None
            if entry["key"] != key or entry["format"] != CACHE_FORMAT:
                return None
            if entry["checksum"] != _checksum(entry["result"], draws):
                return None
            return KernelResult(**entry["result"]), draws
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, result: KernelResult, draws: np.ndarray | None) -> Path:
        """Write the entry of ``key`` (draws first, then the entry, each by an atomic rename)."""
        self.path.mkdir(parents=True, exist_ok=True)
        data = asdict(result)
        if draws is not None:
            tmp = self.path / f".{key}.{os.getpid()}.npy"
            np.save(tmp, np.asarray(draws))
            os.replace(tmp, self.path / f"{key}.npy")
        entry = {
            "format": CACHE_FORMAT,
            "key": key,
            "has_draws": draws is not None,
            "checksum": _checksum(data, draws),
            "result": data,
        }
        meta = self.path / f"{key}.json"
        tmp = self.path / f".{key}.{os.getpid()}.json"
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, meta)
        return meta


def _checksum(result: Mapping[str, Any], draws: np.ndarray | None) -> str:
    digest = hashlib.sha256(json.dumps(result, sort_keys=True).encode())
    if draws is not None:
        digest.update(np.ascontiguousarray(draws).tobytes())
    return digest.hexdigest()


__all__ = [
    "CACHE_FORMAT",
    "ReferenceCache",
    "default_cache_dir",
    "problem_fingerprint",
    "reference_key",
]
