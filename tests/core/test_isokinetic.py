"""The isokinetic (ESH) updates: exact for a constant gradient, energy-conserving to second order,
reversible under a velocity flip, and the random trajectory lengths have the mean they claim."""

import math

import pytest
import torch

from pyro_simplehmc.core.isokinetic import (
    LEAPFROG,
    MCLACHLAN,
    isokinetic_leapfrog,
    mean_steps_scale,
    partial_refresh,
    position_update,
    uniform_velocity,
    velocity_update,
)

DTYPE = torch.float64


def _unit(c, d, seed=0):
    torch.manual_seed(seed)
    return uniform_velocity(torch.randn(c, d, dtype=DTYPE))


def _gaussian(scales):
    def value_and_grad(x):
        return 0.5 * ((x / scales) ** 2).sum(-1), x / scales**2

    return value_and_grad


def test_velocity_update_stays_on_the_sphere_and_zero_step_is_identity():
    u = _unit(5, 4)
    g = torch.randn(5, 4, dtype=DTYPE) * 10
    new_u, _ = velocity_update(u, g, torch.rand(5, 1, dtype=DTYPE))
    torch.testing.assert_close(new_u.norm(dim=-1), torch.ones(5, dtype=DTYPE))
    same, zero = velocity_update(u, g, 0.0)
    torch.testing.assert_close(same, u)
    torch.testing.assert_close(zero, torch.zeros(5, dtype=DTYPE))


def test_velocity_update_solves_the_ode_for_a_constant_gradient():
    # du/dt = (I - u u^T) g / (d - 1), integrated by RK4 with tiny steps.
    d, eps = 5, 0.7
    u, g = _unit(1, d, seed=1), torch.randn(1, d, dtype=DTYPE) * 3

    def rate(v):
        return (g - (v * g).sum(-1, keepdim=True) * v) / (d - 1)

    v, h = u.clone(), eps / 2000
    for _ in range(2000):
        k1 = rate(v)
        k2 = rate(v + 0.5 * h * k1)
        k3 = rate(v + 0.5 * h * k2)
        k4 = rate(v + h * k3)
        v = v + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    torch.testing.assert_close(velocity_update(u, g, eps)[0], v, atol=1e-9, rtol=0)


def test_kinetic_energy_change_composes_and_its_rate_is_u_dot_g():
    u, g = _unit(3, 6, seed=2), torch.randn(3, 6, dtype=DTYPE)
    once, dk = velocity_update(u, g, 0.8)
    half, dk1 = velocity_update(u, g, 0.4)
    twice, dk2 = velocity_update(half, g, 0.4)
    torch.testing.assert_close(twice, once)
    torch.testing.assert_close(dk1 + dk2, dk)
    # dK/dt = u.g = d log p / dt along x' = u: the total energy is conserved to first order.
    small = 1e-6
    torch.testing.assert_close(velocity_update(u, g, small)[1] / small, (u * g).sum(-1), atol=1e-5,
                               rtol=0)  # fmt: skip


def test_flip_reverses_the_velocity_update_and_negates_its_energy_change():
    u, g = _unit(4, 3, seed=3), torch.randn(4, 3, dtype=DTYPE) * 2
    new_u, dk = velocity_update(u, g, 0.9)
    back, dk_back = velocity_update(-new_u, g, 0.9)
    torch.testing.assert_close(back, -u)
    torch.testing.assert_close(dk_back, -dk)


def _trajectory(x, u, scales, eps, n, scheme=LEAPFROG):
    value_and_grad = _gaussian(scales)
    grad = value_and_grad(x)[1]
    return isokinetic_leapfrog(x, u, grad, value_and_grad, lambda v: v, lambda g: g, eps, n,
                               scheme=scheme)  # fmt: skip


SCHEMES = pytest.mark.parametrize("scheme", [LEAPFROG, MCLACHLAN], ids=["leapfrog", "mclachlan"])


@SCHEMES
def test_leapfrog_is_reversible(scheme):
    scales = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=DTYPE)
    x0, u0 = torch.randn(3, 4, dtype=DTYPE), _unit(3, 4, seed=4)
    eps = torch.full((1, 1), 0.3, dtype=DTYPE)
    x1, u1, _, _, dk = _trajectory(x0, u0, scales, eps, 7, scheme)
    x2, u2, _, _, dk_back = _trajectory(x1, -u1, scales, eps, 7, scheme)
    torch.testing.assert_close(x2, x0)
    torch.testing.assert_close(u2, -u0)
    torch.testing.assert_close(dk_back, -dk)


def _energy_errors(scheme):
    scales = torch.logspace(-0.5, 0.5, 10, dtype=DTYPE)
    x0, u0 = torch.randn(1, 10, dtype=DTYPE), _unit(1, 10, seed=5)
    start = _gaussian(scales)(x0)[0]
    errors = []
    for eps, n in [(0.02, 50), (0.01, 100)]:  # the same integration time
        _, _, end, _, dk = _trajectory(x0, u0, scales, torch.tensor([[eps]], dtype=DTYPE), n,
                                       scheme)  # fmt: skip
        errors.append(float((end - start + dk).abs()))
    return errors


@SCHEMES
def test_energy_error_is_second_order_in_the_step_size(scheme):
    errors = _energy_errors(scheme)
    assert 3.0 < errors[0] / errors[1] < 5.0, errors


def test_mclachlan_errs_less_than_the_leapfrog_at_the_same_step():
    leapfrog, mclachlan = _energy_errors(LEAPFROG), _energy_errors(MCLACHLAN)
    assert mclachlan[0] < 0.5 * leapfrog[0], (leapfrog, mclachlan)


def test_per_chain_steps_leave_finished_chains_in_place():
    scales = torch.ones(3, dtype=DTYPE)
    x0, u0 = torch.randn(2, 3, dtype=DTYPE), _unit(2, 3, seed=6)
    eps = torch.full((1, 1), 0.2, dtype=DTYPE)
    both = _trajectory(x0, u0, scales, eps, torch.tensor([2, 5]))
    two = _trajectory(x0[:1], u0[:1], scales, eps, 2)
    five = _trajectory(x0[1:], u0[1:], scales, eps, 5)
    torch.testing.assert_close(both[0], torch.cat([two[0], five[0]]))
    torch.testing.assert_close(both[4], torch.cat([two[4], five[4]]))


def test_position_update_moves_eps_in_whitened_coordinates():
    x, u = torch.zeros(1, 2, dtype=DTYPE), torch.tensor([[0.6, 0.8]], dtype=DTYPE)
    scale = torch.tensor([2.0, 3.0], dtype=DTYPE)
    torch.testing.assert_close(position_update(x, u, 0.5, lambda v: scale * v),
                               torch.tensor([[0.6, 1.2]], dtype=DTYPE))  # fmt: skip


@pytest.mark.parametrize("mean", [1.0, 1.3, 2.0, 4.7, 10.0, 37.2])
def test_random_number_of_steps_has_the_requested_mean(mean):
    s = float(mean_steps_scale(torch.tensor(mean, dtype=DTYPE)))
    k, x = math.floor(s), s - math.floor(s)
    # ceil(U s) is each of 1..k with probability 1/s, and k + 1 with probability x/s.
    exact = (k * (k + 1) / 2 + x * (k + 1)) / s
    assert exact == pytest.approx(mean)


def test_partial_refresh_stays_on_the_sphere_and_is_off_at_infinite_length():
    u = _unit(4, 5, seed=7)
    noise = torch.randn(4, 5, dtype=DTYPE)
    torch.testing.assert_close(partial_refresh(u, noise, 0.1, 1.0).norm(dim=-1),
                               torch.ones(4, dtype=DTYPE))  # fmt: skip
    assert partial_refresh(u, noise, 0.1, math.inf) is u
    # Short decoherence length: nearly a fresh draw; long: nearly unchanged.
    near = partial_refresh(u, noise, 0.1, 1e3)
    assert float((near * u).sum(-1).min()) > 0.99


@SCHEMES
def test_shared_half_updates_equal_separate_ones(scheme):
    """Without a refresh consecutive half updates are merged; with an identity refresh they are
    not: the two trajectories must agree."""
    scales = torch.tensor([0.3, 1.0, 3.0], dtype=DTYPE)
    value_and_grad = _gaussian(scales)
    x0, u0 = torch.randn(2, 3, dtype=DTYPE), _unit(2, 3, seed=8)
    eps = torch.tensor([[0.2], [0.35]], dtype=DTYPE)
    args = (x0, u0, value_and_grad(x0)[1], value_and_grad, lambda v: v, lambda g: g, eps)
    for steps in (6, torch.tensor([3, 6])):
        merged = isokinetic_leapfrog(*args, steps, scheme=scheme)
        separate = isokinetic_leapfrog(*args, steps, refresh=lambda u, h: u, scheme=scheme)
        for a, b in zip(merged, separate, strict=True):
            torch.testing.assert_close(a, b)
