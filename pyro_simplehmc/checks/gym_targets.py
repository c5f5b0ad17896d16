r"""The MAMS paper's eight benchmark models as :class:`~pyro_simplehmc.checks.targets.Target`\ s.

Robnik, Cohn-Gordon & Seljak (2025, arXiv 2503.01707) benchmark MAMS against NUTS on eight
models, most of them from inference-gym (in tensorflow/probability,
``spinoffs/inference_gym``). Here each is a target with its truth: the mean and the marginal
variance of every validated number, exact where the model allows and otherwise inference-gym's
published ground truth (long Stan runs), bundled with the data in
``pyro_simplehmc/data/gym_targets.json`` (made by ``scripts/make_gym_data.py`` from the
repository, commit recorded in the file).

=========================  ====  =========================================================
name                       D     model and truth
=========================  ====  =========================================================
``banana``                 2     inference-gym's Banana (curvature 0.03); exact truth
``gaussian``               100   diagonal Gaussian, variances log-spaced from 1 to 1/100
                                 (condition number 100); exact
``rosenbrock``             36    18 pairs :math:`x \sim N(1, 1)`, :math:`y \mid x \sim
                                 N(x^2, 0.1)`; exact
``funnel``                 20    Neal's funnel (:func:`~pyro_simplehmc.checks.targets.funnel`);
                                 exact
``brownian_motion``        32    ``BrownianMotionUnknownScalesMissingMiddleObservations``;
                                 exact truth (quadrature; inference-gym's published one
                                 disagrees with the model, see :func:`brownian_motion`)
``logistic_regression``    5     **substitute for German credit**: inference-gym loads that
                                 data through tensorflow-datasets, not from the repository, so
                                 it is not bundled; the simulated logistic regression of
                                 :func:`~pyro_simplehmc.checks.targets.logistic_regression`
                                 (truth: a stored long run of Pyro's NUTS) stands in
``stochastic_volatility``  103   ``StochasticVolatilitySP500Small`` (the last 100 daily returns
                                 of the S&P 500; the paper uses all 2,516); ground truth
                                 (Stan, 50,000 draws)
``item_response_theory``   501   ``SyntheticItemResponseTheory`` (1PL, 400 students, 100
                                 questions, 30,012 answers); ground truth (Stan, 50,000 draws)
=========================  ====  =========================================================

Positive and bounded parameters are sampled on the real line (logarithm, logit), so the
potential includes the Jacobian; the validated numbers are the model's own (constrained)
parameters, as inference-gym reports them, which :meth:`GymTarget.flatten` returns. An
inference-gym truth gives standard errors of the means; the standard error of a variance is taken
as :math:`\sigma^2 \sqrt{2 / \mathrm{ESS}}` with :math:`\mathrm{ESS} = (\sigma / \mathrm{se})^2`
(the Gaussian value; stated, not published).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

import pyro
import pyro.distributions as dist
import torch
from torch import Tensor

from .targets import Target, funnel, logistic_regression

#: The bundled data and ground truths (``pyro_simplehmc/data``).
GYM_DATA = "gym_targets.json"


@dataclass(frozen=True)
class GymTarget(Target):
    """A :class:`~pyro_simplehmc.checks.targets.Target` whose validated numbers may be a
    transform of its unconstrained sites.

    :ivar constrain: flat unconstrained draws ``batch + (D,)`` to the validated numbers (``None``:
        the identity); :meth:`flatten` applies it, :meth:`log_density` still takes
        unconstrained points.
    :ivar source: where the model and its truth come from, for reports.
    """

    constrain: Callable[[Tensor], Tensor] | None = None
    source: str = ""

    def flatten(self, samples: Mapping[str, Tensor], sample_dims: int = 1) -> Tensor:
        flat = super().flatten(samples, sample_dims)
        return flat if self.constrain is None else self.constrain(flat)


@cache
def load_gym_data() -> dict:
    """The bundled data and inference-gym ground truths (see ``scripts/make_gym_data.py``)."""
    text = resources.files("pyro_simplehmc").joinpath("data", GYM_DATA).read_text()
    return json.loads(text)


def _unconstrained_model(sites: dict[str, Tensor], potential_fn) -> Callable:
    """A Pyro model whose latent sites are ``sites`` on the real line and whose density is
    ``exp(-potential_fn)``: masked-out (flat) Normal sites around ``sites`` plus a factor."""

    def model() -> None:
        params = {
            name: pyro.sample(name, dist.Normal(value, 1.0).to_event(value.dim()).mask(False))
            for name, value in sites.items()
        }
        pyro.factor("log_density", -potential_fn(params))

    return model


def _make(
    name: str,
    sites: dict[str, Tensor],
    potential_fn: Callable[[dict[str, Tensor]], Tensor],
    mean: Tensor,
    var: Tensor,
    description: str,
    source: str,
    mean_se: Tensor | None = None,
    var_se: Tensor | None = None,
    constrain: Callable[[Tensor], Tensor] | None = None,
) -> GymTarget:
    return GymTarget(
        name=name,
        model=_unconstrained_model(sites, potential_fn),
        potential_fn=potential_fn,
        initial_params=sites,
        mean=mean,
        var=var,
        cov=None,
        dim=mean.shape[0],
        mean_se=mean_se,
        var_se=var_se,
        description=description,
        sites=tuple(sites),
        constrain=constrain,
        source=source,
    )


def _gym_truth(record: dict, dtype) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Mean, variance and their standard errors from an inference-gym truth (see the module)."""
    mean = torch.tensor(record["mean"], dtype=dtype)
    sd = torch.tensor(record["sd"], dtype=dtype)
    mean_se = torch.tensor(record["mean_se"], dtype=dtype)
    ess = (sd / mean_se) ** 2
    return mean, sd**2, mean_se, sd**2 * torch.sqrt(2.0 / ess)


# ---------------------------------------------------------------------------- analytic truths


def banana(curvature: float = 0.03, dtype: torch.dtype = torch.float64) -> GymTarget:
    r"""inference-gym's Banana: :math:`x_0 \sim N(0, 10^2)`,
    :math:`x_1 \sim N(b (x_0^2 - 100), 1)`, :math:`b` = ``curvature``.

    Exact truth: means 0, :math:`\mathrm{Var}\, x_0 = 100`,
    :math:`\mathrm{Var}\, x_1 = 1 + b^2 \mathrm{Var}(x_0^2) = 1 + 2 \cdot 10^4 b^2` (19 for 0.03).
    """

    def potential_fn(params):
        x = params["x"]
        x0, x1 = x[..., 0], x[..., 1]
        return 0.5 * (x0 / 10.0) ** 2 + 0.5 * (x1 - curvature * (x0**2 - 100.0)) ** 2

    var = torch.tensor([100.0, 1.0 + 2e4 * curvature**2], dtype=dtype)
    return _make("banana", {"x": torch.full((2,), 0.5, dtype=dtype)}, potential_fn,
                 torch.zeros(2, dtype=dtype), var, f"banana, curvature {curvature}",
                 "inference-gym Banana; exact truth")  # fmt: skip


def gaussian(
    dim: int = 100, condition_number: float = 100.0, dtype: torch.dtype = torch.float64
) -> GymTarget:
    r"""The paper's ill-conditioned Gaussian: :math:`N(0, \Lambda)`, diagonal, the variances
    log-spaced from 1 down to ``1 / condition_number`` (as in ``benchmarks/mams.py``); exact."""
    var = torch.logspace(0.0, -math.log10(condition_number), dim, dtype=dtype)

    def potential_fn(params):
        return 0.5 * (params["x"] ** 2 / var).sum(-1)

    return _make("gaussian", {"x": torch.full((dim,), 0.5, dtype=dtype)}, potential_fn,
                 torch.zeros(dim, dtype=dtype), var.clone(),
                 f"{dim}-D diagonal Gaussian, condition number {condition_number:g}",
                 "MAMS paper; exact truth")  # fmt: skip


def rosenbrock(dim: int = 36, q: float = 0.1, dtype: torch.dtype = torch.float64) -> GymTarget:
    r"""The paper's Rosenbrock: ``dim / 2`` independent pairs, :math:`x \sim N(1, 1)` and
    :math:`y \mid x \sim N(x^2, Q)`; ``x[:dim/2]`` are the :math:`x`, ``x[dim/2:]`` the :math:`y`.

    Exact truth: :math:`E x = 1`, :math:`\mathrm{Var}\, x = 1`, :math:`E y = E x^2 = 2`,
    :math:`\mathrm{Var}\, y = Q + \mathrm{Var}(x^2) = Q + 6` (:math:`E x^4 = 10`).
    """
    half = dim // 2

    def potential_fn(params):
        z = params["x"]
        x, y = z[..., :half], z[..., half:]
        return (0.5 * (x - 1.0) ** 2 + 0.5 * (y - x**2) ** 2 / q).sum(-1)

    mean = torch.cat([torch.ones(half, dtype=dtype), torch.full((half,), 2.0, dtype=dtype)])
    var = torch.cat([torch.ones(half, dtype=dtype), torch.full((half,), 6.0 + q, dtype=dtype)])
    return _make("rosenbrock", {"x": torch.full((dim,), 0.5, dtype=dtype)}, potential_fn, mean,
                 var, f"{dim}-D Rosenbrock, Q = {q}", "MAMS paper; exact truth")  # fmt: skip


def gym_funnel(dim: int = 20, dtype: torch.dtype = torch.float64) -> Target:
    """Neal's funnel in ``dim`` dimensions (the paper's has 20), exact truth: see
    :func:`~pyro_simplehmc.checks.targets.funnel`."""
    return funnel(dim=dim, dtype=dtype)


def german_credit_substitute(dtype: torch.dtype = torch.float64) -> Target:
    """The stand-in for German credit: :func:`~pyro_simplehmc.checks.targets.logistic_regression`
    (100 simulated points, D = 5, truth from a stored long Pyro NUTS run). inference-gym's German
    credit data come through tensorflow-datasets and are not in tensorflow/probability."""
    return logistic_regression(dtype=dtype)


# ---------------------------------------------------------------------------- inference-gym truths


def _normal_lp(x: Tensor, loc: Tensor, scale: Tensor) -> Tensor:
    return -0.5 * ((x - loc) / scale) ** 2 - torch.log(scale) - 0.5 * math.log(2 * math.pi)


def brownian_motion(dtype: torch.dtype = torch.float64) -> GymTarget:
    r"""inference-gym's ``BrownianMotionUnknownScalesMissingMiddleObservations``.

    :math:`\sigma_i, \sigma_o \sim \mathrm{LogNormal}(0, 2)`, :math:`x_0 \sim N(0, \sigma_i)`,
    :math:`x_t \sim N(x_{t-1}, \sigma_i)` for 30 steps, observed with noise :math:`\sigma_o`
    except steps 10 to 19. Sampled as ``log_innovation_noise_scale``,
    ``log_observation_noise_scale`` and ``locs``; validated as
    ``[innovation_noise_scale, observation_noise_scale, locs...]`` against the **exact** truth:
    given the scales the locs are Gaussian, and the scales' posterior is integrated on a grid
    (``scripts/make_gym_data.py``). inference-gym's published ground truth (Stan, 20,000 draws,
    bundled as ``gym_truth``) is not this posterior: it puts the observation scale's mean at
    0.101 where the exact value is 0.113 (the innovation scale's at 0.120, exactly 0.115), and
    the samplers here disagree with it by many standard errors.
    """
    record = load_gym_data()["brownian_motion"]
    observed = torch.tensor([math.nan if v is None else v for v in record["observed_locs"]],
                            dtype=dtype)  # fmt: skip
    mask = ~torch.isnan(observed)
    obs = torch.where(mask, observed, torch.zeros_like(observed))
    lognormal_lp = -0.5 * math.log(2 * math.pi) - math.log(2.0)

    def potential_fn(params):
        log_i, log_o = params["log_innovation_noise_scale"], params["log_observation_noise_scale"]
        locs = params["locs"]
        lp = 0.0
        for s in (log_i, log_o):  # LogNormal(0, 2) on the scale, plus log|d scale / d log|
            lp = lp + lognormal_lp - 0.5 * (s / 2.0) ** 2
        sigma_i, sigma_o = torch.exp(log_i).unsqueeze(-1), torch.exp(log_o).unsqueeze(-1)
        previous = torch.cat([torch.zeros_like(locs[..., :1]), locs[..., :-1]], dim=-1)
        lp = lp + _normal_lp(locs, previous, sigma_i).sum(-1)
        lp = lp + torch.where(mask, _normal_lp(obs, locs, sigma_o), 0.0).sum(-1)
        return -lp

    def constrain(flat):
        return torch.cat([torch.exp(flat[..., :2]), flat[..., 2:]], dim=-1)

    # Exact (scripts/make_gym_data.py): inference-gym's published truth is not this posterior.
    mean = torch.tensor(record["truth"]["mean"], dtype=dtype)
    var = torch.tensor(record["truth"]["sd"], dtype=dtype) ** 2
    mean_se = var_se = None
    sites = {
        "log_innovation_noise_scale": torch.tensor(math.log(0.1), dtype=dtype),
        "log_observation_noise_scale": torch.tensor(math.log(0.15), dtype=dtype),
        "locs": torch.zeros(30, dtype=dtype),
    }
    return _make("brownian_motion", sites, potential_fn, mean, var,
                 "Brownian motion, unknown scales, 10 of 30 observations missing",
                 f"inference-gym; {record['truth_draws']}", mean_se, var_se,
                 constrain)  # fmt: skip


def stochastic_volatility(dtype: torch.dtype = torch.float64) -> GymTarget:
    r"""inference-gym's ``StochasticVolatilitySP500Small``: the last 100 daily returns of the
    S&P 500 (absolute, centred), :math:`y_t \sim N(0, e^{h_t / 2})`,
    :math:`h_t - \mu = \phi (h_{t-1} - \mu) + \sigma \varepsilon_t` (stationary start),
    :math:`(\phi + 1) / 2 \sim \mathrm{Beta}(20, 1.5)`, :math:`\mu \sim \mathrm{Cauchy}(0, 5)`,
    :math:`\sigma \sim \mathrm{HalfCauchy}(2)`.

    Sampled as the logit of :math:`(\phi + 1)/2`, :math:`\mu`, :math:`\log \sigma` and :math:`h`
    (centred, as inference-gym has it); validated as ``[phi, mu, sigma, h...]`` against
    inference-gym's ground truth (Stan, 50,000 draws). The paper runs the full series (2,516
    returns, D = 2,519); this one has D = 103.
    """
    record = load_gym_data()["stochastic_volatility"]
    y = torch.tensor(record["centered_returns"], dtype=dtype)
    log_beta = math.lgamma(20.0) + math.lgamma(1.5) - math.lgamma(21.5)

    def potential_fn(params):
        z, mu = params["logit_persistence"], params["mean_log_volatility"]
        log_sigma, h = params["log_white_noise_shock_scale"], params["log_volatility"]
        # Beta(20, 1.5) on u = sigmoid(z), with log|du/dz| = log u + log(1 - u)
        lp = 20.0 * torch.nn.functional.logsigmoid(z) + 1.5 * torch.nn.functional.logsigmoid(-z)
        lp = lp - log_beta
        lp = lp - math.log(5.0 * math.pi) - torch.log1p((mu / 5.0) ** 2)
        sigma = torch.exp(log_sigma)
        lp = lp + math.log(2.0 / (2.0 * math.pi)) - torch.log1p((sigma / 2.0) ** 2) + log_sigma
        phi = (2.0 * torch.sigmoid(z) - 1.0).unsqueeze(-1)
        mu_, sigma_ = mu.unsqueeze(-1), sigma.unsqueeze(-1)
        start = _normal_lp(h[..., :1], mu_, sigma_ / torch.sqrt(1.0 - phi**2))
        steps = _normal_lp(h[..., 1:], mu_ + phi * (h[..., :-1] - mu_), sigma_)
        lp = lp + start.sum(-1) + steps.sum(-1)
        lp = lp + _normal_lp(y, torch.zeros_like(h), torch.exp(h / 2.0)).sum(-1)
        return -lp

    def constrain(flat):
        phi = 2.0 * torch.sigmoid(flat[..., :1]) - 1.0
        return torch.cat([phi, flat[..., 1:2], torch.exp(flat[..., 2:3]), flat[..., 3:]], dim=-1)

    mean, var, mean_se, var_se = _gym_truth(record["truth"], dtype)
    level = float(torch.log((y**2).mean()))
    sites = {
        "logit_persistence": torch.tensor(2.0, dtype=dtype),
        "mean_log_volatility": torch.tensor(level, dtype=dtype),
        "log_white_noise_shock_scale": torch.tensor(math.log(0.5), dtype=dtype),
        "log_volatility": torch.full((len(y),), level, dtype=dtype),
    }
    return _make("stochastic_volatility", sites, potential_fn, mean, var,
                 f"stochastic volatility, {len(y)} S&P 500 returns",
                 f"inference-gym; {record['truth_draws']}", mean_se, var_se,
                 constrain)  # fmt: skip


def item_response_theory(dtype: torch.dtype = torch.float64) -> GymTarget:
    r"""inference-gym's ``SyntheticItemResponseTheory`` (1PL): :math:`\delta \sim N(0.75, 1)`,
    abilities :math:`\alpha_i \sim N(0, 1)` (400), difficulties :math:`\beta_j \sim N(0, 1)`
    (100), :math:`y_{ij} \sim \mathrm{Bernoulli}(\mathrm{logit} = \alpha_i - \beta_j + \delta)`
    for the 30,012 answered pairs. Validated as ``[delta, alpha..., beta...]`` against
    inference-gym's ground truth (Stan, 50,000 draws).
    """
    record = load_gym_data()["item_response_theory"]
    grid = record["grid"]
    answered = torch.tensor([[c != "." for c in row] for row in grid])
    correct = torch.tensor([[float(c == "1") for c in row] for row in grid], dtype=dtype)
    num_students, num_questions = answered.shape
    norm = 0.5 * math.log(2 * math.pi) * (1 + num_students + num_questions)

    def potential_fn(params):
        delta = params["mean_student_ability"]
        alpha = params["centered_student_ability"]
        beta = params["question_difficulty"]
        logits = delta[..., None, None] + alpha[..., :, None] - beta[..., None, :]
        nll = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, correct.expand_as(logits), reduction="none"
        )
        nll = torch.where(answered, nll, 0.0).sum((-1, -2))
        prior = 0.5 * ((delta - 0.75) ** 2 + (alpha**2).sum(-1) + (beta**2).sum(-1)) + norm
        return nll + prior

    mean, var, mean_se, var_se = _gym_truth(record["truth"], dtype)
    sites = {
        "mean_student_ability": torch.tensor(0.75, dtype=dtype),
        "centered_student_ability": torch.zeros(num_students, dtype=dtype),
        "question_difficulty": torch.zeros(num_questions, dtype=dtype),
    }
    return _make("item_response_theory", sites, potential_fn, mean, var,
                 f"item response theory (1PL), {num_students} students, {num_questions} "
                 f"questions, {int(answered.sum())} answers",
                 f"inference-gym; {record['truth_draws']}", mean_se, var_se)  # fmt: skip


#: The MAMS paper's eight models, in its order, by name.
GYM_TARGETS: dict[str, Callable[..., Target]] = {
    "banana": banana,
    "gaussian": gaussian,
    "rosenbrock": rosenbrock,
    "funnel": gym_funnel,
    "brownian_motion": brownian_motion,
    "logistic_regression": german_credit_substitute,
    "stochastic_volatility": stochastic_volatility,
    "item_response_theory": item_response_theory,
}


def get_gym_target(name: str, **kwargs) -> Target:
    """The gym target called ``name`` (``-`` and ``_`` interchangeable), built with ``kwargs``.

    :raises ValueError: for an unknown name, listing the known ones.
    """
    key = str(name).replace("-", "_")
    if key not in GYM_TARGETS:
        raise ValueError(f"unknown gym target {name!r}; choose from {list(GYM_TARGETS)}")
    return GYM_TARGETS[key](**kwargs)


__all__ = [
    "GYM_DATA",
    "GYM_TARGETS",
    "GymTarget",
    "banana",
    "brownian_motion",
    "gaussian",
    "german_credit_substitute",
    "get_gym_target",
    "gym_funnel",
    "item_response_theory",
    "load_gym_data",
    "rosenbrock",
    "stochastic_volatility",
]
