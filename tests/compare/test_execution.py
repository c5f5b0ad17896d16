"""The batched comparison runner: chains as one batch, continued until the verdict is reliable,
the same cost accounting as per chain, the reference cache, the interval of ESS per evaluation."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from pyro_simplehmc import SimpleHMC
from pyro_simplehmc.checks.statistics import FAIL, PASS, ess, max_r_hat, nested_r_hat
from pyro_simplehmc.checks.targets import correlated_gaussian, diagonal_gaussian
from pyro_simplehmc.compare import KERNELS, as_kernel_spec, compare, compare_model
from pyro_simplehmc.compare.execution import chain_starts, run_batch, run_cell
from pyro_simplehmc.compare.per_chain import run_chains
from pyro_simplehmc.compare.problems import from_target
from pyro_simplehmc.compare.reference_cache import ReferenceCache
from pyro_simplehmc.compare.summary import ess_per_eval_interval, superchain_ids
from tests.broken_kernels import HMCWithoutMetropolis


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def test_a_batch_has_its_chains_and_counts_each_chains_evaluations():
    problem = from_target(correlated_gaussian(rho=0.5))
    result, draws = run_cell(
        KERNELS["MALA"], problem, num_samples=120, warmup_steps=80, batch_chains=8, max_evals=None
    )
    assert draws.shape == (8, 120, 2) and result.num_chains == 8 and result.num_samples == 120
    # MALA: one gradient per iteration and chain in sampling; each chain's count is its own.
    assert result.gradient_evals["sampling"] == 8 * 120
    # Dispersed starts: the chains begin in different places.
    chains, _ = run_batch(KERNELS["MALA"], problem, 5, 0, 8, seed=0)
    assert len({tuple(np.round(c.draws[0], 6)) for c in chains}) == 8


def test_a_continued_batch_draws_what_one_longer_run_draws():
    """Continuing (no new warmup) is exact: 60 + 60 draws are the 120 of one run."""
    problem = from_target(correlated_gaussian(rho=0.5))
    spec = KERNELS["SimpleHMC"]
    once, _ = run_batch(spec, problem, 120, 50, 4, seed=3)
    first, mcmc = run_batch(spec, problem, 60, 50, 4, seed=3)
    later, _ = run_batch(spec, problem, 60, 0, 4, seed=3, mcmc=mcmc)
    for a, b, c in zip(once, first, later, strict=True):
        np.testing.assert_array_equal(a.draws, np.concatenate([b.draws, c.draws]))
        assert a.gradients["sampling"] == b.gradients["sampling"] + c.gradients["sampling"]
        assert c.gradients["warmup"] == 0


def test_too_few_draws_are_continued_until_the_verdict_is_reliable():
    problem = from_target(correlated_gaussian(rho=0.9))
    result, draws = run_cell(
        KERNELS["RandomWalkMH"], problem, num_samples=50, warmup_steps=100, batch_chains=16
    )
    assert result.reliability is None and result.status_truth == PASS
    assert draws.shape[1] > 50 and result.num_samples == draws.shape[1]
    assert any("continued (no new warmup)" in w for w in result.warnings)


def test_the_budget_stops_the_continuation_and_the_report_says_so():
    problem = from_target(correlated_gaussian(rho=0.99))
    result, _ = run_cell(
        KERNELS["RandomWalkMH"], problem, num_samples=20, warmup_steps=20, batch_chains=4,
        max_evals=400,
    )  # fmt: skip
    assert result.reliability is not None and result.status_truth not in (PASS, FAIL)
    assert any("budget of 400 evaluations" in w for w in result.warnings)
    cost = result.potential_evals["warmup"] + result.potential_evals["sampling"]
    assert cost <= 400 + 4 * 20  # the first run is never cut short


def test_a_kernel_that_cannot_batch_runs_per_chain():
    problem = from_target(correlated_gaussian(rho=0.5))
    result, draws = run_cell(
        KERNELS["NUTS"], problem, num_samples=40, warmup_steps=40, num_chains=2, batch_chains=16,
        max_evals=None,
    )  # fmt: skip
    assert draws.shape == (2, 40, 2) and result.num_chains == 2


def test_a_batched_comparison_still_fails_a_kernel_without_correction():
    """The check that catches the broken kernel per chain catches it in a batch too."""
    settings = {
        "step_size": 1.4, "num_steps": 3, "num_steps_jitter": 0.0, "adapt_step_size": False,
        "adapt_mass_matrix": False,
    }  # fmt: skip
    kernels = [
        as_kernel_spec("correct", lambda u: SimpleHMC(potential_fn=u, **settings)),
        as_kernel_spec("broken", lambda u: HMCWithoutMetropolis(potential_fn=u, **settings)),
    ]
    result = compare(
        diagonal_gaussian(2, 1.0, 1.0), kernels=kernels, num_samples=200, warmup_steps=10,
        reference="correct", progress=False, batch_chains=16,
    )  # fmt: skip
    assert result["correct"].num_chains == 16
    assert result["correct"].status_truth == PASS
    assert result["broken"].status_truth == FAIL and result["broken"].status_ref == FAIL


def test_the_interval_of_ess_per_eval_holds_the_estimate_and_needs_two_chains():
    rng = np.random.default_rng(0)
    draws = rng.standard_normal((16, 400, 2))
    low, high = ess_per_eval_interval(draws, cost=16 * 400)
    # Independent draws: about one effective draw per evaluation; the interval holds the
    # estimate from all the chains, and is narrow.
    point = min(ess(draws, "bulk").min(), ess(draws**2, "bulk").min()) / (16 * 400)
    assert 0.8 < low < point < high < 1.2
    assert all(math.isnan(v) for v in ess_per_eval_interval(draws[:1], cost=400))
    problem = from_target(correlated_gaussian(rho=0.5))
    result, _ = run_cell(
        KERNELS["MALA"], problem, num_samples=200, warmup_steps=100, batch_chains=16,
        max_evals=None,
    )  # fmt: skip
    assert result.ess_per_eval_low < result.ess_per_eval < result.ess_per_eval_high


def _model_comparison(cache, **kwargs):
    import pyro
    import pyro.distributions as dist
    import torch

    def model(y):
        loc = pyro.sample("loc", dist.Normal(0.0, 10.0))
        with pyro.plate("data", len(y)):
            pyro.sample("y", dist.Normal(loc, 1.0), obs=y)

    y = torch.tensor([0.5, 1.5, -0.2, 0.9])
    return compare_model(
        model, (y,), kernels=["MALA"], num_samples=100, warmup_steps=50,
        reference_num_samples=150, progress=False, reference_cache=cache, batch_chains=4,
        max_evals=None, **kwargs,
    )  # fmt: skip


def test_the_reference_is_computed_once_and_a_corrupt_entry_is_recomputed(tmp_path):
    cache = ReferenceCache(tmp_path)
    first = _model_comparison(cache)
    entries = list(tmp_path.glob("*.json"))
    assert len(entries) == 1
    again = _model_comparison(cache)
    assert any("reference read from" in w for w in again["NUTS"].warnings)
    assert again["NUTS"].mean == first["NUTS"].mean
    # A truncated entry is not trusted: the reference runs again and the entry is rewritten.
    text = entries[0].read_text()
    entries[0].write_text(text[: len(text) // 2])
    third = _model_comparison(cache)
    assert not any("reference read from" in w for w in third["NUTS"].warnings)
    assert json.loads(entries[0].read_text())["key"] == entries[0].stem
    # A tampered result fails the checksum.
    entry = json.loads(entries[0].read_text())
    entry["result"]["mean"][0] += 1.0
    entries[0].write_text(json.dumps(entry))
    assert not any("reference read" in w for w in _model_comparison(cache)["NUTS"].warnings)
    # --refresh-reference: recomputed even when the entry is good.
    refreshed = _model_comparison(ReferenceCache(tmp_path, refresh=True))
    assert not any("reference read" in w for w in refreshed["NUTS"].warnings)
    # Other settings, another key.
    _model_comparison(cache, seed=1)
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_evals_to_low_bias_finds_when_the_second_moments_settle():
    from pyro_simplehmc.compare.summary import evals_to_low_bias

    rng = np.random.default_rng(1)
    exact = rng.standard_normal((8, 2000, 3))
    # Exact draws: b^2 ~ chi^2 / (8 n), below 0.01 after some tens of draws, at 5 evals each.
    n = evals_to_low_bias(exact, np.zeros(3), np.ones(3), evals_per_draw=5.0)
    assert 5 <= n <= 5 * 200 and n % 5 == 0
    # A kernel that samples a variance of 1.96 (no Metropolis correction) never gets there.
    wide = 1.4 * exact
    assert math.isnan(evals_to_low_bias(wide, np.zeros(3), np.ones(3), evals_per_draw=5.0))
    # Below for a while, then above again at the last draw: not there (was n = draws + 1).
    late = np.ones((8, 100, 1))
    late[:, 90:] = 2.0  # b^2 = 0 for 90 draws, then ends at 0.09 / 0.81
    assert math.isnan(evals_to_low_bias(late, np.zeros(1), np.ones(1), evals_per_draw=5.0))
    # Per chain, b^2 falls as for one chain: later than with the chains' moments pooled.
    alone = evals_to_low_bias(exact, np.zeros(3), np.ones(3), 5.0, per_chain=True)
    assert alone > n


def test_the_bootstrap_interval_of_evals_to_low_bias():
    from pyro_simplehmc.compare.summary import evals_to_low_bias, evals_to_low_bias_interval

    rng = np.random.default_rng(1)
    exact = rng.standard_normal((8, 2000, 3))
    n = evals_to_low_bias(exact, np.zeros(3), np.ones(3), evals_per_draw=5.0)
    low, high = evals_to_low_bias_interval(exact, np.zeros(3), np.ones(3), evals_per_draw=5.0)
    assert 0 < low <= high < math.inf and low <= 2 * n
    # Never below 0.01 (no Metropolis correction): the whole interval is "not within the run".
    wide = evals_to_low_bias_interval(1.4 * exact, np.zeros(3), np.ones(3), evals_per_draw=5.0)
    assert wide == (math.inf, math.inf)
    assert all(map(math.isnan, evals_to_low_bias_interval(exact[:1], 0, 1, 5.0)))


def test_a_large_batch_starts_in_superchains_and_its_r_hat_is_nested():
    """Chains of one superchain share a dispersed start (Margossian et al. 2024); small batches
    keep a start per chain."""
    assert chain_starts(8) == list(range(8))
    assert chain_starts(16) == [c // 4 for c in range(16)]
    problem = from_target(correlated_gaussian(rho=0.5))
    chains, _ = run_batch(KERNELS["MALA"], problem, 5, 0, 16, seed=0)
    firsts = [tuple(np.round(c.draws[0], 6)) for c in chains]
    assert len(set(firsts)) > 4  # the chains move apart at once
    assert superchain_ids(chains) == [c // 4 for c in range(16)]
    draws = np.stack([c.draws for c in chains])
    assert max_r_hat(draws, superchain_ids(chains)) != max_r_hat(draws)


def test_nested_r_hat_sees_a_superchain_that_has_not_converged():
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(8), 4)
    mixed = rng.normal(size=(32, 100, 2))
    assert np.all(nested_r_hat(mixed, ids) < 1.01)
    stuck = mixed.copy()
    stuck[ids == 3, :, 0] += 1.0  # one superchain elsewhere
    values = nested_r_hat(stuck, ids)
    assert values[0] > 1.05 and values[1] < 1.01
    with pytest.raises(ValueError, match="same number of chains"):
        nested_r_hat(mixed[:31], ids[:31])


def test_nested_r_hat_is_arviz_stats_rhat_nested():
    diagnostics = pytest.importorskip("arviz_stats.sampling_diagnostics")  # arviz 1.x only
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 50, 3))
    x[:4, :, 0] += 0.5
    x[..., 2] = np.cumsum(x[..., 2], 1) * 0.1
    ids = np.repeat(np.arange(4), 4)
    theirs = [
        float(diagnostics.rhat_nested(x[..., i], superchain_ids=ids, chain_axis=0, draw_axis=1))
        for i in range(3)
    ]
    np.testing.assert_allclose(nested_r_hat(x, ids), theirs, rtol=1e-12)


def test_pyro_kernels_run_their_chains_in_parallel_with_the_same_draws():
    problem = from_target(correlated_gaussian(rho=0.5))
    spec = KERNELS["NUTS"]
    one_by_one, _ = run_chains(spec, problem, 30, 20, [0, 1], jobs=1)
    parallel, note = run_chains(spec, problem, 30, 20, [0, 1], jobs=2)
    assert note is None
    for a, b in zip(one_by_one, parallel, strict=True):
        np.testing.assert_array_equal(a.draws, b.draws)
        assert a.gradients == b.gradients


def _ar1_chains(num_chains, length, rho, shift=0.0, seed=0):
    from pyro_simplehmc.compare.summary import ChainRun

    rng = np.random.default_rng(seed)
    x = np.empty((num_chains, length, 1))
    x[:, 0] = rng.standard_normal((num_chains, 1))
    noise = rng.standard_normal((num_chains, length, 1)) * math.sqrt(1 - rho**2)
    for t in range(1, length):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    counts = {"warmup": 0, "sampling": length}
    return [
        ChainRun(x[c] + shift, counts, counts, {"warmup": 0.0, "sampling": 1.0}, {})
        for c in range(num_chains)
    ]


def test_a_long_run_is_judged_on_thinned_draws_with_the_same_verdict(monkeypatch):
    import pyro_simplehmc.compare.summary as summary

    target = diagonal_gaussian(1, low=1.0, high=1.0)
    chains = _ar1_chains(4, 8000, rho=0.98)  # autocorrelation time about 100
    full = summary.summarise("AR(1)", False, chains, target)
    monkeypatch.setattr(summary, "MAX_JUDGED_DRAWS", 8000)  # every 4th draw
    thinned = summary.summarise("AR(1)", False, chains, target)
    assert thinned.num_samples == full.num_samples == 8000
    assert any("every k-th draw of each chain, k = 4" in w for w in thinned.warnings)
    assert thinned.min_bulk_ess == pytest.approx(full.min_bulk_ess, rel=0.25)
    assert full.status_truth == thinned.status_truth == PASS
    # Thinning cannot hide a wrong answer: a shifted chain still fails.
    wrong = summary.summarise("AR(1)", False, _ar1_chains(4, 8000, 0.98, shift=0.5), target)
    assert wrong.status_truth == FAIL
