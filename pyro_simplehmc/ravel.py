"""Flatten a dict of tensors (Pyro's parameter format) into one vector, and back.

The kernels work on a single flat position vector: the maths is then a few tensor operations per
leapfrog step, whatever the number of sample sites. Pyro's potentials take a dict, so the potential
seen by a kernel is ``potential_fn(ravel.unravel(q))``, where ``unravel`` only makes views.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor


class DictRavel:
    """The layout of a dict of tensors inside one flat vector.

    :param dict prototype: a dict mapping site names to tensors; only shapes are read.
    :param order: the site names in the order they take in the flat vector (default: the
        dict's own order).
    """

    def __init__(self, prototype: Mapping[str, Tensor], order: Sequence[str] | None = None):
        names = list(prototype) if order is None else list(order)
        if sorted(names) != sorted(prototype):
            raise ValueError(
                f"order must list each site exactly once; got {names} for sites {sorted(prototype)}"
            )
        self.names: tuple[str, ...] = tuple(names)
        self.shapes: tuple[torch.Size, ...] = tuple(prototype[n].shape for n in names)
        self.sizes: tuple[int, ...] = tuple(math.prod(s) for s in self.shapes)
        self.size: int = sum(self.sizes)

    def flatten(self, params: Mapping[str, Tensor]) -> Tensor:
        """Concatenate the sites of ``params`` into one vector (a copy)."""
        if len(self.names) == 1:
            return params[self.names[0]].reshape(-1)
        if not self.names:  # a model without latent sites
            return torch.zeros(0)
        return torch.cat([params[n].reshape(-1) for n in self.names])

    def unflatten(self, q: Tensor) -> dict[str, Tensor]:
        """Split a flat vector back into a dict of views with the sites' shapes."""
        if len(self.names) == 1:
            # A vector site needs no view; skipping it saves an autograd node per gradient.
            return {self.names[0]: q if q.shape == self.shapes[0] else q.view(self.shapes[0])}
        parts = torch.split(q, self.sizes)
        return {n: x.view(s) for n, x, s in zip(self.names, parts, self.shapes, strict=True)}
