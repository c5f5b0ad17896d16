r"""Pyro ports of 25 posteriordb posteriors, and a comparison with their reference summaries.

`posteriordb <https://github.com/stan-dev/posteriordb>`_ (Magnusson, Bürkner & Vehtari; BSD-3)
publishes Stan models, data and reference draws from long, checked runs of Stan's NUTS. The
models below follow the Stan programs statement by statement: the same priors (a Stan
``real<lower=0> s; s ~ cauchy(0, k)`` is a half-Cauchy), the same constraints, the same parameter
names, and a flat prior where Stan has no sampling statement. Each model takes the data as a
dict, as read from posteriordb's ``data.json``; this module never reads files itself. Six
models are defined here (eight schools non-centred and centred, ``arK``, ``blr``, which serves
both ``sblrc-blr`` and ``sblri-blr``, ``kidscore_interaction``, ``gp_regr``); the others
(ARMA(1, 1), GARCH(1, 1), a two-component mixture, a latent Poisson GP, and linear regressions
on the kidiq, earnings, mesquite and NES data) are in
:mod:`.posteriordb_models` and :mod:`.posteriordb_regressions`. :data:`POSTERIORS` registers
all of them; each was checked with Pyro's NUTS against its reference before it joined
(``scripts/check_posteriordb_ports.py``).

Each :class:`Posterior` couples a model with :attr:`Posterior.reference_quantities`, which turns
draws of the sampled sites into the quantities of the reference draws (for example ``theta``
from ``theta_trans``, ``tau`` and ``mu`` in the non-centred eight schools), and
:func:`compare_with_reference` scores draws against a reference summary.

Everything is computed in float64: some posteriors have standard deviations of 1e-3.

The data and reference summaries of the ported posteriors ship with the package
(``pyro_simplehmc/data/posteriordb.json``, written by ``scripts/make_posteriordb_bundle.py``
from posteriordb's files, BSD 3-Clause): :func:`load_posterior` reads them, so that a posterior
can be run without a copy of posteriordb.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import arviz as az
import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from torch import Tensor

from . import posteriordb_models as models
from . import posteriordb_regressions as regressions
from .ztest import ZTestResult, two_sided_z_threshold

__all__ = [
    "POSTERIORS",
    "Posterior",
    "arK",
    "blr",
    "compare_with_reference",
    "eight_schools_centered",
    "eight_schools_noncentered",
    "flatten_draws",
    "gp_regr",
    "kidscore_interaction",
    "load_posterior",
]

#: The file (in ``pyro_simplehmc/data``) holding the ported posteriors' data and references.
BUNDLE = "posteriordb.json"

DTYPE = torch.float64


def _t(value) -> Tensor:
    return torch.as_tensor(value, dtype=DTYPE)


# ---------------------------------------------------------------------------------- models


def eight_schools_noncentered(data: Mapping) -> None:
    r"""Eight schools, non-centred: :math:`\theta = \mu + \tau\,\tilde\theta`.

    Sites ``theta_trans`` (J), ``mu``, ``tau`` (> 0); ``theta`` is recorded as a deterministic
    site.
    """
    y, sigma = _t(data["y"]), _t(data["sigma"])
    num_schools = int(data["J"])
    mu = pyro.sample("mu", dist.Normal(_t(0.0), _t(5.0)))
    tau = pyro.sample("tau", dist.HalfCauchy(_t(5.0)))
    with pyro.plate("schools", num_schools):
        theta_trans = pyro.sample("theta_trans", dist.Normal(_t(0.0), _t(1.0)))
        theta = pyro.deterministic("theta", theta_trans * tau + mu)
        pyro.sample("y", dist.Normal(theta, sigma), obs=y)


def eight_schools_centered(data: Mapping) -> None:
    r"""Eight schools, centred: :math:`\theta_j \sim \mathcal{N}(\mu, \tau)`, the funnel.

    Sites ``theta`` (J), ``mu``, ``tau`` (> 0).
    """
    y, sigma = _t(data["y"]), _t(data["sigma"])
    num_schools = int(data["J"])
    tau = pyro.sample("tau", dist.HalfCauchy(_t(5.0)))
    mu = pyro.sample("mu", dist.Normal(_t(0.0), _t(5.0)))
    with pyro.plate("schools", num_schools):
        theta = pyro.sample("theta", dist.Normal(mu, tau))
        pyro.sample("y", dist.Normal(theta, sigma), obs=y)


def arK(data: Mapping) -> None:
    r"""Autoregressive model of order :math:`K`:
    :math:`y_t \sim \mathcal{N}(\alpha + \sum_k \beta_k y_{t-k}, \sigma)` for :math:`t > K`.

    Sites ``alpha``, ``beta`` (K), ``sigma`` (> 0).
    """
    order, length = int(data["K"]), int(data["T"])
    y = _t(data["y"])
    alpha = pyro.sample("alpha", dist.Normal(_t(0.0), _t(10.0)))
    beta = pyro.sample("beta", dist.Normal(_t(0.0), _t(10.0)).expand([order]).to_event(1))
    sigma = pyro.sample("sigma", dist.HalfCauchy(_t(2.5)))
    # lags[t, k] = y[t - 1 - k] for the observations t = K, ..., T - 1 (0-based).
    lags = torch.stack([y[order - 1 - k : length - 1 - k] for k in range(order)], dim=-1)
    with pyro.plate("time", length - order):
        pyro.sample("y", dist.Normal(alpha + lags @ beta, sigma), obs=y[order:])


def blr(data: Mapping) -> None:
    r"""Bayesian linear regression: :math:`y \sim \mathcal{N}(X\beta, \sigma)`.

    Sites ``beta`` (D), ``sigma`` (> 0, half-normal prior of scale 10).
    """
    x, y = _t(data["X"]), _t(data["y"])
    num_coefficients = int(data["D"])
    beta = pyro.sample(
        "beta", dist.Normal(_t(0.0), _t(10.0)).expand([num_coefficients]).to_event(1)
    )
    sigma = pyro.sample("sigma", dist.HalfNormal(_t(10.0)))
    with pyro.plate("data", int(data["N"])):
        pyro.sample("y", dist.Normal(x @ beta, sigma), obs=y)


def kidscore_interaction(data: Mapping) -> None:
    r"""Kid's test score on mother's IQ, high-school diploma and their interaction.

    Sites ``beta`` (4, flat prior: Stan has no sampling statement for it), ``sigma`` (> 0,
    half-Cauchy of scale 2.5). The flat prior has no distribution to draw an initial value
    from, so run it with ``init_strategy=init_to_value(values=...)`` (see
    :data:`POSTERIORS`).
    """
    score, iq, hs = _t(data["kid_score"]), _t(data["mom_iq"]), _t(data["mom_hs"])
    beta = pyro.sample("beta", dist.ImproperUniform(constraints.real, (), (4,)))
    sigma = pyro.sample("sigma", dist.HalfCauchy(_t(2.5)))
    with pyro.plate("data", int(data["N"])):
        mean = beta[0] + beta[1] * hs + beta[2] * iq + beta[3] * hs * iq
        pyro.sample("kid_score", dist.Normal(mean, sigma), obs=score)


def gp_regr(data: Mapping) -> None:
    r"""Gaussian-process regression with a squared-exponential kernel, marginalised.

    :math:`y \sim \mathcal{N}(0, K + \sigma I)` with
    :math:`K_{ij} = \alpha^2 \exp(-(x_i - x_j)^2 / (2\rho^2))`; as in the Stan model, ``sigma``
    itself (not its square) is added to the diagonal. Sites ``rho`` (Gamma(25, 4)), ``alpha``
    (half-normal of scale 2), ``sigma`` (half-normal of scale 1).
    """
    x, y = _t(data["x"]), _t(data["y"])
    rho = pyro.sample("rho", dist.Gamma(_t(25.0), _t(4.0)))
    alpha = pyro.sample("alpha", dist.HalfNormal(_t(2.0)))
    sigma = pyro.sample("sigma", dist.HalfNormal(_t(1.0)))
    sq_dist = (x[:, None] - x[None, :]) ** 2
    cov = alpha**2 * torch.exp(-0.5 * sq_dist / rho**2) + sigma * torch.eye(len(x), dtype=DTYPE)
    scale_tril = torch.linalg.cholesky(cov)
    pyro.sample("y", dist.MultivariateNormal(torch.zeros_like(y), scale_tril=scale_tril), obs=y)


# ---------------------------------------------------------------------------------- registry


def _identity(samples: Mapping[str, Tensor], data: Mapping | None = None) -> dict[str, Tensor]:
    return dict(samples)


def _eight_schools_noncentered_reference(
    samples: Mapping[str, Tensor], data: Mapping | None = None
) -> dict[str, Tensor]:
    # The reference draws hold theta, the derived quantity, rather than theta_trans.
    tau, mu = samples["tau"].unsqueeze(-1), samples["mu"].unsqueeze(-1)
    return {"theta": samples["theta_trans"] * tau + mu, "mu": samples["mu"], "tau": samples["tau"]}


def _kidiq_init(data: Mapping) -> dict[str, Tensor]:
    # A flat prior has nothing to draw from: start at the least-squares fit.
    score, iq, hs = _t(data["kid_score"]), _t(data["mom_iq"]), _t(data["mom_hs"])
    design = torch.stack([torch.ones_like(iq), hs, iq, hs * iq], dim=-1)
    beta = torch.linalg.lstsq(design, score.unsqueeze(-1)).solution.squeeze(-1)
    return {"beta": beta, "sigma": (score - design @ beta).std()}


@dataclass(frozen=True)
class Posterior:
    """A posteriordb posterior ported to Pyro.

    :ivar name: the posteriordb name (also the folder name), e.g. ``"arK-arK"``.
    :ivar model: the Pyro model, called with the data dict.
    :ivar reference_quantities: ``(samples, data=None) -> quantities``: maps a dict of sampled
        sites (constrained values, with any leading sample dimensions) to the quantities named
        in the reference summary. Only a few need the data (``gp_pois_regr-gp_pois_regr``'s
        ``f``); pass it always.
    :ivar init_values: ``data -> {site: value}`` for sites with a flat prior (used with
        :func:`pyro.infer.autoguide.init_to_value`), or ``None``.
    :ivar max_plate_nesting: Pyro's bound on nested plates for this model.
    """

    name: str
    model: Callable[[Mapping], None]
    reference_quantities: Callable[..., dict[str, Tensor]] = field(default=_identity)
    init_values: Callable[[Mapping], dict[str, Tensor]] | None = None
    max_plate_nesting: int = 1


#: The ported posteriors, keyed by their posteriordb name: the first six here, the others in
#: :mod:`.posteriordb_models` and :mod:`.posteriordb_regressions`.
POSTERIORS: dict[str, Posterior] = {
    p.name: p
    for p in [
        Posterior(
            "eight_schools-eight_schools_noncentered",
            eight_schools_noncentered,
            _eight_schools_noncentered_reference,
        ),
        Posterior("eight_schools-eight_schools_centered", eight_schools_centered),
        Posterior("arK-arK", arK),
        Posterior("sblrc-blr", blr),
        Posterior("kidiq-kidscore_interaction", kidscore_interaction, init_values=_kidiq_init),
        Posterior("gp_pois_regr-gp_regr", gp_regr, max_plate_nesting=0),
        Posterior("sblri-blr", blr),
        Posterior("arma-arma11", models.arma11, init_values=models.arma11_init),
        Posterior(
            "garch-garch11",
            models.garch11,
            models.garch11_reference,
            init_values=models.garch11_init,
        ),
        Posterior("gp_pois_regr-gp_pois_regr", models.gp_pois_regr, models.gp_pois_regr_reference),
        Posterior(
            "low_dim_gauss_mix-low_dim_gauss_mix",
            models.low_dim_gauss_mix,
            init_values=models.low_dim_gauss_mix_init,
        ),
    ]
    + [
        Posterior(name, model, init_values=regressions.least_squares_init(design))
        for name, model, design in regressions.REGRESSIONS
    ]
}


# ---------------------------------------------------------------------------------- comparison


def flatten_draws(samples: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
    """Split each site into scalar quantities named as posteriordb names them.

    :param samples: ``{site: tensor of shape (chains, draws, *site_shape)}``.
    :returns: ``{"site" or "site[i]": array (chains, draws)}``, with 1-based indices (only
        vector sites are supported, which is all these posteriors have).
    """
    out: dict[str, np.ndarray] = {}
    for site, value in samples.items():
        value = np.asarray(value.detach().double().cpu())
        if value.ndim == 2:
            out[site] = value
        elif value.ndim == 3:
            for i in range(value.shape[2]):
                out[f"{site}[{i + 1}]"] = value[:, :, i]
        else:
            raise ValueError(f"site {site!r} must be a scalar or a vector; got {value.shape[2:]}")
    return out


def compare_with_reference(
    draws: Mapping[str, np.ndarray],
    reference: Mapping[str, Mapping[str, float]],
    *,
    alpha: float = 1e-3,
) -> ZTestResult:
    r"""Score posterior means and standard deviations against a reference summary.

    For each quantity the z-score divides the difference by the combined Monte-Carlo error of
    both estimates:

    - mean: ours from :func:`arviz.mcse` (``method="mean"``), the reference's as posteriordb
      reports it (``posteriordb_mcse_mean``, else :math:`\mathrm{sd}/\sqrt{\mathrm{ESS}}`);
    - sd: ours from :func:`arviz.mcse` (``method="sd"``); the reference's from the normal
      approximation :math:`\mathrm{sd}\sqrt{(\kappa - 1) / (4\,\mathrm{ESS})}`, with the kurtosis
      :math:`\kappa` estimated from our draws (the reference gives none) and posteriordb's bulk
      ESS.

    :param draws: ``{quantity: array (chains, draws)}``, e.g. from :func:`flatten_draws`.
    :param reference: the ``"parameters"`` entry of posteriordb's ``reference_summary.json``.
    :param float alpha: family-wise false-alarm probability; the z threshold is
        Bonferroni-corrected over all the means and standard deviations.
    """
    missing = sorted(set(reference) - set(draws))
    if missing:
        raise ValueError(f"draws lack the reference quantities {missing}")
    names, estimates, targets, errors = [], [], [], []
    for name, ref in reference.items():
        x = np.asarray(draws[name], dtype=float)
        ess = float(ref.get("posteriordb_ess_bulk", ref.get("n_draws", 1)))
        ref_mcse_mean = float(ref.get("posteriordb_mcse_mean", ref["sd"] / math.sqrt(ess)))
        centred = x - x.mean()
        kurtosis = float((centred**4).mean() / (centred**2).mean() ** 2)
        ref_mcse_sd = ref["sd"] * math.sqrt(max(kurtosis - 1.0, 0.0) / (4.0 * ess))

        names.append(f"mean {name}")
        estimates.append(x.mean())
        targets.append(ref["mean"])
        errors.append(math.hypot(float(az.mcse(x, method="mean")), ref_mcse_mean))

        names.append(f"sd {name}")
        estimates.append(x.std(ddof=1))
        targets.append(ref["sd"])
        errors.append(math.hypot(float(az.mcse(x, method="sd")), ref_mcse_sd))
    return ZTestResult(
        names,
        np.asarray(estimates),
        np.asarray(targets),
        np.asarray(errors),
        two_sided_z_threshold(alpha, len(names)),
    )


@cache
def _bundle() -> dict:
    text = resources.files("pyro_simplehmc").joinpath("data", BUNDLE).read_text()
    return json.loads(text)["posteriors"]


def load_posterior(name: str) -> tuple[Posterior, dict, dict]:
    """A ported posterior with its data and reference summary, from the package's own copy.

    :param name: a key of :data:`POSTERIORS`, e.g. ``"arK-arK"``.
    :returns: ``(posterior, data, reference)``: the :class:`Posterior`, the data dict (as in
        posteriordb's ``data.json``) and ``{quantity: {"mean", "sd", "posteriordb_ess_bulk",
        "posteriordb_mcse_mean", "n_draws"}}``.
    :raises ValueError: for a name that is not ported, listing those that are.
    """
    if name not in POSTERIORS:
        raise ValueError(f"posterior must be one of {sorted(POSTERIORS)}; got {name!r}")
    entry = _bundle()[name]
    return POSTERIORS[name], entry["data"], entry["reference"]
