"""The fast paths of the hot loop compute exactly what the plain code computes.

Two shortcuts were taken for speed (see docs/performance.md):

- :func:`~pyro_simplehmc.kernels.evaluation.value_and_grad` adds nothing to the autograd graph (no
  reshape, no sum, no grad-mode switch when grad mode is already on);
- a unit :class:`~pyro_simplehmc.core.metrics.Metric` returns its argument instead of multiplying by
  ones.

Both must be invisible: the tests compare against the plain computation bit for bit.
"""

from __future__ import annotations

import pytest
import torch

from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC
from pyro_simplehmc.core.metrics import Metric
from pyro_simplehmc.kernels.evaluation import value_and_grad

PRECISION = torch.tensor([1.0, 4.0, 0.5], dtype=torch.float64)


def quadratic(q: torch.Tensor) -> torch.Tensor:
    return 0.5 * (q * q * PRECISION).sum(-1) + torch.sin(q).sum(-1)


def reference_value_and_grad(potential_fn, q):
    """The plain version: reshape to the batch shape, then differentiate the sum."""
    q = q.detach().requires_grad_(True)
    with torch.enable_grad():
        u = potential_fn(q).reshape(q.shape[:-1])
        (grad,) = torch.autograd.grad(u.sum(), q)
    return u.detach(), grad


@pytest.mark.parametrize(
    "potential_fn",
    [quadratic, lambda q: quadratic(q).unsqueeze(-1)],
    ids=["batch shape", "batch shape + (1,)"],
)
@pytest.mark.parametrize("batch", [(), (4,), (2, 3)])
@pytest.mark.parametrize("grad_enabled", [True, False])
def test_value_and_grad_matches_plain_autograd(potential_fn, batch, grad_enabled):
    torch.manual_seed(0)
    q = torch.randn(*batch, 3, dtype=torch.float64)
    expected_u, expected_grad = reference_value_and_grad(potential_fn, q)
    with torch.set_grad_enabled(grad_enabled):
        u, grad = value_and_grad(potential_fn, q)
    assert u.shape == batch and grad.shape == q.shape
    assert torch.equal(u, expected_u)
    assert torch.equal(grad, expected_grad)
    assert not u.requires_grad and not grad.requires_grad
    # The analytic gradient, so that both versions cannot be wrong together.
    assert torch.allclose(grad, q * PRECISION + torch.cos(q), rtol=1e-12, atol=0)


def test_value_and_grad_constant_and_failing_potentials():
    q = torch.ones(3, dtype=torch.float64)
    u, grad = value_and_grad(lambda x: torch.tensor(2.0, dtype=torch.float64), q)
    assert float(u) == 2.0 and torch.equal(grad, torch.zeros_like(q))

    def invalid(x):
        # What torch's distribution validation raises on a diverging trajectory.
        raise ValueError(
            "Expected parameter loc (Tensor of shape (3,)) of distribution Normal to satisfy the "
            "constraint Real(), but found invalid values"
        )

    u, grad = value_and_grad(invalid, q)
    assert torch.isnan(u) and torch.isnan(grad).all()


def test_a_bug_in_the_potential_is_raised_not_rejected():
    """A ValueError that is not a validation error is the model's: raised with its message."""
    q = torch.ones(3, dtype=torch.float64)

    def buggy(x):
        raise ValueError("shapes (3,) and (4,) are not aligned")

    with pytest.raises(ValueError, match="not aligned"):
        value_and_grad(buggy, q)


def test_value_and_grad_rejects_a_potential_of_the_wrong_shape():
    q = torch.ones(4, 3, dtype=torch.float64)
    with pytest.raises(RuntimeError):
        value_and_grad(lambda x: quadratic(x)[:2], q)


def test_unit_metric_is_detected_and_acts_as_the_identity():
    x = torch.randn(5, 3, dtype=torch.float64)
    unit = Metric([torch.ones(3, dtype=torch.float64)])
    dense_unit = Metric([torch.eye(3, dtype=torch.float64)])
    assert unit.is_identity and Metric.identity(3).is_identity
    assert not dense_unit.is_identity
    assert not Metric([torch.tensor([1.0, 2.0, 1.0])]).is_identity
    assert not Metric([torch.ones(1), torch.ones(2)]).is_identity
    for method in ("velocity", "momentum_from_normal", "position_from_normal", "whiten"):
        assert torch.equal(getattr(unit, method)(x), getattr(dense_unit, method)(x)), method
    assert torch.equal(unit.kinetic_energy(x), dense_unit.kinetic_energy(x))
    assert torch.equal(unit.kinetic_energy(x), 0.5 * (x * x).sum(-1))


def potential_fn(params):
    return quadratic(params["x"])


KERNELS = {
    "SimpleHMC": lambda **kw: SimpleHMC(step_size=0.3, num_steps=5, **kw),
    "MALA": lambda **kw: MALA(step_size=0.5, **kw),
    "RandomWalkMH": lambda **kw: RandomWalkMH(step_size=0.7, **kw),
}


def run_chain(make_kernel, inverse_mass_matrix, num_iterations=200):
    kernel = make_kernel(
        potential_fn=potential_fn,
        adapt_step_size=False,
        adapt_mass_matrix=False,
        inverse_mass_matrix=inverse_mass_matrix,
    )
    kernel.initial_params = {"x": torch.full((3,), 0.5, dtype=torch.float64)}
    torch.manual_seed(3)
    kernel.setup(0)
    params, draws = kernel.initial_params, []
    for _ in range(num_iterations):
        params = kernel.sample(params)
        draws.append(params["x"].clone())
    return torch.stack(draws), kernel.diagnostics()["acceptance rate"]


@pytest.mark.parametrize("name", list(KERNELS))
def test_chain_on_the_unit_fast_path_equals_the_dense_identity_chain(name):
    """The unit metric's shortcut against the general dense code path with M = I."""
    fast, acceptance = run_chain(KERNELS[name], None)
    slow, _ = run_chain(KERNELS[name], torch.eye(3, dtype=torch.float64))
    assert 0.1 < acceptance < 1.0  # the chain moves and rejects: both branches are exercised
    assert torch.equal(fast, slow)


@pytest.mark.parametrize(
    "inverse_mass_matrix",
    [
        None,
        torch.tensor([0.5, 2.0, 1.5], dtype=torch.float64),
        torch.tensor([[1.0, 0.3, 0.0], [0.3, 2.0, 0.5], [0.0, 0.5, 1.5]], dtype=torch.float64),
    ],
    ids=["unit", "diagonal", "dense"],
)
def test_mala_forward_density_from_the_noise_equals_the_full_formula(inverse_mass_matrix):
    """MALA takes log k(q' | q) as -|noise|^2/2; the full Gaussian density must agree."""
    from pyro_simplehmc.kernels.mala import langevin_log_density

    kernel = MALA(
        potential_fn=potential_fn,
        step_size=0.8,
        adapt_step_size=False,
        adapt_mass_matrix=False,
        inverse_mass_matrix=inverse_mass_matrix,
    )
    kernel.initial_params = {"x": torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)}
    kernel.setup(0)
    state = kernel.state_at(kernel.initial_params)
    for seed in range(5):
        torch.manual_seed(seed)
        proposal, log_ratio = kernel.propose(state, 0.8)
        q, q_new, metric = state.position, proposal.position, kernel.metric
        expected = (
            state.potential_energy
            - proposal.potential_energy
            + langevin_log_density(q, q_new, proposal.grad, 0.8, metric)
            - langevin_log_density(q_new, q, state.grad, 0.8, metric)
        )
        assert torch.allclose(log_ratio, expected, rtol=1e-12, atol=1e-12), seed
