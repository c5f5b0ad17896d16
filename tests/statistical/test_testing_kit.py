"""The public test kit: correct kernels pass each check, broken kernels and wrong targets fail.

Every check is run in pairs: a positive case (a correct kernel must pass) and negative controls
(a correct kernel aimed at a tempered target, and the three deliberately broken kernels of
``broken_kernels.py``, must fail). Step sizes are fixed (no adaptation) so that each kernel
accepts a moderate fraction of its proposals; seeds are fixed.
"""

from __future__ import annotations

import pyro
import pytest
import torch

from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC
from pyro_simplehmc.checks.testing import (
    geweke_test,
    mcse_z_test,
    one_step_invariance_test,
    tempered,
    two_sided_z_threshold,
)
from tests.broken_kernels import (
    HMCWithoutFinalHalfStep,
    HMCWithoutMetropolis,
    MALAWithoutProposalDensity,
)
from tests.conftest import Gaussian, run_chains

FIXED = {"adapt_step_size": False, "adapt_mass_matrix": False}

# Step sizes for the invariance target (scales 1 and 1.5, identity mass matrix): every kernel
# accepts about 0.65 to 0.85 of its proposals.
CORRECT = {
    "SimpleHMC": lambda f: SimpleHMC(potential_fn=f, step_size=1.2, num_steps=3, **FIXED),
    "MALA": lambda f: MALA(potential_fn=f, step_size=1.3, **FIXED),
    "RandomWalkMH": lambda f: RandomWalkMH(potential_fn=f, step_size=2.0, **FIXED),
}
BROKEN = {
    "HMCWithoutMetropolis": lambda f: HMCWithoutMetropolis(
        potential_fn=f, step_size=1.2, num_steps=3, **FIXED
    ),
    "MALAWithoutProposalDensity": lambda f: MALAWithoutProposalDensity(
        potential_fn=f, step_size=1.3, **FIXED
    ),
    # The missing half step only corrupts the acceptance ratio (the positions are those of
    # leapfrog), and by the most in a short trajectory.
    "HMCWithoutFinalHalfStep": lambda f: HMCWithoutFinalHalfStep(
        potential_fn=f, step_size=1.2, num_steps=1, **FIXED
    ),
}
# A random walk moves a point little in one step; more steps per point give the test power.
KERNEL_STEPS = {"RandomWalkMH": 4}


@pytest.fixture
def target() -> Gaussian:
    """The invariance target: 2-D, scales 1 and 1.5, correlation 0.3."""
    sd = torch.tensor([1.0, 1.5], dtype=torch.float64)
    corr = torch.tensor([[1.0, 0.3], [0.3, 1.0]], dtype=torch.float64)
    return Gaussian(torch.tensor([1.0, -1.0]), sd[:, None] * corr * sd)


def _default_and_slow(cases, *slow):
    """All cases, those named in ``slow`` under the slow marker.

    The default run keeps, for each check, at least one correct kernel that must pass and one
    broken kernel that must fail, and every broken kernel is caught by some check in it.
    """
    return [pytest.param(name, marks=pytest.mark.slow) if name in slow else name for name in cases]


# ------------------------------------------------------------------------- one-step invariance


@pytest.mark.parametrize("name", list(CORRECT))
def test_invariance_correct_kernel_passes_and_tempered_target_fails(name, target, float64):
    steps = KERNEL_STEPS.get(name, 1)
    pyro.set_rng_seed(1)
    result = one_step_invariance_test(
        CORRECT[name](target.potential_fn), target.sample, 3000, num_kernel_steps=steps
    )
    assert 0.2 < result.acceptance_rate < 0.99, result
    assert result.passed, result

    # Negative control: the same kernel aimed at pi^0.7 (20% wider) is a fine kernel for the
    # wrong distribution.
    pyro.set_rng_seed(1)
    wrong = one_step_invariance_test(
        CORRECT[name](tempered(target.potential_fn, 0.7)),
        target.sample,
        3000,
        num_kernel_steps=steps,
    )
    assert wrong.min_pvalue < 1e-4, wrong


@pytest.mark.parametrize("name", _default_and_slow(BROKEN, "HMCWithoutMetropolis"))
def test_invariance_detects_broken_kernel(name, target, float64):
    # Two steps per point: the broken kernels drift away from the target step by step.
    pyro.set_rng_seed(1)
    result = one_step_invariance_test(
        BROKEN[name](target.potential_fn), target.sample, 3000, num_kernel_steps=2
    )
    assert result.acceptance_rate > 0.2, result
    assert not result.passed, result
    assert result.min_pvalue < 1e-4, result


def test_invariance_works_with_pyro_hmc(target, float64):
    # The kit is for any MCMCKernel: Pyro's HMC caches its state, which the kit clears.
    from pyro.infer import HMC

    pyro.set_rng_seed(2)
    kernel = HMC(
        potential_fn=target.potential_fn,
        step_size=1.2,
        num_steps=3,
        adapt_step_size=False,
        adapt_mass_matrix=False,
    )
    result = one_step_invariance_test(kernel, target.sample, 1000)
    assert result.acceptance_rate > 0.3, result
    assert result.passed, result


# ------------------------------------------------------------------------- MCSE z-tests

# Draws per chain (two chains each): a step of HMC is worth more than one of MALA or RW.
CHAIN_LENGTH = {"SimpleHMC": 1000, "MALA": 3000, "RandomWalkMH": 4000}
# Without its Metropolis correction, HMC at this step size is only slightly off (the leapfrog's
# shadow density is close to the target): longer chains.
BROKEN_CHAIN_LENGTH = {
    "HMCWithoutMetropolis": 3000,
    "MALAWithoutProposalDensity": 3000,
    "HMCWithoutFinalHalfStep": 1000,
}


def _chains(factory, gaussian, num_samples):
    mcmc = run_chains(
        factory(gaussian.potential_fn),
        {"x": gaussian.mean.clone()},
        num_samples=num_samples,
        warmup_steps=0,
        num_chains=2,
        seed=3,
    )
    return mcmc.get_samples(group_by_chain=True)["x"]


# Step sizes for the 3-D Gaussian fixture (narrowest direction sd 0.42).
MCSE_CORRECT = {
    "SimpleHMC": lambda f: SimpleHMC(potential_fn=f, step_size=0.6, num_steps=5, **FIXED),
    "MALA": lambda f: MALA(potential_fn=f, step_size=0.5, **FIXED),
    "RandomWalkMH": lambda f: RandomWalkMH(potential_fn=f, step_size=0.8, **FIXED),
}
MCSE_BROKEN = {
    "HMCWithoutMetropolis": lambda f: HMCWithoutMetropolis(
        potential_fn=f, step_size=0.6, num_steps=5, **FIXED
    ),
    "MALAWithoutProposalDensity": lambda f: MALAWithoutProposalDensity(
        potential_fn=f, step_size=0.5, **FIXED
    ),
    "HMCWithoutFinalHalfStep": lambda f: HMCWithoutFinalHalfStep(
        potential_fn=f, step_size=0.6, num_steps=1, **FIXED
    ),
}


@pytest.mark.parametrize("name", _default_and_slow(MCSE_CORRECT, "MALA", "RandomWalkMH"))
def test_mcse_z_test_passes_correct_kernel(name, gaussian, float64):
    draws = _chains(MCSE_CORRECT[name], gaussian, CHAIN_LENGTH[name])
    result = mcse_z_test(draws, gaussian.mean, gaussian.covariance)
    assert result.passed, result


@pytest.mark.parametrize(
    "name", _default_and_slow(MCSE_BROKEN, "MALAWithoutProposalDensity", "HMCWithoutMetropolis")
)
def test_mcse_z_test_detects_broken_kernel(name, gaussian, float64):
    length = BROKEN_CHAIN_LENGTH[name]
    draws = _chains(MCSE_BROKEN[name], gaussian, length)
    result = mcse_z_test(draws, gaussian.mean, gaussian.covariance)
    assert not result.passed, result


def test_mcse_z_test_on_exact_draws_is_calibrated():
    # With i.i.d. draws, the z-scores are standard normal: over many replications about a
    # fraction alpha of the families fail, not more.
    pyro.set_rng_seed(4)
    cov = torch.tensor([[1.0, 0.3], [0.3, 2.0]], dtype=torch.float64)
    chol = torch.linalg.cholesky(cov)
    z = []
    for _ in range(40):
        draws = torch.randn(2, 500, 2, dtype=torch.float64) @ chol.mT
        z.append(mcse_z_test(draws, torch.zeros(2), cov).z)
    z = torch.tensor(z).flatten()
    # 200 z-scores: their mean and variance are those of N(0, 1) within sampling error.
    assert abs(float(z.mean())) < 4 / 200**0.5
    assert 0.6 < float(z.var()) < 1.4


def test_two_sided_threshold():
    assert two_sided_z_threshold(0.05) == pytest.approx(1.959964, abs=1e-5)
    assert two_sided_z_threshold(0.05, 5) == pytest.approx(2.575829, abs=1e-5)


# ------------------------------------------------------------------------- Geweke


@pytest.mark.parametrize("name", _default_and_slow(CORRECT, "SimpleHMC", "MALA"))
def test_geweke_passes_correct_kernel(name, float64):
    pyro.set_rng_seed(5)
    result = geweke_test(GEWEKE_CORRECT[name], GEWEKE_SAMPLES.get(name, 4000))
    assert result.passed, result


@pytest.mark.parametrize(
    "name", _default_and_slow(BROKEN, "HMCWithoutFinalHalfStep", "MALAWithoutProposalDensity")
)
def test_geweke_detects_broken_kernel(name, float64):
    pyro.set_rng_seed(5)
    result = geweke_test(GEWEKE_BROKEN[name], GEWEKE_SAMPLES.get(name, 4000))
    assert not result.passed, result


# The posterior sd of theta in the default model is 0.82. MALA's missing proposal density
# biases it less than the other faults bias HMC, so the MALA pair gets more sweeps.
GEWEKE_SAMPLES = {"MALA": 8000, "MALAWithoutProposalDensity": 8000}
GEWEKE_CORRECT = {
    "SimpleHMC": lambda f: SimpleHMC(potential_fn=f, step_size=1.2, num_steps=3, **FIXED),
    "MALA": lambda f: MALA(potential_fn=f, step_size=2.0, **FIXED),
    "RandomWalkMH": lambda f: RandomWalkMH(potential_fn=f, step_size=2.0, **FIXED),
}
GEWEKE_BROKEN = {
    "HMCWithoutMetropolis": lambda f: HMCWithoutMetropolis(
        potential_fn=f, step_size=1.2, num_steps=3, **FIXED
    ),
    "MALAWithoutProposalDensity": lambda f: MALAWithoutProposalDensity(
        potential_fn=f, step_size=2.0, **FIXED
    ),
    "HMCWithoutFinalHalfStep": lambda f: HMCWithoutFinalHalfStep(
        potential_fn=f, step_size=1.2, num_steps=1, **FIXED
    ),
}


# ------------------------------------------------------------------------- argument checks


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda g: one_step_invariance_test(None, g.sample, 1), "num_samples"),
        (lambda g: one_step_invariance_test(None, g.sample, 10, num_kernel_steps=0), "kernel_st"),
        (lambda g: one_step_invariance_test(None, g.sample, 10, alpha=1.5), "alpha"),
        (lambda g: mcse_z_test(torch.zeros(10, 2), g.mean, g.covariance), "samples"),
        (lambda g: mcse_z_test(torch.zeros(1, 10, 3), g.mean[:2], g.covariance), "mean"),
        (lambda g: geweke_test(None, 5), "num_samples"),
        (lambda g: geweke_test(None, 100, prior_scale=0.0), "prior_scale"),
        (lambda g: geweke_test(None, 100, noise_scale=float("inf")), "noise_scale"),
        (lambda g: tempered(g.potential_fn, -1.0), "inverse_temperature"),
        (lambda g: two_sided_z_threshold(0.0), "alpha"),
        # Through _validation (issue 12): each names its argument.
        (lambda g: two_sided_z_threshold(0.01, 0), "num_tests"),
        (lambda g: tempered(g.potential_fn, float("inf")), "inverse_temperature"),
        (lambda g: geweke_test(None, 100, prior_scale="1"), "prior_scale"),
        (lambda g: mcse_z_test(torch.zeros(1, 10, 3), g.mean, g.covariance, alpha=True), "alpha"),
    ],
)
def test_kit_bad_arguments(call, name, gaussian):
    with pytest.raises(ValueError, match=name):
        call(gaussian)
