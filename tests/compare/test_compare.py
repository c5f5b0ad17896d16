"""The comparison runner: every column against an independent computation, and a validation
that can fail."""

from __future__ import annotations

import csv
import json
import math
import warnings

import arviz as az
import numpy as np
import pytest
from pyro.infer import HMC

from pyro_simplehmc import RandomWalkMH, SimpleHMC
from pyro_simplehmc.checks.targets import correlated_gaussian, diagonal_gaussian
from pyro_simplehmc.compare import as_kernel_spec, bonferroni_threshold, compare
from pyro_simplehmc.compare.report import format_table, write_csv, write_json
from pyro_simplehmc.compare.runner import KERNELS, run_chain
from pyro_simplehmc.compare.scaling import fit_slope
from tests.broken_kernels import HMCWithoutMetropolis

NUM_SAMPLES, WARMUP, CHAINS, STEPS = 200, 50, 2, 5


def fixed_hmc(potential_fn):
    # No adaptation: the cost per iteration is exactly known.
    return SimpleHMC(
        potential_fn=potential_fn,
        step_size=0.25,
        num_steps=STEPS,
        num_steps_jitter=0.0,
        adapt_step_size=False,
        adapt_mass_matrix=False,
    )


def pyro_fixed_hmc(potential_fn):
    return HMC(
        potential_fn=potential_fn,
        step_size=0.25,
        num_steps=STEPS,
        adapt_step_size=False,
        adapt_mass_matrix=False,
    )


@pytest.fixture(scope="module")
def tiny():
    kernels = [
        "RandomWalkMH",
        as_kernel_spec("FixedHMC", fixed_hmc),
        as_kernel_spec("PyroFixedHMC", pyro_fixed_hmc),
        "RandomWalkKernel",
    ]
    with pytest.warns(RuntimeWarning):  # small runs: "ESS < 100" warnings are expected
        return compare(
            correlated_gaussian(),
            kernels=kernels,
            num_samples=NUM_SAMPLES,
            warmup_steps=WARMUP,
            num_chains=CHAINS,
            seed=0,
            reference="PyroFixedHMC",
            progress=False,
            batch_chains=None,  # every kernel per chain, fixed draws: the known counts
            max_evals=None,
        )


def test_ess_columns_are_arviz(tiny):
    for result in tiny.results:
        draws = tiny.draws[result.name]
        assert draws.shape == (CHAINS, NUM_SAMPLES, 2)
        for values, data, method in (
            (result.ess_bulk_x, draws, "bulk"),
            (result.ess_tail_x, draws, "tail"),
            (result.ess_bulk_x2, draws**2, "bulk"),
            (result.ess_tail_x2, draws**2, "tail"),
        ):
            expected = az.ess(az.convert_to_dataset({"v": data}), method=method)["v"].values
            np.testing.assert_allclose(values, expected, rtol=1e-10)
        r_hat = [
            az.rhat(az.convert_to_dataset({"v": d}))["v"].values.max() for d in (draws, draws**2)
        ]
        assert result.r_hat == pytest.approx(max(r_hat))


def test_moments_and_z_scores_are_recomputable(tiny):
    target = correlated_gaussian()
    for result in tiny.results:
        draws = tiny.draws[result.name]
        flat = draws.reshape(-1, 2)
        np.testing.assert_allclose(result.mean, flat.mean(0))
        np.testing.assert_allclose(result.var, flat.var(0))  # about the sample mean, / n
        mcse = az.mcse(az.convert_to_dataset({"v": draws}))["v"].values
        np.testing.assert_allclose(result.mean_mcse, mcse)
        z = (flat.mean(0) - target.mean.numpy()) / mcse
        np.testing.assert_allclose(result.z_mean_truth, z)
        assert result.max_abs_z_truth == pytest.approx(
            np.abs(result.z_mean_truth + result.z_var_truth).max()
        )


def test_evaluation_counts_are_the_known_numbers(tiny):
    # A fixed-length trajectory of L steps costs L gradients (the first one is the last one of
    # the previous trajectory); setup costs one more.
    for name in ("FixedHMC", "PyroFixedHMC"):
        result = tiny[name]
        assert result.gradient_evals == {
            "warmup": CHAINS * (1 + STEPS * WARMUP),
            "sampling": CHAINS * STEPS * NUM_SAMPLES,
        }
        assert result.cost == CHAINS * STEPS * NUM_SAMPLES
        assert result.ess_per_eval == pytest.approx(result.min_bulk_ess / result.cost)
    # Random walks: one potential and no gradient per sampling iteration.
    for name in ("RandomWalkMH", "RandomWalkKernel"):
        result = tiny[name]
        assert result.potential_evals["sampling"] == CHAINS * NUM_SAMPLES
        assert result.gradient_evals == {"warmup": 0, "sampling": 0}
        assert result.cost == CHAINS * NUM_SAMPLES


def test_acceptance_of_a_random_walk_is_its_move_rate(tiny):
    for name in ("RandomWalkMH", "RandomWalkKernel"):
        result = tiny[name]
        draws = tiny.draws[name]
        moved = np.any(draws[:, 1:] != draws[:, :-1], axis=-1).mean()
        assert result.moved_fraction == pytest.approx(moved)
        # The kernel's own count includes the first draw's move: agree within one per chain.
        assert abs(result.acceptance_rate - moved) <= 1.0 / (NUM_SAMPLES - 1)


def test_report_files(tiny, tmp_path):
    table = format_table(tiny)
    for result in tiny.results:
        assert result.name in table
    rows = list(csv.DictReader(write_csv(tiny, tmp_path / "t.csv").open()))
    assert [r["kernel"] for r in rows] == [r.name for r in tiny.results]
    assert float(rows[0]["min_ess_bulk_x"]) == pytest.approx(min(tiny.results[0].ess_bulk_x))
    data = json.loads(write_json(tiny, tmp_path / "t.json").read_text())
    assert data["target"] == "correlated_gaussian"
    assert data["results"][1]["summary"]["sampling_gradient_evals"] == CHAINS * STEPS * NUM_SAMPLES


NoCorrectionHMC = HMCWithoutMetropolis


def test_validation_fails_a_kernel_without_metropolis_correction():
    # Leapfrog with step 1.4 on a unit Gaussian leaves a large energy error; uncorrected, the
    # chain samples a wider distribution (variance about 1 / (1 - 1.4^2 / 4) = 1.96). The same
    # kernel with the correction must pass: the test can tell the two apart.
    settings = {
        "step_size": 1.4,
        "num_steps": 3,
        "num_steps_jitter": 0.0,
        "adapt_step_size": False,
        "adapt_mass_matrix": False,
    }
    kernels = [
        as_kernel_spec("correct", lambda u: SimpleHMC(potential_fn=u, **settings)),
        as_kernel_spec("broken", lambda u: NoCorrectionHMC(potential_fn=u, **settings)),
    ]
    result = compare(
        diagonal_gaussian(2, 1.0, 1.0),
        kernels=kernels,
        num_samples=1000,
        warmup_steps=20,
        num_chains=4,  # verdicts need R-hat < 1.01: four chains estimate it far more steadily
        reference="correct",
        progress=False,
        batch_chains=None,  # per chain (the batched version: tests/compare/test_execution.py)
        max_evals=None,
    )
    assert result["correct"].status_truth == "PASS"
    assert result["broken"].status_truth == "FAIL"
    assert result["broken"].status_ref == "FAIL"  # against the reference as well
    assert "FAIL" in format_table(result)
    assert not result.passed
    assert result.reliable_failures == ["broken"]  # enough draws for the verdict to stand


@pytest.mark.parametrize("reference", ["broken", "correct"])
def test_a_reference_that_fails_against_the_truth_judges_no_one(reference):
    # Issue 20: a reference whose own draws FAIL against the known truth is flagged (a warning
    # on every other kernel), and no one gets a verdict against it; the control, a correct
    # reference, does judge the others.
    settings = {"step_size": 1.4, "num_steps": 3, "num_steps_jitter": 0.0,
                "adapt_step_size": False, "adapt_mass_matrix": False}  # fmt: skip
    kernels = [
        as_kernel_spec("correct", lambda u: SimpleHMC(potential_fn=u, **settings)),
        as_kernel_spec("broken", lambda u: NoCorrectionHMC(potential_fn=u, **settings)),
    ]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = compare(diagonal_gaussian(2, 1.0, 1.0), kernels=kernels, num_samples=1000,
                         warmup_steps=20, num_chains=4, reference=reference, progress=False,
                         batch_chains=None, max_evals=None)  # fmt: skip
    other = "correct" if reference == "broken" else "broken"
    flagged = any("its own draws FAIL against the truth" in str(w.message) for w in record)
    if reference == "broken":
        assert result["broken"].status_truth == "FAIL"
        assert flagged
        assert result[other].status_ref == "-"  # not judged against it
    else:
        assert result["correct"].status_truth == "PASS"
        assert not flagged
        assert result[other].status_ref == "FAIL"


def test_a_chain_that_never_moves_has_zero_ess_and_a_warning():
    stuck = as_kernel_spec(
        "stuck",
        lambda u: RandomWalkMH(
            potential_fn=u, step_size=1e6, adapt_step_size=False, adapt_mass_matrix=False
        ),
        uses_gradient=False,
    )
    with pytest.warns(RuntimeWarning) as record:
        result = compare(
            correlated_gaussian(),
            kernels=[stuck],
            num_samples=50,
            warmup_steps=0,
            num_chains=2,
            progress=False,
            batch_chains=None,
        )
    assert any("never moved" in str(w.message) for w in record)
    stuck_result = result["stuck"]
    assert stuck_result.acceptance_rate == 0.0 and stuck_result.moved_fraction == 0.0
    for values in (stuck_result.ess_bulk_x, stuck_result.ess_tail_x2):
        assert values == [0.0, 0.0]
    assert stuck_result.ess_per_eval == 0.0 and not math.isnan(stuck_result.ess_per_second)
    assert stuck_result.status_truth == "NOT MIXED"  # no verdict from a chain that never moved
    assert result.reliable_failures == [] and result.unreliable == ["stuck"]


def test_threshold_is_bonferroni():
    assert bonferroni_threshold(4) == pytest.approx(3.6623, abs=1e-3)
    assert bonferroni_threshold(20) > bonferroni_threshold(4)


def test_fit_slope_recovers_a_power_law_and_skips_zeros():
    dims = np.array([2.0, 10.0, 50.0, 100.0])
    slope, _ = fit_slope(dims, 3.0 * dims**-0.25)
    assert slope == pytest.approx(-0.25)
    slope, _ = fit_slope(dims, [1.0, 0.1, 0.02, 0.0])
    assert slope == pytest.approx(fit_slope(dims[:3], [1.0, 0.1, 0.02])[0])
    assert math.isnan(fit_slope([2.0], [1.0])[0])


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"kernels": ["Gibbs"]}, "unknown kernel"),
        ({"kernels": []}, "at least one"),
        ({"num_samples": 0}, "num_samples"),
        ({"num_chains": 1.5}, "num_chains"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        compare(correlated_gaussian(), progress=False, **kwargs)


@pytest.mark.parametrize("name", ["RandomWalkMH", "MALA", "SimpleHMC"])
def test_our_kernels_count_what_the_wrapper_counts(name):
    # Two independent counts of the same thing: the kernel's diagnostics and the wrapped
    # potential (adaptation on, so step-size searches are included).
    chain = run_chain(KERNELS[name], correlated_gaussian(), num_samples=30, warmup_steps=30, seed=1)
    assert dict(chain.diagnostics["potential evaluations"]) == chain.potentials
    assert dict(chain.diagnostics["gradient evaluations"]) == chain.gradients
    assert chain.potentials["sampling"] > 0


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"dims": [2, "a"]}, "dims"),
        ({"dims": []}, "dims"),
        ({"low": 0.0}, "low"),
        ({"kernels": ["Gibbs"]}, "unknown kernel"),
        ({"num_samples": 0}, "num_samples"),
    ],
)
def test_scaling_bad_arguments_name_the_argument(kwargs, argument):
    from pyro_simplehmc.compare.scaling import scaling

    with pytest.raises(ValueError, match=argument):
        scaling(**{"dims": [2], "progress": False, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"progress": "yes"}, "progress"),
        ({"seed": -1}, "seed"),
        ({"full_mass": "dense"}, "full_mass"),
        ({"lengths": {"MALA": 0}}, "lengths"),
        ({"reference": 3}, "reference"),
    ],
)
def test_compare_bad_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        compare(correlated_gaussian(), kernels=["MALA"], **kwargs)


def test_full_mass_reaches_every_kernel_that_takes_one():
    from pyro_simplehmc.compare.specs import resolve_kernels

    specs = {s.name: s for s in resolve_kernels(None, full_mass=True)}
    assert specs["MALA"].full_mass is True and specs["NUTS"].full_mass is True
    assert specs["RandomWalkKernel"].full_mass is None  # Pyro's random walk takes none
    kernel = specs["SimpleHMC"].build(None, lambda p: p["x"].sum())
    assert kernel.full_mass is True


def test_chapter_settings_are_the_chapters_fixed_algorithms():
    """``simplehmc chapter`` measures the chapter's own HMC: 20 steps of 0.2, no jitter, no
    adaptation (a broken import here once stopped the command halfway)."""
    from pyro_simplehmc.compare.chapter import chapter_settings_specs

    hmc, rw = chapter_settings_specs()
    kernel = hmc.build(None, lambda params: (params["x"] ** 2).sum())
    assert (kernel.num_steps, kernel.num_steps_jitter, kernel.step_size) == (20, 0.0, 0.2)
    assert not kernel.adapt_step_size and not kernel.adapt_mass_matrix
    assert rw.build(None, lambda params: (params["x"] ** 2).sum()).step_size == 0.3


def test_full_mass_auto_is_dense_where_the_dimension_allows():
    from pyro_simplehmc.compare.runner import DENSE_MAX_DIM, resolve_full_mass

    assert resolve_full_mass("auto", DENSE_MAX_DIM) is True
    assert resolve_full_mass("auto", DENSE_MAX_DIM + 1) is False
    assert resolve_full_mass(None, 2) is None and resolve_full_mass(False, 2) is False
    with pytest.raises(ValueError, match="full_mass"):
        resolve_full_mass("dense", 2)
