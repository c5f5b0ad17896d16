"""Shared fixtures and helpers for the test suite."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pyro
import pytest
import torch

from pyro_simplehmc import MCMC

#: The posteriordb folder next to the checkout (``../shared/posteriordb``); tests that need it
#: skip when it is missing (an installed package has no ``../shared``).
POSTERIORDB = Path(__file__).resolve().parents[1].parent / "shared" / "posteriordb"


@cache
def _shares_a_run(module: Path) -> bool:
    """Whether a test module defines a fixture made once for the module (or package, session)."""
    return bool(re.search(r"scope\s*=\s*[\"'](module|package|session)[\"']", module.read_text()))


#: The longest runs of the slow suite (each minutes long): run first, so that the workers do not
#: wait at the end on one of them started late. Only the order changes.
LONGEST_FIRST = (
    "test_every_code_block_on_the_page_runs_in_full",
    "test_reference_agreement",
    "test_centered_eight_schools_reports_divergences",
    "test_every_notebook_runs_in_its_quick_form",
)


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: getattr(item, "originalname", item.name) not in LONGEST_FIRST)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With pytest-xdist's ``--dist load`` (pyproject.toml), tests go to the workers one by one,
    except that the tests of a module sharing a run made once (a module-scoped fixture) go to one
    worker together, so that the run is not made again on each worker.

    (``--dist loadgroup`` with ``xdist_group`` marks would say the same, but pytest-xdist 3.8
    under pytest 9.2 ignores the marks: pytest-dev/pytest-xdist#1386.)
    """
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedRunScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            path = config.rootpath / module
            return module if path.suffix == ".py" and _shares_a_run(path) else nodeid

    return SharedRunScheduling(config, log)


@pytest.fixture
def posteriordb_root() -> Path:
    """The posteriordb reference folder; skips the test when it is not there."""
    if not POSTERIORDB.is_dir():
        pytest.skip(f"posteriordb reference data not found at {POSTERIORDB}")
    return POSTERIORDB


@pytest.fixture
def float64():
    """Run the test with float64 as the default dtype, restoring the previous one after."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


class Gaussian:
    """A correlated Gaussian target on the site ``"x"``, with exact sampler and potential."""

    def __init__(self, mean: torch.Tensor, covariance: torch.Tensor):
        self.mean = mean.double()
        self.covariance = covariance.double()
        self.dim = self.mean.shape[0]
        self._chol = torch.linalg.cholesky(self.covariance)
        self._precision = torch.cholesky_inverse(self._chol)

    def potential_fn(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        z = params["x"] - self.mean
        return 0.5 * (z @ self._precision * z).sum(-1)

    def sample(self, num: int) -> dict[str, torch.Tensor]:
        noise = torch.randn(num, self.dim, dtype=torch.float64)
        return {"x": self.mean + noise @ self._chol.mT}


@pytest.fixture
def gaussian() -> Gaussian:
    """A 3-D Gaussian with scales 0.5, 1 and 2 and correlation 0.5 between the first two."""
    sd = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    corr = torch.tensor([[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return Gaussian(torch.tensor([1.0, -1.0, 0.5]), sd[:, None] * corr * sd)


def run_chains(
    kernel,
    initial_params: dict[str, torch.Tensor] | None,
    *,
    num_samples: int,
    warmup_steps: int = 0,
    num_chains: int = 1,
    seed: int = 0,
    **mcmc_kwargs,
) -> MCMC:
    """Run ``pyro.infer.MCMC`` quietly with a fixed seed; ``initial_params`` for one chain.

    ``initial_params=None`` lets the kernel initialise a model itself.
    """
    pyro.set_rng_seed(seed)
    if num_chains > 1 and initial_params is not None:
        initial_params = {
            k: v.expand(num_chains, *v.shape).clone() for k, v in initial_params.items()
        }
    mcmc = MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        initial_params=initial_params,
        disable_progbar=True,
        **mcmc_kwargs,
    )
    mcmc.run()
    return mcmc


KernelFactory = Callable[..., object]
