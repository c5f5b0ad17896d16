"""The MAMS benchmark suite: the gym targets, a tiny run that writes its results, the command,
and a verdict that a wrong truth turns false."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch

from pyro_simplehmc.checks.gym_targets import GYM_TARGETS, get_gym_target, load_gym_data
from pyro_simplehmc.checks.targets import diagonal_gaussian
from pyro_simplehmc.cli.main import build_parser, main
from pyro_simplehmc.compare.benchmark_suite import HEADLINE, run_suite


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("name", list(GYM_TARGETS))
def test_every_gym_target_has_a_finite_density_and_a_truth_of_its_shape(name):
    target = get_gym_target(name)
    generator = torch.Generator().manual_seed(0)
    flat = torch.cat([v.reshape(-1) for v in target.initial_params.values()])
    points = flat + 0.1 * torch.randn(3, flat.numel(), generator=generator, dtype=flat.dtype)
    assert torch.isfinite(target.log_density(points)).all()
    validated = target.flatten({k: v.unsqueeze(0) for k, v in target.initial_params.items()})
    assert validated.shape == (1, target.dim)
    assert target.mean.shape == target.var.shape == (target.dim,)
    assert (target.var > 0).all() and torch.isfinite(target.mean).all()


def test_gym_truths_are_the_analytic_and_the_published_ones():
    assert get_gym_target("banana").var.tolist() == pytest.approx([100.0, 19.0])
    rosenbrock = get_gym_target("rosenbrock")
    assert rosenbrock.mean[-1].item() == 2.0 and rosenbrock.var[-1].item() == pytest.approx(6.1)
    gaussian = get_gym_target("gaussian")
    assert gaussian.var.max() / gaussian.var.min() == pytest.approx(100.0)
    # The Brownian motion's exact truth (quadrature), not inference-gym's published one
    assert get_gym_target("brownian_motion").mean[1].item() == pytest.approx(0.11274, abs=1e-4)
    assert load_gym_data()["brownian_motion"]["gym_truth"]["mean"][1] == pytest.approx(
        0.10105, abs=1e-5
    )
    # inference-gym's published means (Stan), as bundled
    volatility = get_gym_target("stochastic_volatility")
    assert volatility.mean[0].item() == pytest.approx(0.92498, abs=1e-4)  # persistence
    assert get_gym_target("item_response_theory").dim == 501


def test_the_suite_runs_and_writes_its_results(tmp_path):
    payload = run_suite(models=["logistic_regression"], contenders=["MAMS", "NUTS"], num_chains=4,
                        num_samples=30, warmup_steps=30, nuts_chains=2, out=tmp_path)  # fmt: skip
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["contender"] for r in saved["rows"]] == ["MAMS", "NUTS"]
    for row in saved["rows"]:
        assert row["sampling gradients per chain"] > 0 and HEADLINE in row
    assert (
        "goals" in saved
        and "| logistic_regression | MAMS |" in (tmp_path / "results.md").read_text()
    )
    assert payload["settings"]["num_chains"] == 4


def test_a_wrong_truth_makes_the_agreement_false():
    target = diagonal_gaussian(2)
    wrong = dataclasses.replace(target, mean=target.mean + 0.5, var=2.0 * target.var)
    payload = run_suite(models={"right": target, "wrong": wrong}, contenders=["MALA"],
                        num_chains=8, num_samples=400, warmup_steps=200)  # fmt: skip
    verdicts = {r["model"]: r["agrees with truth"] for r in payload["rows"]}
    assert verdicts == {"right": True, "wrong": False}
    assert payload["rows"][1]["verdict"] == "FAIL"


def test_the_command_parses_and_runs_quick(tmp_path, capsys):
    args = build_parser().parse_args(["benchmark", "--suite", "mams", "--quick"])
    assert args.quick and args.handler.__module__ == "pyro_simplehmc.cli.benchmark"
    with pytest.raises(SystemExit) as exit_:
        main(["benchmark", "--help"])
    assert exit_.value.code == 0
    status = main(["benchmark", "--suite", "mams", "--quick", "--models", "gaussian",
                   "--contenders", "ChEES", "--chains", "2", "--samples", "20", "--warmup",
                   "20", "--out", str(tmp_path)])  # fmt: skip
    assert status == 0 and (tmp_path / "results.json").exists()
    assert "| gaussian | ChEES |" in capsys.readouterr().out


@pytest.mark.slow  # about 10 s: JAX traces every target's density
def test_the_jax_densities_match_the_targets():
    pytest.importorskip("blackjax")
    pytest.importorskip("numpyro")
    import jax.numpy as jnp

    from pyro_simplehmc.compare.benchmark_jax import log_density

    for name in GYM_TARGETS:
        target = get_gym_target(name)
        flat = torch.cat([v.reshape(-1) for v in target.initial_params.values()])
        points = flat + 0.2 * torch.randn(2, flat.numel(), dtype=flat.dtype)
        ours = target.log_density(points).numpy()
        theirs = np.array([float(log_density(target)(jnp.asarray(p.numpy()))) for p in points])
        assert np.ptp(theirs - ours) < 1e-8, name  # equal up to a constant
