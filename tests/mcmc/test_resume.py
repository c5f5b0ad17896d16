"""Save and resume: ``mcmc.last_state``, ``MCMCState.save``/``load`` and
``run(..., init_state=state)``.

A continuation is exact: a run of N draws resumed for M more gives the draws of a straight run
of N + M, bit for bit (the lengths only set the cost), whatever the global seed at resume,
because the state carries the chains' random stream. A state that does not belong to the run is
refused with the reason.
"""

from __future__ import annotations

import dataclasses

import pyro
import pyro.distributions as dist
import pytest
import torch

from pyro_simplehmc import MALA, MCMC, MCMCState, RandomWalkMH, SimpleHMC


def model(data):
    mu = pyro.sample("mu", dist.Normal(0.0, 10.0))
    sigma = pyro.sample("sigma", dist.HalfNormal(5.0))
    with pyro.plate("data", len(data)):
        pyro.sample("obs", dist.Normal(mu, sigma), obs=data)


def other_model(data):
    mu = pyro.sample("mu", dist.Normal(0.0, 10.0))
    with pyro.plate("data", len(data)):
        pyro.sample("obs", dist.Normal(mu, 1.0), obs=data)


DATA = 3.0 + 2.0 * torch.randn(40, generator=torch.Generator().manual_seed(1))


def run(kernel, num_samples, warmup_steps=50, num_chains=4, chain_method="vectorized",
        init_state=None, seed=0):  # fmt: skip
    pyro.set_rng_seed(seed)
    mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=warmup_steps, num_chains=num_chains,
                chain_method=chain_method, disable_progbar=True)  # fmt: skip
    mcmc.run(DATA, init_state=init_state)
    return mcmc


def joined(*runs):
    draws = [r.get_samples(group_by_chain=True) for r in runs]
    return {name: torch.cat([d[name] for d in draws], dim=1) for name in draws[0]}


def test_250_draws_resumed_for_250_more_are_a_straight_run_of_500(tmp_path):
    def kernel():  # a short fixed length keeps the 1,000 iterations cheap
        return SimpleHMC(model, num_steps=3)

    straight = run(kernel(), 500)
    first = run(kernel(), 250)
    path = first.last_state.save(tmp_path / "state.pt")
    # Another seed, another kernel object: the state carries everything.
    second = run(kernel(), 250, warmup_steps=0, init_state=MCMCState.load(path), seed=99)
    expected = straight.get_samples(group_by_chain=True)
    for name, draws in joined(first, second).items():
        assert torch.equal(draws, expected[name]), name
    # The continuation counts its own cost: no warmup, no evaluation at setup.
    cost = second.kernel_diagnostics[0]["gradient evaluations"]
    assert cost["warmup"] == 0 and cost["sampling"] > 0


@pytest.mark.parametrize(
    "make, num_chains, chain_method",
    [
        (lambda: SimpleHMC(model, adapt_trajectory_length=True), 4, "vectorized"),
        (lambda: SimpleHMC(model, trajectory_length=1.5, step_size_jitter=0.2), 3, "vectorized"),
        (lambda: MALA(model, chain_adaptation="pooled", full_mass=True), 3, "vectorized"),
        (lambda: RandomWalkMH(model), 2, "vectorized"),
        (lambda: SimpleHMC(model), 1, "parallel"),
        (lambda: MALA(model), 1, "sequential"),
    ],
    ids=["chees", "trajectory-length", "mala-pooled-dense", "random-walk", "one-chain",
         "one-chain-sequential"],
)
def test_every_kernel_and_chain_method_continues_exactly(make, num_chains, chain_method):
    straight = run(make(), 60, num_chains=num_chains, chain_method=chain_method)
    first = run(make(), 35, num_chains=num_chains, chain_method=chain_method)
    second = run(make(), 25, 0, num_chains, chain_method, first.last_state, seed=7)
    expected = straight.get_samples(group_by_chain=True)
    for name, draws in joined(first, second).items():
        assert torch.equal(draws, expected[name]), name


def test_chains_run_one_after_the_other_each_continue_from_their_own_end():
    # Sequential chains share one random stream, so only the first chain's continuation is the
    # straight run's; every chain starts where it ended, with its own step size.
    first = run(SimpleHMC(model), 30, num_chains=2, chain_method="sequential")
    second = run(SimpleHMC(model), 5, 0, 2, "sequential", first.last_state)
    state = first.last_state
    assert state.chain_method == "sequential" and len(state.kernels) == 2
    for chain, kernel_state in enumerate(state.kernels):
        step_size = second.kernel_diagnostics[chain]["step size"]
        assert step_size == pytest.approx(float(kernel_state.step_size))
    assert "resume state" not in first.diagnostics()


def test_a_state_survives_torch_save_and_load(tmp_path):
    first = run(SimpleHMC(model), 10)
    torch.save(first.last_state, tmp_path / "plain.pt")
    state = torch.load(tmp_path / "plain.pt")  # weights_only, the default
    assert isinstance(state, MCMCState) and state.num_chains == 4


def test_a_state_that_does_not_belong_is_refused_naming_the_mismatch(tmp_path):
    state = run(SimpleHMC(model), 10).last_state
    cases = [
        (lambda: run(SimpleHMC(other_model), 5, 0, init_state=state), "another model"),
        (lambda: run(MALA(model), 5, 0, init_state=state), "state of SimpleHMC"),
        (lambda: run(SimpleHMC(model), 5, 0, num_chains=3, init_state=state), "4 chain"),
        (lambda: run(SimpleHMC(model), 5, 0, chain_method="sequential", init_state=state),
         'chain_method="vectorized"'),
        (lambda: run(SimpleHMC(model, chain_adaptation="pooled"), 5, 0, init_state=state),
         "chain_adaptation"),
        (lambda: run(SimpleHMC(model), 5, 0, init_state={"mu": 1}), "init_state must be"),
    ]
    old = dataclasses.replace(state, kernels=[dataclasses.replace(state.kernels[0], version="0.1")])
    cases.append((lambda: run(SimpleHMC(model), 5, 0, init_state=old), "0.1"))
    for attempt, words in cases:
        with pytest.raises(ValueError, match=words):
            attempt()


def test_a_truncated_or_corrupt_file_is_a_clear_error_and_changes_nothing(tmp_path):
    first = run(SimpleHMC(model), 10)
    path = first.last_state.save(tmp_path / "state.pt")
    whole = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "junk.pt").write_bytes(b"not a state")
    torch.save({"mu": torch.ones(1)}, tmp_path / "other.pt")
    for name, words in [("cut.pt", "truncated or corrupt"), ("junk.pt", "truncated or corrupt"),
                        ("other.pt", "not an MCMCState"), ("missing.pt", "no state file")]:
        with pytest.raises(ValueError, match=words):
            MCMCState.load(tmp_path / name)
    # Saving again over a good file leaves a good file; the run keeps its own state.
    first.last_state.save(path)
    assert MCMCState.load(path).num_chains == 4 and path.read_bytes() != b""
    assert first.last_state.kernels[0].iteration == 60
