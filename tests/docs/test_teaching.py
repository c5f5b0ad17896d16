"""The teaching API: recorded trajectories are the kernels' own, and the integrators behave.

The tolerances below are exact or derived: the leapfrog energy bound on the harmonic oscillator
follows from the quantity leapfrog conserves there, and Euler's growth factor is exact.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from pyro_simplehmc import ChainState, SimpleHMC
from pyro_simplehmc.teaching import (
    INTEGRATORS,
    density_grid,
    gaussian_potential,
    harmonic_oscillator,
    harmonic_oscillator_exact,
    kernel_trajectory,
    record_model_trajectory,
    record_trajectory,
)


def two_site_potential(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """A non-Gaussian potential on two sites, so that site order and the metric both matter."""
    a, b = params["a"], params["b"]
    return 0.5 * (a**2).sum() + 0.25 * (b**4).sum() + 0.3 * a[0] * b[1]


def scale_model() -> None:
    """A model with a positive site (sampled as its logarithm) and a vector site."""
    pyro.sample("loc", dist.Normal(torch.zeros(2, dtype=torch.float64), 1.0).to_event(1))
    pyro.sample("scale", dist.LogNormal(torch.tensor(0.0, dtype=torch.float64), 0.5))


def same(a: torch.Tensor, b: torch.Tensor) -> None:
    """Exactly equal: the recording runs the kernel's own integrator on the same numbers."""
    assert torch.equal(a, b)


def proposal_and_momentum(kernel: SimpleHMC, q: torch.Tensor, seed: int):
    """The kernel's proposal from ``q``, and the momentum it drew (replayed from the same seed)."""
    # The kernel works on a batch of chains, positions (C, D): here one chain.
    chains = q.unsqueeze(0)
    state = ChainState(chains, *kernel.value_and_grad(chains))
    torch.manual_seed(seed)
    step_size = torch.tensor([[kernel.step_size]], dtype=chains.dtype)
    proposal, log_accept_ratio, _ = kernel.propose(state, step_size)
    torch.manual_seed(seed)
    momentum = kernel.metric.momentum_from_normal(torch.randn_like(chains))[0]
    one = ChainState(*(None if x is None else x[0] for x in proposal))
    return one, log_accept_ratio.reshape(()), momentum


def test_recorded_endpoint_is_the_kernels_proposal_for_the_same_momentum():
    params = {
        "b": torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64),
        "a": torch.tensor([0.5, -1.0], dtype=torch.float64),
    }
    inverse_mass = torch.tensor([0.5, 2.0, 1.0, 0.7, 1.5], dtype=torch.float64)
    kernel = SimpleHMC(
        potential_fn=two_site_potential,
        step_size=0.15,
        num_steps=12,
        num_steps_jitter=0,  # a fixed length: the recording replays exactly 12 steps
        adapt_step_size=False,
        adapt_mass_matrix=False,
        inverse_mass_matrix=inverse_mass,
    )
    kernel.initial_params = params
    kernel.setup(0)
    # The kernel lays sites out sorted by name ("a" then "b"); the recording must use its order.
    ordered = {"a": params["a"], "b": params["b"]}
    q = torch.cat([ordered["a"], ordered["b"]])
    proposal, log_accept_ratio, momentum = proposal_and_momentum(kernel, q, seed=7)

    path = record_trajectory(
        two_site_potential,
        ordered,
        {"a": momentum[:2], "b": momentum[2:]},
        step_size=0.15,
        num_steps=12,
        inverse_mass_matrix=kernel.metric,
    )
    assert path.positions.shape == (13, 5)
    same(path.end, proposal.position)
    same(path.potential_energies[-1], proposal.potential_energy)
    # Minus the energy error of the trajectory is the kernel's log acceptance ratio.
    torch.testing.assert_close(-path.energy_error[-1], log_accept_ratio, rtol=0, atol=1e-12)

    # kernel_trajectory finds all of this from the kernel itself, and draws the same momentum.
    torch.manual_seed(7)
    replay = kernel_trajectory(kernel, params)
    same(replay.end, proposal.position)


def test_kernel_trajectory_of_a_model_matches_the_proposal_in_both_spaces():
    kernel = SimpleHMC(
        scale_model,
        step_size=0.2,
        num_steps=9,
        num_steps_jitter=0,
        adapt_step_size=False,
        adapt_mass_matrix=False,
    )
    pyro.set_rng_seed(3)
    kernel.setup(0)
    params = kernel.initial_params
    q = torch.cat([params["loc"].reshape(-1), params["scale"].reshape(-1)])
    proposal, _, _ = proposal_and_momentum(kernel, q, seed=11)

    torch.manual_seed(11)
    path = kernel_trajectory(kernel, params)
    same(path.end, proposal.position)
    unconstrained = path.sites()
    constrained = path.sites("constrained")
    same(unconstrained["scale"][-1], proposal.position[2])
    # The positive site is sampled as its logarithm; the constrained path is its exponential.
    torch.testing.assert_close(constrained["scale"], unconstrained["scale"].exp())
    assert bool((constrained["scale"] > 0).all())
    torch.testing.assert_close(constrained["loc"], unconstrained["loc"])


def test_record_model_trajectory_starts_at_the_given_constrained_point():
    pyro.set_rng_seed(0)
    start = {"scale": torch.tensor(2.0, dtype=torch.float64)}
    path = record_model_trajectory(scale_model, step_size=0.1, num_steps=5, position=start)
    assert path.num_steps == 5
    torch.testing.assert_close(path.sites("constrained")["scale"][0], start["scale"])
    torch.testing.assert_close(path.sites()["scale"][0], start["scale"].log())
    # Small steps on a smooth target: the energy is nearly conserved.
    assert path.max_abs_energy_error < 0.05


@pytest.mark.parametrize("step_size", [0.1, 0.3, 0.6])
def test_euler_energy_grows_exactly_while_leapfrog_stays_bounded(step_size):
    """On U = q^2/2 with unit mass, explicit Euler multiplies H by exactly 1 + eps^2 per step.

    Leapfrog conserves p^2 + (1 - eps^2/4) q^2 there, so H = (p^2 + q^2)/2 can move away from
    its start (q, p) = (1, 0) by at most eps^2/8, however many steps are taken.
    """
    num_steps = 1000
    q0 = torch.tensor([1.0], dtype=torch.float64)
    p0 = torch.tensor([0.0], dtype=torch.float64)
    euler = record_trajectory(
        harmonic_oscillator, q0, p0, step_size=step_size, num_steps=num_steps, integrator="euler"
    )
    leapfrog = record_trajectory(
        harmonic_oscillator, q0, p0, step_size=step_size, num_steps=num_steps
    )
    growth = torch.tensor((1 + step_size**2), dtype=torch.float64) ** torch.arange(
        num_steps + 1, dtype=torch.float64
    )
    torch.testing.assert_close(euler.energies, 0.5 * growth, rtol=1e-10, atol=0)
    assert float(euler.energy_error[-1]) > 1.0  # it drifts, and without bound

    bound = step_size**2 / 8
    assert leapfrog.max_abs_energy_error <= bound * (1 + 1e-9)
    # Bounded, not slowly drifting: the last tenth of the path is no worse than the first.
    tenth = num_steps // 10
    late = float(leapfrog.energy_error[-tenth:].abs().max())
    early = float(leapfrog.energy_error[:tenth].abs().max())
    assert late <= early * 1.01


def test_symplectic_euler_is_bounded_but_not_reversible():
    q0 = torch.tensor([1.0], dtype=torch.float64)
    p0 = torch.tensor([0.0], dtype=torch.float64)
    kwargs = {"step_size": 0.3, "num_steps": 500, "integrator": "symplectic_euler"}
    path = record_trajectory(harmonic_oscillator, q0, p0, **kwargs)
    assert path.max_abs_energy_error < 0.2
    back = record_trajectory(
        harmonic_oscillator, path.end, -path.momenta[-1], **{**kwargs, "num_steps": 500}
    )
    assert float((back.end - q0).abs().max()) > 1e-3


def test_leapfrog_is_reversible():
    """Flip the momentum at the end and integrate again: back to the start."""
    q0 = {"a": torch.tensor([0.5, -1.0], dtype=torch.float64), "b": torch.zeros(3).double()}
    p0 = {"a": torch.tensor([1.0, 0.2]).double(), "b": torch.tensor([-0.5, 0.3, 0.9]).double()}
    forward = record_trajectory(two_site_potential, q0, p0, step_size=0.1, num_steps=40)
    end = forward.sites()
    flipped = {"a": -forward.momenta[-1, :2], "b": -forward.momenta[-1, 2:]}
    back = record_trajectory(
        two_site_potential,
        {k: v[-1] for k, v in end.items()},
        flipped,
        step_size=0.1,
        num_steps=40,
    )
    torch.testing.assert_close(back.end, forward.positions[0], rtol=0, atol=1e-10)
    torch.testing.assert_close(back.momenta[-1], -forward.momenta[0], rtol=0, atol=1e-10)


def test_exact_solution_conserves_energy_and_leapfrog_converges_to_it():
    times = torch.linspace(0, 3, 31, dtype=torch.float64)
    q, p = harmonic_oscillator_exact(0.6, -0.8, times)
    torch.testing.assert_close(0.5 * (q**2 + p**2), torch.full_like(q, 0.5))
    errors = []
    for step_size in (0.1, 0.05):
        n = round(3 / step_size)
        path = record_trajectory(
            harmonic_oscillator,
            torch.tensor([0.6], dtype=torch.float64),
            torch.tensor([-0.8], dtype=torch.float64),
            step_size=step_size,
            num_steps=n,
        )
        errors.append(float((path.end[0] - q[-1]).abs()))
    # Second order: halving the step divides the error by about four.
    assert 3.5 < errors[0] / errors[1] < 4.5


def test_momentum_is_drawn_from_the_metric_when_not_given():
    inverse_mass = torch.tensor([4.0, 0.25], dtype=torch.float64)
    torch.manual_seed(5)
    path = record_trajectory(
        harmonic_oscillator,
        torch.zeros(2, dtype=torch.float64),
        step_size=0.1,
        num_steps=0,
        inverse_mass_matrix=inverse_mass,
    )
    torch.manual_seed(5)
    expected = torch.randn(2, dtype=torch.float64) / inverse_mass.sqrt()
    torch.testing.assert_close(path.momenta[0], expected)
    torch.testing.assert_close(path.kinetic_energies[0], 0.5 * (expected**2 * inverse_mass).sum())


def test_gaussian_potential_and_density_grid():
    cov = torch.tensor([[1.0, 0.95], [0.95, 1.0]], dtype=torch.float64)
    potential = gaussian_potential(cov)
    points = torch.randn(5, 2, dtype=torch.float64)
    reference = -dist.MultivariateNormal(torch.zeros(2).double(), cov).log_prob(points)
    differences = potential(points) - reference
    torch.testing.assert_close(differences, differences[0].expand(5))  # equal up to a constant
    x, y, density = density_grid(potential, (-2, 2), (-1, 1), num=11)
    assert x.shape == y.shape == density.shape == (11, 11)
    assert float(density.max()) == pytest.approx(1.0)
    assert float(x[0, -1]) == pytest.approx(2.0) and float(y[-1, 0]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"integrator": "rk4"}, "integrator must be one of"),
        ({"step_size": 0.0}, "step_size must be a positive finite number"),
        ({"step_size": math.inf}, "step_size must be a positive finite number"),
        ({"num_steps": -1}, "num_steps must be an integer >= 0"),
        ({"num_steps": 2.5}, "num_steps must be an integer >= 0"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    arguments = {"step_size": 0.1, "num_steps": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        record_trajectory(harmonic_oscillator, torch.ones(1), torch.zeros(1), **arguments)
    assert "leapfrog" in INTEGRATORS


def test_sites_checks_the_space():
    path = record_trajectory(
        two_site_potential,
        {"a": torch.zeros(2), "b": torch.ones(3)},
        {"a": torch.ones(2), "b": torch.zeros(3)},
        step_size=0.1,
        num_steps=2,
    )
    assert path.sites()["b"].shape == (3, 3)
    with pytest.raises(ValueError, match="space must be 'unconstrained' or 'constrained'"):
        path.sites("latent")
    with pytest.raises(ValueError, match="needs a Pyro model's trajectory"):
        path.sites("constrained")
    flat = record_trajectory(
        harmonic_oscillator, torch.ones(1), torch.zeros(1), step_size=0.1, num_steps=2
    )
    with pytest.raises(ValueError, match="needs a dict position"):
        flat.sites()


def test_mass_levels_match_the_gaussian_highest_density_regions():
    """For a 2-D Gaussian the region of mass m is bounded by (1 - m) times the peak density."""
    from pyro_simplehmc.teaching import mass_levels

    covariance = torch.diag(torch.tensor([1.0, 0.09]))
    _, _, density = density_grid(gaussian_potential(covariance), (-6, 6), (-2, 2), 400)
    levels = mass_levels(density, (0.5, 0.9, 0.99))
    assert list(levels.values()) == [0.99, 0.9, 0.5]
    for level, mass in levels.items():
        # Grid resolution limits the match: cells of width 0.03 (in sd units: 0.03 and 0.1).
        assert level == pytest.approx(1 - mass, abs=0.01)
    # On a grid uniform in log(sigma), plotted in sigma, the cell areas are proportional to sigma:
    # weighting by them recovers the levels of the uniform grid in sigma.
    z = torch.linspace(-7.0, 1.5, 4000)
    sigma = z.exp()
    weighted = mass_levels(torch.exp(-0.5 * ((sigma - 1.0) / 0.3) ** 2), (0.5,), weights=sigma)
    unweighted = mass_levels(torch.exp(-0.5 * ((sigma - 1.0) / 0.3) ** 2), (0.5,))
    assert next(iter(weighted)) == pytest.approx(math.exp(-0.5 * 0.6745**2), abs=0.01)
    assert next(iter(unweighted)) != pytest.approx(next(iter(weighted)), abs=0.05)
    with pytest.raises(ValueError, match="masses"):
        mass_levels(density, (1.5,))


def test_quick_runs_shortens_mcmc_and_restores_it():
    import pyro.infer

    from pyro_simplehmc.checks.targets import correlated_gaussian
    from pyro_simplehmc.compare import compare
    from pyro_simplehmc.teaching import quick_runs

    original = pyro.infer.MCMC
    potential = lambda params: 0.5 * (params["x"] ** 2).sum()  # noqa: E731
    with quick_runs(num_samples=7, warmup_steps=3, num_chains=1):
        from pyro.infer import MCMC

        mcmc = MCMC(
            SimpleHMC(potential_fn=potential, num_steps=2),
            num_samples=1000,
            warmup_steps=1000,
            num_chains=3,
            initial_params={"x": torch.zeros(2)},
            disable_progbar=True,
        )
        assert (mcmc.num_samples, mcmc.warmup_steps, mcmc.num_chains) == (7, 3, 1)
        # The package's own MCMC too, with the chains of a vectorized run kept.
        from pyro_simplehmc import MCMC as OurMCMC

        batch = OurMCMC(SimpleHMC(potential_fn=potential, num_steps=2), num_samples=1000,
                        warmup_steps=1000, num_chains=3, chain_method="vectorized",
                        initial_params={"x": torch.zeros(3, 2)}, disable_progbar=True)
        assert (batch.num_samples, batch.warmup_steps, batch.num_chains) == (7, 3, 3)
        # The comparison runner's runs too (the docs' pages call compare_model), imported
        # before the block as a reader's session would have it.
        comparison = compare(correlated_gaussian(), kernels=["MALA"], num_samples=1000,
                             warmup_steps=1000, reference=None, progress=False)
        assert comparison.draws["MALA"].shape[:2] == (32, 7)  # a batch of 32, not continued
        result = comparison.results[0]
        assert result.error is None and 0 < result.acceptance_rate <= 1  # diagnostics read
    assert pyro.infer.MCMC is original
