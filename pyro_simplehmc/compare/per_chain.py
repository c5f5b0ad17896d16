r"""Kernels that cannot batch: one chain at a time through :class:`pyro.infer.MCMC`.

Pyro's NUTS, HMC and RandomWalkKernel (and any other :class:`~pyro.infer.mcmc.MCMCKernel`) run
each chain on its own: :func:`run_chain` runs one and counts its cost, :func:`run_chains` runs
several, in parallel processes where the machine has the cores (one chain and one torch thread
per process; chain :math:`c` is seeded with ``seed + c`` wherever it runs, so the draws are the
same in parallel as one after the other), and :func:`run_chains_until_reliable` runs them again,
longer, until the verdict is reliable or the budget is spent: Pyro's kernels cannot continue a
chain without a new warmup.

A chain's seconds are its own process's: summed over chains they are the CPU time spent, the
same accounting as a batch of this package's kernels on one core.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np
import pyro
import pyro.infer
import torch

from ..checks.targets import Target
from ..core import validation as check
from .budget import cost, draws_wanted, unreliable
from .problems import Problem, as_problem
from .specs import CountingPotential, KernelSpec
from .summary import ChainRun


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_chain(
    spec: KernelSpec,
    target: Target | Problem,
    num_samples: int,
    warmup_steps: int,
    seed: int,
    on_step: Callable[[], None] | None = None,
) -> ChainRun:
    """Run one chain of ``spec`` on ``target`` with seed ``seed`` and count its cost."""
    problem = as_problem(target)
    initial_params = problem.initial_params(seed)
    counter = CountingPotential(problem.potential_fn)
    pyro.set_rng_seed(seed)
    kernel = spec.build(problem, counter)
    clock = {"start": time.perf_counter(), "warmup_end": None}
    at_warmup_end = {"potentials": 0, "gradients": 0}
    diagnostics: dict[str, Any] = {}

    def hook(kernel, samples, stage, i):
        if stage == "Warmup":
            # Updated at every warmup iteration: after the last one it holds the warmup cost.
            at_warmup_end.update(potentials=counter.potentials, gradients=counter.gradients)
            clock["warmup_end"] = time.perf_counter()
        elif i == mcmc.num_samples - 1:
            # The kernel's own diagnostics of this chain, read where Pyro's MCMC reads them
            # (after the last draw, before cleanup), through the public kernel API.
            diagnostics.update(kernel.diagnostics())
        if on_step is not None:
            on_step()

    # Looked up at run time, so that teaching.quick_runs shortens comparisons too.
    mcmc = pyro.infer.MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        initial_params=initial_params,
        disable_progbar=True,
        hook_fn=hook,
        transforms=problem.transforms,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "chains run sequentially" and the like
        mcmc.run(*problem.model_args, **problem.model_kwargs)
    end = time.perf_counter()
    warmup_end = clock["warmup_end"] if clock["warmup_end"] is not None else clock["start"]
    samples = mcmc.get_samples()
    draws = problem.flatten(samples).detach().cpu().double().numpy()
    return ChainRun(
        draws=draws,
        potentials={
            "warmup": at_warmup_end["potentials"],
            "sampling": counter.potentials - at_warmup_end["potentials"],
        },
        gradients={
            "warmup": at_warmup_end["gradients"],
            "sampling": counter.gradients - at_warmup_end["gradients"],
        },
        seconds={"warmup": warmup_end - clock["start"], "sampling": end - warmup_end},
        diagnostics=diagnostics,
        deterministic=deterministic_sites(problem, samples),
    )


def deterministic_sites(problem: Problem, samples) -> dict[str, np.ndarray]:
    """The deterministic sites at each draw (reported, not tested)."""
    if not problem.deterministic_sites or problem.model is None:
        return {}
    predictive = pyro.infer.Predictive(
        problem.model, posterior_samples=samples, return_sites=list(problem.deterministic_sites)
    )
    with pyro.poutine.block():
        values = predictive(*problem.model_args, **problem.model_kwargs)
    return {k: v.detach().cpu().double().numpy() for k, v in values.items()}


#: The chains a pool of forked workers runs: set just before the pool forks, read by the
#: workers (a forked process inherits it, so the problem, which may hold closures, is never
#: pickled; only the seed goes out and the finished chain comes back).
_JOB: tuple | None = None


def _one_thread() -> None:
    torch.set_num_threads(1)


def _run_job(seed: int) -> ChainRun:
    spec, problem, num_samples, warmup_steps = _JOB
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the parent's run reports the verdict
        return run_chain(spec, problem, num_samples, warmup_steps, seed)


def run_chains(
    spec: KernelSpec,
    problem: Problem,
    num_samples: int,
    warmup_steps: int,
    seeds: Sequence[int],
    on_step: Callable[[], None] | None = None,
    jobs: int | None = None,
) -> tuple[list[ChainRun], str | None]:
    """:func:`run_chain` for each of ``seeds``, in ``jobs`` processes at once.

    :param jobs: processes (``None``: one per chain, at most one per usable core; 1: one chain
        after the other in this process). Parallel chains need the ``fork`` start method (Linux);
        where it is missing, or a worker dies, the chains run one after the other here.
    :returns: the chains in the order of ``seeds``, and a note for the report when the
        parallel run fell back to this process.
    """
    global _JOB
    seeds = list(seeds)
    if jobs is None:
        jobs = min(len(seeds), usable_cores())
    jobs = check.positive_int("jobs", jobs)
    steps = num_samples + warmup_steps
    note = None
    if jobs > 1 and len(seeds) > 1 and "fork" in multiprocessing.get_all_start_methods():
        _JOB = (spec, problem, num_samples, warmup_steps)
        try:
            with ProcessPoolExecutor(
                max_workers=min(jobs, len(seeds)),
                mp_context=multiprocessing.get_context("fork"),
                initializer=_one_thread,
            ) as pool:
                chains = []
                for chain in pool.map(_run_job, seeds):
                    chains.append(chain)
                    for _ in range(steps if on_step is not None else 0):
                        on_step()
            return chains, None
        except (BrokenProcessPool, OSError) as error:
            note = f"parallel chains failed ({type(error).__name__}: {error}); run one by one"
        finally:
            _JOB = None
    return [run_chain(spec, problem, num_samples, warmup_steps, s, on_step) for s in seeds], note


def run_chains_until_reliable(
    spec: KernelSpec,
    problem: Problem,
    num_samples: int,
    warmup_steps: int,
    num_chains: int,
    seed: int,
    on_step: Callable[[], None] | None = None,
    max_evals: int | None = None,
    max_reruns: int = 8,
    jobs: int | None = None,
) -> tuple[list[ChainRun], list[str]]:
    """``num_chains`` chains (:func:`run_chains`, seeds ``seed + c``); while the verdict would
    not be reliable, run them again, longer, within ``max_evals``.

    A kernel of Pyro's cannot continue a chain without a new warmup, so a longer run starts
    afresh (same seeds, the draws per chain that
    :func:`~pyro_simplehmc.checks.statistics.draws_needed` estimates); the cost of every run
    counts against the budget.

    :param max_evals: the budget (``None``: one run of ``num_samples`` draws, no rerun).
    :param max_reruns: at most this many longer runs after the first.
    :param jobs: processes for the chains (see :func:`run_chains`).
    :returns: the chains of the last run and notes for the report.
    """
    notes: list[str] = []
    spent, length = 0, num_samples
    seeds = [seed + c for c in range(num_chains)]
    for attempt in range(max_reruns + 1):
        chains, note = run_chains(spec, problem, length, warmup_steps, seeds, on_step, jobs)
        if note is not None:
            notes.append(note)
        spent += cost(chains, spec.uses_gradient)
        if max_evals is None:
            break
        why, smallest, r_hat = unreliable(np.stack([c.draws for c in chains]))
        if why is None:
            break
        wanted = draws_wanted(length, why, smallest, r_hat)
        warmup = cost(chains, spec.uses_gradient, "warmup")
        per_draw = max(cost(chains, spec.uses_gradient, "sampling"), 1) / length
        if attempt == max_reruns or spent + warmup + per_draw * wanted > max_evals:
            notes.append(
                f"{why} after {length} draws per chain; a longer run would exceed the budget "
                f"of {max_evals:,} evaluations ({spent:,} spent)"
            )
            break
        length = wanted
    if length > num_samples:
        notes.append(
            f"run again from the start with {length} draws per chain (Pyro's kernels cannot "
            f"continue a chain) for a reliable verdict; {spent:,} evaluations in all"
        )
    return chains, notes


__all__ = [
    "deterministic_sites",
    "run_chain",
    "run_chains",
    "run_chains_until_reliable",
    "usable_cores",
]
