"""``pyro_simplehmc.from_pyro``: the same groups and names on arviz 0.x and 1.x, the values the
run and the model imply, agreement with ``arviz.from_pyro`` where arviz 0.x has it, and clear
errors for runs it cannot convert.

Values are checked exactly (they are copies or deterministic functions of the draws), so no
Monte-Carlo tolerance is involved; each check is shown to fail on a corrupted result.
"""

from __future__ import annotations

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
import xarray as xr
from pyro.infer import MCMC, NUTS
from pyro.infer.mcmc.api import StreamingMCMC

import pyro_simplehmc
from pyro_simplehmc import RandomWalkMH, SimpleHMC, from_pyro
from pyro_simplehmc.mcmc import arviz_compat as compat

Y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
SIGMA = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])
COORDS = {"school": list("ABCDEFGH")}
DIMS = {"theta_trans": ["school"], "theta": ["school"], "y": ["school"]}


def eight_schools(y, sigma):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("schools", len(y)):
        theta_trans = pyro.sample("theta_trans", dist.Normal(0.0, 1.0))
        theta = pyro.deterministic("theta", mu + tau * theta_trans)
        pyro.sample("y", dist.Normal(theta, sigma), obs=y)


def unbatched(y):
    """No plate: the observation is one event of 8, so the model does not broadcast over a
    batch of draws and ``from_pyro`` replays it draw by draw."""
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    pyro.deterministic("shifted", mu + torch.arange(3.0))
    pyro.sample("y", dist.Normal(mu, 10.0).expand([len(y)]).to_event(1), obs=y)


def standard_normal():
    pyro.sample("x", dist.Normal(0.0, 1.0))


def run(kernel, *args, num_chains=2, num_samples=40, warmup_steps=30, seed=0):
    pyro.set_rng_seed(seed)
    mcmc = MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        disable_progbar=True,
    )
    mcmc.run(*args)
    return mcmc


@pytest.fixture(scope="module")
def hmc_run():
    return run(SimpleHMC(eight_schools, num_steps=5, num_steps_jitter=0.0), Y, SIGMA)


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


def test_model_that_does_not_broadcast_is_replayed_draw_by_draw():
    mcmc = run(RandomWalkMH(unbatched), Y, num_chains=1, num_samples=30)
    data = from_pyro(mcmc, log_likelihood=True)
    mu = mcmc.get_samples(group_by_chain=True)["mu"].numpy()
    posterior = compat.group(data, "posterior")
    np.testing.assert_allclose(posterior["shifted"].values, mu[..., None] + np.arange(3.0))
    log_lik = compat.group(data, "log_likelihood")["y"].values
    assert log_lik.shape == (1, 30)
    expected = dist.Normal(torch.from_numpy(mu)[..., None], 10.0).log_prob(Y).sum(-1).numpy()
    np.testing.assert_allclose(log_lik, expected, rtol=1e-5)


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


def test_per_draw_hooks(hmc_run):
    """``mcmc.sample_stats`` (chain, draw) and the kernel diagnostics' ``"sample stats"``
    (draw,) per chain both reach ``sample_stats``; a wrong shape is an error naming the hook."""
    energy_error = np.arange(80.0).reshape(2, 40)
    diagnostics = hmc_run._diagnostics
    try:
        for chain, d in enumerate(diagnostics):
            d["sample stats"] = {"acceptance_rate": torch.full((40,), 0.5 + chain / 10)}
        hmc_run.sample_stats = {"energy_error": energy_error}
        stats = compat.group(from_pyro(hmc_run), "sample_stats")
        np.testing.assert_array_equal(stats["energy_error"].values, energy_error)
        assert stats["energy_error"].dims == ("chain", "draw")
        np.testing.assert_allclose(stats["acceptance_rate"].values[:, 0], [0.5, 0.6])

        hmc_run.sample_stats = {"energy_error": energy_error[:, :-1]}
        with pytest.raises(ValueError, match=r"mcmc.sample_stats\['energy_error'\] must have"):
            from_pyro(hmc_run)
        del hmc_run.sample_stats
        diagnostics[1]["sample stats"] = {"acceptance_rate": torch.zeros(3)}
        with pytest.raises(ValueError, match=r"'sample stats'.*one value per draw"):
            from_pyro(hmc_run)
    finally:
        for d in diagnostics:
            d.pop("sample stats", None)
        if hasattr(hmc_run, "sample_stats"):
            del hmc_run.sample_stats


def test_leaves_the_global_random_stream_alone(hmc_run):
    state = torch.get_rng_state()
    from_pyro(hmc_run, log_likelihood=True)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.skipif(compat.ARVIZ_1, reason="arviz 1.x has no from_pyro to agree with")
@pytest.mark.parametrize("which", ["SimpleHMC", "NUTS", "diverging"])
def test_agrees_with_arviz_from_pyro(which, hmc_run, diverging_run):
    import arviz as az

    if which == "NUTS":
        mcmc = run(NUTS(eight_schools), Y, SIGMA, num_samples=20, warmup_steps=20)
    else:
        mcmc = hmc_run if which == "SimpleHMC" else diverging_run
    coords, dims = (COORDS, DIMS) if which != "diverging" else (None, None)
    ours = from_pyro(mcmc, coords=coords, dims=dims, log_likelihood=True)
    # arviz's dims may not name the deterministic site, which it does not know as one.
    ref_dims = None if dims is None else {k: v for k, v in dims.items() if k != "theta"}
    ref = az.from_pyro(mcmc, coords=coords, dims=ref_dims, log_likelihood=True)
    assert set(ref.groups()) == set(compat.groups(ours))
    assert_agrees(ours, ref)


def assert_agrees(ours, ref):
    """Every variable of arviz's groups that is not a deterministic site is identical in ours
    (values, dtype, dims, coordinates); arviz files ``pyro.deterministic`` sites as
    observations, which they are not."""
    deterministic = set(compat.group(ours, "posterior").data_vars) - set(ref.posterior.data_vars)
    for name in ref.groups():
        theirs = getattr(ref, name)
        names = [v for v in theirs.data_vars if v not in deterministic]
        mine = compat.group(ours, name)
        assert names, name
        for var in names:
            xr.testing.assert_equal(mine[var], theirs[var])
            assert mine[var].dtype == theirs[var].dtype, (name, var)


@pytest.mark.skipif(compat.ARVIZ_1, reason="arviz 1.x has no from_pyro to agree with")
def test_agreement_check_fails_on_a_corrupted_result(diverging_run):
    import arviz as az

    ours = from_pyro(diverging_run)
    ref = az.from_pyro(diverging_run, log_likelihood=False)
    assert_agrees(ours, ref)
    ours.sample_stats["diverging"] = ours.sample_stats["diverging"].roll(draw=1)
    with pytest.raises(AssertionError):
        assert_agrees(ours, ref)


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
    data = from_pyro(mcmc, coords=COORDS, dims=DIMS, log_likelihood=True)
    posterior = compat.group(data, "posterior")
    samples = mcmc.get_samples(group_by_chain=True)
    np.testing.assert_array_equal(posterior["mu"].values, samples["mu"].numpy())
    theta = samples["mu"][..., None] + samples["tau"][..., None] * samples["theta_trans"]
    np.testing.assert_allclose(posterior["theta"].values, theta.numpy(), rtol=1e-6)
    assert compat.group(data, "log_likelihood")["y"].shape == (3, 30, 8)
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


# ---------------------------------------------------------------------------- bad input


def test_mcmc_that_has_not_run():
    mcmc = MCMC(SimpleHMC(standard_normal), num_samples=10, disable_progbar=True)
    with pytest.raises(ValueError, match=r"mcmc has not run: call mcmc.run"):
        from_pyro(mcmc)


def test_run_that_kept_no_samples():
    from pyro.ops.streaming import StatsOfDict

    mcmc = StreamingMCMC(
        SimpleHMC(standard_normal), num_samples=10, warmup_steps=5, disable_progbar=True,
        statistics=StatsOfDict(),
    )
    mcmc.run()
    with pytest.raises(ValueError, match="mcmc: a StreamingMCMC keeps no samples"):
        from_pyro(mcmc)
    with pytest.raises(ValueError, match=r"mcmc must be a pyro\.infer\.MCMC"):
        from_pyro({"x": torch.zeros(2, 10)})


@pytest.mark.parametrize(
    ("coords", "dims", "pattern"),
    [
        (None, {"theta": ["school", "extra"]}, r"dims\['theta'\] has 2 names .* 1 dimensions"),
        (None, {"mu": ["one"]}, r"dims\['mu'\] has 1 names .* 0 dimensions"),
        (None, {"thetta": ["school"]}, "dims names 'thetta', which is not a site"),
        (None, {"theta": "school"}, r"dims\['theta'\] must be a list of dimension names"),
        (None, {"theta": ["chain"]}, r"dims\['theta'\] may not name 'chain'"),
        ({"school": list("ABC")}, DIMS, r"coords\['school'\] must hold 8 values"),
        ({"county": list("ABCDEFGH")}, DIMS, "coords names dimension 'county'"),
        ([("school", 1)], None, "coords must be a dict"),
        (None, ["theta"], "dims must be a dict"),
    ],
)
def test_coords_and_dims_that_do_not_match(hmc_run, coords, dims, pattern):
    with pytest.raises(ValueError, match=pattern):
        from_pyro(hmc_run, coords=coords, dims=dims)


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
    warning says so) and the log-likelihood cannot be computed (an error says so)."""
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
        data = from_pyro(mcmc)
    assert set(compat.group(data, "posterior").data_vars) == {"mu", "tau"}
    with pytest.raises(ValueError, match=r"log_likelihood=True needs draws of every latent"):
        from_pyro(mcmc, log_likelihood=True)
