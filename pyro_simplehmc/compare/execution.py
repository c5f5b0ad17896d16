r"""How a comparison runs a kernel: one batch of many chains, or one chain at a time.

- :func:`run_batch`: this package's kernels run all their chains as one batch
  (:class:`~pyro_simplehmc.MCMC` with ``chain_method="vectorized"``), with pooled adaptation by
  default, and can continue those chains (:attr:`~pyro_simplehmc.MCMC.last_state`, no new warmup);
- kernels that cannot batch (Pyro's NUTS, HMC, RandomWalkKernel, and any other
  :class:`~pyro.infer.mcmc.MCMCKernel`) run one chain at a time through
  :class:`pyro.infer.MCMC`, in parallel processes where cores allow
  (:mod:`pyro_simplehmc.compare.per_chain`);
- :func:`run_cell`: one kernel on one problem, summarised; a batched kernel keeps sampling until
  its verdict is reliable (bulk and tail ESS at least
  :data:`~pyro_simplehmc.checks.statistics.MIN_RELIABLE_ESS`, :math:`\hat R` below
  :data:`~pyro_simplehmc.checks.statistics.MAX_RELIABLE_RHAT`) or its budget of evaluations is
  spent.

Every kernel's cost is counted the same way: in gradient evaluations (potential evaluations for
a gradient-free kernel), per chain, warmup and sampling apart. A batched evaluation is one
evaluation for each chain: this package's kernels count their own (and the one-chain path
cross-checks those counters against a counted potential).
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pyro
import torch

from .. import mcmc as mcmc_layer
from ..checks.targets import Target
from ..core import validation as check
from ..kernels import MHKernel
from ..mcmc import MCMC
from .budget import cost, draws_wanted, unreliable
from .per_chain import deterministic_sites, run_chain, run_chains_until_reliable
from .problems import Problem, as_problem
from .results import KernelResult
from .specs import CountingPotential, KernelSpec
from .summary import ChainRun, summarise, superchain_ids

#: Chains of one of this package's kernels in a comparison, run as one batch. On 2 CPU cores a
#: batch of 32 costs little more per iteration than one chain on small targets (see the design
#: notes); more chains give R-hat more power to see a stuck chain.
DEFAULT_BATCH_CHAINS = 32
#: Evaluations (gradients, or potentials for a gradient-free kernel; all chains, warmup
#: included) a batched kernel may spend in one cell before its verdict must stand: the same
#: budget for every kernel.
DEFAULT_MAX_EVALS = 2_000_000
#: Chains per superchain in a batch of at least four superchains: the chains of one superchain
#: start at one point, so that their :math:`\hat R` can be nested (Margossian et al. 2024), which
#: judges many short chains where split :math:`\hat R` would need every chain to be long.
SUPERCHAIN_SIZE = 4
#: At most this many continuations of a batch after its first run (each at least doubles the
#: draws, so the budget, not this cap, is what usually ends a hopeless run).
MAX_CONTINUATIONS = 8


def chain_starts(num_chains: int) -> list[int]:
    """The starting point of each chain of a batch: superchains of :data:`SUPERCHAIN_SIZE`
    chains where the batch holds at least four of them, else a point per chain."""
    if num_chains >= 4 * SUPERCHAIN_SIZE and num_chains % SUPERCHAIN_SIZE == 0:
        return [c // SUPERCHAIN_SIZE for c in range(num_chains)]
    return list(range(num_chains))


def can_batch(spec: KernelSpec, problem: Problem) -> bool:
    """Whether ``spec`` builds one of this package's kernels, whose chains can run as a batch."""
    if spec.ours:
        return True
    try:
        kernel = spec.build(problem, CountingPotential(problem.potential_fn))
    except Exception:  # run_cell reports the error when it builds the kernel for real
        return False
    return isinstance(kernel, MHKernel)


def run_batch(
    spec: KernelSpec,
    target: Target | Problem,
    num_samples: int,
    warmup_steps: int,
    num_chains: int,
    seed: int,
    on_step: Callable[[], None] | None = None,
    chain_adaptation: str | None = "pooled",
    mcmc: MCMC | None = None,
) -> tuple[list[ChainRun], MCMC]:
    """Run ``num_chains`` chains of ``spec`` as one batch, or continue an earlier batch.

    Chain :math:`c` starts where :func:`run_chain` with seed ``seed + s`` would start it, with
    :math:`s` its point in :func:`chain_starts` (superchains of chains sharing a dispersed start
    in a large batch, else :math:`s = c`); the batch's random stream is seeded with ``seed``.

    :param chain_adaptation: the kernel's ``chain_adaptation`` (``None``: the spec's own);
        pooled by default, so that the chains' shared warmup draws estimate the mass matrix,
        with the step size of a gradient-based kernel adapted on the harmonic mean of the
        chains' acceptance probabilities.
    :param mcmc: an earlier run of this function to continue (its chains, step sizes, mass
        matrices and random stream; no warmup): ``num_samples`` more draws per chain.
    :returns: one :class:`ChainRun` per chain (this run's draws and cost only), and the
        :class:`~pyro_simplehmc.MCMC` that can be continued.
    """
    problem = as_problem(target)
    init_state = None
    if mcmc is None:
        pyro.set_rng_seed(seed)
        kernel = _batch_kernel(spec, problem)
        if chain_adaptation is not None and "chain_adaptation" not in spec.settings:
            kernel.chain_adaptation = check.one_of(
                "chain_adaptation", chain_adaptation, ("per_chain", "pooled")
            )
        if kernel.chain_adaptation == "pooled" and kernel.uses_gradient:
            # The step size follows the harmonic mean of the chains' acceptance probabilities
            # (as ChEES does, Hoffman et al. 2021): a chain whose gradient steps all fail pulls
            # it down until that chain moves too, where the mean can leave it stuck. (A random
            # walk's single-step probabilities are often near 0, so for it the harmonic mean
            # would shrink the step far below the optimum: it keeps the mean. Design notes.)
            kernel.pooled_statistic = "harmonic"
        points = [problem.initial_params(seed + s) for s in chain_starts(num_chains)]
        initial_params = {name: torch.stack([p[name] for p in points]) for name in points[0]}
    else:
        kernel, init_state, warmup_steps, initial_params = mcmc.kernel, mcmc.last_state, 0, None
    clock = {"start": time.perf_counter(), "warmup_end": None}

    def hook(kernel, params, stage, i):
        if stage == "Warmup":
            clock["warmup_end"] = time.perf_counter()
        if on_step is not None:
            on_step()

    # Looked up at run time, so that teaching.quick_runs shortens comparisons too.
    run = mcmc_layer.MCMC(
        kernel,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        initial_params=initial_params,
        num_chains=num_chains,
        chain_method="vectorized",
        disable_progbar=True,
        hook_fn=hook,
        transforms=problem.transforms,
    )
    run.run(*problem.model_args, init_state=init_state, **problem.model_kwargs)
    end = time.perf_counter()
    warmup_end = clock["warmup_end"] if clock["warmup_end"] is not None else clock["start"]
    seconds = {"warmup": warmup_end - clock["start"], "sampling": end - warmup_end}
    samples = run.get_samples(group_by_chain=True)
    chains = []
    for c, diagnostics in enumerate(run.kernel_diagnostics):
        chain = {name: value[c] for name, value in samples.items()}
        diagnostics = dict(diagnostics)
        counts = {
            key: dict(diagnostics.pop(f"{key} evaluations")) for key in ("potential", "gradient")
        }
        chains.append(
            ChainRun(
                draws=problem.flatten(chain).detach().cpu().double().numpy(),
                potentials=counts["potential"],
                gradients=counts["gradient"],
                # The batch's wall time, shared out: summed over the chains it is the wall time.
                seconds={k: v / num_chains for k, v in seconds.items()},
                diagnostics=diagnostics,
                deterministic=deterministic_sites(problem, chain),
                start=chain_starts(num_chains)[c],
            )
        )
    return chains, run


def _batch_kernel(spec: KernelSpec, problem: Problem) -> MHKernel:
    """The kernel of a batch. On a Pyro model it is built from the model, so that it can
    evaluate every chain in one call (under a plate, or vmapped; see
    :mod:`pyro_simplehmc.kernels.potentials`): the problem's one-chain potential could only be
    looped over the chains."""
    if problem.model is not None and problem.target is None and spec.kernel_class is not None:
        extra = {}
        if problem.max_plate_nesting is not None:
            extra["max_plate_nesting"] = problem.max_plate_nesting
        return spec.kernel_class(model=problem.model, **{**extra, **spec.settings})
    return spec.build(problem, CountingPotential(problem.potential_fn))


def _join(first: ChainRun, later: ChainRun) -> ChainRun:
    """One chain's run followed by its continuation."""
    n0, n1 = len(first.draws), len(later.draws)
    rates = [first.diagnostics.get("acceptance rate"), later.diagnostics.get("acceptance rate")]
    diagnostics = dict(later.diagnostics)
    if all(r is not None for r in rates):
        diagnostics["acceptance rate"] = (rates[0] * n0 + rates[1] * n1) / (n0 + n1)
    diagnostics["divergences"] = list(first.diagnostics.get("divergences") or []) + [
        n0 + i for i in later.diagnostics.get("divergences") or []
    ]

    def add(a, b):
        return {"warmup": a["warmup"] + b["warmup"], "sampling": a["sampling"] + b["sampling"]}

    return ChainRun(
        draws=np.concatenate([first.draws, later.draws]),
        potentials=add(first.potentials, later.potentials),
        gradients=add(first.gradients, later.gradients),
        seconds=add(first.seconds, later.seconds),
        diagnostics=diagnostics,
        deterministic={
            k: np.concatenate([v, later.deterministic[k]]) for k, v in first.deterministic.items()
        },
        start=first.start,
    )


def run_batch_until_reliable(
    spec: KernelSpec,
    problem: Problem,
    num_samples: int,
    warmup_steps: int,
    num_chains: int,
    seed: int,
    on_step: Callable[[], None] | None = None,
    max_evals: int | None = DEFAULT_MAX_EVALS,
    chain_adaptation: str | None = "pooled",
) -> tuple[list[ChainRun], list[str]]:
    """:func:`run_batch`, then continue the chains while the verdict would not be reliable.

    Each continuation asks for the draws per chain that
    :func:`~pyro_simplehmc.checks.statistics.draws_needed` estimates (at least as many again),
    within what is left of ``max_evals`` at the cost per draw measured so far, at most
    :data:`MAX_CONTINUATIONS` times.

    :returns: the chains (all draws) and notes on what was done, for the report.
    """
    chains, mcmc = run_batch(
        spec, problem, num_samples, warmup_steps, num_chains, seed, on_step, chain_adaptation
    )
    notes: list[str] = []
    if max_evals is None:
        return chains, notes
    for _ in range(MAX_CONTINUATIONS):
        draws = np.stack([c.draws for c in chains])
        why, smallest, r_hat = unreliable(draws, superchain_ids(chains))
        if why is None:
            break
        stuck = np.flatnonzero(~np.any(draws[:, 1:] != draws[:, :-1], axis=(1, 2)))
        if len(stuck):
            notes.append(
                f"chain(s) {stuck.tolist()} never moved in {draws.shape[1]} draws: more draws "
                "would not help, so none were run"
            )
            break
        done = draws.shape[1]
        spent = cost(chains, spec.uses_gradient)
        per_draw = max(cost(chains, spec.uses_gradient, "sampling"), 1) / done
        wanted = draws_wanted(done, why, smallest, r_hat)
        affordable = int((max_evals - spent) / per_draw)
        more = min(wanted - done, affordable)
        if more < 1:
            notes.append(
                f"{why} after {done} draws per chain, and the budget of {max_evals:,} "
                f"evaluations is spent ({spent:,})"
            )
            break
        later, mcmc = run_batch(
            spec, problem, more, 0, num_chains, seed, on_step, chain_adaptation, mcmc=mcmc
        )
        chains = [_join(a, b) for a, b in zip(chains, later, strict=True)]
    total = len(chains[0].draws)
    if total > num_samples:
        notes.append(
            f"chains continued (no new warmup) from {num_samples} to {total} draws per chain "
            "for a reliable verdict"
        )
    return chains, notes


def run_cell(
    spec: KernelSpec,
    target: Target | Problem,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    on_step: Callable[[], None] | None = None,
    *,
    batch_chains: int | None = None,
    max_evals: int | None = DEFAULT_MAX_EVALS,
    chain_adaptation: str | None = "pooled",
    jobs: int | None = None,
) -> tuple[KernelResult, np.ndarray | None]:
    """One kernel on one problem, summarised.

    With ``batch_chains``, one of this package's kernels runs ``batch_chains`` chains as one
    batch and continues them until its verdict is reliable or ``max_evals`` is spent
    (:func:`run_batch_until_reliable`); any other kernel, or without ``batch_chains``, runs
    ``num_chains`` chains one after the other (:func:`run_chain`, seeds ``seed + c``) for
    exactly ``num_samples`` draws each.

    A kernel that raises does not stop the caller: its result has the verdict ``ERROR`` and the
    message in :attr:`KernelResult.error` (the traceback is issued as a warning).

    :param batch_chains: chains of a batched kernel (``None``: run every kernel per chain).
    :param max_evals: the budget of a batched kernel, in its cost unit, all chains and warmup
        included (``None``: no continuation).
    :param chain_adaptation: a batched kernel's ``chain_adaptation`` (``None``: its own).
    :param jobs: processes for the chains of a kernel that runs per chain (``None``: one per
        chain, at most one per usable core; see
        :func:`~pyro_simplehmc.compare.per_chain.run_chains`).
    :returns: ``(result, draws)`` with ``draws`` of shape ``(chains, draws, D)``, or ``None``
        for a kernel that raised.
    """
    problem = as_problem(target)
    if batch_chains is not None:
        check.positive_int("batch_chains", batch_chains)
    if max_evals is not None:
        check.positive_int("max_evals", max_evals)
    batched = batch_chains is not None and can_batch(spec, problem)
    chain_count = batch_chains if batched else num_chains
    notes: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            if batched:
                chains, notes = run_batch_until_reliable(
                    spec, problem, num_samples, warmup_steps, batch_chains, seed, on_step,
                    max_evals, chain_adaptation,
                )  # fmt: skip
            else:
                chains, notes = run_chains_until_reliable(
                    spec, problem, num_samples, warmup_steps, num_chains, seed, on_step,
                    max_evals if batch_chains is not None else None, MAX_CONTINUATIONS, jobs,
                )  # fmt: skip
    except Exception as error:  # a kernel that fails on this model is a finding, not a crash
        warnings.warn(
            f"{spec.name} raised on {problem.name}:\n{traceback.format_exc()}",
            RuntimeWarning,
            stacklevel=2,
        )
        return KernelResult.failed(
            spec.name, spec.uses_gradient, chain_count, _error_text(error)
        ), None
    for warning in caught:  # e.g. a batched potential that fell back: said in the report
        if "evaluating the potential" in str(warning.message):
            notes.append(str(warning.message))
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    if spec.ours and not batched:
        _check_counters(spec.name, chains)
    result = summarise(spec.name, spec.uses_gradient, chains, problem)
    result.warnings[:0] = notes
    return result, np.stack([c.draws for c in chains])


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".strip()


def _check_counters(name: str, chains: Sequence[ChainRun]) -> None:
    """Our kernels count their own evaluations; the wrapper's count must agree."""
    for chain in chains:
        for key, ours in (
            ("potential evaluations", chain.potentials),
            ("gradient evaluations", chain.gradients),
        ):
            theirs = chain.diagnostics.get(key)
            if theirs is not None and dict(theirs) != ours:
                warnings.warn(
                    f"{name}: the kernel counted {key} {dict(theirs)} but the wrapped potential "
                    f"was called {ours}",
                    RuntimeWarning,
                    stacklevel=3,
                )


__all__ = [
    "DEFAULT_BATCH_CHAINS",
    "DEFAULT_MAX_EVALS",
    "MAX_CONTINUATIONS",
    "SUPERCHAIN_SIZE",
    "as_problem",
    "can_batch",
    "chain_starts",
    "draws_wanted",
    "run_batch",
    "run_batch_until_reliable",
    "run_cell",
    "run_chain",
    "run_chains_until_reliable",
    "unreliable",
]
