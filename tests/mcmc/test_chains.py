"""Chains: reset between sequential chains, spawn workers, reproducibility, and Pyro's MCMC
features (``save_params``, ``hook_fn``, :class:`~pyro.infer.mcmc.api.StreamingMCMC`) with all
three kernels.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import MCMC
from pyro.infer.mcmc.api import StreamingMCMC
from pyro.ops.streaming import CountMeanStats, StatsOfDict

from pyro_simplehmc import MALA, RandomWalkMH, SimpleHMC
from tests.conftest import run_chains

KERNELS = {
    "SimpleHMC": lambda **kw: SimpleHMC(step_size=0.5, num_steps=4, **kw),
    "MALA": lambda **kw: MALA(step_size=0.5, **kw),
    "RandomWalkMH": lambda **kw: RandomWalkMH(step_size=0.5, **kw),
}


def model():
    """Module level, so that spawned workers can unpickle it."""
    pyro.sample("a", dist.Normal(torch.tensor(1.0), torch.tensor(1.0)))
    pyro.sample("b", dist.LogNormal(torch.tensor(0.0), torch.tensor(0.5)))


def potential_fn(params):
    return 0.5 * ((params["a"] - 1.0) ** 2).sum() + 0.5 * (params["b"] ** 2).sum()


INIT = {"a": torch.zeros(2), "b": torch.ones(())}


class RecordingKernel:
    """Mixin that records the RNG state at the start of each chain's ``setup``."""

    def setup(self, warmup_steps, *args, **kwargs):
        self.rng_states = [*getattr(self, "rng_states", []), torch.get_rng_state()]
        super().setup(warmup_steps, *args, **kwargs)


@pytest.mark.parametrize("name", list(KERNELS))
def test_sequential_chains_do_not_share_state(name, float64):
    # Chain 2 of a sequential run must equal a fresh single chain started from the same RNG
    # state and the same initial point: nothing (step size, mass matrix, counters, cached
    # state) may leak from chain 1.
    base = type(KERNELS[name](potential_fn=potential_fn))
    recording = type("Recording" + name, (RecordingKernel, base), {})
    options = {"potential_fn": potential_fn, "step_size": 0.5}
    if base is SimpleHMC:
        options["num_steps"] = 4

    kernel = recording(**options)
    mcmc = run_chains(kernel, INIT, num_samples=100, warmup_steps=100, num_chains=2, seed=0)
    chain_2 = mcmc.get_samples(group_by_chain=True)

    fresh = base(**options)
    torch.set_rng_state(kernel.rng_states[1])
    single = MCMC(
        fresh, num_samples=100, warmup_steps=100, initial_params=INIT, disable_progbar=True
    )
    single.run()
    for site in INIT:
        assert torch.equal(chain_2[site][1], single.get_samples()[site])
    diagnostics = mcmc.diagnostics()
    assert diagnostics["step size"]["chain 1"] == single.diagnostics()["step size"]["chain 0"]
    assert (
        diagnostics["gradient evaluations"]["chain 1"]
        == single.diagnostics()["gradient evaluations"]["chain 0"]
    )


@pytest.mark.parametrize("name", list(KERNELS))
def test_same_seed_same_draws(name, float64):
    # A model, so that the random initialisation is covered as well.
    draws = [
        run_chains(
            KERNELS[name](model=model), None, num_samples=30, warmup_steps=30, seed=7
        ).get_samples()["b"]
        for _ in range(2)
    ]
    assert torch.equal(draws[0], draws[1])
    other = run_chains(KERNELS[name](model=model), None, num_samples=30, warmup_steps=30, seed=8)
    assert not torch.equal(draws[0], other.get_samples()["b"])


@pytest.mark.parametrize("name", list(KERNELS))
def test_save_params_and_hook_fn(name, float64):
    calls = []

    def hook_fn(kernel, params, stage, i):
        calls.append((stage, i, set(params)))

    mcmc = run_chains(
        KERNELS[name](potential_fn=potential_fn),
        INIT,
        num_samples=20,
        warmup_steps=10,
        save_params=["b"],
        hook_fn=hook_fn,
    )
    assert set(mcmc.get_samples()) == {"b"}
    assert mcmc.get_samples()["b"].shape == (20,)
    assert [c[0] for c in calls] == ["Warmup"] * 10 + ["Sample"] * 20
    assert [c[1] for c in calls] == list(range(10)) + list(range(20))
    assert all(c[2] == {"a", "b"} for c in calls)


@pytest.mark.parametrize("name", list(KERNELS))
def test_streaming_mcmc(name, float64):
    pyro.set_rng_seed(3)
    mcmc = StreamingMCMC(
        KERNELS[name](potential_fn=potential_fn),
        num_samples=200,
        warmup_steps=100,
        num_chains=2,
        initial_params={k: v.expand(2, *v.shape).clone() for k, v in INIT.items()},
        disable_progbar=True,
        statistics=StatsOfDict(default=CountMeanStats),
    )
    mcmc.run()
    stats = mcmc.get_statistics(group_by_chain=False)
    assert stats["a"]["count"] == 400
    # A loose sanity check of the streamed mean (a is N(1, 1)); the statistical tests are
    # elsewhere.
    assert torch.allclose(stats["a"]["mean"].double(), torch.ones(2), atol=0.6)


def _spawn(name: str, monkeypatch) -> MCMC:
    # Pyro runs chains in parallel only when num_chains < cpu_count; pretend to have 3 CPUs.
    import pyro.infer.mcmc.api as api

    monkeypatch.setattr(api.mp, "cpu_count", lambda: 3)
    pyro.set_rng_seed(0)
    mcmc = MCMC(
        KERNELS[name](model=model),
        num_samples=100,
        warmup_steps=100,
        num_chains=2,
        mp_context="spawn",
        disable_progbar=True,
    )
    mcmc.run()
    return mcmc


def test_spawned_chains_run_a_module_level_model(monkeypatch):
    mcmc = _spawn("SimpleHMC", monkeypatch)
    samples = mcmc.get_samples(group_by_chain=True)
    assert samples["a"].shape == (2, 100) and samples["b"].shape == (2, 100)
    assert torch.isfinite(samples["a"]).all() and (samples["b"] > 0).all()
    # Two workers, two different chains.
    assert not torch.equal(samples["a"][0], samples["a"][1])
    assert set(mcmc.diagnostics()["divergences"]) == {"chain 0", "chain 1"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["MALA", "RandomWalkMH"])
def test_spawned_chains_other_kernels(name, monkeypatch):
    samples = _spawn(name, monkeypatch).get_samples(group_by_chain=True)
    assert samples["a"].shape == (2, 100)
    assert torch.isfinite(samples["a"]).all() and (samples["b"] > 0).all()
