r"""Run kernels side by side, count what each costs, and validate what each draws.

Every kernel, ours and Pyro's, runs through :class:`pyro.infer.MCMC` on the same
:class:`~pyro_simplehmc.compare.problems.Problem`, with the same number of draws, warmup, chains,
starting points and seeds, on a counted potential (:mod:`.specs`).

- :func:`compare`: on a :class:`~pyro_simplehmc.checks.targets.Target` with known truth;
- :func:`compare_model`: on your own Pyro model, against a longer run of a reference kernel
  (NUTS by default);
- :func:`compare_posterior`: on a ported posteriordb posterior, against its reference draws;
- :func:`run_cell`: one kernel on one problem, the unit the others (and a grid runner) are
  made of.

The summary of a kernel (:class:`~pyro_simplehmc.compare.results.KernelResult`) holds bulk and
tail ESS of every validated number and of its square, ESS per gradient evaluation (per potential
evaluation for gradient-free kernels) and per second from the smallest bulk ESS over the
sampling phase, split :math:`\hat R`, acceptance rate, divergences and wall time, and the
verdicts: :math:`z`-scores of each mean and variance against the truth and against the
reference, with ``PASS``/``FAIL`` only where the Monte-Carlo standard errors can be trusted
(see :mod:`.statistics`).
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyro
import pyro.infer
from pyro.infer.autoguide import init_to_uniform

from ..checks.statistics import (
    NOT_TESTED,
    bonferroni_threshold,
    draws_needed,
    ess,
    kurtosis,
    max_r_hat,
    moments,
    reliability,
    verdict,
    z_scores,
)
from ..checks.targets import Target
from ..core import validation as check
from .problems import Problem, from_model, from_posterior, from_target
from .results import Comparison, KernelResult
from .specs import KERNELS, CountingPotential, KernelSpec, resolve_kernels


@dataclass
class ChainRun:
    """The raw output of one chain of one kernel."""

    draws: np.ndarray  # (num_samples, D)
    potentials: dict[str, int]  # {"warmup": n, "sampling": n}
    gradients: dict[str, int]
    seconds: dict[str, float]
    diagnostics: dict[str, Any]
    deterministic: dict[str, np.ndarray] = field(default_factory=dict)


def _as_problem(target: Target | Problem) -> Problem:
    return target if isinstance(target, Problem) else from_target(target)


def run_chain(
    spec: KernelSpec,
    target: Target | Problem,
    num_samples: int,
    warmup_steps: int,
    seed: int,
    on_step: Callable[[], None] | None = None,
) -> ChainRun:
    """Run one chain of ``spec`` on ``target`` with seed ``seed`` and count its cost."""
    problem = _as_problem(target)
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
        deterministic=_deterministic(problem, samples),
    )


def _deterministic(problem: Problem, samples) -> dict[str, np.ndarray]:
    """The deterministic sites at each draw (reported, not tested)."""
    if not problem.deterministic_sites or problem.model is None:
        return {}
    predictive = pyro.infer.Predictive(
        problem.model, posterior_samples=samples, return_sites=list(problem.deterministic_sites)
    )
    with pyro.poutine.block():
        values = predictive(*problem.model_args, **problem.model_kwargs)
    return {k: v.detach().cpu().double().numpy() for k, v in values.items()}


def summarise(
    name: str,
    uses_gradient: bool,
    chains: Sequence[ChainRun],
    target: Target | Problem,
    threshold: float | None = None,
) -> KernelResult:
    """The :class:`KernelResult` of one kernel from its chains, with its verdict against the
    truth when the problem has one (against the reference: :func:`judge_against`)."""
    problem = _as_problem(target)
    if threshold is None:
        threshold = bonferroni_threshold(2 * problem.dim)
    draws = np.stack([c.draws for c in chains])  # (chains, draws, D)
    notes = []
    moved = np.any(draws[:, 1:] != draws[:, :-1], axis=-1)  # (chains, draws - 1)
    moved_per_chain = moved.mean(1) if moved.shape[1] else np.zeros(len(chains))
    stuck = [i for i, m in enumerate(moved_per_chain) if m == 0]

    ess_values = {
        (what, method): ess(draws if what == "x" else draws**2, method)
        for what in ("x", "x2")
        for method in ("bulk", "tail")
    }
    if stuck:
        notes.append(f"chain(s) {stuck} never moved: ESS set to 0")
        for value in ess_values.values():
            value[:] = 0.0

    rates = [c.diagnostics.get("acceptance rate") for c in chains]
    if all(r is not None for r in rates):
        acceptance = float(np.mean([float(r) for r in rates]))
    else:  # for a Metropolis-Hastings kernel a move is an acceptance
        acceptance = float(moved_per_chain.mean())
    if stuck:
        acceptance = min(acceptance, float(moved_per_chain.mean()))
    divergences = sum(len(c.diagnostics.get("divergences") or []) for c in chains)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, var, mean_se, var_se = moments(draws)
        r_hat = max_r_hat(draws)
        kappa = kurtosis(draws)

    result = KernelResult(
        name=name,
        uses_gradient=uses_gradient,
        num_chains=draws.shape[0],
        num_samples=draws.shape[1],
        ess_bulk_x=ess_values["x", "bulk"].tolist(),
        ess_tail_x=ess_values["x", "tail"].tolist(),
        ess_bulk_x2=ess_values["x2", "bulk"].tolist(),
        ess_tail_x2=ess_values["x2", "tail"].tolist(),
        r_hat=r_hat,
        acceptance_rate=acceptance,
        moved_fraction=float(moved_per_chain.mean()),
        divergences=divergences,
        potential_evals=_sum_dicts([c.potentials for c in chains]),
        gradient_evals=_sum_dicts([c.gradients for c in chains]),
        seconds=_sum_dicts([c.seconds for c in chains]),
        mean=mean.tolist(),
        var=var.tolist(),
        mean_mcse=mean_se.tolist(),
        var_mcse=var_se.tolist(),
        deterministic=_summarise_deterministic(chains),
        warnings=notes,
    )
    result.reliability = reliability(result.min_bulk_ess, r_hat, bool(stuck))
    result.draws_needed = draws_needed(draws.shape[1], result.min_bulk_ess, result.reliability)
    if result.reliability is not None:
        needed = f"; about {result.draws_needed} draws per chain" if result.draws_needed else ""
        notes.append(
            f"{result.reliability}: smallest bulk ESS {result.min_bulk_ess:.0f}, R-hat "
            f"{r_hat:.3f}; the Monte-Carlo standard errors, and so the z-scores, are not "
            f"reliable (need bulk ESS >= 100 and R-hat < 1.01{needed})"
        )
    if problem.truth_mean is not None:
        truth_var_se = problem.truth_var_se
        if truth_var_se is None and problem.truth_ess is not None:
            # Normal-theory error of a variance estimated from ESS draws: sigma^2 sqrt((k-1)/ESS)
            truth_var_se = problem.truth_var * np.sqrt(np.maximum(kappa - 1, 0) / problem.truth_ess)
        result.z_mean_truth = z_scores(mean, problem.truth_mean, mean_se, problem.truth_mean_se)
        result.z_var_truth = z_scores(var, problem.truth_var, var_se, truth_var_se)
        result.z_mean_truth, result.z_var_truth = (
            result.z_mean_truth.tolist(),
            result.z_var_truth.tolist(),
        )
        result.status_truth = verdict(result.max_abs_z_truth, threshold, result.reliability)
    return result


def _summarise_deterministic(chains: Sequence[ChainRun]) -> dict[str, dict[str, list[float]]]:
    out = {}
    for site in chains[0].deterministic:
        values = np.concatenate([c.deterministic[site] for c in chains])
        values = values.reshape(values.shape[0], -1)
        out[site] = {"mean": values.mean(0).tolist(), "sd": values.std(0, ddof=1).tolist()}
    return out


def judge_against(result: KernelResult, ref: KernelResult, threshold: float) -> None:
    """Set ``result``'s z-scores and verdict against the reference kernel's result ``ref``.

    Both MCSEs are combined. The verdict is ``result``'s own unreliability if any, else
    ``REF TOO FEW DRAWS`` / ``REF NOT MIXED`` if the reference's draws are not reliable, else
    ``PASS`` or ``FAIL``.
    """
    if result.error is not None or result is ref:
        return
    if ref.error is not None:
        result.status_ref = NOT_TESTED
        return
    result.z_mean_ref = z_scores(result.mean, ref.mean, result.mean_mcse, ref.mean_mcse).tolist()
    result.z_var_ref = z_scores(result.var, ref.var, result.var_mcse, ref.var_mcse).tolist()
    unreliable = result.reliability
    if unreliable is None and ref.reliability is not None:
        unreliable = f"REF {ref.reliability}"
    result.status_ref = verdict(result.max_abs_z_ref, threshold, unreliable)


def _sum_dicts(dicts):
    return {key: sum(d[key] for d in dicts) for key in dicts[0]}


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".strip()


def run_cell(
    spec: KernelSpec,
    target: Target | Problem,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    on_step: Callable[[], None] | None = None,
) -> tuple[KernelResult, np.ndarray | None]:
    """One kernel on one problem: ``num_chains`` chains, seeds ``seed + c``, summarised.

    A kernel that raises does not stop the caller: its result has the verdict ``ERROR`` and the
    message in :attr:`KernelResult.error` (the traceback is issued as a warning).

    :returns: ``(result, draws)`` with ``draws`` of shape ``(chains, draws, D)``, or ``None``
        for a kernel that raised.
    """
    problem = _as_problem(target)
    try:
        chains = [
            run_chain(spec, problem, num_samples, warmup_steps, seed + c, on_step)
            for c in range(num_chains)
        ]
    except Exception as error:  # a kernel that fails on this model is a finding, not a crash
        warnings.warn(
            f"{spec.name} raised on {problem.name}:\n{traceback.format_exc()}",
            RuntimeWarning,
            stacklevel=2,
        )
        return KernelResult.failed(
            spec.name, spec.uses_gradient, num_chains, _error_text(error)
        ), None
    if spec.ours:
        _check_counters(spec.name, chains)
    result = summarise(spec.name, spec.uses_gradient, chains, problem)
    return result, np.stack([c.draws for c in chains])


def _check_run_settings(num_samples, warmup_steps, num_chains, seed, progress, keep_draws):
    check.positive_int("num_samples", num_samples)
    check.nonnegative_int("warmup_steps", warmup_steps)
    check.positive_int("num_chains", num_chains)
    check.nonnegative_int("seed", seed)
    check.boolean("progress", progress)
    check.boolean("keep_draws", keep_draws)


def _run_all(
    problem: Problem,
    specs: Sequence[KernelSpec],
    lengths: Mapping[str, int],
    warmup_steps: int,
    num_chains: int,
    seed: int,
    reference: str | None,
    progress: bool,
    keep_draws: bool,
    reference_num_samples: int | None = None,
) -> Comparison:
    total = num_chains * sum(lengths[s.name] + warmup_steps for s in specs)
    bar = _progress_bar(total, problem.name, progress)
    threshold = bonferroni_threshold(2 * problem.dim)
    results, all_draws = [], {}
    try:
        for spec in specs:
            bar.set_postfix_str(spec.name)
            result, draws = run_cell(
                spec, problem, lengths[spec.name], warmup_steps, num_chains, seed, bar.update
            )
            results.append(result)
            if keep_draws and draws is not None:
                all_draws[spec.name] = draws
    finally:
        bar.close()

    by_name = {r.name: r for r in results}
    ref = by_name.get(reference) if reference is not None else None
    for result in results:
        if ref is not None:
            judge_against(result, ref, threshold)
        for note in result.warnings:
            warnings.warn(f"{result.name}: {note}", RuntimeWarning, stacklevel=3)
        if result.error is not None:
            warnings.warn(f"{result.name}: {result.error}", RuntimeWarning, stacklevel=3)
    num_samples = min(lengths.values())
    return Comparison(
        target=problem.name,
        description=problem.description,
        dim=problem.dim,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        seed=seed,
        threshold=threshold,
        results=results,
        truth_mean=None if problem.truth_mean is None else problem.truth_mean.tolist(),
        truth_var=None if problem.truth_var is None else problem.truth_var.tolist(),
        coords=list(problem.coords),
        reference=reference if ref is not None else None,
        reference_num_samples=reference_num_samples,
        draws=all_draws,
    )


def compare(
    target: Target | Problem,
    kernels: Sequence[str | KernelSpec] | None = None,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    reference: str | None = "NUTS",
    progress: bool = True,
    keep_draws: bool = True,
    full_mass: bool | None = None,
    lengths: Mapping[str, int] | None = None,
) -> Comparison:
    """Run ``kernels`` on ``target`` and validate each against the truth and against ``reference``.

    Chain :math:`c` of every kernel is seeded with ``seed + c`` and starts from the same point.

    :param target: a :class:`~pyro_simplehmc.checks.targets.Target` (or a
        :class:`~pyro_simplehmc.compare.problems.Problem`).
    :param kernels: names from :data:`~pyro_simplehmc.compare.specs.KERNELS` or
        :class:`~pyro_simplehmc.compare.specs.KernelSpec` objects (default: all).
    :param num_samples: post-warmup draws per chain.
    :param warmup_steps: warmup (adaptation) iterations per chain.
    :param num_chains: chains per kernel, run one after the other.
    :param seed: the seed of the first chain.
    :param reference: the kernel the others are compared with (if it is among ``kernels``), or
        ``None``.
    :param progress: show a progress bar over all iterations of all kernels.
    :param keep_draws: keep the draws (``(chains, draws, D)`` per kernel) for the figures.
    :param full_mass: if not ``None``, the ``full_mass`` of every kernel that takes one.
    :param lengths: draws per chain of particular kernels, by name, instead of ``num_samples``
        (a cheap kernel with a slowly mixing chain can take more draws for a reliable verdict).
    """
    _check_run_settings(num_samples, warmup_steps, num_chains, seed, progress, keep_draws)
    lengths = dict(check.dict_or_none("lengths", lengths) or {})
    for name, length in lengths.items():
        check.positive_int(f"lengths[{name!r}]", length)
    check.string_or_none("reference", reference)
    problem = _as_problem(target)
    specs = resolve_kernels(kernels, full_mass=full_mass)
    if reference is not None and reference not in KERNELS and reference not in {
        s.name for s in specs
    }:
        raise ValueError(
            f"reference must be None or the name of a kernel of the comparison "
            f"({[s.name for s in specs]}) or of {sorted(KERNELS)}; got {reference!r}"
        )
    lengths = {s.name: lengths.get(s.name, num_samples) for s in specs}
    return _run_all(
        problem, specs, lengths, warmup_steps, num_chains, seed, reference, progress, keep_draws
    )


def compare_model(
    model: Callable,
    model_args: tuple | list = (),
    model_kwargs: Mapping[str, Any] | None = None,
    kernels: Sequence[str | KernelSpec] | None = None,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    reference: str | KernelSpec = "NUTS",
    progress: bool = True,
    *,
    reference_num_samples: int | None = None,
    init_strategy: Callable = init_to_uniform,
    max_plate_nesting: int | None = None,
    full_mass: bool | None = None,
    keep_draws: bool = True,
    name: str | None = None,
) -> Comparison:
    r"""Does MALA or SimpleHMC sample *my* model as well as NUTS does, and at what cost?

    Runs ``reference`` (longer: ``reference_num_samples`` draws per chain, by default four times
    ``num_samples``, so that its own MCSE is half the others') and each of ``kernels`` on
    ``model``, and validates every element of every latent site, in the constrained space, against
    the reference: the posterior mean and variance of each, :math:`z`-scores with both MCSEs
    combined, Bonferroni over all the numbers tested. Deterministic sites are reported
    (:attr:`KernelResult.deterministic`), not tested. Chain :math:`c` of every kernel starts
    where ``init_strategy`` puts it with seed ``seed + c``: dispersed, so that R-hat can see a
    stuck chain. A kernel that raises on the model is reported with verdict ``ERROR`` and its
    message; the others' results are kept.

    Example::

        >>> comparison = compare_model(model, (data,), kernels=["MALA", "SimpleHMC"])
        >>> print(format_table(comparison))

    :param model: the Pyro model.
    :param model_args: its positional arguments.
    :param model_kwargs: its keyword arguments.
    :param kernels: kernel names (see :data:`~pyro_simplehmc.compare.specs.KERNELS`) or specs;
        default: RandomWalkMH, MALA and SimpleHMC.
    :param num_samples: post-warmup draws per chain of each kernel.
    :param warmup_steps: warmup iterations per chain (the reference's too).
    :param num_chains: chains per kernel.
    :param seed: the seed of the first chain.
    :param reference: the reference kernel's name or spec.
    :param progress: show a progress bar.
    :param reference_num_samples: draws per chain of the reference (default
        ``4 * num_samples``).
    :param init_strategy: a Pyro init strategy for the chains' starting points.
    :param max_plate_nesting: Pyro's bound on nested plates (guessed if ``None``).
    :param full_mass: if not ``None``, the ``full_mass`` of every kernel that takes one.
    :param keep_draws: keep the draws for the figures.
    :param name: the name in reports (default: the model's ``__name__``).
    :returns: a :class:`~pyro_simplehmc.compare.results.Comparison`, the reference first.
    """
    _check_run_settings(num_samples, warmup_steps, num_chains, seed, progress, keep_draws)
    if reference_num_samples is None:
        reference_num_samples = 4 * num_samples
    check.positive_int("reference_num_samples", reference_num_samples)
    ref_spec = _resolve_reference(reference)
    if kernels is None:
        kernels = [k for k in ("RandomWalkMH", "MALA", "SimpleHMC") if k != ref_spec.name]
    specs = [s for s in resolve_kernels(kernels, full_mass=full_mass) if s.name != ref_spec.name]
    ref_spec = resolve_kernels([ref_spec], full_mass=full_mass)[0]
    problem = from_model(
        model,
        model_args,
        model_kwargs,
        init_strategy=init_strategy,
        max_plate_nesting=max_plate_nesting,
        name=name,
    )
    lengths = {s.name: num_samples for s in specs}
    lengths[ref_spec.name] = reference_num_samples
    return _run_all(
        problem,
        [ref_spec, *specs],
        lengths,
        warmup_steps,
        num_chains,
        seed,
        ref_spec.name,
        progress,
        keep_draws,
        reference_num_samples=reference_num_samples,
    )


def _resolve_reference(reference: str | KernelSpec) -> KernelSpec:
    if isinstance(reference, KernelSpec):
        return reference
    if not isinstance(reference, str) or reference not in KERNELS:
        raise ValueError(
            f"reference must be one of {sorted(KERNELS)} or a KernelSpec; got {reference!r}"
        )
    return KERNELS[reference]


def compare_posterior(
    name: str,
    kernels: Sequence[str | KernelSpec] | None = None,
    num_samples: int = 1000,
    warmup_steps: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    reference: str | None = "NUTS",
    progress: bool = True,
    keep_draws: bool = True,
    full_mass: bool | None = None,
) -> Comparison:
    """:func:`compare` on a ported posteriordb posterior, its reference draws as the truth.

    :param name: a key of :data:`pyro_simplehmc.checks.posteriordb.POSTERIORS`.

    The other parameters are those of :func:`compare`.
    """
    _check_run_settings(num_samples, warmup_steps, num_chains, seed, progress, keep_draws)
    return compare(
        from_posterior(name),
        kernels=kernels,
        num_samples=num_samples,
        warmup_steps=warmup_steps,
        num_chains=num_chains,
        seed=seed,
        reference=reference,
        progress=progress,
        keep_draws=keep_draws,
        full_mass=full_mass,
    )


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


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, description: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="it", dynamic_ncols=True, leave=False)


__all__ = [
    "ChainRun",
    "compare",
    "compare_model",
    "compare_posterior",
    "judge_against",
    "run_cell",
    "run_chain",
    "summarise",
]
