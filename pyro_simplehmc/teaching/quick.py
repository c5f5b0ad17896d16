"""Trying code in seconds: :func:`quick_runs` shortens every MCMC run made inside a block (the
documentation's tests run every page this way)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..core import validation as check

__all__ = ["quick_runs"]


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
    from ..compare import execution

    continuations, execution.MAX_CONTINUATIONS = execution.MAX_CONTINUATIONS, 0
    try:
        yield
    finally:
        execution.MAX_CONTINUATIONS = continuations
        for (module, _), value in zip(patches, saved, strict=True):
            module.MCMC = value
