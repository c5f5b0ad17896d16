"""Every private name of Pyro that this package touches, in one place.

Pyro has no public API for what these functions do. Each wraps one private name, so that a Pyro
release that renames or changes it breaks exactly one function here, and the test of that function
(``tests/kernels/test_pyro_compat.py``) says which. The package asks for ``pyro-ppl>=1.9,<1.10``,
the minor version these were read from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyro.infer.mcmc import api as _mcmc_api
from pyro.ops import integrator as _integrator

__all__ = [
    "logging_hook",
    "mcmc_chain_diagnostics",
    "mcmc_model_args",
    "mcmc_samples",
    "numerical_error_handlers",
    "sequential_sampler",
    "store_mcmc_run",
]


def numerical_error_handlers() -> list[Callable[[Exception], bool]]:
    """Pyro's registry of exceptions that mark a numerically invalid point (a singular matrix in
    a Cholesky factorisation, for one): ``pyro.ops.integrator._EXCEPTION_HANDLERS``."""
    return list(_integrator._EXCEPTION_HANDLERS.values())


def sequential_sampler(kernel, num_samples, warmup_steps, num_chains, disable_progbar, **kwargs):
    """Pyro's one-process sampler, which runs chains one after the other:
    ``pyro.infer.mcmc.api._UnarySampler``."""
    return _mcmc_api._UnarySampler(
        kernel, num_samples, warmup_steps, num_chains, disable_progbar, **kwargs
    )


def is_sequential_sampler(sampler: Any) -> bool:
    """Whether ``sampler`` is Pyro's one-process sampler."""
    return isinstance(sampler, _mcmc_api._UnarySampler)


def logging_hook(logger, progress_bar, hook_fn: Callable | None) -> Callable:
    """The hook with which :class:`pyro.infer.MCMC` updates its progress bar and then calls the
    user's ``hook_fn``: ``pyro.infer.mcmc.api._add_logging_hook``."""
    return _mcmc_api._add_logging_hook(logger, progress_bar, hook_fn)


# What a finished pyro.infer.MCMC keeps from its run, in private attributes that its own methods
# (get_samples, summary, diagnostics) and arviz.from_pyro read.


def store_mcmc_run(mcmc, samples, chain_diagnostics: list, args, kwargs) -> None:
    """Leave a run's results where :class:`pyro.infer.MCMC`'s methods look for them (``None``
    samples and arguments: no run yet)."""
    mcmc._samples = samples
    mcmc._diagnostics = list(chain_diagnostics)
    mcmc._args, mcmc._kwargs = args, kwargs


def mcmc_samples(mcmc) -> dict | None:
    """The unconstrained-then-transformed samples of a finished run (``None`` before a run)."""
    return getattr(mcmc, "_samples", None)


def mcmc_model_args(mcmc) -> tuple[tuple, dict] | None:
    """The model arguments the run was given (``None`` before a run)."""
    args = getattr(mcmc, "_args", None)
    if args is None:
        return None
    return tuple(args), dict(getattr(mcmc, "_kwargs", None) or {})


def mcmc_chain_diagnostics(mcmc) -> list | None:
    """The kernel's ``diagnostics()`` of each chain, as the run collected them."""
    return getattr(mcmc, "_diagnostics", None)
