r"""Pyro ports of more posteriordb posteriors: regressions, time series, a mixture, a latent GP.

The models follow their Stan programs in posteriordb (``posterior_database/models/stan``)
statement by statement, as those of :mod:`pyro_simplehmc.checks.posteriordb` do: the same
priors, constraints and parameter names, the same ``transformed data``, and a flat prior
(:class:`~pyro.distributions.ImproperUniform`) wherever Stan has no sampling statement, as for
most regression coefficients and many ``sigma`` below. Each model takes the data as a dict, as
read from posteriordb's ``data.json``. The registry
(:data:`pyro_simplehmc.checks.posteriordb.POSTERIORS`) pairs them with their posteriordb names,
initial values for the flat-prior sites and the maps to the quantities of the reference draws.

Two models need a change of variables that Stan does implicitly:

- ``garch11``: ``beta1`` lives in :math:`(0, 1 - \alpha_1)`, a bound that depends on another
  parameter. The port samples :math:`u \in (0, 1)` with :math:`\beta_1 = (1 - \alpha_1) u` and
  adds the Jacobian :math:`\log(1 - \alpha_1)`, so that :math:`(\alpha_1, \beta_1)` keeps Stan's
  flat density on the triangle.
- ``low_dim_gauss_mix``: ``ordered[2] mu`` with ``mu ~ normal(0, 2)`` is a flat site on the
  ordered vectors plus the normal log density as a factor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from torch import Tensor

__all__ = [
    "arma11",
    "earn_height",
    "garch11",
    "gp_pois_regr",
    "kidscore_interaction_c",
    "kidscore_interaction_z",
    "kidscore_mom_work",
    "kidscore_momhs",
    "kidscore_momhsiq",
    "kidscore_momiq",
    "kilpisjarvi",
    "logearn_height",
    "logearn_interaction",
    "logearn_logheight_male",
    "logmesquite",
    "logmesquite_logvas",
    "low_dim_gauss_mix",
    "mesquite",
    "nes",
]

DTYPE = torch.float64


def _t(value) -> Tensor:
    return torch.as_tensor(value, dtype=DTYPE)


def _flat(*shape: int) -> dist.ImproperUniform:
    return dist.ImproperUniform(constraints.real, (), shape)


def _flat_positive() -> dist.ImproperUniform:
    return dist.ImproperUniform(constraints.positive, (), ())


# ------------------------------------------------------------------ linear regressions
#
# Each ``_design_*`` returns (response, design matrix) as the Stan program's transformed data
# builds them; the model puts a flat prior on ``beta`` (Stan has no sampling statement for it)
# and on ``sigma`` unless the Stan program gives one.


def _regression(y: Tensor, design: Tensor, sigma_prior=None) -> None:
    beta = pyro.sample("beta", _flat(design.shape[-1]))
    sigma = pyro.sample("sigma", _flat_positive() if sigma_prior is None else sigma_prior)
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(design @ beta, sigma), obs=y)


def _columns(*columns: Tensor) -> Tensor:
    return torch.stack([torch.ones_like(columns[0]), *columns], dim=-1)


def least_squares_init(design: Callable[[Mapping], tuple[Tensor, Tensor]]):
    """``data -> {"beta", "sigma"}`` at the least-squares fit of ``design(data)``."""

    def init(data: Mapping) -> dict[str, Tensor]:
        y, x = design(data)
        beta = torch.linalg.lstsq(x, y.unsqueeze(-1)).solution.squeeze(-1)
        return {"beta": beta, "sigma": (y - x @ beta).std()}

    return init


def _design_kidscore_momhs(data):
    return _t(data["kid_score"]), _columns(_t(data["mom_hs"]))


def _design_kidscore_momiq(data):
    return _t(data["kid_score"]), _columns(_t(data["mom_iq"]))


def _design_kidscore_momhsiq(data):
    return _t(data["kid_score"]), _columns(_t(data["mom_hs"]), _t(data["mom_iq"]))


def _design_kidscore_interaction_c(data):
    hs, iq = _t(data["mom_hs"]), _t(data["mom_iq"])
    hs, iq = hs - hs.mean(), iq - iq.mean()
    return _t(data["kid_score"]), _columns(hs, iq, hs * iq)


def _design_kidscore_interaction_z(data):
    hs, iq = _t(data["mom_hs"]), _t(data["mom_iq"])
    # Stan's sd() divides by N - 1, as torch's std() does.
    hs, iq = (hs - hs.mean()) / (2 * hs.std()), (iq - iq.mean()) / (2 * iq.std())
    return _t(data["kid_score"]), _columns(hs, iq, hs * iq)


def _design_kidscore_mom_work(data):
    work = _t(data["mom_work"])
    return _t(data["kid_score"]), _columns(*[(work == k).to(DTYPE) for k in (2, 3, 4)])


def _design_earn_height(data):
    return _t(data["earn"]), _columns(_t(data["height"]))


def _design_logearn_height(data):
    return _t(data["earn"]).log(), _columns(_t(data["height"]))


def _design_logearn_interaction(data):
    height, male = _t(data["height"]), _t(data["male"])
    return _t(data["earn"]).log(), _columns(height, male, height * male)


def _design_logearn_logheight_male(data):
    return _t(data["earn"]).log(), _columns(_t(data["height"]).log(), _t(data["male"]))


def _design_mesquite(data):
    names = ["diam1", "diam2", "canopy_height", "total_height", "density", "group"]
    return _t(data["weight"]), _columns(*[_t(data[n]) for n in names])


def _design_logmesquite(data):
    logs = [_t(data[n]).log() for n in ["diam1", "diam2", "canopy_height", "total_height"]]
    return _t(data["weight"]).log(), _columns(*logs, _t(data["density"]).log(), _t(data["group"]))


def _design_logmesquite_logvas(data):
    d1, d2, height = _t(data["diam1"]), _t(data["diam2"]), _t(data["canopy_height"])
    columns = [
        (d1 * d2 * height).log(),
        (d1 * d2).log(),
        (d1 / d2).log(),
        _t(data["total_height"]).log(),
        _t(data["density"]).log(),
        _t(data["group"]),
    ]
    return _t(data["weight"]).log(), _columns(*columns)


def _design_nes(data):
    age = _t(data["age_discrete"])
    columns = [_t(data["real_ideo"]), _t(data["race_adj"])]
    columns += [(age == k).to(DTYPE) for k in (2, 3, 4)]
    columns += [_t(data[n]) for n in ["educ1", "gender", "income"]]
    return _t(data["partyid7"]), _columns(*columns)


def kidscore_momhs(data: Mapping) -> None:
    """Kid's score on mother's high-school diploma; flat ``beta`` (2), half-Cauchy(2.5) sigma."""
    _regression(*_design_kidscore_momhs(data), dist.HalfCauchy(_t(2.5)))


def kidscore_momiq(data: Mapping) -> None:
    """Kid's score on mother's IQ (uncentred: intercept and slope correlate at -0.99); flat
    ``beta`` (2), half-Cauchy(2.5) sigma."""
    _regression(*_design_kidscore_momiq(data), dist.HalfCauchy(_t(2.5)))


def kidscore_momhsiq(data: Mapping) -> None:
    """Kid's score on mother's diploma and IQ; flat ``beta`` (3), half-Cauchy(2.5) sigma."""
    _regression(*_design_kidscore_momhsiq(data), dist.HalfCauchy(_t(2.5)))


def kidscore_interaction_c(data: Mapping) -> None:
    """Kid's score on centred diploma, IQ and their product; flat ``beta`` (4) and sigma."""
    _regression(*_design_kidscore_interaction_c(data))


def kidscore_interaction_z(data: Mapping) -> None:
    """Kid's score on diploma and IQ standardised by two sds, and their product; flat."""
    _regression(*_design_kidscore_interaction_z(data))


def kidscore_mom_work(data: Mapping) -> None:
    """Kid's score on indicators of mother's work categories 2-4; flat ``beta`` (4), sigma."""
    _regression(*_design_kidscore_mom_work(data))


def earn_height(data: Mapping) -> None:
    """Earnings (dollars: sigma near 2e4) on height; flat ``beta`` (2) and sigma."""
    _regression(*_design_earn_height(data))


def logearn_height(data: Mapping) -> None:
    """Log earnings on height; flat ``beta`` (2) and sigma."""
    _regression(*_design_logearn_height(data))


def logearn_interaction(data: Mapping) -> None:
    """Log earnings on height, sex and their product (uncentred, strongly correlated)."""
    _regression(*_design_logearn_interaction(data))


def logearn_logheight_male(data: Mapping) -> None:
    """Log earnings on log height and sex; flat ``beta`` (3) and sigma."""
    _regression(*_design_logearn_logheight_male(data))


def mesquite(data: Mapping) -> None:
    """Mesquite leaf weight on six raw measurements (46 shrubs); flat ``beta`` (7), sigma."""
    _regression(*_design_mesquite(data))


def logmesquite(data: Mapping) -> None:
    """Log weight on the logs of five measurements and the group; flat ``beta`` (7), sigma."""
    _regression(*_design_logmesquite(data))


def logmesquite_logvas(data: Mapping) -> None:
    """Log weight on log canopy volume, area and shape, log height, log density, group."""
    _regression(*_design_logmesquite_logvas(data))


def nes(data: Mapping) -> None:
    """Party identification on ideology, race, age class, education, sex and income (NES 1996);
    flat ``beta`` (9) and sigma."""
    _regression(*_design_nes(data))


# ------------------------------------------------------------------ other models


def kilpisjarvi(data: Mapping) -> None:
    r"""Linear trend of summer temperature on the year (near 2000): ``alpha`` and ``beta``
    correlate at :math:`-0.99999`. Normal priors from the data, flat ``sigma`` > 0."""
    x, y = _t(data["x"]), _t(data["y"])
    alpha = pyro.sample("alpha", dist.Normal(_t(data["pmualpha"]), _t(data["psalpha"])))
    beta = pyro.sample("beta", dist.Normal(_t(data["pmubeta"]), _t(data["psbeta"])))
    sigma = pyro.sample("sigma", _flat_positive())
    with pyro.plate("data", int(data["N"])):
        pyro.sample("y", dist.Normal(alpha + beta * x, sigma), obs=y)


def arma11(data: Mapping) -> None:
    r"""ARMA(1, 1): :math:`\epsilon_t = y_t - \mu - \phi y_{t-1} - \theta \epsilon_{t-1}`,
    :math:`\epsilon \sim \mathcal{N}(0, \sigma)`, with :math:`y_0 = \mu`, :math:`\epsilon_0 = 0`.

    Sites ``mu`` (normal, 10), ``phi``, ``theta`` (normal, 2), ``sigma`` (half-Cauchy, 2.5).
    Stan's recursion is solved in closed form: :math:`\epsilon = L r` with
    :math:`L_{ts} = (-\theta)^{t-s}` for :math:`s \le t`.
    """
    y = _t(data["y"])
    length = int(data["T"])
    mu = pyro.sample("mu", dist.Normal(_t(0.0), _t(10.0)))
    phi = pyro.sample("phi", dist.Normal(_t(0.0), _t(2.0)))
    theta = pyro.sample("theta", dist.Normal(_t(0.0), _t(2.0)))
    sigma = pyro.sample("sigma", dist.HalfCauchy(_t(2.5)))
    previous = torch.cat([mu.reshape(1), y[:-1]])
    residual = y - mu - phi * previous
    lag = torch.arange(length)
    lags = (lag[:, None] - lag[None, :]).to(DTYPE)
    lower = lags >= 0
    powers = torch.where(lower, (-theta) ** torch.where(lower, lags, torch.zeros_like(lags)), 0)
    err = powers @ residual
    with pyro.plate("time", length):
        pyro.sample("err", dist.Normal(_t(0.0), sigma), obs=err)


def garch11(data: Mapping) -> None:
    r"""GARCH(1, 1): :math:`y_t \sim \mathcal{N}(\mu, \sigma_t)`,
    :math:`\sigma_t^2 = \alpha_0 + \alpha_1 (y_{t-1} - \mu)^2 + \beta_1 \sigma_{t-1}^2`.

    Flat priors: ``mu`` real, ``alpha0`` > 0, ``alpha1`` in (0, 1), ``beta1`` in
    (0, 1 - alpha1), sampled as ``beta1_unit`` in (0, 1) with the Jacobian of
    :math:`\beta_1 = (1 - \alpha_1)\,u` (the reference quantity ``beta1`` is recomputed). The
    recursion for :math:`\sigma_t^2` is linear and solved in closed form.
    """
    y = _t(data["y"])
    length = int(data["T"])
    mu = pyro.sample("mu", _flat())
    alpha0 = pyro.sample("alpha0", _flat_positive())
    alpha1 = pyro.sample("alpha1", dist.ImproperUniform(constraints.unit_interval, (), ()))
    unit = pyro.sample("beta1_unit", dist.ImproperUniform(constraints.unit_interval, (), ()))
    pyro.factor("beta1_jacobian", torch.log1p(-alpha1))
    beta1 = (1 - alpha1) * unit
    # s_t = c_t + beta1 s_{t-1}, s_1 = sigma1^2, c_t = alpha0 + alpha1 (y_{t-1} - mu)^2.
    drive = torch.cat([_t(data["sigma1"]).reshape(1) ** 2, alpha0 + alpha1 * (y[:-1] - mu) ** 2])
    lag = torch.arange(length)
    lags = (lag[:, None] - lag[None, :]).to(DTYPE)
    lower = lags >= 0
    powers = torch.where(lower, beta1 ** torch.where(lower, lags, torch.zeros_like(lags)), 0)
    variance = powers @ drive
    with pyro.plate("time", length):
        pyro.sample("y", dist.Normal(mu, variance.sqrt()), obs=y)


def low_dim_gauss_mix(data: Mapping) -> None:
    r"""Two-component normal mixture with ordered means: ``mu`` (ordered, normal(0, 2) prior),
    ``sigma`` (2, half-normal of scale 2), ``theta`` (beta(5, 5)), the weight of the first."""
    y = _t(data["y"])
    mu = pyro.sample("mu", dist.ImproperUniform(constraints.ordered_vector, (), (2,)))
    pyro.factor("mu_prior", dist.Normal(_t(0.0), _t(2.0)).log_prob(mu).sum())
    sigma = pyro.sample("sigma", dist.HalfNormal(_t(2.0)).expand([2]).to_event(1))
    theta = pyro.sample("theta", dist.Beta(_t(5.0), _t(5.0)))
    weights = torch.stack([theta, 1 - theta])
    with pyro.plate("data", int(data["N"])):
        pyro.sample(
            "y", dist.MixtureSameFamily(dist.Categorical(weights), dist.Normal(mu, sigma)), obs=y
        )


def gp_pois_regr(data: Mapping) -> None:
    r"""Latent Gaussian process with Poisson counts:
    :math:`k_i \sim \mathrm{Poisson}(e^{f_i})`, :math:`f = L\tilde f`, :math:`LL^\top = K +
    10^{-10} I`, :math:`K_{ij} = \alpha^2 \exp(-(x_i - x_j)^2 / (2\rho^2))`.

    Sites ``rho`` (Gamma(25, 4)), ``alpha`` (half-normal of scale 2), ``f_tilde`` (N, standard
    normal); ``f`` is recorded as a deterministic site.
    """
    x, k = _t(data["x"]), _t(data["k"])
    rho = pyro.sample("rho", dist.Gamma(_t(25.0), _t(4.0)))
    alpha = pyro.sample("alpha", dist.HalfNormal(_t(2.0)))
    f_tilde = pyro.sample("f_tilde", dist.Normal(_t(0.0), _t(1.0)).expand([len(x)]).to_event(1))
    f = pyro.deterministic("f", gp_pois_regr_latent(x, rho, alpha, f_tilde))
    with pyro.plate("data", len(x)):
        pyro.sample("k", dist.Poisson(f.exp()), obs=k)


def gp_pois_regr_latent(x: Tensor, rho: Tensor, alpha: Tensor, f_tilde: Tensor) -> Tensor:
    """``f = L f_tilde`` for draws of ``rho``, ``alpha`` (shape ``batch``) and ``f_tilde``
    (``batch + (N,)``)."""
    sq_dist = (x[:, None] - x[None, :]) ** 2
    alpha, rho = alpha[..., None, None], rho[..., None, None]
    cov = alpha**2 * torch.exp(-0.5 * sq_dist / rho**2)
    cov = cov + 1e-10 * torch.eye(len(x), dtype=DTYPE)
    return (torch.linalg.cholesky(cov) @ f_tilde.unsqueeze(-1)).squeeze(-1)


# ------------------------------------------------------------------ reference quantities


def garch11_reference(samples: Mapping[str, Tensor], data=None) -> dict[str, Tensor]:
    """``beta1 = (1 - alpha1) * beta1_unit``, as in the reference draws."""
    out = {k: v for k, v in samples.items() if k != "beta1_unit"}
    out["beta1"] = (1 - samples["alpha1"]) * samples["beta1_unit"]
    return out


def gp_pois_regr_reference(samples: Mapping[str, Tensor], data=None) -> dict[str, Tensor]:
    """``rho``, ``alpha`` and ``f`` (from ``f_tilde`` and the data's ``x``)."""
    if data is None:
        raise ValueError("gp_pois_regr's reference quantity f needs the data's x")
    f = gp_pois_regr_latent(_t(data["x"]), samples["rho"], samples["alpha"], samples["f_tilde"])
    return {"rho": samples["rho"], "alpha": samples["alpha"], "f": f}


def kilpisjarvi_init(data: Mapping) -> dict[str, Tensor]:
    """The least-squares line, for the flat ``sigma`` and the correlated ``alpha``, ``beta``."""
    x, y = _t(data["x"]), _t(data["y"])
    fit = least_squares_init(lambda d: (y, _columns(x)))(data)
    return {"alpha": fit["beta"][0], "beta": fit["beta"][1], "sigma": fit["sigma"]}


def arma11_init(data: Mapping) -> dict[str, Tensor]:
    """White noise about the sample mean: ``theta`` far from 0 makes the errors blow up as
    :math:`\theta^T`, a start NUTS cannot leave."""
    y = _t(data["y"])
    return {"mu": y.mean(), "phi": _t(0.0), "theta": _t(0.0), "sigma": y.std()}


def garch11_init(data: Mapping) -> dict[str, Tensor]:
    """The sample mean and variance, split evenly between the ARCH and GARCH terms."""
    y = _t(data["y"])
    return {"mu": y.mean(), "alpha0": 0.5 * y.var(), "alpha1": _t(0.25), "beta1_unit": _t(0.33)}


def low_dim_gauss_mix_init(data: Mapping) -> dict[str, Tensor]:
    """Means at the lower and upper quartiles of the data (the flat ordered ``mu``)."""
    y = _t(data["y"])
    return {"mu": torch.quantile(y, _t([0.25, 0.75]))}


#: (posteriordb name, model, design or None) for the flat-prior regressions.
REGRESSIONS = [
    ("kidiq-kidscore_momhs", kidscore_momhs, _design_kidscore_momhs),
    ("kidiq-kidscore_momiq", kidscore_momiq, _design_kidscore_momiq),
    ("kidiq-kidscore_momhsiq", kidscore_momhsiq, _design_kidscore_momhsiq),
    (
        "kidiq_with_mom_work-kidscore_interaction_c",
        kidscore_interaction_c,
        _design_kidscore_interaction_c,
    ),
    (
        "kidiq_with_mom_work-kidscore_interaction_z",
        kidscore_interaction_z,
        _design_kidscore_interaction_z,
    ),
    ("kidiq_with_mom_work-kidscore_mom_work", kidscore_mom_work, _design_kidscore_mom_work),
    ("earnings-earn_height", earn_height, _design_earn_height),
    ("earnings-logearn_height", logearn_height, _design_logearn_height),
    ("earnings-logearn_interaction", logearn_interaction, _design_logearn_interaction),
    ("earnings-logearn_logheight_male", logearn_logheight_male, _design_logearn_logheight_male),
    ("mesquite-mesquite", mesquite, _design_mesquite),
    ("mesquite-logmesquite", logmesquite, _design_logmesquite),
    ("mesquite-logmesquite_logvas", logmesquite_logvas, _design_logmesquite_logvas),
    ("nes1996-nes", nes, _design_nes),
]
