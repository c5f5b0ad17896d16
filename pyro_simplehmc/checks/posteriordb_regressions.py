r"""Pyro ports of posteriordb's linear regressions: kidiq, earnings, mesquite and NES data.

Each Stan program is ``y ~ normal(X * beta, sigma)`` on a design built in its ``transformed
data`` block; the ports build the same design (logs, centring, standardising with Stan's
``sd``, which divides by N - 1, indicators of a category) and, as the Stan programs do, put a
flat prior (:class:`~pyro.distributions.ImproperUniform`) on ``beta`` and on ``sigma`` > 0
except where Stan gives ``sigma ~ cauchy(0, 2.5)`` (a half-Cauchy). The geometry ranges from
nearly independent (centred or standardised predictors) to correlations near -0.99 between an
intercept and the slope of an uncentred predictor, and scales from 1e-3 to 2e4
(``earn_height``'s sigma). The flat sites have no distribution to draw a start from:
:func:`least_squares_init` gives one. The registry is
:data:`pyro_simplehmc.checks.posteriordb.POSTERIORS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pyro
import pyro.distributions as dist
import torch
from torch import Tensor

from .posteriordb_models import DTYPE, _flat, _flat_positive, _t

__all__ = [
    "REGRESSIONS",
    "earn_height",
    "kidscore_interaction_c",
    "kidscore_interaction_z",
    "kidscore_mom_work",
    "kidscore_momhs",
    "kidscore_momhsiq",
    "kidscore_momiq",
    "least_squares_init",
    "logearn_height",
    "logearn_interaction",
    "logearn_logheight_male",
    "logmesquite",
    "logmesquite_logvas",
    "mesquite",
    "nes",
]

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


#: (posteriordb name, model, design) of each regression, in the order they are registered.
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
