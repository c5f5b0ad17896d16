r"""Statistical checks for any Pyro MCMC kernel.

A kernel that is slightly wrong still produces plausible draws, so a kernel is tested against
things it must get exactly right in distribution. Three checks, each usable on any
:class:`~pyro.infer.mcmc.mcmc_kernel.MCMCKernel` (those of this package, Pyro's own, or yours):

- :func:`one_step_invariance_test`: a correct kernel leaves its target invariant. Draw exact
  samples from the target, apply one kernel step to each, and compare the result with fresh exact
  samples by a two-sample test per coordinate. No burn-in and no autocorrelation are involved, so
  the test is exact at any sample size.
- :func:`mcse_z_test`: long chains on a target with known moments; each estimated mean, variance
  and correlation is compared with the truth in units of its Monte-Carlo standard error (MCSE,
  from the effective sample size computed by :mod:`arviz`).
- :func:`geweke_test`: Geweke's (2004) "getting it right" test of the joint distribution of
  parameters and data in a small conjugate model. The marginal-conditional simulator draws
  :math:`\theta \sim p(\theta)`, :math:`y \sim p(y \mid \theta)` independently; the
  successive-conditional simulator alternates a kernel step on :math:`p(\theta \mid y)` with an
  exact draw :math:`y \sim p(y \mid \theta)`. Both have the joint :math:`p(\theta, y)` as their
  distribution if and only if the kernel leaves every posterior invariant (for the data sets
  visited), so the means of test functions must agree.

Each check returns a result object with the statistics and a ``passed`` flag, and has a
threshold that a wrong kernel fails (see ``tests/broken_kernels.py`` in the repository).

Kernels are driven through the :class:`~pyro.infer.mcmc.mcmc_kernel.MCMCKernel` API only:
``initial_params``, ``setup(warmup_steps=0)`` and ``sample(params)``. The kernel should be built
with a ``potential_fn`` and with adaptation off (it is set up with no warmup, so this package's
kernels do not adapt anyway). A kernel that caches its last state (Pyro's
:class:`~pyro.infer.HMC` does) is told to forget it through ``clear_cache()`` before each step
from a new point.

Example, for a kernel of your own on a 2-D standard normal::

    >>> potential_fn = lambda p: 0.5 * (p["x"] ** 2).sum()
    >>> exact = lambda n: {"x": torch.randn(n, 2)}
    >>> kernel = MyKernel(potential_fn=potential_fn, step_size=1.0, adapt_step_size=False)
    >>> result = one_step_invariance_test(kernel, exact, num_samples=3000)
    >>> assert result.passed, result
    >>> wrong = MyKernel(potential_fn=tempered(potential_fn, 0.7), step_size=1.0,
    ...                  adapt_step_size=False)
    >>> assert one_step_invariance_test(wrong, exact, 3000).min_pvalue < 1e-4  # power

:func:`one_step_invariance_test` needs :mod:`scipy` for its two-sample tests; the z-tests need
only :mod:`arviz`.

This module is the kit's façade: the checks live in :mod:`.invariance` (the one-step invariance
test, :func:`tempered`), :mod:`.ztest` (the MCSE z-tests, :func:`chain_independence_test`,
:func:`two_sided_z_threshold`) and :mod:`.geweke`, and every name is importable from here.
"""

from .geweke import geweke_test
from .invariance import InvarianceResult, one_step_invariance_test, tempered

# chain_independence_test is importable from here (docs/many-chains.md imports it) but, as before
# the split, not in ``__all__``.
from .ztest import (  # noqa: F401
    ZTestResult,
    chain_independence_test,
    mcse_z_test,
    two_sided_z_threshold,
)

__all__ = [
    "InvarianceResult",
    "ZTestResult",
    "geweke_test",
    "mcse_z_test",
    "one_step_invariance_test",
    "tempered",
    "two_sided_z_threshold",
]
