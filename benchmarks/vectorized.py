r"""Many chains at once: ESS per second and per gradient at C = 1, 8, 64, 256 chains.

Run from the repository root::

    python benchmarks/vectorized.py                  # full: 500 warmup + 5,000 draws, C = 1..256
    python benchmarks/vectorized.py --quick          # C = 1, 64; 300 warmup + 1,000 draws
    python benchmarks/vectorized.py --chains 64 --targets diagonal --contenders bare numpyro
    python benchmarks/vectorized.py --out /tmp/vec   # where results.md and results.json go
    python benchmarks/vectorized.py --jax-chains 1 8 64   # NumPyro, BlackJAX not at C = 256
    python benchmarks/vectorized.py --chains 64 --no-growth --targets eight_schools \
        --contenders chees blackjax blackjax-diag numpyro ours --seed 1   # a real posterior
    python benchmarks/vectorized.py --render benchmarks/results/vectorized/results.json

The optional contenders need the ``bench`` extra (``pip install -e .[bench]``: numpyro, blackjax,
jax for CPU); without it they are skipped with a note. Our own rows need
``pyro_simplehmc.MCMC(..., chain_method="vectorized")``; where it is missing (or does not take an
argument used here) the rows are skipped with a note, and the rest still runs.

What it measures. Every contender samples the same targets from the same starting points
(uniform on ``[-2, 2]`` per coordinate and chain, seeded), ``C`` chains at once, one thread:

- ``correlated``: the 2-D Gaussian with unit variances and correlation 0.95;
- ``diagonal``: the 100-D diagonal Gaussian with variances evenly spaced from 0.1 to 1;
- ``eight_schools`` (only when asked for): posteriordb's ``eight_schools_noncentered``, the
  project's Pyro port, on Pyro's unconstrained scale ``x = (mu, log tau, theta_trans)``
  (:class:`EightSchoolsSpec`). Every chain starts inside the posterior's bulk, all its scales
  are within a factor 3.3, and its priors are proper, so it tests adaptation rather than the
  escape from a bad start. At start-up the batched torch potential is checked against the Pyro
  port (through ``initialize_model``), the hand-written JAX log density and NumPyro's potential
  energy at random points: the run stops unless all agree up to a constant. Each contender's
  draws are then scored against posteriordb's reference means and sds
  (:func:`pyro_simplehmc.checks.posteriordb.compare_with_reference`), so that an efficient but wrong
  sampler shows. Its goal ratio uses the smallest ESS over the coordinates *and* their squares;
  its bare loop takes ``T = pi * 3.3``, the reference sd of ``mu``, the largest of ``x``'s.

For each run it records the wall seconds and the CPU seconds of the whole run (compilation,
warmup and sampling; not the ESS computation), the gradient evaluations summed over chains
(warmup and sampling), and the smallest bulk ESS (arviz, all chains together) over the
coordinates and over their squares. ESS per second is per *wall* second, as a user waits for it;
the CPU-second figure is there to spot a run disturbed by other jobs on a shared machine.

The contenders:

- ``bare``: a batched HMC loop written here (:class:`BareHMC`): positions ``(C, D)``, one
  batched gradient per leapfrog step, a jittered number of steps ``ceil(u * T / eps)`` with ``u``
  uniform on (0, 1] shared by the chains, an accept/reject per chain with :func:`torch.where`,
  one step size shared by the chains and adapted by dual averaging on their mean acceptance, an
  identity mass matrix, and ``T = pi * (largest marginal sd)``, the one thing it is told about
  the target. This is the "minimal loop": what torch costs without a framework.
- ``ours``: ``SimpleHMC(potential_fn=..., batched_potential=True)`` run by
  ``pyro_simplehmc.MCMC(..., chain_method="vectorized")``, with its defaults.
- ``ours-model``: the same kernel given the Pyro model (``SimpleHMC(model)``).
- ``mala``, ``rw``: ``MALA`` and ``RandomWalkMH`` on the potential, at ``--extras-chains`` only.
- ``chees``: ``SimpleHMC(..., adapt_trajectory_length=True)`` (ChEES), at ``--extras-chains``.
- ``numpyro``: NumPyro's NUTS on the same model written in NumPyro, ``chain_method="vectorized"``.
- ``blackjax``: BlackJAX's ChEES-HMC (``blackjax.chees_adaptation`` for warmup, then
  ``blackjax.dynamic_hmc`` with the adapted parameters, vmapped over chains inside a
  ``jax.lax.scan``), as BlackJAX's documentation shows it: an identity mass matrix.
- ``blackjax-diag`` (only when asked for): the same with
  ``chees_adaptation(..., mass_matrix_estimation="diagonal")``, where BlackJAX has it; the fair
  opponent on a target whose scales differ, since SimpleHMC and NumPyro adapt a diagonal mass
  matrix too.

The potential-based contenders (bare, ours, mala, rw, chees, blackjax) all use the same
hand-written quadratic form in their framework; the model-based ones (ours-model, numpyro) use
their PPL's ``MultivariateNormal`` or ``Normal(...).to_event(1)``. For ``eight_schools`` the
potentials are written out by hand in torch and JAX, NumPyro gets the model as its users write
it, and ``ours-model`` is skipped (the port's sites are ``mu``, ``tau``, ``theta_trans``, not
one ``x``). Everything is float64
(``jax_enable_x64``), as the torch targets are.

Cost per iteration as C grows. ESS runs differ in the number of leapfrog steps each sampler
chose, so the growth of the cost with C is measured separately, as the other benchmarks of this
project measure cost: the same fixed settings for every contender (step size 0.2, 10 leapfrog
steps, no adaptation, no jitter), CPU time of each iteration, median over the iterations of a
batch, batches interleaved over rounds, median over rounds. The growth is
``cost(C) / cost(1)``; the goal compares ours with the bare loop's.

One thread: ``torch.set_num_threads(1)``, and for JAX ``XLA_FLAGS`` with
``--xla_force_host_platform_device_count=1 --xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1`` and ``JAX_PLATFORMS=cpu``, set before JAX is imported (values
already in the environment are kept).
"""

from __future__ import annotations

import os

# Before anything imports jax: one CPU device, one thread (kept if the caller set them).
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_force_host_platform_device_count=1 --xla_cpu_multi_thread_eigen=false "
    "intra_op_parallelism_threads=1",
)

import argparse
import datetime
import gc
import json
import math
import platform
import random
import re
import statistics
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import arviz as az
import numpy as np
import pyro
import torch

from pyro_simplehmc.checks.targets import correlated_gaussian, diagonal_gaussian

DTYPE = torch.float64
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "vectorized"
ALL_CONTENDERS = ("bare", "ours", "ours-model", "numpyro", "blackjax", "mala", "rw", "chees",
                  "blackjax-diag")
#: The contenders run when ``--contenders`` is not given.
DEFAULT_CONTENDERS = ALL_CONTENDERS[:-1]
#: Contenders run only at ``--extras-chains``.
EXTRAS = ("mala", "rw", "chees")
#: Contenders restricted by ``--jax-chains``.
JAX_CONTENDERS = ("numpyro", "blackjax", "blackjax-diag")

Potential = Callable[[dict[str, torch.Tensor]], torch.Tensor]


class Skip(Exception):
    """A contender that cannot run here (a package or an API missing); the message says why."""


# ---------------------------------------------------------------------------- targets


@dataclass
class Spec:
    """One target, written once for torch, JAX and NumPyro (and Pyro where it has one site ``x``).

    Every contender samples one vector ``x`` of shape ``(C, D)``: the torch potential and the
    JAX log density take it as it is; a NumPyro model with other sites gets it through
    :meth:`numpyro_init` and gives it back through :meth:`numpyro_draws`.
    """

    key: str
    name: str
    dim: int

    #: A Pyro model with the one site ``x`` (for ``ours-model``), or ``None``.
    pyro_model = None

    @property
    def max_sd(self) -> float:
        """The largest marginal sd of ``x``: the bare loop's ``T = pi * max_sd``."""
        raise NotImplementedError

    def torch_potential(self) -> Potential:
        """:math:`U(x)` on ``{"x": (..., D)}``, returning ``(...)``."""
        raise NotImplementedError

    def jax_logdensity(self):
        """:math:`-U(x)` (up to a constant) of one ``x`` of shape ``(D,)``, in JAX."""
        raise NotImplementedError

    def numpyro_model(self):
        raise NotImplementedError

    def numpyro_init(self, init: np.ndarray) -> dict:
        """NumPyro's (unconstrained) ``init_params`` for the points ``init`` of shape (C, D)."""
        import jax.numpy as jnp

        return {"x": jnp.asarray(init)}

    def numpyro_draws(self, samples: dict) -> np.ndarray:
        """NumPyro's grouped-by-chain samples as ``x``, shaped ``(C, N, D)``."""
        return np.asarray(samples["x"])

    def other_potentials(self) -> dict[str, Callable[[np.ndarray], float]]:
        """Further implementations of :math:`U` (up to a constant) to check at start-up."""
        return {}

    def reference_check(self, draws: np.ndarray):
        """A comparison of draws ``(C, N, D)`` with a reference posterior, or ``None``."""
        return None

    def check_consistency(self, seed: int, points: int = 6) -> list[str]:
        """Raise unless every implementation of the target is :math:`U` up to a constant.

        The batched torch potential is evaluated at ``points`` random points at once; the JAX
        log density, NumPyro's potential energy and :meth:`other_potentials` one point at a
        time. A mismatch (a missing log-Jacobian, a prior with another scale) would make the
        contenders sample different targets, and the comparison meaningless.

        :returns: what was checked, one line each (and what could not be, for lack of jax).
        """
        rng = np.random.default_rng(seed + 7919)
        x = rng.uniform(-3.0, 3.0, size=(points, self.dim))
        u = self.torch_potential()({"x": torch.as_tensor(x, dtype=DTYPE)}).numpy()
        checks = dict(self.other_potentials())
        try:
            jax = _jax()
        except Skip as e:
            done = [f"JAX and NumPyro not checked: {e}"]
        else:
            done = []
            logdensity = jax.jit(self.jax_logdensity())
            checks["JAX log density"] = lambda xi: -float(logdensity(jax.numpy.asarray(xi)))
            try:
                from numpyro.infer.util import potential_energy
            except ImportError:
                done.append("NumPyro model not checked: numpyro is not installed")
            else:
                model = self.numpyro_model()

                def numpyro_u(xi):
                    params = {k: v[0] for k, v in self.numpyro_init(xi[None]).items()}
                    return float(potential_energy(model, (), {}, params))

                checks["NumPyro model"] = numpyro_u
        scale = 1.0 + float(np.abs(u).max())
        for what, fn in checks.items():
            other = np.array([fn(xi) for xi in x])
            diff = other - u
            spread = float(diff.max() - diff.min())
            if not np.all(np.isfinite(diff)) or spread > 1e-9 * scale:
                raise ValueError(
                    f"target {self.key!r}: the {what} is not the torch potential up to a "
                    f"constant: differences {diff.tolist()} at {points} random points")
            done.append(f"{what} = torch potential + {float(np.mean(diff)):.6g} "
                        f"(spread {spread:.1e} over {points} points)")
        return done


@dataclass
class GaussianSpec(Spec):
    """A centred Gaussian given by its covariance."""

    cov: np.ndarray = field(default=None, repr=False)  # the covariance (diagonal for ``diagonal``)
    diagonal: bool = False
    pyro_model: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def max_sd(self) -> float:
        return float(np.sqrt(np.linalg.eigvalsh(self.cov).max()))

    def torch_potential(self) -> Potential:
        """:math:`U(x) = x^T P x / 2` on ``{"x": (..., D)}``, returning ``(...)``."""
        if self.diagonal:
            precision = torch.as_tensor(1.0 / np.diag(self.cov), dtype=DTYPE)

            def potential_fn(params):
                x = params["x"]
                return 0.5 * (x * x * precision).sum(-1)

        else:
            precision = torch.as_tensor(np.linalg.inv(self.cov), dtype=DTYPE)

            def potential_fn(params):
                x = params["x"]
                return 0.5 * ((x @ precision) * x).sum(-1)

        return potential_fn

    def jax_logdensity(self):
        import jax.numpy as jnp

        if self.diagonal:
            precision = jnp.asarray(1.0 / np.diag(self.cov))
            return lambda x: -0.5 * jnp.sum(x * x * precision)
        precision = jnp.asarray(np.linalg.inv(self.cov))
        return lambda x: -0.5 * jnp.dot(x, precision @ x)

    def numpyro_model(self):
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as ndist

        if self.diagonal:
            sd = jnp.asarray(np.sqrt(np.diag(self.cov)))

            def model():
                numpyro.sample("x", ndist.Normal(jnp.zeros(self.dim), sd).to_event(1))

        else:
            cov = jnp.asarray(self.cov)

            def model():
                numpyro.sample("x", ndist.MultivariateNormal(jnp.zeros(self.dim), cov))

        return model


_LOG_2PI = math.log(2.0 * math.pi)
_HALF_CAUCHY_5 = math.log(2.0 / math.pi) - math.log(5.0)  # log density of HalfCauchy(5) at 0


@dataclass
class EightSchoolsSpec(Spec):
    r"""posteriordb's ``eight_schools-eight_schools_noncentered``, on Pyro's unconstrained scale.

    ``x = (mu, log tau, theta_trans[1..8])``, ``D = 10``:

    .. math:: \log p(x) = \log\mathcal{N}(\mu; 0, 5) + \log\mathrm{HalfCauchy}(\tau; 5)
        + \log\tau + \sum_j \log\mathcal{N}(\tilde\theta_j; 0, 1)
        + \sum_j \log\mathcal{N}(y_j; \mu + \tau\tilde\theta_j, \sigma_j),

    with :math:`\tau = e^{x_2}` and its log-Jacobian :math:`\log\tau`, as Pyro's
    ``biject_to(constraints.positive)`` (an ``ExpTransform``) gives it. The torch potential and
    the JAX log density are written out by hand (constants included), the NumPyro model as a
    NumPyro user writes it; :meth:`other_potentials` adds the project's Pyro port
    (:func:`pyro_simplehmc.checks.posteriordb.eight_schools_noncentered`, through
    :func:`pyro.infer.mcmc.util.initialize_model`), so that all four are checked to agree.
    """

    posterior: str = "eight_schools-eight_schools_noncentered"

    def __post_init__(self):
        from pyro_simplehmc.checks.posteriordb import load_posterior

        self.port, self.data, self.reference = load_posterior(self.posterior)
        self.y = np.asarray(self.data["y"], dtype=np.float64)
        self.sigma = np.asarray(self.data["sigma"], dtype=np.float64)

    @property
    def max_sd(self) -> float:
        # The reference summarises mu, tau and theta, not x; of x's coordinates mu has the
        # largest sd (3.3): log tau's is about 1.1 (its 5% and 95% quantiles, 0.26 and 9.7, are
        # 3.6 apart on the log scale, 3.3 normal sds) and theta_trans's are near their prior's 1.
        return float(self.reference["mu"]["sd"])

    def torch_potential(self) -> Potential:
        y, sigma = torch.as_tensor(self.y, dtype=DTYPE), torch.as_tensor(self.sigma, dtype=DTYPE)
        const = -math.log(5.0) - 0.5 * _LOG_2PI + _HALF_CAUCHY_5 - 0.5 * len(y) * _LOG_2PI + (
            -torch.log(sigma).sum().item() - 0.5 * len(y) * _LOG_2PI)

        def potential_fn(params):
            x = params["x"]
            mu, log_tau, eta = x[..., 0], x[..., 1], x[..., 2:]
            tau = log_tau.exp()
            z = (y - (mu.unsqueeze(-1) + tau.unsqueeze(-1) * eta)) / sigma
            log_p = (-0.5 * (mu / 5.0) ** 2 - torch.log1p((tau / 5.0) ** 2) + log_tau
                     - 0.5 * (eta * eta).sum(-1) - 0.5 * (z * z).sum(-1))
            return -(log_p + const)

        return potential_fn

    def jax_logdensity(self):
        import jax.numpy as jnp

        y, sigma = jnp.asarray(self.y), jnp.asarray(self.sigma)
        log_sigma = jnp.log(sigma)

        def logdensity(x):
            mu, log_tau, eta = x[0], x[1], x[2:]
            tau = jnp.exp(log_tau)
            return (
                -0.5 * (mu / 5.0) ** 2 - math.log(5.0) - 0.5 * _LOG_2PI  # mu ~ Normal(0, 5)
                + _HALF_CAUCHY_5 - jnp.log1p((tau / 5.0) ** 2)  # tau ~ HalfCauchy(5)
                + log_tau  # log |d tau / d log tau|
                + jnp.sum(-0.5 * eta**2 - 0.5 * _LOG_2PI)  # theta_trans ~ Normal(0, 1)
                + jnp.sum(-0.5 * ((y - mu - tau * eta) / sigma) ** 2 - log_sigma - 0.5 * _LOG_2PI)
            )

        return logdensity

    def numpyro_model(self):
        import jax.numpy as jnp
        import numpyro
        import numpyro.distributions as ndist

        y, sigma = jnp.asarray(self.y), jnp.asarray(self.sigma)

        def model():
            mu = numpyro.sample("mu", ndist.Normal(0.0, 5.0))
            tau = numpyro.sample("tau", ndist.HalfCauchy(5.0))
            with numpyro.plate("schools", len(self.y)):
                theta_trans = numpyro.sample("theta_trans", ndist.Normal(0.0, 1.0))
                numpyro.sample("y", ndist.Normal(mu + tau * theta_trans, sigma), obs=y)

        return model

    def numpyro_init(self, init: np.ndarray) -> dict:
        import jax.numpy as jnp

        # NumPyro takes init_params on the unconstrained scale: log tau for tau.
        return {"mu": jnp.asarray(init[:, 0]), "tau": jnp.asarray(init[:, 1]),
                "theta_trans": jnp.asarray(init[:, 2:])}

    def numpyro_draws(self, samples: dict) -> np.ndarray:
        return np.concatenate([np.asarray(samples["mu"])[..., None],
                               np.log(np.asarray(samples["tau"]))[..., None],
                               np.asarray(samples["theta_trans"])], axis=-1)

    def other_potentials(self) -> dict[str, Callable[[np.ndarray], float]]:
        from pyro.infer.mcmc.util import initialize_model

        _, potential_fn, _, _ = initialize_model(
            self.port.model, model_args=(self.data,),
            max_plate_nesting=self.port.max_plate_nesting)

        def pyro_u(xi):
            xi = torch.as_tensor(xi, dtype=DTYPE)  # tau's unconstrained value is log tau
            return float(potential_fn({"mu": xi[0], "tau": xi[1], "theta_trans": xi[2:]}))

        return {"Pyro port (initialize_model)": pyro_u}

    def reference_check(self, draws: np.ndarray):
        """The port's :func:`~pyro_simplehmc.checks.posteriordb.compare_with_reference`: means
        and sds of theta, mu and tau against posteriordb's reference (z-scores from both MCSEs)."""
        from pyro_simplehmc.checks.posteriordb import compare_with_reference, flatten_draws

        x = torch.tensor(draws, dtype=DTYPE)  # a copy: JAX hands out read-only arrays
        sites = {"mu": x[..., 0], "tau": x[..., 1].exp(), "theta_trans": x[..., 2:]}
        return compare_with_reference(flatten_draws(self.port.reference_quantities(sites)),
                                      self.reference)


#: The targets, by their ``--targets`` key.
TARGETS = ("correlated", "diagonal", "eight_schools")
#: The targets that are posteriors (with a reference to check the draws against).
POSTERIOR_TARGETS = ("eight_schools",)


def make_specs(keys) -> list[Spec]:
    specs = []
    for key in keys:
        if key == "correlated":
            t = correlated_gaussian(0.95, dtype=DTYPE)
            specs.append(GaussianSpec(key, "2-D correlated Gaussian (rho 0.95)", 2,
                                      cov=t.cov.numpy(), diagonal=False, pyro_model=t.model))
        elif key == "diagonal":
            t = diagonal_gaussian(100, dtype=DTYPE)
            specs.append(GaussianSpec(key, "100-D diagonal Gaussian (variances 0.1 to 1)", 100,
                                      cov=t.cov.numpy(), diagonal=True, pyro_model=t.model))
        elif key == "eight_schools":
            specs.append(EightSchoolsSpec(
                key, "posteriordb eight_schools_noncentered (10-D, unconstrained)", 10))
        else:
            raise ValueError(f"--targets: unknown target {key!r}; allowed: {', '.join(TARGETS)}")
    return specs


def initial_points(dim: int, chains: int, seed: int) -> np.ndarray:
    """The starting points shared by all contenders: uniform on [-2, 2], shape ``(C, D)``."""
    return np.random.default_rng(seed).uniform(-2.0, 2.0, size=(chains, dim))


# ---------------------------------------------------------------------------- ESS


def min_ess(draws: np.ndarray, chunk: int = 10) -> tuple[float, float]:
    """Smallest bulk ESS over coordinates and over their squares; ``draws`` is ``(C, N, D)``.

    Coordinates go to arviz a few at a time, so that the squares of a 256 x 5,000 x 100 array
    are never all in memory at once.
    """
    lows, lows_sq = [], []
    for start in range(0, draws.shape[-1], chunk):
        part = np.asarray(draws[..., start : start + chunk], dtype=np.float64)
        lows.append(float(az.ess(az.convert_to_dataset({"x": part}))["x"].values.min()))
        lows_sq.append(float(az.ess(az.convert_to_dataset({"x": part * part}))["x"].values.min()))
    return min(lows), min(lows_sq)


# ---------------------------------------------------------------------------- the bare loop


class DualAveraging:
    """Nesterov dual averaging of log step size (Hoffman & Gelman 2014, section 3.2)."""

    def __init__(self, step_size: float, target: float, gamma=0.05, t0=10.0, kappa=0.75):
        self.mu, self.target = math.log(10 * step_size), target
        self.gamma, self.t0, self.kappa = gamma, t0, kappa
        self.t, self.h, self.log_eps, self.log_eps_bar = 0, 0.0, math.log(step_size), 0.0

    def update(self, accept: float) -> float:
        self.t += 1
        w = 1.0 / (self.t + self.t0)
        self.h = (1 - w) * self.h + w * (self.target - accept)
        self.log_eps = self.mu - math.sqrt(self.t) / self.gamma * self.h
        eta = self.t**-self.kappa
        self.log_eps_bar = eta * self.log_eps + (1 - eta) * self.log_eps_bar
        return math.exp(self.log_eps)

    @property
    def final(self) -> float:
        return math.exp(self.log_eps_bar)


class BareHMC:
    """HMC on ``C`` chains at once, as bare as it gets (see the module docstring)."""

    def __init__(self, potential_fn: Potential, init: torch.Tensor, trajectory_length: float,
                 step_size: float = 0.1, target_accept: float = 0.65, seed: int = 0,
                 adapt: bool = True, jitter: bool = True, num_steps: int | None = None):
        self.potential_fn, self.T = potential_fn, trajectory_length
        self.eps, self.adapt, self.jitter, self.fixed_steps = step_size, adapt, jitter, num_steps
        self.da = DualAveraging(step_size, target_accept)
        self.py_random = random.Random(seed)
        self.x = init.clone()
        self.u, self.grad = self.value_and_grad(self.x)
        self.gradients = init.shape[0]
        self.accept_sum = 0.0

    def value_and_grad(self, q: torch.Tensor):
        q = q.detach().requires_grad_(True)
        u = self.potential_fn({"x": q})
        (grad,) = torch.autograd.grad(u.sum(), q)
        return u.detach(), grad

    def step(self, warmup: bool) -> torch.Tensor:
        """One iteration of every chain; returns the per-chain acceptance probabilities."""
        eps = self.eps
        if self.fixed_steps is not None:
            steps = self.fixed_steps
        else:
            u = 1.0 - self.py_random.random() if self.jitter else 1.0  # on (0, 1]
            steps = max(1, math.ceil(u * self.T / eps))
        q, g = self.x, self.grad
        p0 = torch.randn_like(q)
        p = p0 - (0.5 * eps) * g
        for i in range(steps):
            q = q + eps * p
            u_new, g = self.value_and_grad(q)
            p = p - (eps if i < steps - 1 else 0.5 * eps) * g
        log_ratio = self.u - u_new + 0.5 * ((p0 * p0).sum(-1) - (p * p).sum(-1))
        log_ratio = torch.nan_to_num(log_ratio, nan=-math.inf)  # a NaN rejects that chain only
        accept_prob = log_ratio.clamp(max=0.0).exp()
        accept = torch.rand_like(accept_prob) < accept_prob
        self.x = torch.where(accept[:, None], q, self.x)
        self.u = torch.where(accept, u_new, self.u)
        self.grad = torch.where(accept[:, None], g, self.grad)
        self.gradients += steps * q.shape[0]
        if warmup and self.adapt:
            self.eps = self.da.update(float(accept_prob.mean()))  # the one host sync
        return accept_prob

    def run(self, num_warmup: int, num_samples: int, hook=None) -> torch.Tensor:
        """Draws shaped ``(C, N, D)``."""
        out = torch.empty((num_samples, *self.x.shape), dtype=self.x.dtype)
        acc = torch.zeros(self.x.shape[0], dtype=self.x.dtype)
        for t in range(num_warmup + num_samples):
            warmup = t < num_warmup
            a = self.step(warmup)
            if warmup and t == num_warmup - 1 and self.adapt:
                self.eps = self.da.final
            if not warmup:
                out[t - num_warmup] = self.x
                acc += a
            if hook is not None:
                hook()
        self.accept_sum = float(acc.mean()) / max(num_samples, 1)
        return out.transpose(0, 1)


def run_bare(spec: Spec, chains: int, args, init: np.ndarray) -> dict:
    pyro.set_rng_seed(args.seed)
    sampler = BareHMC(spec.torch_potential(), torch.as_tensor(init, dtype=DTYPE),
                      trajectory_length=math.pi * spec.max_sd, seed=args.seed)
    draws = sampler.run(args.warmup, args.draws)
    return {"draws": draws.numpy(), "gradients": sampler.gradients,
            "accept": sampler.accept_sum, "step_size": sampler.eps,
            "note": f"T = pi * max sd = {math.pi * spec.max_sd:.2f}"}


# ---------------------------------------------------------------------------- ours


def _ours_api():
    try:
        from pyro_simplehmc import MALA, MCMC, RandomWalkMH, SimpleHMC
    except ImportError as e:
        raise Skip(f"pyro_simplehmc.MCMC not available yet ({e})") from e
    return MCMC, SimpleHMC, MALA, RandomWalkMH


def _ours_gradients(mcmc) -> int | None:
    """Gradient evaluations summed over chains, warmup and sampling."""
    per_chain = getattr(mcmc, "kernel_diagnostics", None) or getattr(mcmc, "_diagnostics", None)
    if per_chain and all(isinstance(d, dict) for d in per_chain):
        total = 0
        for d in per_chain:
            g = d.get("gradient evaluations")
            if g is None:
                return None
            total += int(g["warmup"]) + int(g["sampling"])
        return total
    # As pyro.infer.MCMC.diagnostics() lays it out: {"chain 0": {"warmup": .., "sampling": ..}}.
    per_chain = mcmc.diagnostics().get("gradient evaluations")
    if isinstance(per_chain, dict) and per_chain:
        return sum(int(g["warmup"]) + int(g["sampling"]) for g in per_chain.values())
    return None


def _ours_accept(mcmc) -> float | None:
    per_chain = getattr(mcmc, "kernel_diagnostics", None) or getattr(mcmc, "_diagnostics", None)
    if per_chain and all(isinstance(d, dict) for d in per_chain):
        values = [float(d["acceptance rate"]) for d in per_chain if "acceptance rate" in d]
        return statistics.fmean(values) if values else None
    per_chain = mcmc.diagnostics().get("acceptance rate")
    if isinstance(per_chain, dict) and per_chain:
        return statistics.fmean(float(v) for v in per_chain.values())
    return None


def _ours_kernel(which: str, spec: Spec, path: str, **extra):
    _, SimpleHMC, MALA, RandomWalkMH = _ours_api()
    cls = {"hmc": SimpleHMC, "mala": MALA, "rw": RandomWalkMH}[which]
    try:
        if path == "potential":
            return cls(potential_fn=spec.torch_potential(), batched_potential=True, **extra)
        if spec.pyro_model is None:
            raise Skip(f"no Pyro model with the one site x for {spec.key}")
        return cls(spec.pyro_model, **extra)
    except TypeError as e:  # an argument of the planned API not there yet
        raise Skip(f"{cls.__name__} does not take the planned arguments yet ({e})") from e


def _ours_mcmc(kernel, chains: int, num_warmup: int, num_samples: int, init: np.ndarray,
               hook_fn=None):
    MCMC = _ours_api()[0]
    try:
        return MCMC(kernel, num_samples=num_samples, warmup_steps=num_warmup, num_chains=chains,
                    chain_method="vectorized",
                    initial_params={"x": torch.as_tensor(init, dtype=DTYPE)},
                    disable_progbar=True, hook_fn=hook_fn)
    except TypeError as e:
        raise Skip(f"MCMC does not take chain_method='vectorized' yet ({e})") from e


def run_ours(which: str, path: str, **extra):
    def run(spec: Spec, chains: int, args, init: np.ndarray) -> dict:
        pyro.set_rng_seed(args.seed)
        options = dict(extra)
        if path == "model" and args.model_jit:
            options.update(jit_compile=True, ignore_jit_warnings=True)
        kernel = _ours_kernel(which, spec, path, **options)
        mcmc = _ours_mcmc(kernel, chains, args.warmup, args.draws, init)
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        mcmc.run()
        draws = mcmc.get_samples(group_by_chain=True)["x"]
        # Timed before the counters are read: MCMC.diagnostics() also computes Pyro's R-hat and
        # ESS of every site, seconds at C = 64 x 5,000 x 100, which is not sampling time.
        timing = (time.perf_counter() - start_wall, time.process_time() - start_cpu)
        note = ""
        length = getattr(mcmc.kernel, "adapted_trajectory_length", None)
        if extra.get("adapt_trajectory_length") and length is not None:
            note = f"adapted T = {float(length):.2f}"
        return {"draws": draws.detach().numpy(), "gradients": _ours_gradients(mcmc),
                "accept": _ours_accept(mcmc), "note": note, "timing": timing}

    return run


# ---------------------------------------------------------------------------- JAX contenders


def _jax():
    try:
        import jax
    except ImportError as e:
        raise Skip("jax is not installed (pip install -e .[bench])") from e
    jax.config.update("jax_enable_x64", True)
    return jax


def run_numpyro(spec: Spec, chains: int, args, init: np.ndarray) -> dict:
    """NumPyro's NUTS (defaults: diagonal mass, target acceptance 0.8), vectorized chains.

    The timed run is one ``mcmc.run``, as a user writes it. NumPyro records the leapfrog steps
    of the sampling phase only; those of warmup are counted by an untimed ``mcmc.warmup`` with
    the same key and starting points afterwards (the same computation as the run's warmup).
    """
    jax = _jax()
    try:
        from numpyro.infer import MCMC, NUTS
    except ImportError as e:
        raise Skip("numpyro is not installed (pip install -e .[bench])") from e

    def make():
        return MCMC(NUTS(spec.numpyro_model()), num_warmup=args.warmup, num_samples=args.draws,
                    num_chains=chains, chain_method="vectorized", progress_bar=False)

    init_params = spec.numpyro_init(init)
    key = jax.random.PRNGKey(args.seed)
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    mcmc = make()
    mcmc.run(key, init_params=init_params, extra_fields=("num_steps", "accept_prob"))
    draws = spec.numpyro_draws(mcmc.get_samples(group_by_chain=True))
    timing = (time.perf_counter() - start_wall, time.process_time() - start_cpu)
    extra = mcmc.get_extra_fields(group_by_chain=True)
    sampling = int(np.asarray(extra["num_steps"]).sum())
    accept = float(np.asarray(extra["accept_prob"]).mean())
    warm = make()
    warm.warmup(key, init_params=init_params, extra_fields=("num_steps",), collect_warmup=True)
    warmup = int(np.asarray(warm.get_extra_fields()["num_steps"]).sum())
    return {"draws": draws, "gradients": warmup + sampling + chains, "accept": accept,
            "timing": timing}


def run_blackjax(spec: Spec, chains: int, args, init: np.ndarray,
                 mass_matrix: str | None = None) -> dict:
    """BlackJAX's ChEES-HMC: ``chees_adaptation`` warmup, then vmapped ``dynamic_hmc``.

    :param mass_matrix: ``chees_adaptation``'s ``mass_matrix_estimation``: ``None`` (its
        default, an identity mass matrix) or ``"diagonal"`` (estimated from the ensemble).
    """
    jax = _jax()
    try:
        import blackjax
        import optax
    except ImportError as e:
        raise Skip("blackjax is not installed (pip install -e .[bench])") from e
    logdensity = spec.jax_logdensity()
    key_warmup, key_sample = jax.random.split(jax.random.PRNGKey(args.seed))
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    options = {} if mass_matrix is None else {"mass_matrix_estimation": mass_matrix}
    try:
        warmup = blackjax.chees_adaptation(logdensity, num_chains=chains, **options)
    except TypeError as e:  # an older BlackJAX: no mass-matrix estimation in ChEES
        raise Skip(f"blackjax.chees_adaptation does not take {options} ({e})") from e
    (states, parameters), info = warmup.run(
        key_warmup, jax.numpy.asarray(init), args.blackjax_step_size,
        optax.adam(args.blackjax_learning_rate), args.warmup, max_sampling_steps=args.draws,
    )
    step = blackjax.dynamic_hmc(logdensity, **parameters).step

    @jax.jit
    def sample(states, key):
        def one(states, key):
            states, i = jax.vmap(step)(jax.random.split(key, chains), states)
            return states, (states.position, i.num_integration_steps, i.acceptance_rate)

        return jax.lax.scan(one, states, jax.random.split(key, args.draws))

    _, (positions, steps, accept) = sample(states, key_sample)
    positions.block_until_ready()
    timing = (time.perf_counter() - start_wall, time.process_time() - start_cpu)
    warm_steps = int(np.asarray(info.info.num_integration_steps).sum())
    draws = np.swapaxes(np.asarray(positions), 0, 1)
    length = float(parameters["step_size"] * parameters["integration_steps_params"][0])
    note = f"adapted T = {length:.2f}, step {float(parameters['step_size']):.3f}"
    if chains < 2:
        note += "; ChEES needs >= 2 chains (T not adapted)"
    return {"draws": draws, "gradients": warm_steps + int(np.asarray(steps).sum()) + chains,
            "accept": float(np.asarray(accept).mean()), "timing": timing, "note": note}


# ---------------------------------------------------------------------------- driving


RUNNERS = {
    "bare": run_bare,
    "ours": run_ours("hmc", "potential"),
    "ours-model": run_ours("hmc", "model"),
    "mala": run_ours("mala", "potential"),
    "rw": run_ours("rw", "potential"),
    "chees": run_ours("hmc", "potential", adapt_trajectory_length=True),
    "numpyro": run_numpyro,
    "blackjax": run_blackjax,
    "blackjax-diag": lambda *a: run_blackjax(*a, mass_matrix="diagonal"),
}

LABELS = {
    "bare": "bare batched torch HMC loop",
    "ours": "SimpleHMC, potential_fn (batched)",
    "ours-model": "SimpleHMC, model=",
    "mala": "MALA, potential_fn (batched)",
    "rw": "RandomWalkMH, potential_fn (batched)",
    "chees": "SimpleHMC + ChEES (adapt_trajectory_length)",
    "numpyro": "NumPyro NUTS, vectorized",
    "blackjax": "BlackJAX ChEES-HMC",
    "blackjax-diag": "BlackJAX ChEES-HMC, diagonal mass matrix",
}


def run_one(name: str, spec: Spec, chains: int, args) -> dict:
    row = {"contender": name, "label": LABELS[name], "target": spec.key, "chains": chains,
           "warmup": args.warmup, "draws": args.draws}
    init = initial_points(spec.dim, chains, args.seed)
    gc.collect()
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = RUNNERS[name](spec, chains, args, init)
    except Skip as e:
        row["skipped"] = str(e)
        print(f"  {name:<10} C={chains:<4} skipped: {e}", flush=True)
        return row
    except Exception as e:  # a contender that breaks must not end the benchmark
        traceback.print_exc()
        row["skipped"] = f"failed: {type(e).__name__}: {e}"
        print(f"  {name:<10} C={chains:<4} FAILED: {e}", flush=True)
        return row
    wall, cpu = out.pop("timing", (time.perf_counter() - start_wall,
                                   time.process_time() - start_cpu))
    draws = out.pop("draws")
    ess, ess_sq = min_ess(draws)
    reference = spec.reference_check(draws)
    del draws
    grads = out.get("gradients")
    row.update(out)
    row.update({
        "wall_s": wall, "cpu_s": cpu, "min_ess": ess, "min_ess_sq": ess_sq,
        "ess_per_s": ess / wall, "ess_per_cpu_s": ess / cpu,
        "ess_per_grad": ess / grads if grads else None,
        "ess_sq_per_grad": ess_sq / grads if grads else None,
    })
    if reference is not None:
        row.update({"ess_all_per_grad": min(ess, ess_sq) / grads if grads else None,
                    "reference_passed": reference.passed,
                    "reference_max_z": reference.max_abs_z,
                    "reference_threshold": reference.threshold,
                    "reference": str(reference),
                    "reference_z": dict(zip(reference.names, reference.z.tolist(), strict=True))})
    print(f"  {name:<10} C={chains:<4} wall {wall:7.1f} s  cpu {cpu:7.1f} s  min ESS {ess:9.0f}"
          f"  (x^2 {ess_sq:9.0f})  ESS/s {ess / wall:9.0f}  grads {grads or 0:>11,}"
          f"  {out.get('note', '')}", flush=True)
    if reference is not None:
        print(f"  {'':<10} reference check (means and sds vs posteriordb): {reference}", flush=True)
    return row


# ---------------------------------------------------------------------------- cost growth


GROWTH_STEP, GROWTH_STEPS = 0.2, 10


class _OursGrowth:
    """Per-iteration CPU times of a fixed-settings vectorized run, from ``hook_fn`` stamps."""

    def __init__(self, spec, chains, path, iterations, seed):
        self.spec, self.chains, self.path, self.iterations, self.seed = (
            spec, chains, path, iterations, seed)

    def batch(self) -> float:
        stamps = []

        def hook(*_):
            stamps.append(time.process_time())

        pyro.set_rng_seed(self.seed)
        kernel = _ours_kernel(
            "hmc", self.spec, self.path, step_size=GROWTH_STEP, num_steps=GROWTH_STEPS,
            adapt_step_size=False, adapt_mass_matrix=False, step_size_jitter=0.0,
            num_steps_jitter=0.0,
        )
        init = initial_points(self.spec.dim, self.chains, self.seed)
        mcmc = _ours_mcmc(kernel, self.chains, 0, self.iterations, init, hook_fn=hook)
        mcmc.run()
        if len(stamps) < 3:
            raise Skip("hook_fn was not called once per iteration")
        return statistics.median(np.diff(stamps))


class _BareGrowth:
    def __init__(self, spec, chains, iterations, seed):
        init = torch.as_tensor(initial_points(spec.dim, chains, seed), dtype=DTYPE)
        self.sampler = BareHMC(spec.torch_potential(), init, 1.0, step_size=GROWTH_STEP,
                               adapt=False, num_steps=GROWTH_STEPS)
        self.iterations = iterations

    def batch(self) -> float:
        stamps = []
        self.sampler.run(0, self.iterations, hook=lambda: stamps.append(time.process_time()))
        return statistics.median(np.diff(stamps))


def growth(spec: Spec, chain_counts, args) -> dict:
    """Median CPU seconds per iteration, per contender and C (see the module docstring)."""
    makers = {"bare": lambda c: _BareGrowth(spec, c, args.growth_iterations, args.seed)}
    if "ours" in args.contenders:
        makers["ours"] = lambda c: _OursGrowth(spec, c, "potential", args.growth_iterations,
                                               args.seed)
    if "ours-model" in args.contenders:
        makers["ours-model"] = lambda c: _OursGrowth(spec, c, "model", args.growth_iterations,
                                                     args.seed)
    times: dict[str, dict[int, list[float]]] = {n: {c: [] for c in chain_counts} for n in makers}
    notes = {}
    runners = {(n, c): makers[n](c) for n in makers for c in chain_counts}
    for _ in range(args.rounds):
        for (n, c), runner in runners.items():
            if n in notes:
                continue
            try:
                times[n][c].append(runner.batch())
            except Skip as e:
                notes[n] = str(e)
            except Exception as e:
                traceback.print_exc()
                notes[n] = f"failed: {type(e).__name__}: {e}"
    result = {"seconds_per_iteration": {}, "growth": {}, "notes": notes}
    for n in makers:
        if n in notes:
            continue
        med = {c: statistics.median(times[n][c]) for c in chain_counts}
        result["seconds_per_iteration"][n] = med
        base = med[chain_counts[0]]
        result["growth"][n] = {c: med[c] / base for c in chain_counts}
    return result


# ---------------------------------------------------------------------------- report


def fmt(x, spec=",.0f") -> str:
    return "" if x is None else format(x, spec)


def find(rows, name, target, chains):
    for r in rows:
        if (r["contender"], r["target"], r["chains"]) == (name, target, chains) and "min_ess" in r:
            return r
    return None


#: The ratios of the Gaussian targets: (a, b, measure, goal, what).
_GAUSSIAN_PAIRS = [
    ("ours", "blackjax", "ess_per_s", 1.5, "ESS/s, potential_fn path / BlackJAX ChEES"),
    ("ours", "numpyro", "ess_per_s", 4.0, "ESS/s, potential_fn path / NumPyro NUTS"),
    ("ours-model", "numpyro", "ess_per_s", 1.0, "ESS/s, model= path / NumPyro NUTS"),
    ("chees", "blackjax", "ess_per_grad", 0.8,
     "ESS/gradient, SimpleHMC+ChEES / BlackJAX ChEES"),
    ("ours", "bare", "ess_per_s", None, "ESS/s, potential_fn path / bare loop"),
    ("bare", "blackjax", "ess_per_s", None, "ESS/s, bare loop / BlackJAX ChEES"),
    ("bare", "numpyro", "ess_per_s", None, "ESS/s, bare loop / NumPyro NUTS"),
    ("blackjax", "numpyro", "ess_per_s", None, "ESS/s, BlackJAX ChEES / NumPyro NUTS"),
]


def ratio_lines(rows, growths, target_keys, c: int) -> tuple[list[str], list[dict]]:
    """The goal ratios at ``c`` chains, per wall second and per CPU second, and cost growth."""
    checks = []
    for key in target_keys:
        if key in POSTERIOR_TARGETS:
            # Smallest ESS over the unconstrained coordinates and their squares, per gradient.
            pairs = [
                ("chees", "blackjax", "ess_all_per_grad", 0.8,
                 "ESS/gradient, SimpleHMC+ChEES / BlackJAX ChEES"),
                ("chees", "blackjax-diag", "ess_all_per_grad", 0.8,
                 "ESS/gradient, SimpleHMC+ChEES / BlackJAX ChEES with diagonal mass matrix"),
                ("chees", "numpyro", "ess_all_per_grad", None,
                 "ESS/gradient, SimpleHMC+ChEES / NumPyro NUTS"),
                ("chees", "blackjax", "ess_per_grad", None,
                 "ESS/gradient (coordinates only), SimpleHMC+ChEES / BlackJAX ChEES"),
                ("chees", "blackjax", "ess_sq_per_grad", None,
                 "ESS/gradient (squares only), SimpleHMC+ChEES / BlackJAX ChEES"),
                ("ours", "blackjax", "ess_all_per_grad", None,
                 "ESS/gradient, potential_fn path / BlackJAX ChEES"),
                ("blackjax", "numpyro", "ess_all_per_grad", None,
                 "ESS/gradient, BlackJAX ChEES / NumPyro NUTS"),
                ("chees", "blackjax", "ess_per_s", None,
                 "ESS/s, SimpleHMC+ChEES / BlackJAX ChEES"),
                ("ours", "numpyro", "ess_per_s", None, "ESS/s, potential_fn path / NumPyro NUTS"),
            ]
        else:
            pairs = _GAUSSIAN_PAIRS
        for a, b, measure, goal, what in pairs:
            ra, rb = find(rows, a, key, c), find(rows, b, key, c)
            values = []
            for m in (measure, "ess_per_cpu_s" if measure == "ess_per_s" else measure):
                ok = ra and rb and ra.get(m) and rb.get(m)
                values.append(ra[m] / rb[m] if ok else None)
            checks.append({"target": key, "what": what, "chains": c, "value": values[0],
                           "value_cpu": values[1], "goal": goal})
        g = growths.get(key, {}).get("growth", {})
        for cc in (64, 256):
            for n in ("ours", "ours-model"):
                if n in g and "bare" in g and cc in g[n]:
                    value = g[n][cc] / g["bare"][cc]
                else:
                    value = None
                checks.append({"target": key, "chains": cc, "value": value, "value_cpu": value,
                               "goal": -1.3,
                               "what": f"cost growth C=1 to {cc}, {LABELS[n]} / bare loop's"})

    def met(value, goal):
        if value is None or goal is None:
            return ""
        ok = value <= -goal if goal < 0 else value >= goal
        return "yes" if ok else "**no**"

    lines = [
        "| target | ratio | C | measured (wall) | measured (CPU) | goal | met (wall, CPU) |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for ch in checks:
        goal = ch["goal"]
        goal_s = "(reference)" if goal is None else (
            f"≤ {-goal:.1f}" if goal < 0 else f"≥ {goal:.1f}")
        wall, cpu = (("not run" if v is None else f"{v:.2f}") for v in (ch["value"],
                                                                         ch["value_cpu"]))
        verdicts = ", ".join(filter(None, (met(ch["value"], goal), met(ch["value_cpu"], goal))))
        lines.append(f"| {ch['target']} | {ch['what']} | {ch['chains']} | {wall} | {cpu} "
                     f"| {goal_s} | {verdicts} |")
    return lines, checks


def row_lines(rows) -> list[str]:
    lines = [
        "| target | contender | C | wall s | CPU s | gradients | min ESS | min ESS (x²) "
        "| ESS / s | ESS / CPU s | ESS / grad | ESS (x²) / grad | accept | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['target']} | {r['label']} | {r['chains']} | | | | | | | | | | "
                         f"| skipped: {r['skipped'][:120]} |")
            continue
        lines.append(
            f"| {r['target']} | {r['label']} | {r['chains']} | {r['wall_s']:.1f} "
            f"| {r['cpu_s']:.1f} | {fmt(r.get('gradients'))} | {r['min_ess']:,.0f} "
            f"| {r['min_ess_sq']:,.0f} | {r['ess_per_s']:,.0f} | {r['ess_per_cpu_s']:,.0f} "
            f"| {fmt(r.get('ess_per_grad'), '.4f')} | {fmt(r.get('ess_sq_per_grad'), '.4f')} "
            f"| {fmt(r.get('accept'), '.2f')} | {r.get('note', '')} |"
        )
    return lines


def growth_lines(growths, chain_counts) -> list[str]:
    head = " | ".join(f"C={c} µs/it" for c in chain_counts)
    lines = [f"| target | contender | {head} | growth to C={chain_counts[-1]} |",
             "|---|---|" + "---:|" * (len(chain_counts) + 1)]
    for key, g in growths.items():
        for n, med in g["seconds_per_iteration"].items():
            cells = " | ".join(f"{med[c] * 1e6:,.0f}" for c in chain_counts)
            lines.append(f"| {key} | {LABELS[n]} | {cells} "
                         f"| {g['growth'][n][chain_counts[-1]]:.2f} |")
        for n, note in g["notes"].items():
            lines.append(f"| {key} | {LABELS[n]} | skipped: {note[:120]} |" + " |" * len(
                chain_counts))
    return lines


def environment() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    versions = {"torch": torch.__version__, "pyro": pyro.__version__, "arviz": az.__version__,
                "python": platform.python_version()}
    for name in ("jax", "numpyro", "blackjax"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = None
    return {"cpu": cpu, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg(), "versions": versions,
            "xla_flags": os.environ.get("XLA_FLAGS"),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="C = 1, 64; 300 warmup + 1,000 draws; 3 rounds of cost growth")
    parser.add_argument("--chains", type=int, nargs="+", help="chain counts (1 8 64 256)")
    parser.add_argument("--draws", type=int, help="draws per chain after warmup (5000)")
    parser.add_argument("--warmup", type=int, help="warmup iterations (500)")
    parser.add_argument("--targets", nargs="+", default=["correlated", "diagonal"],
                        choices=TARGETS, help="correlated, diagonal (the default), and the "
                        "posterior eight_schools")
    parser.add_argument("--contenders", nargs="+", default=list(DEFAULT_CONTENDERS),
                        choices=ALL_CONTENDERS)
    parser.add_argument("--extras-chains", type=int, default=64,
                        help="the one C at which mala, rw and chees run (64)")
    parser.add_argument("--jax-chains", type=int, nargs="+",
                        help="run NumPyro and BlackJAX only at these C (default: every C); "
                        "NumPyro's NUTS at C=256, D=100 took 9 CPU minutes here")
    parser.add_argument("--goal-chains", type=int, default=64, help="C of the goal ratios (64)")
    parser.add_argument("--no-growth", action="store_true", help="skip the cost-growth timing")
    parser.add_argument("--rounds", type=int, help="rounds of the cost-growth timing (7)")
    parser.add_argument("--growth-iterations", type=int, default=40,
                        help="iterations per batch of the cost-growth timing (40)")
    parser.add_argument("--blackjax-step-size", type=float, default=0.1,
                        help="BlackJAX ChEES's initial step size (0.1)")
    parser.add_argument("--blackjax-learning-rate", type=float, default=0.025,
                        help="Adam learning rate of BlackJAX's ChEES (0.025, as TFP and the paper)")
    parser.add_argument("--model-jit", action="store_true",
                        help="give the model= path jit_compile=True")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--render", type=Path, metavar="RESULTS_JSON",
                        help="only rewrite results.md next to a results.json of an earlier run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for results.md and results.json")
    args = parser.parse_args(argv)
    if args.render:
        payload = json.loads(args.render.read_text())
        md, payload["checks"] = render(payload)
        (args.render.parent / "results.md").write_text(md)
        args.render.write_text(json.dumps(payload, indent=1, default=str))
        print(md)
        return
    chain_counts = args.chains or ([1, 64] if args.quick else [1, 8, 64, 256])
    if any(c < 1 for c in chain_counts):
        parser.error(f"--chains: each count must be >= 1; got {chain_counts}")
    args.draws = args.draws or (1000 if args.quick else 5000)
    args.warmup = args.warmup if args.warmup is not None else (300 if args.quick else 500)
    args.rounds = args.rounds or (3 if args.quick else 7)
    torch.set_num_threads(1)
    specs = make_specs(args.targets)
    started = time.perf_counter()
    env = environment()
    print(f"{env['date']}  {env['cpu']}, {env['cpus']} CPUs, load {env['load_average']}",
          flush=True)
    consistency = {}
    for spec in specs:  # raises if the contenders' targets differ
        consistency[spec.key] = spec.check_consistency(args.seed)
        print(f"{spec.key}: " + "; ".join(consistency[spec.key]), flush=True)

    rows = []
    for spec in specs:
        print(f"\n{spec.name}", flush=True)
        for chains in chain_counts:
            for name in args.contenders:
                if name in EXTRAS and chains != args.extras_chains:
                    continue
                if name in JAX_CONTENDERS and args.jax_chains is not None and (
                        chains not in args.jax_chains):
                    continue
                rows.append(run_one(name, spec, chains, args))
    growths = {}
    if not args.no_growth and len(chain_counts) > 1:
        for spec in specs:
            print(f"\ncost per iteration, {spec.name}", flush=True)
            growths[spec.key] = growth(spec, chain_counts, args)
            print(json.dumps(growths[spec.key], default=str), flush=True)

    command = "python benchmarks/vectorized.py " + " ".join(sys.argv[1:] if argv is None else argv)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings["chain_counts"] = chain_counts
    payload = {"command": command.strip(), "environment": env, "rows": rows,
               "growth": growths, "settings": settings, "consistency": consistency,
               "seconds": time.perf_counter() - started}
    md, payload["checks"] = render(payload)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(md)
    (args.out / "results.json").write_text(json.dumps(payload, indent=1, default=str))
    print("\n" + md)
    print(f"written to {args.out}/results.md and results.json")


def render(payload: dict) -> tuple[str, list[dict]]:
    """The Markdown report of one run's ``results.json`` payload, and its goal checks."""
    env, settings, rows = payload["environment"], payload["settings"], payload["rows"]
    # JSON turned the integer chain counts of the growth tables into strings.
    growths = {
        key: {
            "seconds_per_iteration": {n: {int(c): v for c, v in m.items()}
                                      for n, m in g["seconds_per_iteration"].items()},
            "growth": {n: {int(c): v for c, v in m.items()} for n, m in g["growth"].items()},
            "notes": g["notes"],
        }
        for key, g in payload["growth"].items()
    }
    chain_counts = settings["chain_counts"]
    ratios, checks = ratio_lines(rows, growths, settings["targets"], settings["goal_chains"])
    header = (
        f"Generated by `{payload['command']}` in {payload['seconds']:.0f} s on "
        f"{env['date']}: {env['cpu']}, {env['cpus']} CPUs (shared with other jobs; load average "
        f"at start {env['load_average'][0]:.1f}), torch {env['versions']['torch']} (1 thread), "
        f"jax {env['versions']['jax']}, numpyro {env['versions']['numpyro']}, blackjax "
        f"{env['versions']['blackjax']}. {settings['warmup']} warmup + {settings['draws']} draws "
        "per chain."
    )
    md = "\n".join([
        "# Many chains at once: results", "", header, "",
        f"## Ratios (C = {settings['goal_chains']}; cost growth from fixed-settings timing)", "",
        "ESS per wall second is what a user waits for; on a machine shared with other jobs the "
        "CPU-second ratio is the steadier one.", "",
        *ratios, "", "## ESS runs", "",
        "Wall and CPU seconds of the whole run (compilation and warmup included); minimum bulk "
        "ESS over coordinates (and over their squares), all chains together; gradients summed "
        "over chains, warmup included.", "", *row_lines(rows), "",
        "## Cost per iteration as C grows", "",
        f"CPU µs per iteration, fixed settings (step size {GROWTH_STEP}, {GROWTH_STEPS} leapfrog "
        f"steps, no adaptation), median over {settings['growth_iterations']} iterations per "
        f"batch and {settings['rounds']} interleaved rounds.", "",
        *growth_lines(growths, chain_counts), "",
        *reference_lines(rows, payload.get("consistency", {})),
    ])
    return md, checks


def reference_lines(rows, consistency) -> list[str]:
    """The start-up consistency checks and the reference checks, for posterior targets only."""
    keys = [k for k in consistency if k in POSTERIOR_TARGETS]
    if not keys:
        return []
    lines = ["## Posterior targets: same target everywhere, right answer", "",
             "Checked at start-up: every implementation of the target equals the batched torch "
             "potential up to a constant, at random points (the run stops otherwise).", ""]
    for key in keys:
        lines += [f"- {key}: {c}" for c in consistency[key]]
    lines += ["", "Each contender's draws against posteriordb's reference: posterior means and "
              "sds of every reference quantity, z-scores from both Monte-Carlo standard errors, "
              "Bonferroni threshold for a family-wise false-alarm probability of 0.001.", "",
              "| target | contender | C | max abs z | threshold | largest z (quantity) | "
              "passed |", "|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        if r["target"] in keys and "reference" in r:
            name, z = max(r["reference_z"].items(), key=lambda kv: abs(kv[1]))
            lines.append(f"| {r['target']} | {r['label']} | {r['chains']} "
                         f"| {r['reference_max_z']:.2f} | {r['reference_threshold']:.2f} "
                         f"| {z:+.2f} ({name}) | {'yes' if r['reference_passed'] else '**no**'} |")
    return [*lines, ""]


if __name__ == "__main__":
    main()
