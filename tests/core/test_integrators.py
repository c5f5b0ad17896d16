import math

import pytest
import torch

from pyro_simplehmc import Metric, leapfrog, leapfrog_flat, value_and_grad


def oscillator(q):
    return 0.5 * (q**2).sum(-1)


def vg(q):
    return value_and_grad(oscillator, q)


def test_harmonic_oscillator_against_exact_solution():
    # U = q^2/2, m = 1: the exact flow is a rotation by angle t in the (q, p) plane.
    q0, p0 = torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.5], dtype=torch.float64)
    eps, steps = 0.01, 300
    out = leapfrog_flat(q0, p0, vg, lambda p: p, eps, steps)
    t = eps * steps
    q_exact = q0 * math.cos(t) + p0 * math.sin(t)
    p_exact = -q0 * math.sin(t) + p0 * math.cos(t)
    assert torch.allclose(out.position, q_exact, atol=1e-4)
    assert torch.allclose(out.momentum, p_exact, atol=1e-4)


@pytest.mark.parametrize("kind", ["identity", "diagonal", "dense"])
def test_time_reversibility(kind):
    torch.manual_seed(0)
    d = 5
    a = torch.randn(d, d, dtype=torch.float64)
    prec = a @ a.T + d * torch.eye(d, dtype=torch.float64)

    def potential(q):
        return 0.5 * (q @ prec * q).sum(-1) + torch.sin(q).sum(-1)

    inv_mass = {
        "identity": None,
        "diagonal": torch.rand(d, dtype=torch.float64) + 0.5,
        "dense": torch.linalg.inv(prec),
    }[kind]
    metric = Metric.from_inverse_mass_matrix(inv_mass, torch.zeros(d, dtype=torch.float64))
    q0, p0 = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
    f = lambda q: value_and_grad(potential, q)  # noqa: E731
    fwd = leapfrog_flat(q0, p0, f, metric.velocity, 0.05, 20)
    back = leapfrog_flat(fwd.position, -fwd.momentum, f, metric.velocity, 0.05, 20)
    assert torch.allclose(back.position, q0, atol=1e-6)
    assert torch.allclose(-back.momentum, p0, atol=1e-6)


def test_volume_preservation():
    torch.manual_seed(1)
    d = 3
    inv_mass = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    metric = Metric([inv_mass])

    def potential(q):
        return 0.25 * (q**4).sum(-1) + q[..., 0] * q[..., 1]

    def flow(z):
        out = leapfrog_flat(
            z[:d], z[d:], lambda q: _graph_value_and_grad(potential, q), metric.velocity, 0.1, 7
        )
        return torch.cat([out.position, out.momentum])

    z0 = torch.randn(2 * d, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(flow, z0)
    assert torch.linalg.det(jac).item() == pytest.approx(1.0, abs=1e-8)


def _graph_value_and_grad(potential, q):
    # Keeps the graph so that the Jacobian of the whole flow can be taken.
    u = potential(q)
    (g,) = torch.autograd.grad(u, q, create_graph=True)
    return u, g


def test_energy_error_shrinks_like_step_size_squared():
    torch.manual_seed(2)
    q0, p0 = torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)

    def potential(q):
        return 0.5 * (q**2).sum(-1) + 0.1 * (q**4).sum(-1)

    f = lambda q: value_and_grad(potential, q)  # noqa: E731
    h0 = potential(q0) + 0.5 * (p0**2).sum()
    errors = []
    for eps in [0.04, 0.02, 0.01]:
        out = leapfrog_flat(q0, p0, f, lambda p: p, eps, round(1.0 / eps))
        errors.append(abs(float(out.potential_energy + 0.5 * (out.momentum**2).sum() - h0)))
    ratios = [errors[i] / errors[i + 1] for i in range(2)]
    # Halving the step size divides a second-order method's error by about four.
    assert all(3.0 < r < 5.0 for r in ratios), ratios


def test_gradient_reuse_costs_L_gradients():
    calls = []

    def counted(q):
        calls.append(1)
        return value_and_grad(oscillator, q)

    q = torch.ones(3)
    _, g = value_and_grad(oscillator, q)
    leapfrog_flat(q, torch.zeros(3), counted, lambda p: p, 0.1, 7, grad=g)
    assert len(calls) == 7


def test_leapfrog_on_dicts_matches_flat():
    torch.manual_seed(3)
    pos = {"a": torch.randn(2, 2, dtype=torch.float64), "b": torch.randn(3, dtype=torch.float64)}
    mom = {"a": torch.randn(2, 2, dtype=torch.float64), "b": torch.randn(3, dtype=torch.float64)}

    def potential(z):
        return 0.5 * (z["a"] ** 2).sum() + 0.5 * ((z["b"] - 1) ** 2).sum() / 4

    inv_mass = torch.linspace(0.5, 2.0, 7, dtype=torch.float64)
    out = leapfrog(pos, mom, potential, 0.1, 5, inv_mass)
    flat = leapfrog_flat(
        torch.cat([pos["a"].reshape(-1), pos["b"]]),
        torch.cat([mom["a"].reshape(-1), mom["b"]]),
        lambda q: value_and_grad(lambda x: potential({"a": x[:4].view(2, 2), "b": x[4:]}), q),
        Metric([inv_mass]).velocity,
        0.1,
        5,
    )
    assert torch.allclose(out.position["a"].reshape(-1), flat.position[:4])
    assert torch.allclose(out.position["b"], flat.position[4:])
    assert out.position["a"].shape == (2, 2)


def test_identity_and_diagonal_metrics_build_no_matrix():
    m = Metric.from_inverse_mass_matrix(None, torch.zeros(1000))
    assert all(b.dim() == 1 for b in m.blocks)


def test_batched_positions():
    # The maths works unchanged with a leading batch dimension.
    q = torch.randn(8, 3, dtype=torch.float64)
    p = torch.randn(8, 3, dtype=torch.float64)
    metric = Metric(
        [torch.tensor([[2.0, 0.3, 0], [0.3, 1.0, 0], [0, 0, 0.5]], dtype=torch.float64)]
    )
    batched = leapfrog_flat(q, p, vg, metric.velocity, 0.1, 4)
    single = leapfrog_flat(q[3], p[3], vg, metric.velocity, 0.1, 4)
    assert torch.allclose(batched.position[3], single.position)
    assert torch.allclose(metric.kinetic_energy(p)[3], metric.kinetic_energy(p[3]))


def test_numerical_fault_gives_nan_not_exception():
    def potential(q):
        if q.sum() > 0:
            raise torch.linalg.LinAlgError("singular U")
        return (q**2).sum()

    u, g = value_and_grad(potential, torch.ones(2))
    assert torch.isnan(u) and torch.isnan(g).all()


def test_programming_errors_still_raise():
    def potential(q):
        raise TypeError("a bug")

    with pytest.raises(TypeError):
        value_and_grad(potential, torch.ones(2))
