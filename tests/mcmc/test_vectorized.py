"""Many chains as one batch: ``MCMC(..., chain_method="vectorized")``.

Statistical checks use MCSE-derived z-scores (``pyro_simplehmc.checks.testing``) with fixed
seeds; the independence check is shown to fail on two broken batched Metropolis-Hastings steps.
"""

from __future__ import annotations

import math

import arviz as az
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import NUTS

from pyro_simplehmc import MALA, MCMC, RandomWalkMH, SimpleHMC
from pyro_simplehmc.checks.testing import chain_independence_test, mcse_z_test
from pyro_simplehmc.core.mh import StepInfo, metropolis_hastings

KERNELS = [SimpleHMC, MALA, RandomWalkMH]

# ---------------------------------------------------------------------------- models with truth

SUCCESSES, TRIALS = 6, 20
BETA_A, BETA_B = 2.0 + SUCCESSES, 2.0 + TRIALS - SUCCESSES


def beta_bernoulli(data):
    p = pyro.sample("p", dist.Beta(2.0, 2.0))
    with pyro.plate("data", len(data)):
        pyro.sample("obs", dist.Bernoulli(p), obs=data)


BERNOULLI_DATA = torch.tensor([1.0] * SUCCESSES + [0.0] * (TRIALS - SUCCESSES))
BETA_MEAN = BETA_A / (BETA_A + BETA_B)
BETA_VAR = BETA_A * BETA_B / ((BETA_A + BETA_B) ** 2 * (BETA_A + BETA_B + 1))

Y = torch.tensor([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]) / 4
SIGMA = torch.tensor([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]) / 8


def hierarchical(y, sigma):
    """Eight schools with a known group scale: the posterior is Gaussian, known exactly."""
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    with pyro.plate("schools", len(y)):
        theta = pyro.sample("theta", dist.Normal(mu, 1.0))
        pyro.sample("obs", dist.Normal(theta, sigma), obs=y)


def hierarchical_truth() -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of (mu, theta_1..theta_J) given y."""
    j = len(Y)
    prior = torch.full((j + 1, j + 1), 25.0, dtype=torch.float64)
    prior[1:, 1:] += torch.eye(j, dtype=torch.float64)
    likelihood = torch.diag(torch.cat([torch.zeros(1), SIGMA**-2]).double())
    cov = torch.linalg.inv(torch.linalg.inv(prior) + likelihood)
    mean = cov @ (likelihood @ torch.cat([torch.zeros(1), Y]).double())
    return mean, cov


def run(kernel, num_chains=16, num_samples=400, warmup_steps=300, seed=0, args=(), **kw):
    pyro.set_rng_seed(seed)
    mcmc = MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        chain_method=kw.pop("chain_method", "vectorized"),
        disable_progbar=True,
        **kw,
    )
    mcmc.run(*args)
    return mcmc


# ---------------------------------------------------------------------------- agreement with truth


@pytest.mark.parametrize("kernel_class", KERNELS, ids=lambda k: k.__name__)
def test_constrained_model_agrees_with_the_truth(kernel_class):
    mcmc = run(kernel_class(beta_bernoulli), args=(BERNOULLI_DATA,))
    assert mcmc.kernel.potential_path == "plate"
    p = mcmc.get_samples(group_by_chain=True)["p"]
    assert p.shape == (16, 400)
    result = mcse_z_test(p.unsqueeze(-1), [BETA_MEAN], torch.tensor([[BETA_VAR]]))
    assert result.passed, result


@pytest.mark.parametrize("chain_adaptation", ["per_chain", "pooled"])
def test_hierarchical_model_agrees_with_the_truth(chain_adaptation):
    kernel = SimpleHMC(hierarchical, chain_adaptation=chain_adaptation)
    mcmc = run(kernel, args=(Y, SIGMA))
    samples = mcmc.get_samples(group_by_chain=True)
    draws = torch.cat([samples["mu"].unsqueeze(-1), samples["theta"]], dim=-1)
    mean, cov = hierarchical_truth()
    result = mcse_z_test(draws, mean, cov, correlations=False)
    assert result.passed, result


def test_sequential_chains_agree_with_the_truth():
    mcmc = run(
        SimpleHMC(beta_bernoulli), num_chains=2, chain_method="sequential", args=(BERNOULLI_DATA,)
    )
    p = mcmc.get_samples(group_by_chain=True)["p"]
    result = mcse_z_test(p.unsqueeze(-1), [BETA_MEAN], torch.tensor([[BETA_VAR]]))
    assert result.passed, result


# ---------------------------------------------------------------------------- chains are separate


def gaussian_potential(params):
    x = params["x"]
    return 0.5 * (x**2).sum(-1)


def gaussian_init(num_chains, dim=3):
    torch.manual_seed(123)
    return {"x": torch.randn(num_chains, dim, dtype=torch.float64)}


@pytest.mark.parametrize("kernel_class", KERNELS, ids=lambda k: k.__name__)
def test_each_chain_is_its_own_chain(kernel_class):
    kernel = kernel_class(potential_fn=gaussian_potential, batched_potential=True)
    mcmc = run(kernel, initial_params=gaussian_init(16))
    x = mcmc.get_samples(group_by_chain=True)["x"]
    assert not torch.equal(x[0], x[1])
    for chain in mcmc.kernel_diagnostics:
        assert abs(chain["acceptance rate"] - kernel.target_accept_prob) < 0.15, chain
    step_sizes = {round(c["step size"], 12) for c in mcmc.kernel_diagnostics}
    assert len(step_sizes) == 16  # one per chain
    result = chain_independence_test(x)
    assert result.passed, result
    truth = mcse_z_test(x, torch.zeros(3), torch.eye(3))
    assert truth.passed, truth


def shared_uniform_step(current, proposal, log_accept_ratio, log_uniform, **kw):
    return metropolis_hastings(
        current, proposal, log_accept_ratio, log_uniform[:1].expand_as(log_uniform), **kw
    )


def accept_all_if_one_accepts(current, proposal, log_accept_ratio, log_uniform, **kw):
    _, info = metropolis_hastings(current, proposal, log_accept_ratio, log_uniform, **kw)
    accepted = info.accepted.any().expand_as(info.accepted)
    step = metropolis_hastings(
        current, proposal, torch.where(accepted, 0.0, -math.inf), log_uniform, **kw
    )[0]
    return step, StepInfo(accepted, info.accept_prob, info.energy_error, info.diverging)


@pytest.mark.parametrize("broken", [shared_uniform_step, accept_all_if_one_accepts])
def test_independence_check_catches_a_broken_batched_step(broken):
    class Broken(SimpleHMC):
        mh_step = staticmethod(broken)

    kernel = Broken(
        potential_fn=gaussian_potential,
        batched_potential=True,
        num_steps=3,
        num_steps_jitter=0.0,
        step_size=1.6,  # acceptance about 0.6: the chains' decisions matter
        adapt_step_size=False,
        adapt_mass_matrix=False,
    )
    mcmc = run(kernel, initial_params=gaussian_init(16))
    result = chain_independence_test(mcmc.get_samples(group_by_chain=True)["x"])
    assert not result.passed, result


def faulty_potential(kind):
    """A 2-D standard Gaussian whose region x[0] > 2.7 is numerically invalid."""

    def potential(params):
        x = params["x"]
        u = 0.5 * (x**2).sum(-1)
        bad = x[..., 0] > 2.7
        if kind == "raise" and bool(bad.any()):
            raise torch.linalg.LinAlgError("singular")
        return torch.where(bad, math.nan, u) if kind == "nan" else u

    return potential


@pytest.mark.parametrize("kind", ["nan", "raise"])
def test_a_fault_in_one_chain_leaves_the_others_untouched(kind):
    def go(potential):
        kernel = SimpleHMC(
            potential_fn=potential,
            batched_potential=True,
            step_size=0.5,
            num_steps=4,
            adapt_step_size=False,
            adapt_mass_matrix=False,
        )
        init = gaussian_init(16, dim=2)
        return run(kernel, num_samples=300, warmup_steps=0, initial_params=init)

    clean, faulty = go(faulty_potential("none")), go(faulty_potential(kind))
    x_clean = clean.get_samples(group_by_chain=True)["x"]
    x_faulty = faulty.get_samples(group_by_chain=True)["x"]
    hit = [bool(d["divergences"]) for d in faulty.kernel_diagnostics]
    assert any(hit) and not all(hit), hit
    for c, was_hit in enumerate(hit):
        if not was_hit:  # never reached the region: exactly the clean chain
            assert torch.equal(x_clean[c], x_faulty[c]), c
    assert (x_faulty[..., 0] <= 2.7).all()  # no chain ever stood in the invalid region
    assert faulty.sample_stats["diverging"].sum() == sum(
        len(d["divergences"]) for d in faulty.kernel_diagnostics
    )


# ---------------------------------------------------------------------------- potentials


def factor_model():
    """A full-sum pyro.factor: under a plate over chains it would add all chains together."""
    x = pyro.sample("x", dist.Normal(torch.zeros(3), 1.0).to_event(1))
    pyro.factor("extra", -0.5 * (x**2).sum())


def matmul_model():
    """A matrix product with an event-dimension site: under a plate it broadcasts wrongly."""
    x = pyro.sample("x", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    design = torch.tensor([[1.0, 0.5], [0.0, 1.0], [1.0, -1.0]])
    pyro.sample("y", dist.Normal(design @ x, 1.0).to_event(1), obs=torch.tensor([1.0, 0.0, 2.0]))


def matmul_truth():
    design = torch.tensor([[1.0, 0.5], [0.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    cov = torch.linalg.inv(torch.eye(2, dtype=torch.float64) + design.T @ design)
    return cov @ design.T @ torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64), cov


def item_model():
    """Python control flow on a sample's value: neither a plate nor vmap can batch it."""
    x = pyro.sample("x", dist.Normal(torch.zeros(3), 1.0).to_event(1))
    scale = 0.5 if x.sum().item() > -math.inf else 1.0  # .item(): vmap refuses it
    pyro.factor("extra", -scale * (x**2).sum())


@pytest.mark.parametrize(
    "model, path, truth",
    [
        (factor_model, "vmap", (torch.zeros(3), 0.5 * torch.eye(3))),
        (matmul_model, "vmap", matmul_truth()),
        (item_model, "loop", (torch.zeros(3), 0.5 * torch.eye(3))),
    ],
    ids=["factor", "matmul", "item"],
)
def test_models_wrong_under_a_plate_are_detected_and_still_correct(model, path, truth):
    with pytest.warns(RuntimeWarning, match="because") as record:
        mcmc = run(SimpleHMC(model), num_chains=4, num_samples=500, warmup_steps=200)
    assert mcmc.kernel.potential_path == path
    message = str(record[0].message)
    assert "plate:" in message  # says why the faster path was refused
    if path == "loop":
        assert "chain by chain" in message and "vmap:" in message
    x = mcmc.get_samples(group_by_chain=True)["x"]
    result = mcse_z_test(x, *truth)
    assert result.passed, result


def test_jit_compile_applies_to_the_batched_potential():
    mcmc = run(SimpleHMC(beta_bernoulli, jit_compile=True), num_chains=4, args=(BERNOULLI_DATA,))
    assert mcmc.kernel.potential_path == "plate, jit"
    p = mcmc.get_samples(group_by_chain=True)["p"]
    result = mcse_z_test(p.unsqueeze(-1), [BETA_MEAN], torch.tensor([[BETA_VAR]]))
    assert result.passed, result


# ---------------------------------------------------------------------------- Pyro's API


def test_one_chain_batch_is_the_plain_kernel():
    """C = 1 runs the same code as Pyro's one-chain path: the same draws."""
    plain = pyro.infer.MCMC(SimpleHMC(beta_bernoulli), num_samples=100, warmup_steps=100,
                            disable_progbar=True)
    pyro.set_rng_seed(5)
    plain.run(BERNOULLI_DATA)
    batch = run(SimpleHMC(beta_bernoulli), num_chains=1, num_samples=100, warmup_steps=100,
                seed=5, args=(BERNOULLI_DATA,))
    assert torch.allclose(plain.get_samples()["p"], batch.get_samples()["p"], atol=1e-6)


def test_reproducible_from_the_seed():
    draws = [
        run(MALA(beta_bernoulli), num_chains=4, seed=3, args=(BERNOULLI_DATA,)).get_samples()["p"]
        for _ in range(2)
    ]
    assert torch.equal(draws[0], draws[1])


def test_pyro_api_summary_diagnostics_and_arviz(capsys):
    calls = []
    mcmc = run(
        SimpleHMC(hierarchical),
        num_chains=4,
        num_samples=50,
        warmup_steps=20,
        args=(Y, SIGMA),
        hook_fn=lambda kernel, params, stage, i: calls.append((stage, params["mu"].shape)),
    )
    assert len(calls) == 70 and calls[-1] == ("Sample", (4,))
    assert mcmc.get_samples()["theta"].shape == (200, 8)
    assert mcmc.get_samples(group_by_chain=True)["theta"].shape == (4, 50, 8)
    mcmc.summary()
    assert "Number of divergences" in capsys.readouterr().out
    diagnostics = mcmc.diagnostics()
    assert set(diagnostics["gradient evaluations"]) == {f"chain {c}" for c in range(4)}
    assert mcmc.sample_stats["accept_prob"].shape == (4, 50)
    if hasattr(az, "from_pyro"):  # arviz 0.x; 1.x has none (from_pyro: tests/test_arviz_io.py)
        idata = az.from_pyro(mcmc)
        assert idata.posterior["theta"].shape == (4, 50, 8)
        assert idata.sample_stats["diverging"].shape == (4, 50)


def test_initial_params_with_a_chain_dimension_are_used():
    init = {"x": torch.arange(8, dtype=torch.float64).reshape(4, 2)}
    kernel = RandomWalkMH(
        potential_fn=gaussian_potential, batched_potential=True, step_size=1e-9,
        adapt_step_size=False,
    )
    mcmc = run(kernel, num_chains=4, num_samples=1, warmup_steps=0, initial_params=init)
    x = mcmc.get_samples(group_by_chain=True)["x"]
    assert x.shape == (4, 1, 2)
    assert torch.allclose(x[:, 0], init["x"], atol=1e-6)


def test_unbatched_potential_fn_is_vmapped():
    def potential(params):  # one chain: x of shape (3,)
        assert params["x"].shape == (3,) or params["x"].dim() == 1
        return 0.5 * (params["x"] ** 2).sum()

    kernel = MALA(potential_fn=potential)
    mcmc = run(kernel, num_chains=8, initial_params=gaussian_init(8))
    assert kernel.potential_path == "vmap"
    result = mcse_z_test(mcmc.get_samples(group_by_chain=True)["x"], torch.zeros(3), torch.eye(3))
    assert result.passed, result


# ---------------------------------------------------------------------------- bad input


def test_bad_chain_method_and_num_chains():
    with pytest.raises(ValueError, match="chain_method must be one of"):
        MCMC(SimpleHMC(beta_bernoulli), num_samples=10, chain_method="batched")
    with pytest.raises(ValueError, match="num_chains must be an integer >= 1"):
        MCMC(SimpleHMC(beta_bernoulli), num_samples=10, num_chains=0, chain_method="vectorized")


def test_kernels_that_cannot_be_vectorized_say_what_to_use():
    with pytest.raises(ValueError, match='"parallel" or "sequential"'):
        MCMC(NUTS(beta_bernoulli), num_samples=10, num_chains=2, chain_method="vectorized")


def test_initial_params_without_the_chain_dimension():
    with pytest.raises(ValueError, match="initial_params must have a leading chain dimension"):
        MCMC(
            SimpleHMC(potential_fn=gaussian_potential),
            num_samples=10,
            num_chains=4,
            initial_params={"x": torch.zeros(3)},
            chain_method="vectorized",
        )


def test_a_batched_potential_of_the_wrong_shape():
    kernel = SimpleHMC(potential_fn=lambda p: (p["x"] ** 2).sum(), batched_potential=True)
    with pytest.raises(ValueError, match="one energy per chain"):
        run(kernel, num_chains=4, initial_params=gaussian_init(4))


def test_a_bug_in_the_model_is_raised_with_its_message():
    def buggy(data):
        p = pyro.sample("p", dist.Beta(2.0, 2.0))
        if bool((p > 0.6).any()):  # a bug on one branch only, which the chains reach
            raise ValueError("my model has a bug")
        with pyro.plate("data", len(data)):
            pyro.sample("obs", dist.Bernoulli(p), obs=data)

    with pytest.raises(ValueError, match="my model has a bug"):
        run(SimpleHMC(buggy), num_chains=4, args=(BERNOULLI_DATA[:2],))
