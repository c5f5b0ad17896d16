r"""The chapter's two numerical experiments, exactly as it ran them, to set beside the fair ones.

The course chapter this package grew from compares a hand-tuned HMC with random-walk Metropolis
on a 2-D correlated Gaussian and on diagonal Gaussians of growing dimension, in plain PyTorch
(single precision, an explicit :math:`D \times D` mass matrix, ``torch.manual_seed(305)``), and
reports the ESS of the first coordinate only. The functions here redo those runs with the same
random numbers drawn in the same order, so they print the chapter's numbers; :mod:`.runner` and
:mod:`.scaling` then measure the same kernels fairly. They are deliberately *not* the package's
kernels: they are the measurement being criticised.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from pyro.ops.stats import effective_sample_size
from torch import Tensor


def _leapfrog(q: Tensor, p: Tensor, grad_u: Callable, step: float, num_steps: int, m_inv: Tensor):
    # Half a kick, then alternating drifts and full kicks, then a drift and half a kick: the
    # chapter's arithmetic order, so the floating-point results (and numbers) are the same.
    p = p - (step / 2) * grad_u(q)
    for _ in range(num_steps - 1):
        q = q + step * (m_inv @ p)
        p = p - step * grad_u(q)
    q = q + step * (m_inv @ p)
    p = p - (step / 2) * grad_u(q)
    return q, p


def chapter_hmc(q0, log_joint, grad_u, step, num_steps, mass, num_samples):
    """The chapter's HMC: returns ``(draws including q0, acceptance rate)``."""
    m_inv = torch.linalg.inv(mass)
    m_chol = torch.linalg.cholesky(mass)
    q, draws, accepted = q0.clone(), [q0.clone()], 0
    for _ in range(num_samples):
        p = m_chol @ torch.randn_like(q)
        h_now = -log_joint(q) + 0.5 * p @ m_inv @ p
        q_new, p_new = _leapfrog(q.clone(), p.clone(), grad_u, step, num_steps, m_inv)
        h_new = -log_joint(q_new) + 0.5 * p_new @ m_inv @ p_new
        if torch.rand(1).item() < torch.exp(h_now - h_new).item():
            q, accepted = q_new, accepted + 1
        draws.append(q.clone())
    return torch.stack(draws), accepted / num_samples


def chapter_rwmh(q0, log_joint, proposal_sd, num_samples):
    """The chapter's random-walk Metropolis: returns ``(draws including q0, acceptance rate)``."""
    q, draws, accepted = q0.clone(), [q0.clone()], 0
    for _ in range(num_samples):
        q_new = q + proposal_sd * torch.randn(q0.shape[0])
        if torch.rand(1).item() < torch.exp(log_joint(q_new) - log_joint(q)).item():
            q, accepted = q_new, accepted + 1
        draws.append(q.clone())
    return torch.stack(draws), accepted / num_samples


def _gaussian(precision: Tensor):
    def log_joint(q):
        return -0.5 * q @ precision @ q

    def grad_u(q):
        return precision @ q

    return log_joint, grad_u


def _ess_first(draws: Tensor, burn_in: int) -> float:
    return effective_sample_size(draws[None, burn_in:, 0]).item()


def experiment_2d(seed: int = 305) -> dict[str, float]:
    """The 2-D experiment: HMC (step 0.2, 20 steps) and RW (sd 0.3), 2000 iterations each.

    The chapter reseeds with 1 and draws one momentum for a figure between the two runs; that is
    repeated so the random-walk run sees the same numbers.
    """
    torch.manual_seed(seed)
    rho = 0.95
    cov = torch.tensor([[1.0, rho], [rho, 1.0]])
    log_joint, grad_u = _gaussian(torch.linalg.inv(cov))
    q0 = torch.zeros(2)
    hmc_draws, hmc_accept = chapter_hmc(q0, log_joint, grad_u, 0.2, 20, torch.eye(2), 2000)
    torch.manual_seed(1)
    torch.randn(2)  # the figure's momentum
    rw_draws, rw_accept = chapter_rwmh(q0, log_joint, 0.3, 2000)
    return {
        "hmc_acceptance": hmc_accept,
        "rw_acceptance": rw_accept,
        "hmc_ess_q1": _ess_first(hmc_draws, 200),
        "rw_ess_q1": _ess_first(rw_draws, 200),
    }


def experiment_scaling(dims=(2, 10, 50, 100), seed: int = 305) -> list[dict[str, float]]:
    """The dimension experiment: variances ``linspace(0.1, 1, D)``; HMC step
    :math:`0.8\\sqrt{0.1}` with 20 steps and RW sd :math:`\\sqrt{0.1}`, 2000 iterations, ESS of
    ``q1`` after 500."""
    torch.manual_seed(seed)
    rows = []
    for dim in dims:
        variances = torch.linspace(0.1, 1.0, dim)
        log_joint, grad_u = _gaussian(torch.diag(1.0 / variances))
        smallest_sd = variances.min().sqrt().item()
        hmc_draws, hmc_accept = chapter_hmc(
            torch.zeros(dim), log_joint, grad_u, 0.8 * smallest_sd, 20, torch.eye(dim), 2000
        )
        hmc_ess = _ess_first(hmc_draws, 500)
        rw_draws, rw_accept = chapter_rwmh(torch.zeros(dim), log_joint, smallest_sd, 2000)
        rows.append(
            {
                "dim": dim,
                "hmc_ess_q1": hmc_ess,
                "rw_ess_q1": _ess_first(rw_draws, 500),
                "hmc_acceptance": hmc_accept,
                "rw_acceptance": rw_accept,
            }
        )
    return rows


def chapter_settings_specs() -> list:
    """The chapter's two hand-tuned kernels as this package's kernels, without adaptation.

    HMC with step 0.2 and 20 steps, random walk with sd 0.3, both with the unit mass matrix: the
    same algorithms as :func:`chapter_hmc` and :func:`chapter_rwmh`, so that :func:`~.runner.
    compare` can measure the chapter's settings fairly (all coordinates and squares, per
    evaluation).
    """
    from ..kernels import RandomWalkMH, SimpleHMC
    from .specs import as_kernel_spec

    fixed = {"adapt_step_size": False, "adapt_mass_matrix": False}
    return [
        as_kernel_spec(
            "chapter HMC (0.2 x 20)",
            lambda u: SimpleHMC(
                potential_fn=u, step_size=0.2, num_steps=20, num_steps_jitter=0.0, **fixed
            ),
        ),
        as_kernel_spec(
            "chapter RW (sd 0.3)",
            lambda u: RandomWalkMH(potential_fn=u, step_size=0.3, **fixed),
            uses_gradient=False,
        ),
    ]
