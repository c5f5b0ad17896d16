"""``_arviz_compat``: the same calls and results shapes on arviz 0.x and 1.x.

ESS, MCSE and R-hat are arviz's own (compared with arviz's dataset functions, which both
versions share); the summary keeps the columns both versions compute; the forest plot is a
matplotlib figure with one entry per run.
"""

from __future__ import annotations

import arviz as az
import matplotlib
import matplotlib.pyplot
import matplotlib.text
import numpy as np
import pytest
import xarray as xr

from pyro_simplehmc.mcmc import arviz_compat as compat

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def draws():
    rng = np.random.default_rng(1)
    # An AR(1) chain, so that ESS is well below the number of draws.
    noise = rng.normal(size=(2, 400, 3))
    x = np.zeros_like(noise)
    for t in range(1, 400):
        x[:, t] = 0.8 * x[:, t - 1] + noise[:, t]
    return x


def test_ess_mcse_rhat_are_arvizs(draws):
    dataset = az.convert_to_dataset({"x": draws})
    for method in ("bulk", "tail"):
        expected = az.ess(dataset, method=method)["x"].values
        np.testing.assert_array_equal(compat.ess(draws, method), expected)
    np.testing.assert_array_equal(compat.mcse(draws), az.mcse(dataset)["x"].values)
    np.testing.assert_array_equal(
        compat.mcse(draws, "sd"), az.mcse(dataset, method="sd")["x"].values
    )
    np.testing.assert_array_equal(compat.rhat(draws), az.rhat(dataset)["x"].values)
    one = compat.ess(draws[..., 0])
    assert isinstance(one, float) and one == compat.ess(draws)[0]
    # Autocorrelated draws: fewer effective draws than draws (so a mix-up with N would show).
    assert np.all(compat.ess(draws) < 0.5 * 800)
    assert isinstance(compat.ess(dataset), xr.Dataset)


def test_summary_has_the_shared_columns(draws):
    posterior = compat.posterior_from_dict({"mu": draws[..., 0], "theta": draws})
    table = compat.summary(posterior, var_names=["mu", "theta"])
    assert list(table.columns) == list(compat.SUMMARY_COLUMNS)
    assert list(table.index) == ["mu", "theta[0]", "theta[1]", "theta[2]"]
    np.testing.assert_allclose(table.loc["theta[1]", "mean"], draws[..., 1].mean())
    np.testing.assert_allclose(table["ess_bulk"].values[1:], compat.ess(draws))


def test_containers():
    posterior = compat.posterior_from_dict({"mu": np.zeros((2, 5))})
    assert compat.groups(posterior) == ["posterior"]
    assert compat.group(posterior, "posterior")["mu"].dims == ("chain", "draw")
    container = compat.from_datasets({"posterior": compat.group(posterior, "posterior")})
    assert isinstance(container, xr.DataTree if compat.ARVIZ_1 else az.InferenceData)
    observed = compat.dict_to_dataset({"y": np.arange(3.0)}, sample_dims=())
    assert observed["y"].dims == ("y_dim_0",)


def test_forest_plot_shows_every_run(draws):
    posteriors = {
        "a": compat.posterior_from_dict({"mu": draws[..., 0]}),
        "b": compat.posterior_from_dict({"mu": draws[..., 0] + 1}),
    }
    figure = compat.plot_forest(posteriors, var_names=["mu"])
    assert isinstance(figure, matplotlib.figure.Figure)
    shown = {text.get_text() for text in figure.findobj(matplotlib.text.Text)}
    assert {"a", "b", "mu"} <= shown  # the runs' names (legend) and the variable
    matplotlib.pyplot.close(figure)


def test_default_log_likelihood_follows_arviz():
    """arviz 0.x's setting where it has one (from_pyro's default follows it), else True."""
    if compat.ARVIZ_1:
        assert compat.default_log_likelihood() is True
        return
    assert compat.default_log_likelihood() is bool(az.rcParams["data.log_likelihood"])
    with az.rc_context({"data.log_likelihood": False}):
        assert compat.default_log_likelihood() is False
