"""``pyro_simplehmc.from_pyro``: arviz 0.x's arguments and groups on arviz 0.x and 1.x, the
values the run, the model and ``Predictive`` imply, agreement with ``arviz.from_pyro`` where
arviz 0.x has it, and clear errors for input it cannot convert.

Values are checked exactly (they are copies or deterministic functions of the draws), so no
Monte-Carlo tolerance is involved; each check is shown to fail on a corrupted result. The
explicit expectations run under both arviz lines (run this file with the 3.13 environment too);
the agreement with ``az.from_pyro`` needs arviz 0.x.
"""

from __future__ import annotations

import warnings

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
import xarray as xr
from pyro.infer import MCMC, NUTS, Predictive
from pyro.infer.mcmc.api import StreamingMCMC

import pyro_simplehmc
from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC, from_pyro
from pyro_simplehmc.mcmc import arviz_compat as compat

Y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
COORDS = {"school": list("ABCDEFGH")}
DIMS = {"theta_trans": ["school"], "theta": ["school"], "y": ["school"], "sigma": ["school"]}

X = torch.linspace(-1.0, 1.0, 6)
X_NEW = torch.tensor([-2.0, 0.0, 2.0])
Y_REG = torch.tensor([-1.2, -0.3, 0.1, 0.8, 1.1, 2.0])
Z_REG = torch.tensor([0.0, 0.0, 1.0, 0.0, 1.0, 1.0])
REG_COORDS = {"obs": list(range(6)), "new": ["low", "mid", "high"]}
REG_DIMS = {"y": ["obs"], "z": ["obs"], "mean": ["obs"], "x": ["obs"]}
REG_PRED_DIMS = {"y": ["new"], "z": ["new"], "mean": ["new"], "x": ["new"]}

#: arviz 0.x's warning where the model does not vectorise over draws.
NOT_VECTORIZED = "Could not get vectorized trace, log_likelihood group will be omitted"


def eight_schools(y, sigma):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("schools", len(sigma)):
        theta_trans = pyro.sample("theta_trans", dist.Normal(0.0, 1.0))
        theta = pyro.deterministic("theta", mu + tau * theta_trans)
        pyro.sample("y", dist.Normal(theta, sigma), obs=y)


def regression(x, y=None, z=None):
    """Two observed sites and a deterministic one in a plate over the data points."""
    alpha = pyro.sample("alpha", dist.Normal(0.0, 2.0))
    beta = pyro.sample("beta", dist.Normal(0.0, 2.0))
    with pyro.plate("data", len(x)):
        mean = pyro.deterministic("mean", alpha + beta * x)
        pyro.sample("y", dist.Normal(mean, 1.0), obs=y)
        pyro.sample("z", dist.Bernoulli(logits=mean), obs=z)


def unbatched(y):
    """No plate: the observation is one event of 8, so the model does not broadcast over a
    batch of draws."""
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    pyro.deterministic("shifted", mu + torch.arange(3.0))
    pyro.sample("y", dist.Normal(mu, 10.0).expand([len(y)]).to_event(1), obs=y)


def matmul_model(x, y=None):
    """arviz's own example of a model whose likelihood it cannot vectorise (its tests)."""
    beta = pyro.sample("beta", dist.Normal(torch.ones(2), 3))
    pyro.sample("y", dist.Normal(x.matmul(beta), 1), obs=y)


def two_observations(y1=None, y2=None):
    """arviz's example of several observed sites; no plate, so Predictive's batch of draws
    broadcasts against the data when their numbers are equal."""
    x = pyro.sample("x", dist.Normal(1, 3))
    pyro.sample("y1", dist.Normal(x, 1), obs=y1)
    pyro.sample("y2", dist.Normal(x, 1), obs=y2)


def standard_normal():
    pyro.sample("x", dist.Normal(0.0, 1.0))


def run(kernel, *args, num_chains=2, num_samples=40, warmup_steps=30, seed=0, **kwargs):
    pyro.set_rng_seed(seed)
    mcmc = MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        disable_progbar=True,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "num_chains=.* is more than available_cpu")
        mcmc.run(*args, **kwargs)
    return mcmc


def predictive(model, *args, samples=None, num_samples=None, seed=1):
    pyro.set_rng_seed(seed)
    return Predictive(model, posterior_samples=samples, num_samples=num_samples)(*args)


@pytest.fixture(scope="module")
def hmc_run():
    return run(SimpleHMC(eight_schools, num_steps=5, num_steps_jitter=0.0), Y, SIGMA)


@pytest.fixture(scope="module")
def nuts_run():
    return run(NUTS(eight_schools), Y, SIGMA, num_samples=20, warmup_steps=20)


@pytest.fixture(scope="module")
def regression_run():
    return run(MALA(regression), X, Y_REG, Z_REG, num_samples=30)


@pytest.fixture(scope="module")
def diverging_run():
    """Step sizes jittered across the leapfrog stability limit (2 for a unit Gaussian): about
    half the iterations blow up and are divergent, the others are not."""
    kernel = SimpleHMC(
        standard_normal,
        step_size=2.0,
        adapt_step_size=False,
        adapt_mass_matrix=False,
        num_steps=20,
        step_size_jitter=0.5,
    )
    return run(kernel, num_samples=60)


def schools_inputs(mcmc):
    """What a notebook hands ``az.from_pyro`` for eight schools: prior and posterior
    predictive draws, the data as constant data, coordinates and dimension names."""
    return {
        "prior": predictive(eight_schools, None, SIGMA, num_samples=25),
        "posterior_predictive": predictive(eight_schools, None, SIGMA, samples=mcmc.get_samples()),
        "constant_data": {"sigma": SIGMA, "J": 8},
        "coords": COORDS,
        "dims": DIMS,
    }


def regression_inputs(mcmc):
    """Posterior predictive draws and out-of-sample predictions at new points."""
    samples = mcmc.get_samples()
    return {
        "posterior_predictive": predictive(regression, X, samples=samples),
        "predictions": predictive(regression, X_NEW, samples=samples),
        "constant_data": {"x": X},
        "predictions_constant_data": {"x": X_NEW},
        "coords": REG_COORDS,
        "dims": REG_DIMS,
        "pred_dims": REG_PRED_DIMS,
    }


def numpy(value):
    return value.detach().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


# ---------------------------------------------------------------------------- what each group holds


def test_groups_names_dims_and_values(hmc_run):
    data = from_pyro(hmc_run, coords=COORDS, dims=DIMS, log_likelihood=True)
    expected_type = xr.DataTree if compat.ARVIZ_1 else __import__("arviz").InferenceData
    assert isinstance(data, expected_type)
    assert set(compat.groups(data)) == {
        "posterior", "sample_stats", "log_likelihood", "observed_data"
    }
    samples = {k: v.numpy() for k, v in hmc_run.get_samples(group_by_chain=True).items()}

    posterior = compat.group(data, "posterior")
    assert set(posterior.data_vars) == {"mu", "tau", "theta_trans", "theta"}
    assert posterior["theta"].dims == ("chain", "draw", "school")
    assert list(posterior["school"].values) == COORDS["school"]
    for name, value in samples.items():
        np.testing.assert_array_equal(posterior[name].values, value)
    # The deterministic site, replayed from the draws, is the model's own expression.
    theta = samples["mu"][..., None] + samples["tau"][..., None] * samples["theta_trans"]
    np.testing.assert_allclose(posterior["theta"].values, theta, rtol=1e-6)

    observed = compat.group(data, "observed_data")
    assert set(observed.data_vars) == {"y"}  # the deterministic site is not an observation
    assert observed["y"].dims == ("school",)
    np.testing.assert_array_equal(observed["y"].values, Y.numpy())

    log_lik = compat.group(data, "log_likelihood")
    assert log_lik["y"].dims == ("chain", "draw", "school")
    expected = dist.Normal(torch.from_numpy(theta), SIGMA).log_prob(Y).numpy()
    np.testing.assert_allclose(log_lik["y"].values, expected, rtol=1e-5)


def test_value_checks_fail_on_a_corrupted_result(hmc_run):
    """The exact comparisons above catch a shuffled or shifted conversion."""
    posterior = compat.group(from_pyro(hmc_run), "posterior")
    samples = hmc_run.get_samples(group_by_chain=True)
    with pytest.raises(AssertionError):
        np.testing.assert_array_equal(posterior["mu"].values[::-1], samples["mu"].numpy())
    theta = samples["mu"][..., None] + samples["tau"][..., None] * samples["theta_trans"]
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(posterior["theta"].values[:, 1:], theta[:, :-1], rtol=1e-6)


def test_prior_and_posterior_predictive(hmc_run):
    inputs = schools_inputs(hmc_run)
    data = from_pyro(hmc_run, **inputs)
    assert set(compat.groups(data)) == {
        "posterior", "sample_stats", "log_likelihood", "observed_data",
        "posterior_predictive", "prior", "prior_predictive", "constant_data",
    }
    posterior = compat.group(data, "posterior")

    # Predictive's (chain * draw) draws are split into the run's chains, in order: the
    # replayed theta at (chain, draw) is the one Predictive computed from that same draw.
    pp = compat.group(data, "posterior_predictive")
    assert set(pp.data_vars) == {"y", "theta"}
    assert pp["y"].dims == ("chain", "draw", "school")
    np.testing.assert_array_equal(
        pp["y"].values, inputs["posterior_predictive"]["y"].reshape(2, 40, 8).numpy()
    )
    np.testing.assert_allclose(pp["theta"].values, posterior["theta"].values, rtol=1e-6)
    with pytest.raises(AssertionError):  # the check sees chains split in the wrong order
        swapped = inputs["posterior_predictive"]["theta"].reshape(40, 2, 8).transpose(0, 1)
        np.testing.assert_allclose(swapped.numpy(), posterior["theta"].values, rtol=1e-6)

    # The prior: one chain; the posterior's variables (deterministic theta included) in prior,
    # the observation in prior_predictive; Predictive's padding axis of scalars squeezed away.
    prior, prior_pred = compat.group(data, "prior"), compat.group(data, "prior_predictive")
    assert set(prior.data_vars) == {"mu", "tau", "theta_trans", "theta"}
    assert set(prior_pred.data_vars) == {"y"}
    assert prior["mu"].dims == ("chain", "draw") and prior["mu"].shape == (1, 25)
    np.testing.assert_array_equal(prior["mu"].values[0], inputs["prior"]["mu"][:, 0].numpy())
    assert prior["theta"].dims == ("chain", "draw", "school")
    np.testing.assert_array_equal(prior_pred["y"].values[0], inputs["prior"]["y"].numpy())

    constant = compat.group(data, "constant_data")
    assert constant["sigma"].dims == ("school",)
    np.testing.assert_array_equal(constant["sigma"].values, SIGMA.numpy())
    # A scalar: arviz 0.x stores it as an array of one value, arviz 1.x as a scalar.
    assert constant["J"].shape == (() if compat.ARVIZ_1 else (1,))
    assert int(constant["J"].values.reshape(-1)[0]) == 8


def test_predictions_and_several_observed_sites(regression_run):
    inputs = regression_inputs(regression_run)
    data = from_pyro(regression_run, **inputs)
    samples = regression_run.get_samples(group_by_chain=True)
    mean = samples["alpha"][..., None] + samples["beta"][..., None] * X

    log_lik = compat.group(data, "log_likelihood")
    assert set(log_lik.data_vars) == {"y", "z"}  # every observed site, not the deterministic
    assert log_lik["z"].dims == ("chain", "draw", "obs")
    expected_y = dist.Normal(mean, 1.0).log_prob(Y_REG).numpy()
    expected_z = dist.Bernoulli(logits=mean).log_prob(Z_REG).numpy()
    np.testing.assert_allclose(log_lik["y"].values, expected_y, rtol=1e-5)
    np.testing.assert_allclose(log_lik["z"].values, expected_z, rtol=1e-5)
    with pytest.raises(AssertionError):  # the two sites' values are not interchangeable
        np.testing.assert_allclose(log_lik["y"].values, expected_z, rtol=1e-5)

    predictions = compat.group(data, "predictions")
    assert set(predictions.data_vars) == {"y", "z", "mean"}
    assert predictions["y"].dims == ("chain", "draw", "new")
    assert list(predictions["new"].values) == REG_COORDS["new"]
    new_mean = samples["alpha"][..., None] + samples["beta"][..., None] * X_NEW
    np.testing.assert_allclose(predictions["mean"].values, new_mean.numpy(), rtol=1e-6)
    pred_constant = compat.group(data, "predictions_constant_data")
    assert pred_constant["x"].dims == ("new",)
    np.testing.assert_array_equal(pred_constant["x"].values, X_NEW.numpy())
    assert compat.group(data, "constant_data")["x"].dims == ("obs",)
    assert compat.group(data, "posterior_predictive")["z"].dims == ("chain", "draw", "obs")


def test_without_a_posterior(hmc_run):
    inputs = schools_inputs(hmc_run)
    prior, pp = inputs["prior"], inputs["posterior_predictive"]

    only_prior = from_pyro(prior=prior)
    assert compat.groups(only_prior) == ["prior"]  # no run: every site is a prior variable
    assert set(compat.group(only_prior, "prior").data_vars) == set(prior)

    # num_chains splits draws without a chain dimension (chain by chain); the prior stays one
    # chain, as in arviz 0.x.
    split = from_pyro(prior=prior, posterior_predictive=pp, num_chains=4, coords=COORDS, dims=DIMS)
    assert set(compat.groups(split)) == {"prior", "posterior_predictive"}
    y = compat.group(split, "posterior_predictive")["y"]
    assert y.shape == (4, 20, 8) and y.dims == ("chain", "draw", "school")
    np.testing.assert_array_equal(y.values[1, 0], pp["y"][20].numpy())
    assert compat.group(split, "prior")["mu"].shape == (1, 25)

    constants = from_pyro(constant_data={"J": 8, "sigma": SIGMA})
    assert compat.groups(constants) == ["constant_data"]


def test_model_that_does_not_vectorise():
    """arviz 0.x's behaviour: the log-likelihood group is left out with its warning; the
    deterministic site is replayed draw by draw all the same. Without log_likelihood there is
    no warning."""
    mcmc = run(RandomWalkMH(unbatched), Y, num_chains=1, num_samples=30)
    with pytest.warns(UserWarning, match=NOT_VECTORIZED):
        data = from_pyro(mcmc, log_likelihood=True)
    assert "log_likelihood" not in compat.groups(data)
    mu = mcmc.get_samples(group_by_chain=True)["mu"].numpy()
    shifted = compat.group(data, "posterior")["shifted"].values
    np.testing.assert_allclose(shifted, mu[..., None] + np.arange(3.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = from_pyro(mcmc, log_likelihood=False)
    assert "log_likelihood" not in compat.groups(data)


def test_as_many_draws_as_data_points():
    """Without a plate, Predictive's batch of 10 draws broadcasts against the 10 data points
    and the vectorised pass runs; its log-density pairs draw i with point i, which is not the
    likelihood. Ours sees it (the first draw replayed alone differs) and warns as arviz does
    where the pass fails; arviz 0.x keeps the wrong numbers."""
    pyro.set_rng_seed(3)
    y1, y2 = torch.randn(10), torch.randn(10)
    mcmc = run(RandomWalkMH(two_observations), num_chains=1, num_samples=10, y1=y1, y2=y2)
    with pytest.warns(UserWarning, match=NOT_VECTORIZED):
        data = from_pyro(mcmc)
    assert "log_likelihood" not in compat.groups(data)
    assert set(compat.group(data, "observed_data").data_vars) == {"y1", "y2"}
    if not compat.ARVIZ_1:
        import arviz as az

        theirs = az.from_pyro(mcmc).log_likelihood["y1"].values
        x = mcmc.get_samples()["x"]
        pointwise = dist.Normal(x[:, None], 1.0).log_prob(y1)  # (draw, data point)
        assert theirs.shape == (1, 10) and pointwise.shape == (10, 10)
        np.testing.assert_allclose(theirs[0], pointwise.diagonal().numpy(), rtol=1e-5)


def test_log_likelihood_default_is_arvizs(hmc_run):
    """arviz 0.x's default, its rcParam ``data.log_likelihood`` (True); True under 1.x."""
    assert "log_likelihood" in compat.groups(from_pyro(hmc_run))
    if not compat.ARVIZ_1:
        import arviz as az

        with az.rc_context({"data.log_likelihood": False}):
            assert "log_likelihood" not in compat.groups(from_pyro(hmc_run))


def test_diverging_comes_from_the_divergence_indices(diverging_run):
    stats = compat.group(from_pyro(diverging_run), "sample_stats")
    diverging = stats["diverging"].values
    assert diverging.shape == (2, 60) and diverging.dtype == bool
    divergences = diverging_run.diagnostics()["divergences"]
    for chain in range(2):
        assert list(np.flatnonzero(diverging[chain])) == divergences[f"chain {chain}"]
    assert 0 < diverging.mean() < 1  # a mix, so a misplaced index would show
    # Jittered step sizes differ from draw to draw: no per-draw step size is claimed.
    assert "step_size" not in stats


def test_per_chain_stats_of_this_packages_kernels(hmc_run):
    stats = compat.group(from_pyro(hmc_run), "sample_stats")
    diag = hmc_run.diagnostics()
    chains = [f"chain {i}" for i in range(2)]
    assert stats["step_size"].dims == ("chain", "draw")
    for i, chain in enumerate(chains):
        assert np.all(stats["step_size"].values[i] == diag["step size"][chain])
    assert stats["mean_acceptance_rate"].dims == ("chain",)
    np.testing.assert_array_equal(
        stats["mean_acceptance_rate"].values, [diag["acceptance rate"][c] for c in chains]
    )
    for key, name in [("gradient evaluations", "gradient_evaluations")]:
        sampling = [diag[key][c]["sampling"] for c in chains]
        np.testing.assert_array_equal(stats[name].values, sampling)
        np.testing.assert_array_equal(
            stats[name + "_warmup"].values, [diag[key][c]["warmup"] for c in chains]
        )
    # Five leapfrog steps, one gradient each, per sampling iteration.
    assert np.all(stats["gradient_evaluations"].values == 5 * 40)


def test_pyro_nuts_single_chain_reports_its_fixed_step_size():
    mcmc = run(NUTS(eight_schools), Y, SIGMA, num_chains=1, num_samples=20, warmup_steps=20)
    stats = compat.group(from_pyro(mcmc), "sample_stats")
    assert stats["diverging"].shape == (1, 20)
    assert np.all(stats["step_size"].values == mcmc.kernel.step_size)
    assert "gradient_evaluations" not in stats  # Pyro's kernels do not count them


class ReportsSampleStats(SimpleHMC):
    """A kernel whose ``diagnostics()`` carries per-draw statistics of ``length`` draws."""

    def __init__(self, *args, length, **kwargs):
        super().__init__(*args, **kwargs)
        self.length = length

    def diagnostics(self):
        return {**super().diagnostics(), "sample stats": {"accept_prob": torch.ones(self.length)}}


def test_per_draw_hooks(hmc_run):
    """``mcmc.sample_stats`` (chain, draw) and the kernel diagnostics' ``"sample stats"``
    (draw,) per chain both reach ``sample_stats``; a wrong shape is an error naming the hook."""
    energy_error = np.arange(80.0).reshape(2, 40)
    try:
        hmc_run.sample_stats = {"energy_error": energy_error}
        stats = compat.group(from_pyro(hmc_run), "sample_stats")
        np.testing.assert_array_equal(stats["energy_error"].values, energy_error)
        assert stats["energy_error"].dims == ("chain", "draw")
        hmc_run.sample_stats = {"energy_error": energy_error[:, :-1]}
        with pytest.raises(ValueError, match=r"mcmc.sample_stats\['energy_error'\] must have"):
            from_pyro(hmc_run)
    finally:
        del hmc_run.sample_stats

    reporting = run(ReportsSampleStats(standard_normal, length=10), num_chains=1, num_samples=10)
    stats = compat.group(from_pyro(reporting), "sample_stats")
    np.testing.assert_array_equal(stats["acceptance_rate"].values, np.ones((1, 10)))
    wrong = run(ReportsSampleStats(standard_normal, length=3), num_chains=1, num_samples=10)
    with pytest.raises(ValueError, match=r"'sample stats'\['accept_prob'\].*one value per draw"):
        from_pyro(wrong)


def test_leaves_the_global_random_stream_alone(hmc_run):
    state = torch.get_rng_state()
    from_pyro(hmc_run, log_likelihood=True)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.skipif(
    not hasattr(pyro_simplehmc, "MCMC"), reason="vectorized chains (issue 10) not merged yet"
)
def test_vectorized_run():
    mcmc = pyro_simplehmc.MCMC(
        SimpleHMC(eight_schools, num_steps=5),
        num_samples=30,
        warmup_steps=30,
        num_chains=3,
        chain_method="vectorized",
        disable_progbar=True,
    )
    mcmc.run(Y, SIGMA)
    pp = predictive(eight_schools, None, SIGMA, samples=mcmc.get_samples())
    data = from_pyro(mcmc, posterior_predictive=pp, coords=COORDS, dims=DIMS)
    posterior = compat.group(data, "posterior")
    samples = mcmc.get_samples(group_by_chain=True)
    np.testing.assert_array_equal(posterior["mu"].values, samples["mu"].numpy())
    theta = samples["mu"][..., None] + samples["tau"][..., None] * samples["theta_trans"]
    np.testing.assert_allclose(posterior["theta"].values, theta.numpy(), rtol=1e-6)
    assert compat.group(data, "log_likelihood")["y"].shape == (3, 30, 8)
    predicted_theta = compat.group(data, "posterior_predictive")["theta"].values
    np.testing.assert_allclose(predicted_theta, theta.numpy(), rtol=1e-6)
    # The run's per-draw statistics, under ArviZ's names.
    stats = compat.group(data, "sample_stats")
    for name, arviz_name in [
        ("accept_prob", "acceptance_rate"),
        ("diverging", "diverging"),
        ("energy_error", "energy_error"),
        ("step_size", "step_size"),
    ]:
        assert stats[arviz_name].dims == ("chain", "draw")
        np.testing.assert_array_equal(stats[arviz_name].values, mcmc.sample_stats[name].numpy())
    # Accepted draws moved, rejected ones repeat the previous draw.
    moved = np.diff(samples["mu"].numpy(), axis=1) != 0
    assert 0 < moved.mean() < 1
    assert np.all(stats["acceptance_rate"].values[:, 1:][moved] > 0)


# ---------------------------------------------------------------------------- arviz 0.x agrees

needs_arviz_0 = pytest.mark.skipif(compat.ARVIZ_1, reason="arviz 1.x has no from_pyro")


def agreement_case(which, request):
    """``(keyword arguments, posterior run or None)`` for one of the agreement cases."""
    if which in ("SimpleHMC", "NUTS"):
        mcmc = request.getfixturevalue("hmc_run" if which == "SimpleHMC" else "nuts_run")
        return schools_inputs(mcmc), mcmc
    if which == "MALA regression":
        mcmc = request.getfixturevalue("regression_run")
        return regression_inputs(mcmc), mcmc
    if which == "diverging":
        return {}, request.getfixturevalue("diverging_run")
    if which == "not vectorised":
        pyro.set_rng_seed(2)
        x, y = torch.randn(10, 2), torch.randn(10)
        return {}, run(RandomWalkMH(matmul_model), num_chains=1, num_samples=20, x=x, y=y)
    if which == "vectorized batch":
        mcmc = pyro_simplehmc.MCMC(
            RandomWalkMH(eight_schools), num_samples=20, warmup_steps=20, num_chains=3,
            chain_method="vectorized", disable_progbar=True,
        )
        mcmc.run(Y, SIGMA)
        return schools_inputs(mcmc), mcmc
    schools = schools_inputs(request.getfixturevalue("hmc_run"))
    regression = regression_inputs(request.getfixturevalue("regression_run"))
    return {
        "prior only": {"prior": schools["prior"]},
        "predictive only": {"posterior_predictive": schools["posterior_predictive"]},
        "predictions in chains": {
            key: regression[key]
            for key in ("predictions", "predictions_constant_data", "coords", "pred_dims")
        } | {"num_chains": 2},
        "constant data only": {"constant_data": {"J": 8, "sigma": SIGMA}},
        "prior and predictive": {
            key: schools[key] for key in ("prior", "posterior_predictive", "coords", "dims")
        } | {"num_chains": 2},
    }[which], None


AGREEMENT_CASES = [
    "SimpleHMC",
    "NUTS",
    "MALA regression",
    "diverging",
    "not vectorised",
    "vectorized batch",
    "prior only",
    "predictive only",
    "predictions in chains",
    "constant data only",
    "prior and predictive",
]


def convert_both(which, request):
    import arviz as az

    inputs, mcmc = agreement_case(which, request)
    with warnings.catch_warnings(record=True) as ours_warned:
        warnings.simplefilter("always")
        ours = from_pyro(mcmc, **inputs)
    with warnings.catch_warnings(record=True) as theirs_warned:
        warnings.simplefilter("always")
        theirs = az.from_pyro(mcmc, **inputs)
    vectorisation = [
        [str(w.message) for w in warned if NOT_VECTORIZED in str(w.message)]
        for warned in (ours_warned, theirs_warned)
    ]
    return ours, theirs, vectorisation


@needs_arviz_0
@pytest.mark.parametrize("which", AGREEMENT_CASES)
def test_agrees_with_arviz_from_pyro(which, request):
    ours, theirs, (ours_warned, theirs_warned) = convert_both(which, request)
    assert ours_warned == theirs_warned
    assert bool(theirs_warned) == (which == "not vectorised")
    assert_agrees(ours, theirs)


def assert_agrees(ours, ref):
    """The same groups; in each, the same variables with identical values, dtype, dims and
    coordinates, but for the known differences: ours adds sampler statistics, and files the
    ``pyro.deterministic`` sites with the posterior's variables (``posterior``, ``prior``)
    where arviz files them as observations (``observed_data``, ``log_likelihood``,
    ``prior_predictive``)."""
    assert set(compat.groups(ours)) == set(ref.groups())
    deterministic = set()
    if "posterior" in ref.groups():
        deterministic = set(compat.group(ours, "posterior").data_vars) - set(ref.posterior)
    for name in ref.groups():
        theirs, mine = getattr(ref, name), compat.group(ours, name)
        names = set(theirs.data_vars) - deterministic
        assert names or (name == "sample_stats" and not theirs.data_vars), name
        if name == "sample_stats":
            assert names <= set(mine.data_vars), name
        else:
            assert set(mine.data_vars) - deterministic == names, name
        for var in names:
            xr.testing.assert_equal(mine[var], theirs[var])
            assert mine[var].dtype == theirs[var].dtype, (name, var)
    for var in deterministic:
        if "prior" in ref.groups():
            xr.testing.assert_equal(compat.group(ours, "prior")[var], ref.prior_predictive[var])
        for name in ("observed_data", "log_likelihood", "prior_predictive"):
            assert name not in ref.groups() or var not in compat.group(ours, name), (name, var)


def corrupt(data, how):
    """``data`` with one group changed the way a faulty converter would change it."""
    groups = {name: compat.group(data, name).copy() for name in compat.groups(data)}
    if how == "chains of the predictions swapped":
        groups["predictions"] = groups["predictions"].roll(chain=1)
    elif how == "a group left out":
        del groups["predictions_constant_data"]
    elif how == "a variable left out":
        groups["log_likelihood"] = groups["log_likelihood"].drop_vars("z")
    elif how == "a coordinate renamed":
        groups["predictions"] = groups["predictions"].assign_coords(new=["a", "b", "c"])
    elif how == "divergences moved":
        groups["sample_stats"]["diverging"] = groups["sample_stats"]["diverging"].roll(draw=1)
    return compat.from_datasets(groups)


@needs_arviz_0
@pytest.mark.parametrize(
    ("which", "how"),
    [
        ("MALA regression", "chains of the predictions swapped"),
        ("MALA regression", "a group left out"),
        ("MALA regression", "a variable left out"),
        ("MALA regression", "a coordinate renamed"),
        ("diverging", "divergences moved"),
    ],
)
def test_agreement_check_fails_on_a_corrupted_result(which, how, request):
    ours, theirs, _ = convert_both(which, request)
    assert_agrees(ours, theirs)
    with pytest.raises(AssertionError):
        assert_agrees(corrupt(ours, how), theirs)


# ---------------------------------------------------------------------------- bad input


def test_mcmc_that_has_not_run():
    mcmc = MCMC(SimpleHMC(standard_normal), num_samples=10, disable_progbar=True)
    with pytest.raises(ValueError, match=r"posterior: the MCMC has not run; call mcmc.run"):
        from_pyro(mcmc)


def test_run_that_kept_no_samples():
    from pyro.ops.streaming import StatsOfDict

    mcmc = StreamingMCMC(
        SimpleHMC(standard_normal), num_samples=10, warmup_steps=5, disable_progbar=True,
        statistics=StatsOfDict(),
    )
    mcmc.run()
    with pytest.raises(ValueError, match="posterior: a StreamingMCMC keeps no samples"):
        from_pyro(mcmc)
    with pytest.raises(ValueError, match=r"posterior must be a pyro\.infer\.MCMC"):
        from_pyro({"x": torch.zeros(2, 10)})


@pytest.mark.parametrize(
    ("coords", "dims", "pattern"),
    [
        (None, {"theta": ["school", "extra"]}, r"dims\['theta'\] has 2 names .* 1 dimensions"),
        (None, {"mu": ["one"]}, r"dims\['mu'\] has 1 names .* 0 dimensions"),
        (None, {"theta": "school"}, r"dims\['theta'\] must be a list of dimension names"),
        (None, {"theta": ["chain"]}, r"dims\['theta'\] may not name 'chain'"),
        ({"school": list("ABC")}, DIMS, r"coords\['school'\] must hold 8 values"),
        ([("school", 1)], None, "coords must be a dict"),
        (None, ["theta"], "dims must be a dict"),
    ],
)
def test_coords_and_dims_that_do_not_match(hmc_run, coords, dims, pattern):
    with pytest.raises(ValueError, match=pattern):
        from_pyro(hmc_run, coords=coords, dims=dims)


def test_dims_and_coords_of_absent_variables_are_ignored(hmc_run):
    """As in arviz (both lines): one ``dims`` serves several calls. ``DIMS`` names ``sigma``,
    constant data not given here, and ``coords`` a dimension no variable has."""
    prior = schools_inputs(hmc_run)["prior"]
    data = from_pyro(prior=prior, coords={**COORDS, "county": [1, 2]}, dims=DIMS)
    assert compat.group(data, "prior")["theta"].dims == ("chain", "draw", "school")
    assert "county" not in compat.group(data, "prior").coords


def test_predictive_draws_that_do_not_match_their_dims(regression_run):
    """The site and the group are named: shapes of Predictive's draws are checked against
    ``dims`` and ``pred_dims``, and the same dimension must have one size."""
    inputs = regression_inputs(regression_run)
    wrong = {**inputs, "pred_dims": {**REG_PRED_DIMS, "y": ["new", "extra"]}}
    with pytest.raises(ValueError, match=r"pred_dims\['y'\] has 2 names .* predictions\['y'\]"):
        from_pyro(regression_run, **wrong)
    # Predictions at new points described with the observations' dims: sizes 6 and 3.
    wrong = {**inputs, "pred_dims": None, "dims": {**REG_DIMS, "y": ["obs"]}}
    wrong["posterior_predictive"] = {"y": inputs["predictions"]["y"]}
    pattern = r"dims gives dimension 'obs' size 3 in posterior_predictive\['y'\] and 6 in "
    with pytest.raises(ValueError, match=pattern):
        from_pyro(regression_run, **wrong)
    with pytest.raises(ValueError, match=r"posterior_predictive\['y'\] must be an array of draws"):
        from_pyro(regression_run, posterior_predictive={"y": torch.tensor(1.0)})
    with pytest.raises(ValueError, match=r"prior\['y'\] must be an array of draws"):
        from_pyro(prior={"y": np.array(["a", "b"])})
    with pytest.raises(ValueError, match=r"constant_data\['x'\] must be a number or an array"):
        from_pyro(constant_data={"x": "text"})
    with pytest.raises(ValueError, match="prior must hold at least one site"):
        from_pyro(regression_run, prior={})


def test_predictive_draws_of_another_number_of_draws_are_one_chain(regression_run):
    """As arviz 0.x (which logs it), with a warning naming the site."""
    draws = predictive(regression, X, num_samples=7)
    with pytest.warns(UserWarning, match=r"posterior_predictive\['y'\] has 7 draws, not chain"):
        data = from_pyro(regression_run, posterior_predictive={"y": draws["y"]})
    assert compat.group(data, "posterior_predictive")["y"].shape == (1, 7, 6)


def test_num_chains(regression_run):
    predictions = regression_inputs(regression_run)["predictions"]
    with pytest.raises(ValueError, match=r"num_chains=7 must divide .* predictions\['y'\]"):
        from_pyro(predictions=predictions, num_chains=7)
    with pytest.raises(ValueError, match="num_chains must be an integer >= 1"):
        from_pyro(predictions=predictions, num_chains=0)
    # Ignored with a posterior, whose chains it is (as arviz 0.x).
    data = from_pyro(regression_run, predictions=predictions, num_chains=3)
    assert compat.group(data, "predictions")["y"].shape == (2, 30, 3)


def test_unknown_and_missing_arguments(hmc_run):
    with pytest.raises(TypeError, match=r"unknown arguments \['posterior_predictve'\]; it takes "
                       r"posterior, prior, posterior_predictive, log_likelihood, "):
        from_pyro(hmc_run, posterior_predictve={})
    with pytest.raises(ValueError, match="from_pyro needs at least one of posterior, prior"):
        from_pyro()
    with pytest.raises(ValueError, match="log_likelihood=True needs posterior"):
        from_pyro(prior={"x": torch.zeros(5)}, log_likelihood=True)


def test_log_likelihood_argument():
    pyro.set_rng_seed(0)
    mcmc = MCMC(
        SimpleHMC(potential_fn=lambda p: 0.5 * (p["x"] ** 2).sum()),
        num_samples=10,
        warmup_steps=5,
        initial_params={"x": torch.zeros(2)},
        disable_progbar=True,
    )
    mcmc.run()
    data = from_pyro(mcmc)  # no model: posterior and sample stats only
    assert set(compat.groups(data)) == {"posterior", "sample_stats"}
    with pytest.raises(ValueError, match="log_likelihood=True needs a model"):
        from_pyro(mcmc, log_likelihood=True)
    with pytest.raises(ValueError, match="log_likelihood must be True or False"):
        from_pyro(mcmc, log_likelihood="yes")


def test_run_that_kept_only_some_sites():
    """``save_params`` keeps some latent sites: deterministic sites cannot be replayed (a
    warning says so) and the log-likelihood cannot be computed (an error when asked for, a
    warning by default)."""
    pyro.set_rng_seed(0)
    mcmc = MCMC(
        SimpleHMC(eight_schools, num_steps=3),
        num_samples=10,
        warmup_steps=10,
        save_params=["mu", "tau"],
        disable_progbar=True,
    )
    mcmc.run(Y, SIGMA)
    with pytest.warns(UserWarning, match=r"deterministic sites \['theta'\] left out"):
        data = from_pyro(mcmc, log_likelihood=False)
    assert set(compat.group(data, "posterior").data_vars) == {"mu", "tau"}
    with pytest.raises(ValueError, match=r"log_likelihood=True: .* needs draws of every latent"):
        from_pyro(mcmc, log_likelihood=True)
    with pytest.warns(UserWarning, match="log_likelihood group left out"):
        data = from_pyro(mcmc)
    assert "log_likelihood" not in compat.groups(data)
