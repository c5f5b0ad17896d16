"""Flatten a dict of tensors (Pyro's parameter format) into one vector, and back.

The kernels work on a single flat position vector: the maths is then a few tensor operations per
leapfrog step, whatever the number of sample sites. Pyro's potentials take a dict, so the potential
seen by a kernel is ``potential_fn(ravel.unflatten(q))``, where ``unflatten`` only makes views.

Both directions take leading batch dimensions (one per chain when chains run as a batch): a dict of
tensors shaped ``batch + site_shape`` flattens to ``batch + (D,)``.
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

    def flatten(self, params: Mapping[str, Tensor], batch_shape: tuple[int, ...] = ()) -> Tensor:
        """Concatenate the sites of ``params`` (each ``batch_shape + site_shape``) into one vector
        per batch member, shape ``batch_shape + (D,)``."""
        if len(self.names) == 1:
            return params[self.names[0]].reshape(*batch_shape, -1)
        if not self.names:  # a model without latent sites
            return torch.zeros(*batch_shape, 0)
        return torch.cat([params[n].reshape(*batch_shape, -1) for n in self.names], dim=-1)

    def unflatten(self, q: Tensor, batch_shape: tuple[int, ...] | None = None) -> dict[str, Tensor]:
        """Split ``q`` (shape ``(..., D)``) into views shaped ``batch_shape + site_shape``.

        ``batch_shape`` defaults to ``q``'s leading dimensions; a one-chain batch ``(1, D)`` can be
        read as unbatched sites with ``batch_shape=()``.
        """
        batch = q.shape[:-1] if batch_shape is None else tuple(batch_shape)
        if len(self.names) == 1:
            # A vector site needs no view; skipping it saves an autograd node per gradient.
            shape = (*batch, *self.shapes[0])
            return {self.names[0]: q if q.shape == shape else q.reshape(shape)}
        parts = torch.split(q, self.sizes, dim=-1)
        pieces = zip(self.names, parts, self.shapes, strict=True)
        return {n: x.reshape((*batch, *s)) for n, x, s in pieces}
